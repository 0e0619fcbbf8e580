import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  base64urlDecodedLength,
  fromBase64url,
  isBase64urlText,
  isCanonicalBase64url,
  toBase64url,
} from './base64url.js';

const nodeEncode = (b: Uint8Array) => Buffer.from(b).toString('base64url');

describe('base64url', () => {
  it('encodes the RFC 4648 test vectors (unpadded)', () => {
    const cases: [string, string][] = [
      ['', ''],
      ['f', 'Zg'],
      ['fo', 'Zm8'],
      ['foo', 'Zm9v'],
      ['foob', 'Zm9vYg'],
      ['fooba', 'Zm9vYmE'],
      ['foobar', 'Zm9vYmFy'],
    ];
    for (const [plain, encoded] of cases) {
      expect(toBase64url(new TextEncoder().encode(plain))).toBe(encoded);
      expect(fromBase64url(encoded)).toEqual(new TextEncoder().encode(plain));
    }
  });

  it('uses the URL-safe alphabet', () => {
    expect(toBase64url(Uint8Array.of(0xfb, 0xff))).toBe('-_8');
  });

  it('agrees with Node on random bytes and round-trips', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const s = toBase64url(bytes);
        expect(s).toBe(nodeEncode(bytes));
        expect(isCanonicalBase64url(s)).toBe(true);
        expect(base64urlDecodedLength(s.length)).toBe(bytes.length);
        expect(fromBase64url(s)).toEqual(bytes);
      }),
    );
  });

  it('rejects padding', () => {
    expect(fromBase64url('Zg==')).toBeUndefined();
    expect(isCanonicalBase64url('Zm8=')).toBe(false);
  });

  it('rejects the standard alphabet characters + and /', () => {
    expect(fromBase64url('+/8')).toBeUndefined();
  });

  it('rejects whitespace and non-ASCII characters', () => {
    expect(fromBase64url('Zm9v Yg')).toBeUndefined();
    expect(fromBase64url('Zm9v\nYg')).toBeUndefined();
    expect(fromBase64url('Zm9vYé')).toBeUndefined();
  });

  it('rejects a length that no byte string encodes to', () => {
    expect(fromBase64url('Z')).toBeUndefined();
    expect(fromBase64url('Zm9vY')).toBeUndefined();
    expect(base64urlDecodedLength(5)).toBe(-1);
  });

  it('rejects non-zero spare bits (a second spelling of the same bytes)', () => {
    // 'Zg' is "f"; 'Zh' decodes to the same byte in lax decoders.
    expect(fromBase64url('Zh')).toBeUndefined();
    // 'Zm8' is "fo"; 'Zm9' has a spare bit set.
    expect(fromBase64url('Zm9')).toBeUndefined();
  });

  it('rejects any single-character corruption into a non-alphabet character', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        fc.nat(),
        fc.constantFrom('=', '+', '/', ' ', '.', '\u0000', 'ж'),
        (bytes, pos, bad) => {
          const s = toBase64url(bytes);
          const i = pos % s.length;
          const corrupted = s.slice(0, i) + bad + s.slice(i + 1);
          expect(fromBase64url(corrupted)).toBeUndefined();
        },
      ),
    );
  });
});

describe('isBase64urlText', () => {
  it('accepts every base64url character, and the empty string', () => {
    expect(isBase64urlText('ABCXYZabcxyz0189-_')).toBe(true);
    expect(isBase64urlText('')).toBe(true);
  });

  it('takes a text longer than the largest blob without exhausting a stack (the 8 MiB upload failed on one regexp)', () => {
    expect(isBase64urlText('A'.repeat(16 * 1024 * 1024))).toBe(true);
    expect(isBase64urlText(`${'A'.repeat(16 * 1024 * 1024)}=`)).toBe(false);
  });

  it('refuses standard base64, padding, white space, separators and non-ASCII letters', () => {
    for (const text of [
      'ab+c',
      'ab/c',
      'abc=',
      'ab c',
      'ab\nc',
      'a:b',
      'a{b}',
      'аб',
      'a\u0000b',
      'ÿ',
    ]) {
      expect(isBase64urlText(text)).toBe(false);
    }
  });

  it('refuses the characters on either side of each range', () => {
    for (const c of ['@', '[', '`', '{', '/', ':', ',', '.', '^']) {
      expect(isBase64urlText(`A${c}`)).toBe(false);
    }
  });
});
