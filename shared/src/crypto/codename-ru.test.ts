import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { loadPrimitives } from './backend.js';
import {
  CODENAME_KDF_PARAMS_RU,
  CODENAME_KDF_PARAMS_V1,
  CODENAME_WORDLIST,
  CodenameListId,
  ENGLISH_CODENAME_LIST,
  InvalidCodenameError,
  MAX_CODENAME_INPUT_LENGTH,
  decodeCodenameKdfParams,
  deriveCodenameKeys,
  encodeCodenameKdfParams,
  generateCodename,
  parseCodename,
  readCodename,
} from './codename.js';
import {
  QWERTY_TO_JCUKEN,
  RUSSIAN_CODENAME_LIST,
  RU_CODENAME_WORDLIST,
  RU_CODENAME_WORDS,
  readRussianCodename,
  russianLookupKey,
} from './codename-ru.js';
import type { Primitives, RandomSource } from './primitives.js';

let sodium: Primitives;
let noble: Primitives;
beforeAll(async () => {
  sodium = await loadPrimitives({ prefer: 'libsodium', strict: true });
  noble = await loadPrimitives({ prefer: 'noble' });
});

/** Cheap parameters for tests about the derivation's structure, not its cost. */
const FAST_RU = { version: 2, list: CodenameListId.RU_PASSAGE_V1, iterations: 1, memoryKiB: 64 };
const FAST_EN = { version: 1, iterations: 1, memoryKiB: 64 };

const BOTH = [RUSSIAN_CODENAME_LIST, ENGLISH_CODENAME_LIST];
const LIST = RU_CODENAME_WORDLIST;
const EN_SET = new Set(CODENAME_WORDLIST);

/** The first words of the list, as a fixed eight-word codename. */
const WORDS = LIST.slice(100, 108);
const CODENAME = WORDS.join(' ');

function failure(f: () => unknown): InvalidCodenameError | undefined {
  try {
    f();
  } catch (error) {
    if (error instanceof InvalidCodenameError) return error;
    throw error;
  }
  return undefined;
}

/** A Russian word as the keys of a Latin-layout keyboard spell it. */
const JCUKEN_TO_QWERTY = new Map(
  Object.entries(QWERTY_TO_JCUKEN)
    .filter(([k]) => /^[a-z[\];',.`]$/.test(k))
    .map(([k, v]) => [v, k]),
);
function typedInLatinLayout(word: string): string {
  return [...word].map((c) => JCUKEN_TO_QWERTY.get(c) ?? c).join('');
}

/** Whether two words are within one edit (insert, delete or substitute one letter). */
function withinOneEdit(a: string, b: string): boolean {
  if (Math.abs(a.length - b.length) > 1) return false;
  if (a.length > b.length) [a, b] = [b, a];
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  if (a.length === b.length) return a.slice(i + 1) === b.slice(i + 1);
  return a.slice(i) === b.slice(i + 1);
}

/** Blocklist entries (tools/ru-wordlist/blocklist.txt), in its own matching rules. */
function blocklist(): { pattern: string; category: string }[] {
  const text = readFileSync(new URL('../../../tools/ru-wordlist/blocklist.txt', import.meta.url), {
    encoding: 'utf8',
  });
  return text
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter((l) => l.length > 0)
    .map((l) => {
      const [pattern, category] = l.split(/\s+/);
      return { pattern: pattern!.replaceAll('ё', 'е'), category: category! };
    });
}

describe('the Russian codename word list (every rule of ADR 0007, checked on the committed list)', () => {
  it('has 3,900 distinct words, and eight of them give at least 90 bits', () => {
    expect(LIST).toHaveLength(3900);
    expect(new Set(LIST).size).toBe(LIST.length);
    expect(RU_CODENAME_WORDS * Math.log2(LIST.length)).toBeGreaterThanOrEqual(90);
    expect(RUSSIAN_CODENAME_LIST.wordsPerCodename).toBe(RU_CODENAME_WORDS);
  });

  it('is sorted, and every word is 4–8 letters а–я with no ё', () => {
    expect([...LIST].sort()).toEqual(LIST);
    for (const w of LIST) expect(w).toMatch(/^[абвгдежзийклмнопрстуфхцчшщъыьэюя]{4,8}$/u);
  });

  it('has distinct first four letters, with й read as и (so no pair differs only by й/и)', () => {
    const prefixes = new Set(LIST.map((w) => russianLookupKey(w).slice(0, 4)));
    expect(prefixes.size).toBe(LIST.length);
    expect(new Set(LIST.map(russianLookupKey)).size).toBe(LIST.length);
  });

  it('has an edit distance of at least 2 between any two words (й read as и)', () => {
    const keys = LIST.map(russianLookupKey);
    const close: string[] = [];
    for (let i = 0; i < keys.length; i++)
      for (let j = i + 1; j < keys.length; j++)
        if (withinOneEdit(keys[i]!, keys[j]!)) close.push(`${LIST[i]}/${LIST[j]}`);
    expect(close).toEqual([]);
  });

  it('has no word that the English look-alike folding turns into an English word or another list word', () => {
    const folded = LIST.map((w) => {
      try {
        return parseCodename(Array<string>(7).fill(w).join(' '));
      } catch {
        return null;
      }
    });
    expect(folded.filter((f) => f !== null)).toEqual([]);
    // Within the list the folding is one to one (only ё/е would collide, and there is no ё).
    const lookalike = LIST.map((w) =>
      [...w].map((c) => ({ а: 'a', е: 'e', о: 'o', р: 'p', с: 'c' })[c] ?? c).join(''),
    );
    expect(new Set(lookalike).size).toBe(LIST.length);
  });

  it('has no word whose Latin-layout keys spell English words, and no English word typed in the wrong layout reads as Russian', () => {
    for (const w of LIST) {
      const tokens = typedInLatinLayout(w).split(/[,.;]/);
      expect(tokens.every((t) => EN_SET.has(t))).toBe(false);
    }
    const readAsRussian = CODENAME_WORDLIST.filter(
      (e) => failure(() => RUSSIAN_CODENAME_LIST.readWords(e)) === undefined,
    );
    expect(readAsRussian).toEqual([]);
  });

  it('contains no blocklisted stem', () => {
    const entries = blocklist();
    expect(entries.length).toBeGreaterThan(500);
    const hits: string[] = [];
    for (const w of LIST) {
      for (const { pattern, category } of entries) {
        const hit = pattern.startsWith('=')
          ? w === pattern.slice(1)
          : pattern.startsWith('*')
            ? w.includes(pattern.slice(1))
            : w.startsWith(pattern);
        if (hit) hits.push(`${w} (${category})`);
      }
    }
    expect(hits).toEqual([]);
  });

  it('blocklists the words of the issue and of the BIP-39 Russian proposal it names', () => {
    for (const w of ['допрос', 'милиция', 'фашист', 'полиция', 'тюрьма', 'петух', 'радуга']) {
      expect(LIST).not.toContain(w);
    }
  });
});

describe('loading the Russian list', () => {
  it('is not imported by codename.ts, so a page loads it only when it asks for it', () => {
    const source = readFileSync(new URL('./codename.ts', import.meta.url), { encoding: 'utf8' });
    expect(source).not.toMatch(/from '\.\/codename-ru/);
    expect(source).not.toMatch(/import\('\.\/codename-ru/);
  });
});

describe('Russian codename generation', () => {
  it('draws eight words uniformly from the whole Russian list', () => {
    const bounds: number[] = [];
    let next = 0;
    const counting: RandomSource = {
      bytes: (n) => new Uint8Array(n),
      uniform: (bound) => {
        bounds.push(bound);
        return next++ * 400;
      },
    };
    const codename = generateCodename(
      { ...sodium, random: counting },
      { list: RUSSIAN_CODENAME_LIST },
    );
    expect(bounds).toEqual(Array<number>(8).fill(3900));
    expect(codename.split(' ')[1]).toBe(LIST[400]);
  });

  it('produces codenames that read back to themselves, as Russian, among both lists', () => {
    for (let i = 0; i < 20; i++) {
      const c = generateCodename(sodium, { list: RUSSIAN_CODENAME_LIST });
      const parsed = readCodename(c, [ENGLISH_CODENAME_LIST, RUSSIAN_CODENAME_LIST]);
      expect(parsed.list).toBe(RUSSIAN_CODENAME_LIST);
      expect(parsed.text).toBe(c);
    }
  });

  it('refuses to generate fewer than eight Russian words', () => {
    expect(() => generateCodename(sodium, { list: RUSSIAN_CODENAME_LIST, wordCount: 7 })).toThrow(
      expect.objectContaining({ code: 'limit_exceeded' }),
    );
  });
});

describe('reading a Russian codename', () => {
  it('ignores case, extra whitespace and separators', () => {
    const messy = `  ${WORDS[0]!.toUpperCase()}\t${WORDS.slice(1, 4).join(', ')}.${WORDS.slice(4).join('  ')} \n`;
    expect(readRussianCodename(messy).text).toBe(CODENAME);
  });

  it('reads ё as е and й as и', () => {
    const withYo = LIST.find((w) => w.includes('е'))!;
    const withJ = LIST.find((w) => w.includes('й'))!;
    const input = [withYo.replace('е', 'ё'), withJ.replaceAll('й', 'и'), ...WORDS.slice(2)];
    expect(readRussianCodename(input.join(' ')).words).toEqual([withYo, withJ, ...WORDS.slice(2)]);
  });

  it('reads a word by its first four letters, so an inflected or misspelt ending still reads', () => {
    expect(readRussianCodename('корова ' + WORDS.slice(1).join(' ')).words[0]).toBe('корова');
    expect(readRussianCodename('корову ' + WORDS.slice(1).join(' ')).words[0]).toBe('корова');
    expect(readRussianCodename('коро ' + WORDS.slice(1).join(' ')).words[0]).toBe('корова');
  });

  it('reads a codename typed with the keyboard in the Latin layout, whole or word by word', () => {
    const latin = WORDS.map(typedInLatinLayout);
    expect(readRussianCodename(latin.join(' ')).text).toBe(CODENAME);
    const mixed = WORDS.map((w, i) => (i % 2 === 0 ? typedInLatinLayout(w) : w));
    expect(readRussianCodename(mixed.join(' ')).text).toBe(CODENAME);
    // б, ю, ж, э, х, ъ, ё sit on punctuation keys: "береза" is typed ",thtpf".
    expect(typedInLatinLayout('береза')).toBe(',thtpf');
    expect(readRussianCodename([',thtpf', ...WORDS.slice(1)].join(' ')).words[0]).toBe('береза');
    expect(readRussianCodename(['<THTPF', ...WORDS.slice(1)].join(' ')).words[0]).toBe('береза');
  });

  it('maps the QWERTY keys to the ЙЦУКЕН letters on them ("ghbdtn" is "привет")', () => {
    expect([...'ghbdtn'].map((c) => QWERTY_TO_JCUKEN[c]).join('')).toBe('привет');
    expect(Object.keys(QWERTY_TO_JCUKEN).filter((k) => /[a-z]/.test(k))).toHaveLength(26);
  });

  it('tells a Russian codename from an English one among both lists, in either order', () => {
    const english = 'abacus abdomen ablaze yo-yo t-shirt zoom zipfile';
    expect(readCodename(CODENAME, BOTH).list).toBe(RUSSIAN_CODENAME_LIST);
    expect(readCodename(CODENAME, [...BOTH].reverse()).list).toBe(RUSSIAN_CODENAME_LIST);
    expect(readCodename(english, BOTH).list).toBe(ENGLISH_CODENAME_LIST);
    // An English codename copied by eye onto a Russian keyboard (look-alike letters) is English.
    expect(readCodename('аbасus аbdоmеn ablaze yo-yo t-shirt zооm zipfile', BOTH).text).toBe(
      english,
    );
  });

  it('rejects a word that is not in the list, naming its position', () => {
    const e = failure(() =>
      readRussianCodename([...WORDS.slice(0, 3), 'ъъъъ', ...WORDS.slice(4)].join(' ')),
    );
    expect(e?.code).toBe('invalid_codename');
    expect(e?.reason).toBe('unknown_word');
    expect(e?.position).toBe(3);
  });

  it('rejects a word shorter than four letters, even a prefix of a list word', () => {
    const short = WORDS[2]!.slice(0, 3);
    expect(
      failure(() => readRussianCodename([...WORDS.slice(0, 2), short, ...WORDS.slice(3)].join(' ')))
        ?.position,
    ).toBe(2);
  });

  it('rejects a codename that mixes Russian and English words, at the first foreign word', () => {
    const mixed = [...WORDS.slice(0, 5), 'zoom', 'zipfile', 'abacus'].join(' ');
    const e = failure(() => readCodename(mixed, BOTH));
    expect(e?.reason).toBe('unknown_word');
    expect(e?.position).toBe(5);
    const englishFirst = [
      'abacus',
      'abdomen',
      'ablaze',
      'yo-yo',
      'zoom',
      ...WORDS.slice(0, 3),
    ].join(' ');
    expect(failure(() => readCodename(englishFirst, BOTH))?.position).toBe(5);
  });

  it('rejects seven Russian words (a Russian codename has eight), and empty input', () => {
    expect(failure(() => readRussianCodename(WORDS.slice(0, 7).join(' ')))?.reason).toBe(
      'too_few_words',
    );
    expect(failure(() => readRussianCodename(''))?.reason).toBe('too_few_words');
    expect(failure(() => readRussianCodename(' - , '))?.reason).toBe('too_few_words');
  });

  it('rejects garbage typed in the Latin layout', () => {
    expect(failure(() => readRussianCodename('qqqq ' + WORDS.slice(1).join(' ')))?.position).toBe(
      0,
    );
    expect(
      failure(() => readRussianCodename(WORDS.slice(0, 7).join(' ') + ' zzzz'))?.position,
    ).toBe(7);
  });

  it('rejects digits, invisible characters and letters outside а–я inside a word', () => {
    for (const bad of [
      `${WORDS[0]}1`,
      `${WORDS[0]!.slice(0, 2)}\u200b${WORDS[0]!.slice(2)}`,
      'їжак',
      'єнот',
      'ідея',
    ]) {
      expect(failure(() => readRussianCodename([bad, ...WORDS.slice(1)].join(' ')))?.position).toBe(
        0,
      );
    }
  });

  it('does not fold Cyrillic look-alikes to Latin: "сор" is no English "cop"', () => {
    // Words of the list made only of letters with a Latin look-alike stay Russian words.
    const lookalikeOnly = LIST.filter((w) => /^[авекмнорстух]+$/u.test(w)).slice(0, 8);
    expect(lookalikeOnly.length).toBe(8);
    expect(
      readCodename(lookalikeOnly.join(' '), [ENGLISH_CODENAME_LIST, RUSSIAN_CODENAME_LIST]).list,
    ).toBe(RUSSIAN_CODENAME_LIST);
    expect(failure(() => parseCodename(lookalikeOnly.join(' ')))?.reason).toBe('unknown_word');
  });

  it('rejects an English codename as Russian, and a Russian one as English', () => {
    expect(
      failure(() => readRussianCodename('abacus abdomen ablaze yo-yo t-shirt zoom zipfile zone'))
        ?.position,
    ).toBe(0);
    expect(failure(() => parseCodename(CODENAME))?.position).toBe(0);
  });

  it('rejects input longer than the bound before looking at it', () => {
    expect(
      failure(() => readRussianCodename('а'.repeat(MAX_CODENAME_INPUT_LENGTH + 1)))?.reason,
    ).toBe('too_long');
  });
});

describe('Russian codename key derivation', () => {
  it('gives the same keys on both backends', () => {
    const parsed = readRussianCodename(CODENAME);
    expect(deriveCodenameKeys(noble, parsed, FAST_RU)).toEqual(
      deriveCodenameKeys(sodium, parsed, FAST_RU),
    );
  });

  it('gives the same keys for every spelling of the same codename (case, ё, wrong layout, endings)', () => {
    const a = deriveCodenameKeys(sodium, readRussianCodename(CODENAME), FAST_RU);
    const spelt = WORDS.map((w, i) =>
      i === 0 ? typedInLatinLayout(w) : i === 1 ? w.toUpperCase() : w,
    );
    expect(deriveCodenameKeys(sodium, readRussianCodename(spelt.join('  ')), FAST_RU)).toEqual(a);
  });

  it('uses the Russian parameters (version 2, list 2, t = 3, 32 MiB) by default', () => {
    expect(RUSSIAN_CODENAME_LIST.defaultParams).toBe(CODENAME_KDF_PARAMS_RU);
    expect(CODENAME_KDF_PARAMS_RU).toEqual({
      version: 2,
      list: 2,
      iterations: 3,
      memoryKiB: 32768,
    });
  });

  it("never derives an English codename's keys: another salt for the same text, and parameters of the other list are refused", () => {
    const english = readCodename('abacus abdomen ablaze yo-yo t-shirt zoom zipfile');
    const v1 = deriveCodenameKeys(sodium, english, FAST_EN);
    // The same English words under version 2 with the English list byte: other keys.
    const v2 = deriveCodenameKeys(sodium, english, { ...FAST_RU, list: CodenameListId.EN_EFF });
    expect(v2.signingSeed).not.toEqual(v1.signingSeed);
    expect(v2.mailboxKey).not.toEqual(v1.mailboxKey);
    // A Russian codename cannot be derived under English parameters, nor the reverse.
    expect(
      failure(() => deriveCodenameKeys(sodium, readRussianCodename(CODENAME), FAST_EN))?.reason,
    ).toBe('wrong_list');
    expect(failure(() => deriveCodenameKeys(sodium, english, FAST_RU))?.reason).toBe('wrong_list');
    expect(failure(() => deriveCodenameKeys(sodium, CODENAME, FAST_EN))?.reason).toBe(
      'unknown_word',
    );
  });

  it("refuses a parsed codename whose words are not its list's", () => {
    const forged = {
      list: RUSSIAN_CODENAME_LIST,
      words: ['zoom'],
      text: 'zoom zoom zoom zoom zoom zoom zoom zoom',
    };
    expect(failure(() => deriveCodenameKeys(sodium, forged, FAST_RU))?.reason).toBe('unknown_word');
  });

  it('keeps the English defaults exactly as they were (version 1, no list byte)', () => {
    expect(encodeCodenameKdfParams(CODENAME_KDF_PARAMS_V1)).toEqual(
      new Uint8Array([1, 0, 0, 0, 3, 0, 0, 0x80, 0]),
    );
    expect(ENGLISH_CODENAME_LIST.defaultParams).toBe(CODENAME_KDF_PARAMS_V1);
  });

  it('encodes version-2 parameters with the list byte and decodes them strictly', () => {
    const bytes = encodeCodenameKdfParams(CODENAME_KDF_PARAMS_RU);
    expect(bytes).toEqual(new Uint8Array([2, 2, 0, 0, 0, 3, 0, 0, 0x80, 0]));
    expect(decodeCodenameKdfParams(bytes)).toEqual(CODENAME_KDF_PARAMS_RU);
    expect(() => decodeCodenameKdfParams(new Uint8Array([...bytes, 0]))).toThrow(
      expect.objectContaining({ code: 'bad_encoding' }),
    );
    expect(() => decodeCodenameKdfParams(bytes.slice(0, -1))).toThrow(
      expect.objectContaining({ code: 'bad_encoding' }),
    );
    expect(() =>
      decodeCodenameKdfParams(Uint8Array.from(bytes, (b, i) => (i === 1 ? 9 : b))),
    ).toThrow(expect.objectContaining({ code: 'unsupported_version' }));
    expect(() =>
      decodeCodenameKdfParams(Uint8Array.from(bytes, (b, i) => (i === 0 ? 3 : b))),
    ).toThrow(expect.objectContaining({ code: 'unsupported_version' }));
  });

  it('refuses version 2 without a list, version 1 with one, and an unknown list', () => {
    const p = readRussianCodename(CODENAME);
    for (const params of [
      { version: 2, iterations: 1, memoryKiB: 64 },
      { version: 1, list: CodenameListId.RU_PASSAGE_V1, iterations: 1, memoryKiB: 64 },
      { version: 2, list: 9 as CodenameListId, iterations: 1, memoryKiB: 64 },
    ]) {
      expect(() => deriveCodenameKeys(sodium, p, params)).toThrow(
        expect.objectContaining({ code: 'unsupported_version' }),
      );
      expect(() => encodeCodenameKdfParams(params)).toThrow(
        expect.objectContaining({ code: 'unsupported_version' }),
      );
    }
  });
});
