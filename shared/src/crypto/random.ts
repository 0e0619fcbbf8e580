/**
 * Injectable randomness. Production code uses `primitives.random`: on both backends the
 * platform CSPRNG (`crypto.getRandomValues`), plus libsodium's `randombytes_uniform` for
 * `uniform` on the libsodium backend. Tests replay transcripts from a seed with
 * `dangerousTestOnlySeededRandom`, which refuses to run outside tests, and `withRandom`, which
 * swaps the random source of a set of primitives.
 */
import { checkByteCount, checkUniformBound, uniformFromBytes } from './checks.js';
import { CryptoError, CryptoErrorCode, requireBytes } from './errors.js';
import { chacha20, sha256, utf8ToBytes } from './noble.js';
import type { Primitives, RandomSource } from './primitives.js';

/** Domain separation of the seeded generator's key; changing it changes every golden transcript. */
const SEEDED_RANDOM_LABEL = utf8ToBytes('passage/v1/test-only-seeded-random');

/** ChaCha20's nonce length (RFC 8439). */
const CHACHA20_NONCE_BYTES = 12;

/** ChaCha20's block counter is 32 bits: one call yields at most 2³² blocks of 64 bytes. Tests
 * need far less; this bound keeps the generator inside what the cipher defines. */
const SEEDED_RANDOM_MAX_BYTES_PER_CALL = 1 << 30;

/**
 * True only under a test runner. shared/ has no Node typings and must run in browsers, so the
 * check reads `globalThis.process` structurally: jest sets NODE_ENV to 'test'; a browser has no
 * `process` at all, and a production server does not run with NODE_ENV=test. A script that needs
 * seeded randomness outside jest (e.g. to regenerate golden transcripts) opts in explicitly by
 * setting NODE_ENV=test.
 */
function runningUnderTests(): boolean {
  const process = (globalThis as { readonly process?: { readonly env?: Record<string, unknown> } })
    .process;
  return process?.env?.['NODE_ENV'] === 'test';
}

/**
 * A deterministic `RandomSource` for tests and golden transcripts: ChaCha20 keyed with
 * SHA-256(label ‖ seed); the n-th call to `bytes` takes the keystream under nonce n, so the
 * output depends only on the seed and the sequence of calls, on either backend.
 *
 * NOT RANDOM. Anything keyed from it is known to whoever knows the seed.
 *
 * @throws CryptoError('test_only') unless running under tests (NODE_ENV=test).
 */
export function dangerousTestOnlySeededRandom(seed: Uint8Array): RandomSource {
  if (!runningUnderTests()) throw new CryptoError(CryptoErrorCode.TEST_ONLY);
  requireBytes(seed);
  const key = sha256(Uint8Array.from([...SEEDED_RANDOM_LABEL, ...seed]));
  let calls = 0;
  const bytes = (n: number): Uint8Array => {
    checkByteCount(n);
    if (n > SEEDED_RANDOM_MAX_BYTES_PER_CALL) throw new CryptoError(CryptoErrorCode.LIMIT_EXCEEDED);
    const nonce = new Uint8Array(CHACHA20_NONCE_BYTES);
    const view = new DataView(nonce.buffer);
    view.setUint32(0, calls % 2 ** 32, true);
    view.setUint32(4, Math.floor(calls / 2 ** 32), true);
    calls++;
    return chacha20(key, nonce, new Uint8Array(n));
  };
  return {
    bytes,
    uniform(upperBound: number): number {
      checkUniformBound(upperBound);
      return uniformFromBytes(bytes, upperBound);
    },
  };
}

/**
 * The same primitives with another random source: every operation that draws randomness
 * through `primitives.random` (key generation, codenames, encapsulation seeds; nonces are
 * derived, never drawn) then draws from `random`. The backend's own operations are unchanged.
 */
export function withRandom(primitives: Primitives, random: RandomSource): Primitives {
  return { ...primitives, random };
}
