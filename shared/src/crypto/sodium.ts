/**
 * The libsodium backend (WebAssembly, `libsodium-wrappers-sumo`, pinned). This is the only
 * module that imports libsodium; everything else goes through `Primitives`. See
 * docs/adr/0002 and 0003 for why there are two backends and why the sumo build.
 *
 * Every input is checked here (type and length) before libsodium sees it, so that bad input
 * fails with the same `CryptoError` code as on the noble backend. libsodium's own exceptions are
 * plain `Error`s with backend-specific texts; they are mapped to codes here and kept as `cause`.
 */
import sodium from 'libsodium-wrappers-sumo';
import {
  checkArgon2id,
  checkByteCount,
  checkHkdfLength,
  checkUniformBound,
  isAllZero,
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
  SHA256_BYTES,
  X25519_KEY_BYTES,
  XCHACHA20POLY1305_KEY_BYTES,
  XCHACHA20POLY1305_NONCE_BYTES,
} from './primitives.js';
import type { Argon2idParams, KeyPair, Primitives, RandomSource } from './primitives.js';

/** Where the ML-KEM-768 decapsulation key (dk_PKE ‖ ek ‖ H(ek) ‖ z, FIPS 203 Alg. 16) keeps ek
 * (after the 1152-byte dk_PKE) and where H(ek) ends. */
const MLKEM768_EK_OFFSET = 1152;
const MLKEM768_H_END = MLKEM768_EK_OFFSET + MLKEM768_PUBLIC_KEY_BYTES + 32;

/** libsodium is a singleton; loading it twice returns the same backend. */
let loaded: Promise<Primitives> | undefined;

/**
 * Loads libsodium (instantiating its WebAssembly) and returns the libsodium backend. Rejects
 * when WebAssembly is unavailable or fails to instantiate; `backend.ts` then falls back to noble.
 */
export function loadSodiumBackend(): Promise<Primitives> {
  loaded ??= (async () => {
    await sodium.ready;
    return createSodiumBackend();
  })();
  // A failed load is not cached, so that a later call may try again.
  loaded.catch(() => {
    loaded = undefined;
  });
  return loaded;
}

/** HMAC through libsodium's incremental API (`crypto_auth_hmacsha256_init/update/final`), which,
 * unlike the one-shot `crypto_auth_hmacsha256`, takes keys of any length as RFC 2104 does. */
function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
  requireBytes(key);
  requireBytes(data);
  return mapFailure(CryptoErrorCode.INTERNAL, () => {
    const state = sodium.crypto_auth_hmacsha256_init(key);
    sodium.crypto_auth_hmacsha256_update(state, data);
    return sodium.crypto_auth_hmacsha256_final(state);
  });
}

function hmacSha512(key: Uint8Array, data: Uint8Array): Uint8Array {
  requireBytes(key);
  requireBytes(data);
  return mapFailure(CryptoErrorCode.INTERNAL, () => {
    const state = sodium.crypto_auth_hmacsha512_init(key);
    sodium.crypto_auth_hmacsha512_update(state, data);
    return sodium.crypto_auth_hmacsha512_final(state);
  });
}

/**
 * HKDF-SHA256 as RFC 5869 defines it, on the HMAC above. An empty salt is the same as 32 zero
 * bytes (HMAC pads keys with zeros), which is what RFC 5869 §2.2 asks for when no salt is given.
 */
function hkdfSha256(
  ikm: Uint8Array,
  salt: Uint8Array,
  info: Uint8Array,
  length: number,
): Uint8Array {
  requireBytes(ikm);
  requireBytes(salt);
  requireBytes(info);
  checkHkdfLength(length);
  const prk = hmacSha256(salt, ikm);
  const okm = new Uint8Array(length);
  let previous: Uint8Array = new Uint8Array(0);
  // One HMAC call per block, its input joined in JavaScript: every call into the WASM module
  // costs a copy in and out, and incremental updates made five calls per block (eight times
  // slower for the 56-byte outputs the ratchet and the sealed envelope derive per message).
  for (let offset = 0, block = 1; offset < length; offset += SHA256_BYTES, block++) {
    const input = new Uint8Array(previous.length + info.length + 1);
    input.set(previous, 0);
    input.set(info, previous.length);
    input[input.length - 1] = block;
    const t = hmacSha256(prk, input);
    okm.set(t.subarray(0, Math.min(SHA256_BYTES, length - offset)), offset);
    previous.fill(0);
    previous = t;
  }
  previous.fill(0);
  prk.fill(0);
  return okm;
}

/** Most bytes one `getRandomValues` call may fill (the Web Crypto API's limit). */
const GET_RANDOM_VALUES_MAX_BYTES = 65_536;

interface WebCrypto {
  getRandomValues(array: Uint8Array): Uint8Array;
}

/**
 * The platform's CSPRNG (Web Crypto, in every browser and in Node 20). libsodium's JavaScript
 * build draws from this same source underneath `randombytes_buf`, but calls back into
 * JavaScript for every four bytes (about 130 µs for 32 bytes under Node), which would make fresh
 * ephemeral keys the most expensive part of sealing an envelope. Calling it directly gives the
 * same randomness without the round trips, so no generator of our own is needed on the hot path.
 */
function platformRandomBytes(n: number): Uint8Array {
  // `crypto` is not in the ES library typings shared/ compiles with (no DOM, no Node types).
  const webCrypto = (globalThis as { readonly crypto?: WebCrypto }).crypto;
  if (webCrypto === undefined) throw new CryptoError(CryptoErrorCode.BACKEND_UNAVAILABLE);
  const out = new Uint8Array(n);
  for (let offset = 0; offset < n; offset += GET_RANDOM_VALUES_MAX_BYTES) {
    webCrypto.getRandomValues(
      out.subarray(offset, Math.min(n, offset + GET_RANDOM_VALUES_MAX_BYTES)),
    );
  }
  return out;
}

const sodiumRandom: RandomSource = {
  bytes(n: number): Uint8Array {
    checkByteCount(n);
    if (n === 0) return new Uint8Array(0);
    return platformRandomBytes(n);
  },
  uniform(upperBound: number): number {
    checkUniformBound(upperBound);
    return sodium.randombytes_uniform(upperBound);
  },
};

function createSodiumBackend(): Primitives {
  // The prime-order check of a key, once per key (checks.ts): a verification re-checks no key
  // that an identity decoding or an earlier signature already checked.
  const validKeys = new ValidEd25519KeyMemo();
  const isValidPoint = (publicKey: Uint8Array): boolean =>
    validKeys.isValid(publicKey, (k) => sodium.crypto_core_ed25519_is_valid_point(k));
  return {
    backend: 'libsodium',
    random: sodiumRandom,

    x25519PublicKey(secretKey: Uint8Array): Uint8Array {
      requireBytes(secretKey, X25519_KEY_BYTES);
      return mapFailure(CryptoErrorCode.INTERNAL, () => sodium.crypto_scalarmult_base(secretKey));
    },

    x25519(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
      requireBytes(secretKey, X25519_KEY_BYTES);
      requireBytes(publicKey, X25519_KEY_BYTES);
      // With lengths checked, libsodium's only failure ("weak public key") is an all-zero
      // result, i.e. a public key of low order; check the output too, belt and braces.
      const shared = mapFailure(CryptoErrorCode.LOW_ORDER, () =>
        sodium.crypto_scalarmult(secretKey, publicKey),
      );
      if (isAllZero(shared)) throw new CryptoError(CryptoErrorCode.LOW_ORDER);
      return shared;
    },

    ed25519KeyPairFromSeed(seed: Uint8Array): KeyPair {
      requireBytes(seed, ED25519_SEED_BYTES);
      const pair = mapFailure(CryptoErrorCode.INTERNAL, () =>
        sodium.crypto_sign_seed_keypair(seed),
      );
      sodium.memzero(pair.privateKey);
      return { publicKey: pair.publicKey, secretKey: seed.slice() };
    },

    ed25519Sign(seed: Uint8Array, message: Uint8Array): Uint8Array {
      requireBytes(seed, ED25519_SEED_BYTES);
      requireBytes(message);
      return mapFailure(CryptoErrorCode.INTERNAL, () => {
        // libsodium signs with seed ‖ public key; rebuild it from the seed each time rather
        // than keep a second copy of the secret around.
        const pair = sodium.crypto_sign_seed_keypair(seed);
        try {
          return sodium.crypto_sign_detached(message, pair.privateKey);
        } finally {
          sodium.memzero(pair.privateKey);
        }
      });
    },

    ed25519IsValidPublicKey(publicKey: Uint8Array): boolean {
      requireBytes(publicKey);
      if (publicKey.length !== ED25519_PUBLIC_KEY_BYTES) return false;
      // Canonical, on the curve, not of small order, and in the prime-order subgroup
      // (ge25519_is_on_main_subgroup): mixed-order points are refused.
      return mapFailure(CryptoErrorCode.INTERNAL, () => isValidPoint(publicKey));
    },

    ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
      requireBytes(publicKey);
      requireBytes(message);
      requireBytes(signature);
      // A wrong length is one more way for a signature to be invalid: the contract is `false`.
      if (publicKey.length !== ED25519_PUBLIC_KEY_BYTES) return false;
      if (signature.length !== ED25519_SIGNATURE_BYTES) return false;
      // crypto_sign_verify_detached refuses small-order keys but not mixed-order ones.
      if (!isValidPoint(publicKey)) return false;
      try {
        // libsodium (without ED25519_COMPAT) rejects S ≥ L, small-order R and A, and
        // non-canonical A, and compares R byte for byte (cofactorless).
        return sodium.crypto_sign_verify_detached(signature, message, publicKey);
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
        sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
          plaintext,
          associatedData,
          null,
          nonce,
          key,
        ),
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
      // Shorter than a tag cannot authenticate; it comes from the network, so it is a failed
      // decryption, not a caller bug.
      if (sealed.length < POLY1305_TAG_BYTES) throw new CryptoError(CryptoErrorCode.DECRYPT_FAILED);
      return mapFailure(CryptoErrorCode.DECRYPT_FAILED, () =>
        sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, sealed, associatedData, nonce, key),
      );
    },

    sha256(data: Uint8Array): Uint8Array {
      requireBytes(data);
      return mapFailure(CryptoErrorCode.INTERNAL, () => sodium.crypto_hash_sha256(data));
    },

    sha512(data: Uint8Array): Uint8Array {
      requireBytes(data);
      return mapFailure(CryptoErrorCode.INTERNAL, () => sodium.crypto_hash_sha512(data));
    },

    hmacSha256,
    hmacSha512,
    hkdfSha256,

    mlkem768KeyPairFromSeed(seed: Uint8Array): KeyPair {
      requireBytes(seed, MLKEM768_SEED_BYTES);
      const pair = mapFailure(CryptoErrorCode.INTERNAL, () =>
        sodium.crypto_kem_mlkem768_seed_keypair(seed),
      );
      return { publicKey: pair.publicKey, secretKey: pair.privateKey };
    },

    mlkem768Encapsulate(publicKey: Uint8Array, seed: Uint8Array) {
      requireBytes(publicKey, MLKEM768_PUBLIC_KEY_BYTES);
      requireBytes(seed, MLKEM768_ENCAPS_SEED_BYTES);
      // With lengths checked, libsodium fails only on a public key that does not pass the
      // FIPS 203 §7.2 modulus check.
      const result = mapFailure(CryptoErrorCode.BAD_ENCODING, () =>
        sodium.crypto_kem_mlkem768_enc_deterministic(publicKey, seed),
      );
      return { ciphertext: result.ciphertext, sharedSecret: result.sharedSecret };
    },

    mlkem768Decapsulate(secretKey: Uint8Array, ciphertext: Uint8Array): Uint8Array {
      requireBytes(secretKey, MLKEM768_SECRET_KEY_BYTES);
      requireBytes(ciphertext, MLKEM768_CIPHERTEXT_BYTES);
      // FIPS 203 §7.3 "hash check": the decapsulation key embeds ek and H(ek); libsodium does
      // not check them (noble does), so check here and both backends reject a corrupted key.
      const ek = secretKey.subarray(
        MLKEM768_EK_OFFSET,
        MLKEM768_EK_OFFSET + MLKEM768_PUBLIC_KEY_BYTES,
      );
      const h = secretKey.subarray(MLKEM768_EK_OFFSET + MLKEM768_PUBLIC_KEY_BYTES, MLKEM768_H_END);
      if (!sodium.memcmp(sodium.crypto_hash_sha3256(ek), h)) {
        throw new CryptoError(CryptoErrorCode.BAD_ENCODING);
      }
      return mapFailure(CryptoErrorCode.BAD_ENCODING, () =>
        sodium.crypto_kem_mlkem768_dec(ciphertext, secretKey),
      );
    },

    argon2id(password: Uint8Array, salt: Uint8Array, params: Argon2idParams): Uint8Array {
      checkArgon2id(password, salt, params);
      // crypto_pwhash has no lanes parameter: parallelism is always ARGON2ID_PARALLELISM (1).
      return mapFailure(CryptoErrorCode.INTERNAL, () =>
        sodium.crypto_pwhash(
          params.outputBytes,
          password,
          salt,
          params.iterations,
          params.memoryKiB * 1024,
          sodium.crypto_pwhash_ALG_ARGON2ID13,
        ),
      );
    },
  };
}
