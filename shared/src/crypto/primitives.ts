/**
 * The narrow primitive interface that all of Passage's cryptography is built on. Two backends
 * implement it and must agree byte for byte: libsodium (WASM, the default; `sodium.ts` is the only
 * module that imports it) and a pure-JavaScript one on the audited `@noble/*` libraries, for
 * browsers without WebAssembly (Tor Browser at "Safer"). Everything above this interface is
 * backend-agnostic and does no I/O.
 *
 * Conventions: every function is synchronous once the backend is loaded; inputs are never
 * mutated; outputs are fresh arrays the caller owns. Failures that an attacker can cause
 * (a bad tag, a low-order point) are reported as `CryptoError` with a stable code, never as a
 * backend-specific exception.
 */

/** Ed25519 key and signature sizes are the wire protocol's (one definition, in limits.ts). */
export { ED25519_PUBLIC_KEY_BYTES, ED25519_SIGNATURE_BYTES } from '../protocol/limits.js';
export const X25519_KEY_BYTES = 32;
export const ED25519_SEED_BYTES = 32;
export const XCHACHA20POLY1305_KEY_BYTES = 32;
export const XCHACHA20POLY1305_NONCE_BYTES = 24;
export const POLY1305_TAG_BYTES = 16;
export { SHA256_BYTES } from '../protocol/sha256.js';
export const SHA512_BYTES = 64;
export const MLKEM768_SEED_BYTES = 64;
export const MLKEM768_PUBLIC_KEY_BYTES = 1184;
export const MLKEM768_SECRET_KEY_BYTES = 2400;
export const MLKEM768_CIPHERTEXT_BYTES = 1088;
export const MLKEM768_ENCAPS_SEED_BYTES = 32;
export const MLKEM768_SHARED_SECRET_BYTES = 32;

export interface KeyPair {
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
}

export interface Argon2idParams {
  /** Passes over memory (libsodium's opslimit). */
  readonly iterations: number;
  /** Memory in KiB. */
  readonly memoryKiB: number;
  /** Output length in bytes. */
  readonly outputBytes: number;
}

/** A source of randomness; injectable so that tests can replay transcripts from a seed. */
export interface RandomSource {
  /** `n` uniformly random bytes. */
  bytes(n: number): Uint8Array;
  /** A uniformly random integer in [0, upperBound), without modulo bias. */
  uniform(upperBound: number): number;
}

export interface Primitives {
  /** 'libsodium' or 'noble'; recorded in benchmarks and test names. */
  readonly backend: 'libsodium' | 'noble';
  /** The backend's cryptographically secure generator. */
  readonly random: RandomSource;

  /** X25519 public key for a 32-byte secret (clamped as RFC 7748 says). */
  x25519PublicKey(secretKey: Uint8Array): Uint8Array;
  /** X25519 shared secret; throws CryptoError('low_order') when the result is all zero. */
  x25519(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array;

  /** Ed25519 key pair from a 32-byte seed; `secretKey` is the 32-byte seed itself. */
  ed25519KeyPairFromSeed(seed: Uint8Array): KeyPair;
  ed25519Sign(seed: Uint8Array, message: Uint8Array): Uint8Array;
  /**
   * True when `publicKey` is the canonical encoding of a point of prime order L (in the
   * prime-order subgroup and not the identity): not of small order and not mixed order (a
   * prime-order point plus a small-order one, which lets one secret key own up to eight keys).
   * Each backend remembers the last `MAX_REMEMBERED_VALID_ED25519_KEYS` keys it found valid, by
   * their bytes (checks.ts), so that this check and `ed25519Verify` check each key once.
   */
  ed25519IsValidPublicKey(publicKey: Uint8Array): boolean;
  /**
   * Strict verification (canonical S, R not of small order, the key valid as
   * `ed25519IsValidPublicKey` says, cofactorless equation); false on any failure.
   */
  ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;

  /** XChaCha20-Poly1305 (IETF); returns ciphertext ‖ 16-byte tag. */
  xchacha20poly1305Seal(
    key: Uint8Array,
    nonce: Uint8Array,
    plaintext: Uint8Array,
    associatedData: Uint8Array,
  ): Uint8Array;
  /** Throws CryptoError('decrypt_failed') on a bad tag; never returns unauthenticated bytes. */
  xchacha20poly1305Open(
    key: Uint8Array,
    nonce: Uint8Array,
    sealed: Uint8Array,
    associatedData: Uint8Array,
  ): Uint8Array;

  sha256(data: Uint8Array): Uint8Array;
  sha512(data: Uint8Array): Uint8Array;
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;
  hmacSha512(key: Uint8Array, data: Uint8Array): Uint8Array;
  /** HKDF-SHA256 (RFC 5869), extract then expand; `length` ≤ 255 × 32. */
  hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array;

  /** ML-KEM-768 (FIPS 203) key pair from a 64-byte seed (d ‖ z). */
  mlkem768KeyPairFromSeed(seed: Uint8Array): KeyPair;
  /** Deterministic encapsulation from a 32-byte seed `m` (draw it from `random`). */
  mlkem768Encapsulate(
    publicKey: Uint8Array,
    seed: Uint8Array,
  ): { readonly ciphertext: Uint8Array; readonly sharedSecret: Uint8Array };
  /** Implicit rejection, as FIPS 203 specifies: a bad ciphertext yields a pseudorandom secret. */
  mlkem768Decapsulate(secretKey: Uint8Array, ciphertext: Uint8Array): Uint8Array;

  /** Argon2id (RFC 9106, version 0x13). */
  argon2id(password: Uint8Array, salt: Uint8Array, params: Argon2idParams): Uint8Array;
}
