/**
 * Property tests: the libsodium and noble backends agree byte for byte on random inputs, for
 * every primitive, and fail with the same CryptoError code on the same bad inputs. Together
 * with the Wycheproof suite this is what lets a session move from one backend to the other.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { loadNobleBackend } from './noble.js';
import type { Primitives } from './primitives.js';
import { loadSodiumBackend } from './sodium.js';

let sodium: Primitives;
let noble: Primitives;

beforeAll(async () => {
  sodium = await loadSodiumBackend();
  noble = await loadNobleBackend();
});

/** What an operation did, comparable across backends: its output, or its error code. */
function outcome(operation: () => unknown): string {
  try {
    return describeValue(operation());
  } catch (error: unknown) {
    if (error instanceof Error && error.name === 'CryptoError' && 'code' in error) {
      return `error ${String(error.code)}`;
    }
    throw error;
  }
}

function describeValue(value: unknown): string {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  if (typeof value === 'boolean') return String(value);
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value)
      .map(([key, inner]) => `${key}=${describeValue(inner)}`)
      .join(',');
  }
  throw new Error(`cannot describe ${typeof value}`);
}

/** Asserts that `run` does the same on both backends. */
function agree(run: (p: Primitives) => unknown): void {
  expect(outcome(() => run(noble))).toBe(outcome(() => run(sodium)));
}

const anyBytes = fc.uint8Array({ maxLength: 300 });
/** Lengths around the right one, to compare failures too. */
const lengthNear = (n: number): fc.Arbitrary<Uint8Array> =>
  fc.oneof(
    { weight: 4, arbitrary: fc.uint8Array({ minLength: n, maxLength: n }) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: n - 1, maxLength: n + 1 }) },
  );

/** Flips one bit of `data` chosen by `position` (if there is any bit). */
function flip(data: Uint8Array, position: number): Uint8Array {
  const copy = data.slice();
  if (copy.length === 0) return copy;
  const bit = position % (copy.length * 8);
  copy[bit >> 3]! ^= 1 << (bit & 7);
  return copy;
}

describe('libsodium and noble agree', () => {
  it('on X25519 public keys and shared secrets, low-order points included', () => {
    const lowOrder = fc.constantFrom(
      '0000000000000000000000000000000000000000000000000000000000000000',
      '0100000000000000000000000000000000000000000000000000000000000000',
      'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
      'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
    );
    const publicKey = fc.oneof(
      { weight: 6, arbitrary: lengthNear(32) },
      { weight: 1, arbitrary: lowOrder.map((hex) => Uint8Array.from(Buffer.from(hex, 'hex'))) },
    );
    fc.assert(
      fc.property(lengthNear(32), publicKey, (secret, peer) => {
        agree((p) => p.x25519PublicKey(secret));
        agree((p) => p.x25519(secret, peer));
      }),
      { numRuns: 150 },
    );
  });

  it('on Ed25519 keys, signatures and verdicts, tampered ones included', () => {
    fc.assert(
      fc.property(lengthNear(32), anyBytes, fc.nat(), (seed, message, position) => {
        agree((p) => p.ed25519KeyPairFromSeed(seed));
        agree((p) => p.ed25519Sign(seed, message));
        if (seed.length !== 32) return;
        const { publicKey } = sodium.ed25519KeyPairFromSeed(seed);
        const signature = sodium.ed25519Sign(seed, message);
        agree((p) => p.ed25519Verify(publicKey, message, signature));
        agree((p) => p.ed25519Verify(publicKey, message, flip(signature, position)));
        agree((p) => p.ed25519Verify(flip(publicKey, position), message, signature));
        agree((p) => p.ed25519Verify(publicKey, flip(message, position), signature));
      }),
      { numRuns: 100 },
    );
  });

  it('on Ed25519 verdicts for arbitrary public keys and signatures', () => {
    fc.assert(
      fc.property(lengthNear(32), anyBytes, lengthNear(64), (publicKey, message, signature) => {
        agree((p) => p.ed25519Verify(publicKey, message, signature));
      }),
      { numRuns: 200 },
    );
  });

  it('on XChaCha20-Poly1305 sealing and opening, tampered ones included', () => {
    fc.assert(
      fc.property(
        lengthNear(32),
        lengthNear(24),
        fc.uint8Array({ maxLength: 1000 }),
        anyBytes,
        fc.nat(),
        (key, nonce, plaintext, aad, position) => {
          agree((p) => p.xchacha20poly1305Seal(key, nonce, plaintext, aad));
          if (key.length !== 32 || nonce.length !== 24) return;
          const sealed = sodium.xchacha20poly1305Seal(key, nonce, plaintext, aad);
          agree((p) => p.xchacha20poly1305Open(key, nonce, sealed, aad));
          agree((p) => p.xchacha20poly1305Open(key, nonce, flip(sealed, position), aad));
          agree((p) => p.xchacha20poly1305Open(key, nonce, sealed.subarray(0, position % 20), aad));
        },
      ),
      { numRuns: 100 },
    );
  });

  it('on SHA-256, SHA-512, HMAC-SHA256, HMAC-SHA512 and HKDF-SHA256', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        fc.uint8Array({ maxLength: 400 }),
        anyBytes,
        fc.integer({ min: -1, max: 700 }),
        (key, data, info, length) => {
          agree((p) => p.sha256(data));
          agree((p) => p.sha512(data));
          agree((p) => p.hmacSha256(key, data));
          agree((p) => p.hmacSha512(key, data));
          agree((p) => p.hkdfSha256(data, key, info, length));
        },
      ),
      { numRuns: 150 },
    );
  });

  it('on ML-KEM-768 key generation, encapsulation and (implicitly rejecting) decapsulation', () => {
    fc.assert(
      fc.property(
        lengthNear(64),
        lengthNear(32),
        fc.nat(),
        fc.uint8Array({ minLength: 1088, maxLength: 1088 }),
        (seed, m, position, randomCiphertext) => {
          agree((p) => p.mlkem768KeyPairFromSeed(seed));
          if (seed.length !== 64) return;
          const pair = sodium.mlkem768KeyPairFromSeed(seed);
          agree((p) => p.mlkem768Encapsulate(pair.publicKey, m));
          // A public key with a flipped bit may or may not pass the modulus check: same verdict.
          agree((p) => p.mlkem768Encapsulate(flip(pair.publicKey, position), m));
          if (m.length !== 32) return;
          const { ciphertext } = sodium.mlkem768Encapsulate(pair.publicKey, m);
          agree((p) => p.mlkem768Decapsulate(pair.secretKey, ciphertext));
          agree((p) => p.mlkem768Decapsulate(pair.secretKey, flip(ciphertext, position)));
          agree((p) => p.mlkem768Decapsulate(pair.secretKey, randomCiphertext));
          agree((p) => p.mlkem768Decapsulate(flip(pair.secretKey, position), ciphertext));
        },
      ),
      { numRuns: 25 },
    );
  });

  it('on Argon2id with small parameters', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 64 }),
        lengthNear(16),
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 7, max: 64 }),
        fc.integer({ min: 15, max: 80 }),
        (password, salt, iterations, memoryKiB, outputBytes) => {
          agree((p) => p.argon2id(password, salt, { iterations, memoryKiB, outputBytes }));
        },
      ),
      { numRuns: 25 },
    );
  });
});
