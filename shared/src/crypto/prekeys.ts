/**
 * Prekeys: what a device publishes so that others can start handshakes with it while it is
 * offline, and the secrets it keeps to answer them.
 * - a signed X25519 prekey, rotated (`SIGNED_PREKEY_ROTATION_SECONDS`), with an id and creation
 *   time;
 * - a signed ML-KEM-768 prekey (the "last resort" PQ prekey of Signal's PQXDH), rotated with it;
 * - one-time X25519 prekeys, unsigned as in X3DH (the relay hands each out once).
 *
 * Every signature covers a distinct label, the signer's key, the prekey's id and time, and the
 * key itself, so a signature over one key type can never be presented as one over another
 * (the KEM/DH key-confusion that the PQXDH analysis by Bhargavan et al. warned about).
 *
 * Each prekey is its own stored record (the secrets only; public keys and signatures are
 * re-derived on decoding, Ed25519 signatures being deterministic), integers big-endian:
 *   signed prekey   = 0x01 ‖ id (4) ‖ created (4) ‖ X25519 secret (32)       41 bytes
 *   KEM prekey      = 0x01 ‖ id (4) ‖ created (4) ‖ ML-KEM-768 seed (64)     73 bytes
 *   one-time prekey = 0x01 ‖ id (4) ‖ X25519 secret (32)                     37 bytes
 * The published forms are in bundle.ts.
 */
import { MAX_PREKEY_ID } from '../protocol/limits.js';
import { CryptoError, CryptoErrorCode } from './errors.js';
import type { Primitives } from './primitives.js';
import { MLKEM768_SEED_BYTES, X25519_KEY_BYTES } from './primitives.js';
import { ByteReader, concatBytes, expectVersion, labelPrefix, toHex, u32, u8 } from './encoding.js';
import { KDF_LABELS } from './kdf.js';
import type { DeviceIdentity } from './identity.js';
import type { MlKemKeyPair, MlKemPublicKey, X25519KeyPair, X25519PublicKey } from './keys.js';
import { generateX25519KeyPair, mlKemKeyPairFromSeed, x25519KeyPairFromSecret } from './keys.js';

/** Version byte of the prekey record encodings. */
export const PREKEY_RECORD_VERSION = 1;
/** A signed prekey older than this should be replaced (Signal rotates weekly to monthly). */
export const SIGNED_PREKEY_ROTATION_SECONDS = 7 * 24 * 60 * 60;

/** Signature prefixes of the two signed prekeys (distinct labels: no key-type confusion). */
export const SIGNED_PREKEY_SIG_PREFIX = labelPrefix(KDF_LABELS.signedPrekeySignature);
export const KEM_PREKEY_SIG_PREFIX = labelPrefix(KDF_LABELS.kemPrekeySignature);

/** A signed X25519 prekey as published. */
export interface SignedPrekeyPublic {
  readonly id: number;
  readonly createdAtSeconds: number;
  readonly publicKey: X25519PublicKey;
  readonly signature: Uint8Array;
}

/** A signed ML-KEM-768 prekey as published. */
export interface KemPrekeyPublic {
  readonly id: number;
  readonly createdAtSeconds: number;
  readonly publicKey: MlKemPublicKey;
  readonly signature: Uint8Array;
}

export interface SignedPrekey extends SignedPrekeyPublic {
  readonly keyPair: X25519KeyPair;
}

export interface KemPrekey extends KemPrekeyPublic {
  readonly keyPair: MlKemKeyPair;
  /** The key-generation seed (d ‖ z), kept so that the key can be stored in 64 bytes. */
  readonly seed: Uint8Array;
}

/** A one-time prekey and its secret (the published form is `{id, key}`, see bundle.ts). */
export interface OneTimePrekeyPair {
  readonly id: number;
  readonly keyPair: X25519KeyPair;
}

/** What a signed prekey's signature covers. */
export function prekeySignedMessage(
  prefix: Uint8Array,
  signingKey: Uint8Array,
  id: number,
  createdAtSeconds: number,
  publicKey: Uint8Array,
): Uint8Array {
  return concatBytes(prefix, signingKey, u32(id), u32(createdAtSeconds), publicKey);
}

/** Throws `limit_exceeded` unless `id` is an integer in [0, MAX_PREKEY_ID]. */
export function checkPrekeyId(id: number): void {
  if (!Number.isInteger(id) || id < 0 || id > MAX_PREKEY_ID) {
    throw new CryptoError(CryptoErrorCode.LIMIT_EXCEEDED);
  }
}

/** A signed X25519 prekey from its secret (generation, and restoring stored prekeys). */
export function signedPrekeyFromSecret(
  p: Primitives,
  identity: DeviceIdentity,
  id: number,
  createdAtSeconds: number,
  secret: Uint8Array,
): SignedPrekey {
  checkPrekeyId(id);
  checkPrekeyId(createdAtSeconds);
  const keyPair = x25519KeyPairFromSecret(p, secret);
  // Ed25519 signatures are deterministic: restoring re-creates the published signature.
  const signature = identity.sign(
    prekeySignedMessage(
      SIGNED_PREKEY_SIG_PREFIX,
      identity.publicIdentity.signingKey,
      id,
      createdAtSeconds,
      keyPair.publicKey,
    ),
  );
  return { id, createdAtSeconds, publicKey: keyPair.publicKey, signature, keyPair };
}

/** Generates a signed X25519 prekey. `createdAtSeconds` is Unix time (u32). */
export function generateSignedPrekey(
  p: Primitives,
  identity: DeviceIdentity,
  id: number,
  createdAtSeconds: number,
): SignedPrekey {
  return signedPrekeyFromSecret(
    p,
    identity,
    id,
    createdAtSeconds,
    p.random.bytes(X25519_KEY_BYTES),
  );
}

/** A signed ML-KEM-768 prekey from its 64-byte key-generation seed. */
export function kemPrekeyFromSeed(
  p: Primitives,
  identity: DeviceIdentity,
  id: number,
  createdAtSeconds: number,
  seed: Uint8Array,
): KemPrekey {
  checkPrekeyId(id);
  checkPrekeyId(createdAtSeconds);
  if (seed.length !== MLKEM768_SEED_BYTES) throw new CryptoError(CryptoErrorCode.BAD_LENGTH);
  const keyPair = mlKemKeyPairFromSeed(p, seed);
  const signature = identity.sign(
    prekeySignedMessage(
      KEM_PREKEY_SIG_PREFIX,
      identity.publicIdentity.signingKey,
      id,
      createdAtSeconds,
      keyPair.publicKey,
    ),
  );
  return {
    id,
    createdAtSeconds,
    publicKey: keyPair.publicKey,
    signature,
    keyPair,
    seed: seed.slice(),
  };
}

/** Generates a signed ML-KEM-768 prekey. */
export function generateKemPrekey(
  p: Primitives,
  identity: DeviceIdentity,
  id: number,
  createdAtSeconds: number,
): KemPrekey {
  return kemPrekeyFromSeed(p, identity, id, createdAtSeconds, p.random.bytes(MLKEM768_SEED_BYTES));
}

/** Generates one-time prekeys with consecutive ids from `firstId`. */
export function generateOneTimePrekeys(
  p: Primitives,
  firstId: number,
  count: number,
): OneTimePrekeyPair[] {
  const out: OneTimePrekeyPair[] = [];
  for (let i = 0; i < count; i++) {
    checkPrekeyId(firstId + i);
    out.push({ id: firstId + i, keyPair: generateX25519KeyPair(p) });
  }
  return out;
}

/** True when the signed prekey is due for rotation at `nowSeconds`. */
export function signedPrekeyNeedsRotation(spk: SignedPrekeyPublic, nowSeconds: number): boolean {
  return nowSeconds - spk.createdAtSeconds >= SIGNED_PREKEY_ROTATION_SECONDS;
}

/** A signed prekey's record: `01 ‖ id (4) ‖ created (4) ‖ X25519 secret (32)`. */
export function encodeSignedPrekeyRecord(k: SignedPrekey): Uint8Array {
  return concatBytes(
    u8(PREKEY_RECORD_VERSION),
    u32(k.id),
    u32(k.createdAtSeconds),
    k.keyPair.secretKey,
  );
}

/** Strict decoding of `encodeSignedPrekeyRecord`, re-signed by `identity`. */
export function decodeSignedPrekeyRecord(
  p: Primitives,
  identity: DeviceIdentity,
  bytes: Uint8Array,
): SignedPrekey {
  const r = new ByteReader(bytes);
  expectVersion(r, PREKEY_RECORD_VERSION);
  const k = signedPrekeyFromSecret(p, identity, r.u32(), r.u32(), r.bytesN(X25519_KEY_BYTES));
  r.end();
  return k;
}

/** A KEM prekey's record: `01 ‖ id (4) ‖ created (4) ‖ ML-KEM-768 seed (64)`. */
export function encodeKemPrekeyRecord(k: KemPrekey): Uint8Array {
  return concatBytes(u8(PREKEY_RECORD_VERSION), u32(k.id), u32(k.createdAtSeconds), k.seed);
}

/** Strict decoding of `encodeKemPrekeyRecord`, re-signed by `identity`. */
export function decodeKemPrekeyRecord(
  p: Primitives,
  identity: DeviceIdentity,
  bytes: Uint8Array,
): KemPrekey {
  const r = new ByteReader(bytes);
  expectVersion(r, PREKEY_RECORD_VERSION);
  const k = kemPrekeyFromSeed(p, identity, r.u32(), r.u32(), r.bytesN(MLKEM768_SEED_BYTES));
  r.end();
  return k;
}

/** A one-time prekey's record: `01 ‖ id (4) ‖ X25519 secret (32)`. */
export function encodeOneTimePrekeyRecord(k: OneTimePrekeyPair): Uint8Array {
  return concatBytes(u8(PREKEY_RECORD_VERSION), u32(k.id), k.keyPair.secretKey);
}

/** Strict decoding of `encodeOneTimePrekeyRecord`. */
export function decodeOneTimePrekeyRecord(p: Primitives, bytes: Uint8Array): OneTimePrekeyPair {
  const r = new ByteReader(bytes);
  expectVersion(r, PREKEY_RECORD_VERSION);
  const id = r.u32();
  const keyPair = x25519KeyPairFromSecret(p, r.bytesN(X25519_KEY_BYTES));
  r.end();
  return { id, keyPair };
}

/** The signed prekeys that replace `signed` and `kem` (ids one up), created at `nowSeconds`. */
export function nextSignedPrekeys(
  p: Primitives,
  identity: DeviceIdentity,
  signed: SignedPrekeyPublic,
  kem: KemPrekeyPublic,
  nowSeconds: number,
): { readonly signed: SignedPrekey; readonly kem: KemPrekey } {
  return {
    signed: generateSignedPrekey(p, identity, (signed.id + 1) >>> 0, nowSeconds),
    kem: generateKemPrekey(p, identity, (kem.id + 1) >>> 0, nowSeconds),
  };
}

/**
 * The handshakes remembered under one signed prekey, as a record:
 * `01 ‖ signed prekey id (4) ‖ count (4) ‖ count × initiator base key (32)`, oldest first.
 */
export function encodeRememberedHandshakes(
  signedPrekeyId: number,
  baseKeys: readonly Uint8Array[],
): Uint8Array {
  return concatBytes(
    u8(PREKEY_RECORD_VERSION),
    u32(signedPrekeyId),
    u32(baseKeys.length),
    ...baseKeys,
  );
}

/** Strict decoding of `encodeRememberedHandshakes`; at most `maxCount` base keys, no duplicate. */
export function decodeRememberedHandshakes(
  bytes: Uint8Array,
  maxCount: number,
): { readonly signedPrekeyId: number; readonly baseKeys: readonly Uint8Array[] } {
  const r = new ByteReader(bytes);
  expectVersion(r, PREKEY_RECORD_VERSION);
  const signedPrekeyId = r.u32();
  const count = r.u32();
  if (count > maxCount) throw new CryptoError(CryptoErrorCode.BAD_ENCODING);
  const baseKeys: Uint8Array[] = [];
  for (let i = 0; i < count; i++) baseKeys.push(r.bytesN(X25519_KEY_BYTES));
  r.end();
  if (new Set(baseKeys.map(toHex)).size !== count) {
    throw new CryptoError(CryptoErrorCode.BAD_ENCODING);
  }
  return { signedPrekeyId, baseKeys };
}
