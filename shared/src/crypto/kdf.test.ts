import { beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { loadPrimitives } from './backend.js';
import { toHex } from './encoding.js';
import { KDF_LABELS, kdfChain, kdfRoot, messageKeyMaterial } from './kdf.js';
import type { Primitives } from './primitives.js';

let backends: Primitives[];
beforeAll(async () => {
  backends = [
    await loadPrimitives({ prefer: 'libsodium', strict: true }),
    await loadPrimitives({ prefer: 'noble' }),
  ];
});

const hex = (s: string): Uint8Array =>
  Uint8Array.from(s.match(/../g) ?? [], (b) => parseInt(b, 16));

describe('HKDF (the one definition: Primitives.hkdfSha256)', () => {
  it('matches RFC 5869 test case 1 on both backends', () => {
    const ikm = new Uint8Array(22).fill(0x0b);
    const salt = hex('000102030405060708090a0b0c');
    const info = hex('f0f1f2f3f4f5f6f7f8f9');
    for (const p of backends) {
      expect(toHex(p.hkdfSha256(ikm, salt, info, 42))).toBe(
        '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
      );
    }
  });

  it('matches RFC 5869 test case 3 (empty salt and info)', () => {
    for (const p of backends) {
      expect(
        toHex(
          p.hkdfSha256(new Uint8Array(22).fill(0x0b), new Uint8Array(0), new Uint8Array(0), 42),
        ),
      ).toBe(
        '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8',
      );
    }
  });

  it('gives the same output on both backends for random inputs', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 80 }),
        fc.uint8Array({ maxLength: 80 }),
        fc.uint8Array({ maxLength: 80 }),
        fc.integer({ min: 0, max: 200 }),
        (ikm, salt, info, length) => {
          expect(backends[0]!.hkdfSha256(ikm, salt, info, length)).toEqual(
            backends[1]!.hkdfSha256(ikm, salt, info, length),
          );
        },
      ),
      { numRuns: 100 },
    );
  });

  it('rejects an output longer than 255 blocks, and a negative or fractional length', () => {
    const z = new Uint8Array(32);
    for (const p of backends) {
      for (const length of [255 * 32 + 1, -1]) {
        expect(() => p.hkdfSha256(z, z, z, length)).toThrow(
          expect.objectContaining({ code: 'limit_exceeded' }),
        );
      }
      // Not an integer at all: the primitives' input check (checks.ts) calls that a bad length.
      expect(() => p.hkdfSha256(z, z, z, 1.5)).toThrow(
        expect.objectContaining({ code: 'bad_length' }),
      );
      expect(p.hkdfSha256(z, z, z, 255 * 32)).toHaveLength(255 * 32);
    }
  });
});

describe('ratchet KDFs', () => {
  it('derives the chain key with input 0x02 and the message key with input 0x01 (Signal rev. 1)', () => {
    const p = backends[0]!;
    const ck = new Uint8Array(32).fill(9);
    const step = kdfChain(p, ck);
    expect(step.chainKey).toEqual(p.hmacSha256(ck, new Uint8Array([2])));
    expect(step.messageKey).toEqual(p.hmacSha256(ck, new Uint8Array([1])));
    expect(step.chainKey).not.toEqual(step.messageKey);
  });

  it('derives root and chain keys with HKDF salted by the root key', () => {
    const p = backends[0]!;
    const rk = new Uint8Array(32).fill(1);
    const dh = new Uint8Array(32).fill(2);
    const out = p.hkdfSha256(dh, rk, new TextEncoder().encode(KDF_LABELS.ratchetRoot), 64);
    const step = kdfRoot(p, rk, dh);
    expect(step.rootKey).toEqual(out.slice(0, 32));
    expect(step.chainKey).toEqual(out.slice(32));
  });

  it('expands a message key into a 32-byte key and a 24-byte nonce, distinct per message key', () => {
    const p = backends[0]!;
    const a = messageKeyMaterial(p, new Uint8Array(32).fill(1));
    const b = messageKeyMaterial(p, new Uint8Array(32).fill(2));
    expect(a.key).toHaveLength(32);
    expect(a.nonce).toHaveLength(24);
    expect(a.nonce).not.toEqual(b.nonce);
  });

  it('labels every derivation with the protocol version', () => {
    for (const label of Object.values(KDF_LABELS))
      expect(label.startsWith('passage/v1/')).toBe(true);
    expect(new Set(Object.values(KDF_LABELS)).size).toBe(Object.values(KDF_LABELS).length);
  });
});
