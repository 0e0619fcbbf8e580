import { afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { CryptoError, CryptoErrorCode } from './errors.js';
import { createNobleBackend, loadNobleBackend } from './noble.js';
import type { Primitives } from './primitives.js';
import { dangerousTestOnlySeededRandom, withRandom } from './random.js';
import { loadSodiumBackend } from './sodium.js';

const SEED = Uint8Array.from({ length: 32 }, (_, i) => i);

function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

describe('dangerousTestOnlySeededRandom', () => {
  const savedNodeEnv = process.env['NODE_ENV'];
  afterEach(() => {
    process.env['NODE_ENV'] = savedNodeEnv;
  });

  it('replays the same bytes from the same seed', () => {
    const a = dangerousTestOnlySeededRandom(SEED);
    const b = dangerousTestOnlySeededRandom(SEED);
    expect(toHex(a.bytes(48))).toBe(toHex(b.bytes(48)));
    expect(toHex(a.bytes(5))).toBe(toHex(b.bytes(5)));
    expect(a.uniform(7776)).toBe(b.uniform(7776));
  });

  // Cross-checked with OpenSSL's ChaCha20 (pyca/cryptography): key SHA-256(label ‖ seed), nonce
  // = call index (64-bit little-endian) ‖ four zero bytes, block counter 0.
  it('produces these bytes for this seed (a change here changes every golden transcript)', () => {
    const random = dangerousTestOnlySeededRandom(SEED);
    expect(toHex(random.bytes(16))).toBe('570ec98b0b1a69171785179f31081ac3');
    expect(toHex(random.bytes(16))).toBe('4f6a9971a22e0026b69a7004b613f39b');
  });

  it('gives different bytes for another seed and for successive calls', () => {
    const other = SEED.slice();
    other[31]! ^= 1;
    const a = dangerousTestOnlySeededRandom(SEED);
    const b = dangerousTestOnlySeededRandom(other);
    const first = a.bytes(32);
    expect(toHex(first)).not.toBe(toHex(b.bytes(32)));
    expect(toHex(first)).not.toBe(toHex(a.bytes(32)));
  });

  it('draws uniform integers below the bound', () => {
    const random = dangerousTestOnlySeededRandom(SEED);
    const seen = new Set<number>();
    for (let i = 0; i < 300; i++) {
      const value = random.uniform(5);
      expect(value >= 0 && value < 5 && Number.isInteger(value)).toBe(true);
      seen.add(value);
    }
    expect(seen.size).toBe(5);
  });

  it('rejects out-of-range bounds and byte counts', () => {
    const random = dangerousTestOnlySeededRandom(SEED);
    expect(() => random.uniform(0)).toThrow(CryptoError);
    expect(() => random.uniform(2 ** 32)).toThrow(CryptoError);
    expect(() => random.bytes(-1)).toThrow(CryptoError);
    expect(() => random.bytes(2 ** 30 + 1)).toThrow(CryptoError);
  });

  it('refuses to run outside tests', () => {
    process.env['NODE_ENV'] = 'production';
    let failure: unknown;
    try {
      dangerousTestOnlySeededRandom(SEED);
    } catch (error: unknown) {
      failure = error;
    }
    expect(failure).toBeInstanceOf(CryptoError);
    expect((failure as CryptoError).code).toBe(CryptoErrorCode.TEST_ONLY);
    Reflect.deleteProperty(process.env, 'NODE_ENV');
    expect(() => dangerousTestOnlySeededRandom(SEED)).toThrow(CryptoError);
  });
});

describe('withRandom', () => {
  it('makes both backends draw the same seeded bytes, leaving the rest unchanged', async () => {
    const sodium = withRandom(await loadSodiumBackend(), dangerousTestOnlySeededRandom(SEED));
    const noble = withRandom(await loadNobleBackend(), dangerousTestOnlySeededRandom(SEED));
    expect(sodium.backend).toBe('libsodium');
    expect(noble.backend).toBe('noble');
    const seedA = sodium.random.bytes(32);
    const seedB = noble.random.bytes(32);
    expect(toHex(seedA)).toBe(toHex(seedB));
    expect(toHex(sodium.ed25519KeyPairFromSeed(seedA).publicKey)).toBe(
      toHex(noble.ed25519KeyPairFromSeed(seedB).publicKey),
    );
  });
});

describe('randomness (review findings)', () => {
  let p: Primitives;
  beforeAll(async () => {
    p = await loadSodiumBackend();
  });
  const realCrypto = Object.getOwnPropertyDescriptor(globalThis, 'crypto');
  afterEach(() => {
    if (realCrypto !== undefined) Object.defineProperty(globalThis, 'crypto', realCrypto);
  });

  it('regression: noble random source: more than 65,536 bytes in one call are drawn in chunks, as on libsodium', () => {
    // getRandomValues refuses more than 65,536 bytes per call (QuotaExceededError); the
    // libsodium backend chunks, the noble one must too, or the backends disagree.
    const noble = createNobleBackend();
    const big = noble.random.bytes(65_536 * 2 + 7);
    expect(big.length).toBe(65_536 * 2 + 7);
    expect(p.random.bytes(65_536 * 2 + 7).length).toBe(65_536 * 2 + 7);
    // Not all zero in any chunk (a chunk that was never filled would be).
    for (const start of [0, 65_536, 131_072]) {
      expect(big.subarray(start, start + 7).some((b) => b !== 0)).toBe(true);
    }
  });

  it('regression: both backends fail closed (no bytes) when the platform has no Web Crypto', () => {
    const noble = createNobleBackend();
    Object.defineProperty(globalThis, 'crypto', { value: undefined, configurable: true });
    expect(() => p.random.bytes(32)).toThrow();
    expect(() => noble.random.bytes(32)).toThrow();
  });
});
