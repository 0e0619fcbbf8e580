import { beforeAll, describe, expect, it } from '@jest/globals';
import { loadPrimitives } from './backend.js';
import { CODENAME_WORDLIST } from './codename.js';
import { asEd25519PublicKey } from './keys.js';
import type { Ed25519PublicKey } from './keys.js';
import type { Primitives } from './primitives.js';
import {
  SAFETY_NUMBER_DIGITS,
  SAFETY_NUMBER_QR_BYTES,
  FINGERPRINT_WORDS,
  fingerprintDigits,
  fingerprintWords,
  formatSafetyNumber,
  safetyNumber,
  safetyNumberQrPayload,
  verifySafetyNumberQr,
} from './safety-number.js';

let sodium: Primitives;
let noble: Primitives;
beforeAll(async () => {
  sodium = await loadPrimitives({ prefer: 'libsodium', strict: true });
  noble = await loadPrimitives({ prefer: 'noble' });
});

const key = (fill: number): Ed25519PublicKey => asEd25519PublicKey(new Uint8Array(32).fill(fill));
const A = key(1);
const B = key(2);
const C = key(3);

describe('safety numbers', () => {
  it('is 60 digits, the same on both sides whatever the order', () => {
    const n = safetyNumber(sodium, A, B);
    expect(n).toMatch(/^\d{60}$/);
    expect(n).toHaveLength(SAFETY_NUMBER_DIGITS);
    expect(safetyNumber(sodium, B, A)).toBe(n);
  });

  it('is made of the two 30-digit fingerprints, smaller first', () => {
    const [x, y] = [fingerprintDigits(sodium, A), fingerprintDigits(sodium, B)].sort();
    expect(safetyNumber(sodium, A, B)).toBe(x! + y!);
  });

  it('is the same on both backends', () => {
    expect(safetyNumber(noble, A, B)).toBe(safetyNumber(sodium, A, B));
  });

  it('changes when either key changes', () => {
    const n = safetyNumber(sodium, A, B);
    expect(safetyNumber(sodium, A, C)).not.toBe(n);
    expect(safetyNumber(sodium, C, B)).not.toBe(n);
  });

  it('is shown in twelve groups of five', () => {
    expect(formatSafetyNumber(safetyNumber(sodium, A, B)).split(' ')).toHaveLength(12);
  });

  it('rejects a key of the wrong length', () => {
    expect(() => fingerprintDigits(sodium, new Uint8Array(31) as Ed25519PublicKey)).toThrow(
      expect.objectContaining({ code: 'bad_length' }),
    );
  });
});

describe('safety number QR payload', () => {
  it('verifies on the other side', () => {
    const shown = safetyNumberQrPayload(sodium, A, B);
    expect(shown).toHaveLength(SAFETY_NUMBER_QR_BYTES);
    expect(verifySafetyNumberQr(sodium, B, A, shown)).toBe(true);
  });

  it('does not verify on the side that showed it (the halves are swapped)', () => {
    expect(verifySafetyNumberQr(sodium, A, B, safetyNumberQrPayload(sodium, A, B))).toBe(false);
  });

  it('does not verify for a third key', () => {
    expect(verifySafetyNumberQr(sodium, B, C, safetyNumberQrPayload(sodium, A, B))).toBe(false);
    expect(verifySafetyNumberQr(sodium, C, A, safetyNumberQrPayload(sodium, A, B))).toBe(false);
  });

  it('does not verify with one bit changed', () => {
    const shown = safetyNumberQrPayload(sodium, A, B);
    for (const i of [1, 32, 33, 64]) {
      const bad = shown.slice();
      bad[i]! ^= 1;
      expect(verifySafetyNumberQr(sodium, B, A, bad)).toBe(false);
    }
  });

  it('rejects an empty payload', () => {
    expect(() => verifySafetyNumberQr(sodium, B, A, new Uint8Array(0))).toThrow(
      expect.objectContaining({ code: 'bad_encoding' }),
    );
  });

  it('does not verify a payload that names one key twice', () => {
    expect(verifySafetyNumberQr(sodium, B, A, safetyNumberQrPayload(sodium, A, A))).toBe(false);
    expect(verifySafetyNumberQr(sodium, B, A, safetyNumberQrPayload(sodium, B, B))).toBe(false);
  });

  it('rejects a payload with an unknown version, a missing byte or a trailing byte', () => {
    const shown = safetyNumberQrPayload(sodium, A, B);
    expect(() =>
      verifySafetyNumberQr(
        sodium,
        B,
        A,
        Uint8Array.from(shown, (b, i) => (i === 0 ? 2 : b)),
      ),
    ).toThrow(expect.objectContaining({ code: 'unsupported_version' }));
    expect(() => verifySafetyNumberQr(sodium, B, A, shown.slice(0, -1))).toThrow(
      expect.objectContaining({ code: 'bad_encoding' }),
    );
    expect(() => verifySafetyNumberQr(sodium, B, A, new Uint8Array([...shown, 0]))).toThrow(
      expect.objectContaining({ code: 'bad_encoding' }),
    );
  });
});

describe('fingerprint words', () => {
  it('are FINGERPRINT_WORDS words of the codename list, the same on both backends', () => {
    const words = fingerprintWords(sodium, A);
    expect(words).toHaveLength(FINGERPRINT_WORDS);
    for (const w of words) expect(CODENAME_WORDLIST).toContain(w);
    expect(fingerprintWords(noble, A)).toEqual(words);
    expect(fingerprintWords(sodium, A)).toEqual(words);
  });

  it('differ between keys', () => {
    expect(fingerprintWords(sodium, A)).not.toEqual(fingerprintWords(sodium, B));
  });

  it('give the lowest words of the same number: fewer words are a suffix of more', () => {
    expect(fingerprintWords(sodium, C, 19).slice(-3)).toEqual(fingerprintWords(sodium, C, 3));
  });

  it('refuse a count of 0, past 19, or not an integer', () => {
    for (const count of [0, 20, 2.5]) expect(() => fingerprintWords(sodium, A, count)).toThrow();
  });
});
