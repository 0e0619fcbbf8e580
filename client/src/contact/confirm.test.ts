import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { ENGLISH_CODENAME_LIST } from '@passage/shared/crypto/codename';
import { QWERTY_TO_JCUKEN, RUSSIAN_CODENAME_LIST } from '@passage/shared/crypto/codename-ru';
import { checkTypedWords, CONFIRM_WORDS, pickPositions } from './confirm.js';

/** A "random" source that hands out the given values, then zeros. */
function fixed(...values: number[]): (b: Uint32Array<ArrayBuffer>) => void {
  return (b) => {
    b[0] = values.shift() ?? 0;
  };
}

const EN_WORDS = ['abacus', 'abdomen', 'abdominal', 'abide', 'abiding', 'ability', 'ablaze'];
const RU_WORDS = RUSSIAN_CODENAME_LIST.words.slice(100, 108);
const LATIN_OF = new Map(Object.entries(QWERTY_TO_JCUKEN).map(([latin, ru]) => [ru, latin]));
const inLatinLayout = (w: string) => [...w].map((c) => LATIN_OF.get(c) ?? c).join('');

describe('pickPositions', () => {
  it('draws distinct, ascending positions within range', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 11 }), (total, k) => {
        const count = (k % total) + 1;
        const positions = pickPositions(count, total, (b) => crypto.getRandomValues(b));
        expect(positions).toHaveLength(count);
        expect(new Set(positions).size).toBe(count);
        expect([...positions].sort((a, b) => a - b)).toEqual(positions);
        expect(positions.every((p) => p >= 0 && p < total)).toBe(true);
      }),
    );
  });

  it('reaches every position over many draws', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 500; i++) {
      for (const p of pickPositions(CONFIRM_WORDS, 8, (b) => crypto.getRandomValues(b))) {
        seen.add(p);
      }
    }
    expect([...seen].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('rejects a draw past the largest multiple of the range (no modulo bias)', () => {
    // 2^32 − 1 is past the limit for a range of 7, so it is drawn again; then 3 → position 3.
    expect(pickPositions(1, 7, fixed(0xffff_ffff, 3))).toEqual([3]);
  });

  it('refuses impossible counts', () => {
    const random = (b: Uint32Array<ArrayBuffer>) => crypto.getRandomValues(b);
    expect(() => pickPositions(0, 7, random)).toThrow(RangeError);
    expect(() => pickPositions(8, 7, random)).toThrow(RangeError);
    expect(() => pickPositions(1.5, 7, random)).toThrow(RangeError);
    expect(() => pickPositions(-1, 7, random)).toThrow(RangeError);
  });
});

describe('checkTypedWords', () => {
  const at = [1, 4, 6];

  it('accepts the asked words in order, however they are spaced or capitalised', () => {
    expect(checkTypedWords('abdomen abiding ablaze', ENGLISH_CODENAME_LIST, EN_WORDS, at)).toBe(
      'ok',
    );
    expect(
      checkTypedWords('  ABDOMEN   Abiding ablaze ', ENGLISH_CODENAME_LIST, EN_WORDS, at),
    ).toBe('ok');
  });

  it('accepts Russian words typed with ё/е, capitals, or the keyboard in the Latin layout', () => {
    const asked = at.map((p) => RU_WORDS[p]!);
    const list = RUSSIAN_CODENAME_LIST;
    expect(checkTypedWords(asked.join(' '), list, RU_WORDS, at)).toBe('ok');
    expect(checkTypedWords(asked.join(' ').toUpperCase(), list, RU_WORDS, at)).toBe('ok');
    expect(checkTypedWords(asked.map(inLatinLayout).join(' '), list, RU_WORDS, at)).toBe('ok');
  });

  it('refuses the right words in the wrong order', () => {
    expect(checkTypedWords('ablaze abiding abdomen', ENGLISH_CODENAME_LIST, EN_WORDS, at)).toBe(
      'mismatch',
    );
  });

  it('refuses other words of the codename', () => {
    expect(checkTypedWords('abacus abide ability', ENGLISH_CODENAME_LIST, EN_WORDS, at)).toBe(
      'mismatch',
    );
  });

  it('refuses a word that is not on the list', () => {
    expect(checkTypedWords('abdomen abiding zzzzzz', ENGLISH_CODENAME_LIST, EN_WORDS, at)).toBe(
      'mismatch',
    );
  });

  it('refuses a Russian word for an English codename', () => {
    expect(
      checkTypedWords(RU_WORDS.slice(0, 3).join(' '), ENGLISH_CODENAME_LIST, EN_WORDS, at),
    ).toBe('mismatch');
  });

  it('says when too few or too many words are typed', () => {
    const list = ENGLISH_CODENAME_LIST;
    expect(checkTypedWords('', list, EN_WORDS, at)).toBe('count');
    expect(checkTypedWords('   ', list, EN_WORDS, at)).toBe('count');
    expect(checkTypedWords('abdomen abiding', list, EN_WORDS, at)).toBe('count');
    expect(checkTypedWords('abdomen abiding ablaze abacus', list, EN_WORDS, at)).toBe('count');
    expect(checkTypedWords('abdomen qqqq', list, EN_WORDS, at)).toBe('count');
  });

  it('refuses the whole codename typed instead of the asked words', () => {
    expect(checkTypedWords(EN_WORDS.join(' '), ENGLISH_CODENAME_LIST, EN_WORDS, at)).toBe('count');
  });
});
