/**
 * Input checks and bounds shared by both backends, so that a bad input fails with the same
 * `CryptoError` code whichever backend runs. Nothing here touches a crypto library.
 */
import { CryptoError, CryptoErrorCode, requireBytes } from './errors.js';
import { SHA256_BYTES } from './primitives.js';
import type { Argon2idParams } from './primitives.js';

/** HKDF-SHA256 output bound (RFC 5869 §2.3: L ≤ 255 × HashLen). */
export const HKDF_SHA256_MAX_OUTPUT_BYTES = 255 * SHA256_BYTES;

/** Argon2id salt length. libsodium's `crypto_pwhash` takes exactly 16 bytes; noble takes any
 * length ≥ 8, so both backends insist on 16 to agree. */
export const ARGON2ID_SALT_BYTES = 16;
/** Smallest Argon2id output libsodium produces (`crypto_pwhash_BYTES_MIN`). */
export const ARGON2ID_MIN_OUTPUT_BYTES = 16;
/** Our bound on Argon2id output; derivations need far less. */
export const ARGON2ID_MAX_OUTPUT_BYTES = 1024;
/** Smallest memory Argon2id allows with one lane (8 × parallelism KiB). */
export const ARGON2ID_MIN_MEMORY_KIB = 8;
/** Our bound on Argon2id memory: 256 MiB, well below what a browser's WebAssembly memory can
 * grow to, and 8× the codename default. */
export const ARGON2ID_MAX_MEMORY_KIB = 256 * 1024;
/** Our bound on Argon2id passes. */
export const ARGON2ID_MAX_ITERATIONS = 64;
/** Argon2id parallelism. libsodium's `crypto_pwhash` always uses one lane; so does noble here. */
export const ARGON2ID_PARALLELISM = 1;

/** Largest `upperBound` accepted by `RandomSource.uniform` (libsodium's `randombytes_uniform`
 * takes a uint32). */
export const UNIFORM_MAX_UPPER_BOUND = 2 ** 32 - 1;

function requireIntegerIn(value: number, min: number, max: number): void {
  if (!Number.isSafeInteger(value)) throw new CryptoError(CryptoErrorCode.BAD_LENGTH);
  if (value < min || value > max) throw new CryptoError(CryptoErrorCode.LIMIT_EXCEEDED);
}

/** Checks an HKDF-SHA256 output length: an integer in [0, 8160]. */
export function checkHkdfLength(length: number): void {
  requireIntegerIn(length, 0, HKDF_SHA256_MAX_OUTPUT_BYTES);
}

/** Checks Argon2id inputs against the bounds above. */
export function checkArgon2id(
  password: Uint8Array,
  salt: Uint8Array,
  params: Argon2idParams,
): void {
  requireBytes(password);
  requireBytes(salt, ARGON2ID_SALT_BYTES);
  requireIntegerIn(params.iterations, 1, ARGON2ID_MAX_ITERATIONS);
  requireIntegerIn(params.memoryKiB, ARGON2ID_MIN_MEMORY_KIB, ARGON2ID_MAX_MEMORY_KIB);
  requireIntegerIn(params.outputBytes, ARGON2ID_MIN_OUTPUT_BYTES, ARGON2ID_MAX_OUTPUT_BYTES);
}

/** Checks a `uniform` upper bound: an integer in [1, 2³² − 1]. */
export function checkUniformBound(upperBound: number): void {
  requireIntegerIn(upperBound, 1, UNIFORM_MAX_UPPER_BOUND);
}

/** Checks a byte count asked of a random source: a non-negative safe integer. */
export function checkByteCount(n: number): void {
  requireIntegerIn(n, 0, Number.MAX_SAFE_INTEGER);
}

/**
 * Ed25519 public keys that one backend remembers as valid (of prime order), at most: the oldest
 * is forgotten first. The check (a scalar multiplication by the group order) costs about as
 * much as a signature verification, and a handshake met each key up to four times (its
 * identity, then each signature it made in the bundle). 1024 keys hold a few hundred peers'
 * worth of handshakes in about 100 KB.
 */
export const MAX_REMEMBERED_VALID_ED25519_KEYS = 1024;

/**
 * Remembers which Ed25519 public keys passed a backend's prime-order check, by their bytes
 * (not by array object, so a key changed in place is checked again), so that each key is
 * checked once however many signatures it verifies. Only valid verdicts are kept: the verdict
 * is a function of the bytes alone, so a remembered one is exactly what the check would answer
 * again, and an invalid key (which costs an attacker nothing to make) takes no room. Anyone can
 * fill it with valid keys of their own; that only makes other keys be checked again.
 */
export class ValidEd25519KeyMemo {
  private readonly valid = new Set<string>();

  constructor(private readonly bound = MAX_REMEMBERED_VALID_ED25519_KEYS) {}

  /** `check(publicKey)`, or true without calling it for a key remembered as valid. */
  isValid(publicKey: Uint8Array, check: (publicKey: Uint8Array) => boolean): boolean {
    const id = String.fromCharCode(...publicKey);
    if (this.valid.has(id)) {
      // Most recently used last, so that eviction takes the key unused for longest.
      this.valid.delete(id);
      this.valid.add(id);
      return true;
    }
    if (!check(publicKey)) return false;
    if (this.valid.size >= this.bound) {
      for (const oldest of this.valid) {
        this.valid.delete(oldest);
        break;
      }
    }
    this.valid.add(id);
    return true;
  }

  /** How many keys are remembered (for tests). */
  get size(): number {
    return this.valid.size;
  }
}

/** Constant-time-in-content equality of two byte arrays (length is not secret). */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

/** True when every byte is zero, without branching on the content. */
export function isAllZero(bytes: Uint8Array): boolean {
  let acc = 0;
  for (const byte of bytes) acc |= byte;
  return acc === 0;
}

/**
 * A uniform integer in [0, upperBound) from a byte source, without modulo bias: draws a 32-bit
 * value and rejects the 2³² mod upperBound smallest ones, as libsodium's `randombytes_uniform`
 * does. Expects a bound already checked to be in [1, 2³² − 1].
 */
export function uniformFromBytes(bytes: (n: number) => Uint8Array, upperBound: number): number {
  if (upperBound < 2) return 0;
  const min = 2 ** 32 % upperBound;
  for (;;) {
    const b = bytes(4);
    const value = ((b[0] ?? 0) | ((b[1] ?? 0) << 8) | ((b[2] ?? 0) << 16)) + (b[3] ?? 0) * 2 ** 24;
    if (value >= min) return value % upperBound;
  }
}
