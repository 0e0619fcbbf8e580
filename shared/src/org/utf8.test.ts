import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { utf8Decode, utf8Encode } from './utf8.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

describe('utf8', () => {
  it('encodes every well-formed string as the platform does, and decodes it back', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (s) => {
        const bytes = utf8Encode(s);
        expect(bytes).toEqual(encoder.encode(s));
        expect(utf8Decode(bytes)).toBe(s);
      }),
    );
  });

  it('encodes the boundary code points of each sequence length', () => {
    for (const cp of [0, 0x7f, 0x80, 0x7ff, 0x800, 0xd7ff, 0xe000, 0xffff, 0x10000, 0x10ffff]) {
      const s = String.fromCodePoint(cp);
      expect(utf8Encode(s)).toEqual(encoder.encode(s));
      expect(utf8Decode(encoder.encode(s))).toBe(s);
    }
  });

  it('agrees with a fatal platform decoder on random bytes: the same text or a refusal', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 24 }), (bytes) => {
        let platform: string | undefined;
        try {
          platform = decoder.decode(bytes);
        } catch {
          platform = undefined;
        }
        if (platform === undefined) expect(() => utf8Decode(bytes)).toThrow(RangeError);
        else expect(utf8Decode(bytes)).toBe(platform);
      }),
      { numRuns: 2000 },
    );
  });

  it.each([
    ['an overlong two-byte form', [0xc0, 0xaf]],
    ['an overlong three-byte form', [0xe0, 0x80, 0xaf]],
    ['an overlong four-byte form', [0xf0, 0x80, 0x80, 0xaf]],
    ['a surrogate code point', [0xed, 0xa0, 0x80]],
    ['a code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
    ['a lead byte that is never valid', [0xff]],
    ['a stray continuation byte', [0x80]],
    ['a sequence truncated at the end', [0xe2, 0x82]],
    ['a sequence interrupted by an ASCII byte', [0xe2, 0x41, 0x82]],
  ])('refuses %s', (_name, bytes) => {
    expect(() => utf8Decode(Uint8Array.from(bytes))).toThrow(RangeError);
  });

  it('refuses to encode a lone surrogate, high or low', () => {
    expect(() => utf8Encode('a\ud800')).toThrow(RangeError);
    expect(() => utf8Encode('\udc00b')).toThrow(RangeError);
    expect(() => utf8Encode('\ud800\ud800')).toThrow(RangeError);
  });
});
