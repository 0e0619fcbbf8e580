/**
 * The pure-JavaScript backend, on the audited `@noble/*` libraries, for browsers without
 * WebAssembly (Tor Browser at "Safer"). It must agree with the libsodium backend byte for byte
 * and verdict for verdict; where the libraries differ in policy, this module adopts libsodium's
 * (see `ed25519Verify` and the ML-KEM notes) and the Wycheproof suite and the agreement property
 * tests check that it did.
 */
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { argon2id } from '@noble/hashes/argon2.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import {
  ARGON2ID_PARALLELISM,
  checkArgon2id,
  checkByteCount,
  checkHkdfLength,
  checkUniformBound,
  constantTimeEqual,
  isAllZero,
  uniformFromBytes,
  ValidEd25519KeyMemo,
} from './checks.js';
import { CryptoError, CryptoErrorCode, mapFailure, requireBytes } from './errors.js';
import {
  ED25519_PUBLIC_KEY_BYTES,
  ED25519_SEED_BYTES,
  ED25519_SIGNATURE_BYTES,
  MLKEM768_CIPHERTEXT_BYTES,
  MLKEM768_ENCAPS_SEED_BYTES,
  MLKEM768_PUBLIC_KEY_BYTES,
  MLKEM768_SECRET_KEY_BYTES,
  MLKEM768_SEED_BYTES,
  POLY1305_TAG_BYTES,
  X25519_KEY_BYTES,
  XCHACHA20POLY1305_KEY_BYTES,
  XCHACHA20POLY1305_NONCE_BYTES,
} from './primitives.js';
import type { Argon2idParams, KeyPair, Primitives, RandomSource } from './primitives.js';

/** The order L of the Ed25519 prime-order subgroup. */
const ED25519_L = 2n ** 252n + 27742317777372353535851937790883648493n;

function bytesToNumberLE(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i] ?? 0);
  return n;
}

/**
 * The encodings, sign bit cleared, of the Ed25519 points of small order: y = 0 (order 4), 1 (the
 * identity), the two y values of the points of order 8, p − 1 (order 2), and the non-canonical
 * p and p + 1 (0 and 1 again). This is the list libsodium's `ge25519_has_small_order` checks R
 * and A against; noble.test.ts checks that it is exactly the torsion subgroup.
 */
export const ED25519_SMALL_ORDER_ENCODINGS: readonly string[] = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
];

const SMALL_ORDER_BYTES: readonly Uint8Array[] = ED25519_SMALL_ORDER_ENCODINGS.map((text) =>
  Uint8Array.from(text.match(/../g) ?? [], (pair) => parseInt(pair, 16)),
);

/** libsodium's `ge25519_has_small_order`: compares an encoding, sign bit ignored, to the list. */
function hasSmallOrderEncoding(encoding: Uint8Array): boolean {
  const masked = encoding.slice();
  masked[31] = (masked[31] ?? 0) & 0x7f;
  let found = false;
  for (const y of SMALL_ORDER_BYTES) found = constantTimeEqual(masked, y) || found;
  return found;
}

/**
 * Ed25519 verification with libsodium's exact policy (crypto_sign_verify_detached, built without
 * ED25519_COMPAT), which is stricter than RFC 8032 and than noble's `zip215: false` mode:
 * S < L; R and A not of small order; A canonical (y < p) and of prime order (not mixed order,
 * libsodium's crypto_core_ed25519_is_valid_point, which sodium.ts checks before verifying); and
 * the cofactorless equation
 * [S]B − [k]A, encoded, equal to R byte for byte (which also makes R canonical). noble's own
 * `verify` checks the cofactored equation, which accepts signatures libsodium rejects.
 */
function ed25519VerifyStrict(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
  validKeys: ValidEd25519KeyMemo,
): boolean {
  const r = signature.subarray(0, 32);
  const s = bytesToNumberLE(signature.subarray(32, 64));
  if (s >= ED25519_L) return false;
  if (hasSmallOrderEncoding(r) || hasSmallOrderEncoding(publicKey)) return false;
  let a: ReturnType<typeof ed25519.Point.fromBytes>;
  try {
    // zip215 = false: rejects y ≥ p (libsodium's ge25519_is_canonical) and x = 0 with the sign
    // bit set (only the small-order points have x = 0, and those are already rejected).
    a = ed25519.Point.fromBytes(publicKey, false);
  } catch {
    return false;
  }
  // Mixed order (a prime-order point plus a small-order one) is refused, as libsodium's
  // crypto_core_ed25519_is_valid_point does; checked once per key (checks.ts).
  const primeOrder = a;
  if (!validKeys.isValid(publicKey, () => primeOrder.isTorsionFree())) return false;
  const digest = sha512.create().update(r).update(publicKey).update(message).digest();
  const k = bytesToNumberLE(digest) % ED25519_L;
  // Public data only (signature, key, message): variable-time multiplication is fine.
  const check = ed25519.Point.BASE.multiplyUnsafe(s).subtract(a.multiplyUnsafe(k));
  return constantTimeEqual(check.toBytes(), r);
}

/** Most bytes one `getRandomValues` call may fill (the Web Crypto API's limit; noble's
 * `randomBytes` passes its argument straight through and throws beyond it). */
const GET_RANDOM_VALUES_MAX_BYTES = 65_536;

/** `n` bytes from the platform CSPRNG, in chunks that `getRandomValues` accepts, so that any
 * count the libsodium backend serves is served here too. */
function chunkedRandomBytes(n: number): Uint8Array {
  if (n <= GET_RANDOM_VALUES_MAX_BYTES) return randomBytes(n);
  const out = new Uint8Array(n);
  for (let offset = 0; offset < n; offset += GET_RANDOM_VALUES_MAX_BYTES) {
    out.set(randomBytes(Math.min(GET_RANDOM_VALUES_MAX_BYTES, n - offset)), offset);
  }
  return out;
}

const nobleRandom: RandomSource = {
  bytes(n: number): Uint8Array {
    checkByteCount(n);
    if (n === 0) return new Uint8Array(0);
    return chunkedRandomBytes(n);
  },
  uniform(upperBound: number): number {
    checkUniformBound(upperBound);
    return uniformFromBytes((n) => randomBytes(n), upperBound);
  },
};

/** Returns the noble backend. Synchronous and always available (no WebAssembly). */
export function createNobleBackend(): Primitives {
  // The prime-order check of a key, once per key (checks.ts), as in sodium.ts.
  const validKeys = new ValidEd25519KeyMemo();
  return {
    backend: 'noble',
    random: nobleRandom,

    x25519PublicKey(secretKey: Uint8Array): Uint8Array {
      requireBytes(secretKey, X25519_KEY_BYTES);
      return mapFailure(CryptoErrorCode.INTERNAL, () => x25519.getPublicKey(secretKey));
    },

    x25519(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
      requireBytes(secretKey, X25519_KEY_BYTES);
      requireBytes(publicKey, X25519_KEY_BYTES);
      // noble refuses an all-zero result itself; either way it is a low-order key.
      const shared = mapFailure(CryptoErrorCode.LOW_ORDER, () =>
        x25519.getSharedSecret(secretKey, publicKey),
      );
      if (isAllZero(shared)) throw new CryptoError(CryptoErrorCode.LOW_ORDER);
      return shared;
    },

    ed25519KeyPairFromSeed(seed: Uint8Array): KeyPair {
      requireBytes(seed, ED25519_SEED_BYTES);
      const publicKey = mapFailure(CryptoErrorCode.INTERNAL, () => ed25519.getPublicKey(seed));
      return { publicKey, secretKey: seed.slice() };
    },

    ed25519Sign(seed: Uint8Array, message: Uint8Array): Uint8Array {
      requireBytes(seed, ED25519_SEED_BYTES);
      requireBytes(message);
      return mapFailure(CryptoErrorCode.INTERNAL, () => ed25519.sign(message, seed));
    },

    ed25519IsValidPublicKey(publicKey: Uint8Array): boolean {
      requireBytes(publicKey);
      if (publicKey.length !== ED25519_PUBLIC_KEY_BYTES) return false;
      if (hasSmallOrderEncoding(publicKey)) return false;
      return validKeys.isValid(publicKey, (k) => {
        try {
          // zip215 = false: canonical encodings only (y < p), as libsodium.
          const point = ed25519.Point.fromBytes(k, false);
          return !point.is0() && !point.isSmallOrder() && point.isTorsionFree();
        } catch {
          return false;
        }
      });
    },

    ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
      requireBytes(publicKey);
      requireBytes(message);
      requireBytes(signature);
      if (publicKey.length !== ED25519_PUBLIC_KEY_BYTES) return false;
      if (signature.length !== ED25519_SIGNATURE_BYTES) return false;
      try {
        return ed25519VerifyStrict(publicKey, message, signature, validKeys);
      } catch {
        return false;
      }
    },

    xchacha20poly1305Seal(
      key: Uint8Array,
      nonce: Uint8Array,
      plaintext: Uint8Array,
      associatedData: Uint8Array,
    ): Uint8Array {
      requireBytes(key, XCHACHA20POLY1305_KEY_BYTES);
      requireBytes(nonce, XCHACHA20POLY1305_NONCE_BYTES);
      requireBytes(plaintext);
      requireBytes(associatedData);
      return mapFailure(CryptoErrorCode.INTERNAL, () =>
        xchacha20poly1305(key, nonce, associatedData).encrypt(plaintext),
      );
    },

    xchacha20poly1305Open(
      key: Uint8Array,
      nonce: Uint8Array,
      sealed: Uint8Array,
      associatedData: Uint8Array,
    ): Uint8Array {
      requireBytes(key, XCHACHA20POLY1305_KEY_BYTES);
      requireBytes(nonce, XCHACHA20POLY1305_NONCE_BYTES);
      requireBytes(sealed);
      requireBytes(associatedData);
      if (sealed.length < POLY1305_TAG_BYTES) throw new CryptoError(CryptoErrorCode.DECRYPT_FAILED);
      // noble compares the tag in constant time and returns nothing when it does not match.
      return mapFailure(CryptoErrorCode.DECRYPT_FAILED, () =>
        xchacha20poly1305(key, nonce, associatedData).decrypt(sealed),
      );
    },

    sha256(data: Uint8Array): Uint8Array {
      requireBytes(data);
      return sha256(data);
    },

    sha512(data: Uint8Array): Uint8Array {
      requireBytes(data);
      return sha512(data);
    },

    hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
      requireBytes(key);
      requireBytes(data);
      return hmac(sha256, key, data);
    },

    hmacSha512(key: Uint8Array, data: Uint8Array): Uint8Array {
      requireBytes(key);
      requireBytes(data);
      return hmac(sha512, key, data);
    },

    hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
      requireBytes(ikm);
      requireBytes(salt);
      requireBytes(info);
      checkHkdfLength(length);
      if (length === 0) return new Uint8Array(0);
      // An empty salt is passed as is: HMAC pads the key with zeros, so it equals the
      // HashLen-zero salt RFC 5869 §2.2 prescribes, as on the libsodium backend.
      return mapFailure(CryptoErrorCode.INTERNAL, () => hkdf(sha256, ikm, salt, info, length));
    },

    mlkem768KeyPairFromSeed(seed: Uint8Array): KeyPair {
      requireBytes(seed, MLKEM768_SEED_BYTES);
      const pair = mapFailure(CryptoErrorCode.INTERNAL, () => ml_kem768.keygen(seed));
      return { publicKey: pair.publicKey, secretKey: pair.secretKey };
    },

    mlkem768Encapsulate(publicKey: Uint8Array, seed: Uint8Array) {
      requireBytes(publicKey, MLKEM768_PUBLIC_KEY_BYTES);
      requireBytes(seed, MLKEM768_ENCAPS_SEED_BYTES);
      // noble runs the FIPS 203 §7.2 modulus check and throws when it fails.
      const result = mapFailure(CryptoErrorCode.BAD_ENCODING, () =>
        ml_kem768.encapsulate(publicKey, seed),
      );
      return { ciphertext: result.cipherText, sharedSecret: result.sharedSecret };
    },

    mlkem768Decapsulate(secretKey: Uint8Array, ciphertext: Uint8Array): Uint8Array {
      requireBytes(secretKey, MLKEM768_SECRET_KEY_BYTES);
      requireBytes(ciphertext, MLKEM768_CIPHERTEXT_BYTES);
      // noble runs the FIPS 203 §7.3 hash check on the key and throws when it fails; a bad
      // ciphertext is implicitly rejected (a pseudorandom secret), never an exception.
      return mapFailure(CryptoErrorCode.BAD_ENCODING, () =>
        ml_kem768.decapsulate(ciphertext, secretKey),
      );
    },

    argon2id(password: Uint8Array, salt: Uint8Array, params: Argon2idParams): Uint8Array {
      checkArgon2id(password, salt, params);
      return mapFailure(CryptoErrorCode.INTERNAL, () =>
        argon2id(password, salt, {
          t: params.iterations,
          m: params.memoryKiB,
          p: ARGON2ID_PARALLELISM,
          dkLen: params.outputBytes,
          // Room for the largest memory we accept (noble's default budget is 1 GiB).
          maxmem: params.memoryKiB * 1024 + 1024 * 1024,
        }),
      );
    },
  };
}

/** Loads the noble backend; async only to match `loadSodiumBackend`. */
export function loadNobleBackend(): Promise<Primitives> {
  return Promise.resolve(createNobleBackend());
}

// The noble functions the rest of this folder uses outside the `Primitives` interface: UTF-8 for
// labels and codenames (encoding.ts, codename.ts), and ChaCha20 and SHA-256 for the test-only
// seeded generator (random.ts), which must give the same bytes whichever backend is loaded.
// They are re-exported here so that this file stays the one import of the @noble libraries.
export { chacha20 } from '@noble/ciphers/chacha.js';
export { utf8ToBytes } from '@noble/hashes/utils.js';
export { sha256 };
