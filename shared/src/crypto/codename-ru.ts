/**
 * Russian codenames: eight words drawn uniformly from Passage's Russian list (3,900 common
 * nouns, codename-ru-words.ts), 8 × log2(3900) ≈ 95.4 bits. Its own list byte in the derivation
 * (`CODENAME_KDF_PARAMS_RU`: version 2, list 2), so a Russian and an English codename never
 * derive each other's keys. A module of its own, so that a page loads these words (about 18 KB
 * gzipped) only when it needs them: `const { RUSSIAN_CODENAME_LIST } = await
 * import('…/codename-ru.js')`, then `readCodename(input, [RUSSIAN_CODENAME_LIST,
 * ENGLISH_CODENAME_LIST])`.
 *
 * How the list was built and checked: tools/ru-wordlist/README.md and ADR 0007. Every rule is
 * enforced on the committed list by codename-ru.test.ts.
 *
 * Reading input (docs/adr/0007-codename-derivation.md, "Russian"):
 * - Unicode NFKC, lower case; ё is read as е and й as и (the list has no two words that differ
 *   only there, and the canonical word keeps its own spelling).
 * - A whitespace-separated chunk that holds a Latin letter was typed with the keyboard in the
 *   Latin layout: every key is read as the ЙЦУКЕН letter on the same key ("ghbdtn" → "привет",
 *   "`;br" → "ёжик"), including the punctuation keys that carry letters on ЙЦУКЕН ([ ] ; ' , .
 *   ` → х ъ ж э б ю ё). Cyrillic letters in such a chunk stay (a layout switched mid-word). The
 *   Latin look-alike folding of English codenames is never applied: "сор" stays Cyrillic.
 * - The chunk is then split at separators (as for English) into words.
 * - A word is read by its first four letters, which identify one list word (the list is built
 *   so); the rest of the word must be Russian letters but is not compared. Why: Russian words
 *   inflect, and a contact who wrote «корова» may later type «корову» or «коровы»; one who
 *   misspells an ending still gets in. The keys come from the canonical list word, so nothing is
 *   lost, and the entropy is that of the drawn words. A word of fewer than four letters, or with
 *   a letter outside а–я, is unknown.
 */
import type { CodenameWordList, ParsedCodename } from './codename.js';
import {
  CODENAME_KDF_PARAMS_RU,
  CodenameListId,
  InvalidCodenameError,
  readCodename,
} from './codename.js';
import { RUSSIAN_CODENAME_WORDS_TEXT } from './codename-ru-words.js';

/** Words in a new Russian codename; 8 × log2(3900) ≈ 95.4 bits. */
export const RU_CODENAME_WORDS = 8;
/** Letters that identify a word of the Russian list. */
export const RU_PREFIX_LETTERS = 4;

/** The list, sorted. */
export const RU_CODENAME_WORDLIST: readonly string[] = Object.freeze(
  RUSSIAN_CODENAME_WORDS_TEXT.split('\n').filter((w) => w.length > 0),
);

/** ё → е, й → и: the key a word is looked up by. */
export function russianLookupKey(word: string): string {
  return word.replaceAll('ё', 'е').replaceAll('й', 'и');
}

const BY_PREFIX: ReadonlyMap<string, string> = new Map(
  RU_CODENAME_WORDLIST.map((w) => [russianLookupKey(w).slice(0, RU_PREFIX_LETTERS), w]),
);

/**
 * The Latin-layout key (lower case, and the shifted punctuation) → the ЙЦУКЕН letter on the same
 * key. Shared by the Windows and the Apple ЙЦУКЕН layouts for every letter key; "/" and "?" are
 * "." and "," on ЙЦУКЕН, separators like their Latin twins.
 */
export const QWERTY_TO_JCUKEN: Readonly<Record<string, string>> = Object.freeze({
  ...Object.fromEntries(
    [..."qwertyuiop[]asdfghjkl;'zxcvbnm,.`"].map((key, i) => [
      key,
      'йцукенгшщзхъфывапролджэячсмитьбюё'[i]!,
    ]),
  ),
  ...Object.fromEntries([...'{}:"<>~'].map((key, i) => [key, 'хъжэбюё'[i]!])),
  '/': '.',
  '?': ',',
});

const LATIN_LETTER = /[a-z]/u;
const SEPARATORS = /[\s,.;:_/\\|+\-–—]+/u;
const RUSSIAN_WORD = /^[а-я]+$/u;

function readRussianWords(input: string): string[] {
  const lowered = input.normalize('NFKC').toLowerCase();
  const words: string[] = [];
  for (const chunk of lowered.split(/\s+/u)) {
    let text = chunk;
    if (LATIN_LETTER.test(chunk)) {
      text = '';
      for (const ch of chunk) text += QWERTY_TO_JCUKEN[ch] ?? ch;
    }
    for (const token of text.split(SEPARATORS)) {
      if (token.length === 0) continue;
      const key = russianLookupKey(token);
      const word =
        key.length >= RU_PREFIX_LETTERS && RUSSIAN_WORD.test(key)
          ? BY_PREFIX.get(key.slice(0, RU_PREFIX_LETTERS))
          : undefined;
      if (word === undefined) throw new InvalidCodenameError('unknown_word', words.length);
      words.push(word);
    }
  }
  return words;
}

/** Passage's Russian list, read as described above. */
export const RUSSIAN_CODENAME_LIST: CodenameWordList = Object.freeze({
  id: CodenameListId.RU_PASSAGE_V1,
  language: 'ru',
  words: RU_CODENAME_WORDLIST,
  wordsPerCodename: RU_CODENAME_WORDS,
  defaultParams: CODENAME_KDF_PARAMS_RU,
  readWords: readRussianWords,
});

/** Shorthand: reads input as a Russian codename only. */
export function readRussianCodename(input: string): ParsedCodename {
  return readCodename(input, [RUSSIAN_CODENAME_LIST]);
}
