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
import { ByteReader, concatBytes, expectVersion, labelPrefix, u16, u32, u8 } from './encoding.js';
import { KDF_LABELS } from './kdf.js';
import type { DeviceIdentity, PublicIdentity } from './identity.js';
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

/**
 * The secret side of what a device has published: the current signed prekeys, the previous ones
 * (kept one rotation longer so that an initiator who fetched the old bundle still gets through),
 * and the unused one-time prekeys. Lookups by id serve the responder's handshake.
 */
export class DevicePrekeys {
  private previousSignedPrekey: SignedPrekey | null = null;
  private previousKemPrekey: KemPrekey | null = null;
  private readonly oneTime = new Map<number, OneTimePrekeyPair>();
  private nextOneTimeId = 0;

  private constructor(
    private readonly p: Primitives,
    private readonly identity: DeviceIdentity,
    private signedPrekey: SignedPrekey,
    private kemPrekey: KemPrekey,
  ) {}

  /** Fresh signed prekeys (ids 0) created at `nowSeconds`. */
  static create(p: Primitives, identity: DeviceIdentity, nowSeconds: number): DevicePrekeys {
    return new DevicePrekeys(
      p,
      identity,
      generateSignedPrekey(p, identity, 0, nowSeconds),
      generateKemPrekey(p, identity, 0, nowSeconds),
    );
  }

  get currentSignedPrekey(): SignedPrekey {
    return this.signedPrekey;
  }

  get currentKemPrekey(): KemPrekey {
    return this.kemPrekey;
  }

  /** Replaces both signed prekeys; the replaced ones stay usable until the next rotation. */
  rotate(nowSeconds: number): void {
    this.previousSignedPrekey = this.signedPrekey;
    this.previousKemPrekey = this.kemPrekey;
    this.signedPrekey = generateSignedPrekey(
      this.p,
      this.identity,
      (this.signedPrekey.id + 1) >>> 0,
      nowSeconds,
    );
    this.kemPrekey = generateKemPrekey(
      this.p,
      this.identity,
      (this.kemPrekey.id + 1) >>> 0,
      nowSeconds,
    );
  }

  /** Rotates when the current signed prekey is older than `SIGNED_PREKEY_ROTATION_SECONDS`. */
  rotateIfDue(nowSeconds: number): boolean {
    if (!signedPrekeyNeedsRotation(this.signedPrekey, nowSeconds)) return false;
    this.rotate(nowSeconds);
    return true;
  }

  /** Makes `count` new one-time prekeys and keeps their secrets. */
  addOneTimePrekeys(count: number): OneTimePrekeyPair[] {
    const fresh = generateOneTimePrekeys(this.p, this.nextOneTimeId, count);
    for (const k of fresh) this.oneTime.set(k.id, k);
    this.nextOneTimeId += count;
    return fresh;
  }

  get oneTimeCount(): number {
    return this.oneTime.size;
  }

  findSignedPrekey(id: number): SignedPrekey | undefined {
    if (this.signedPrekey.id === id) return this.signedPrekey;
    return this.previousSignedPrekey?.id === id ? this.previousSignedPrekey : undefined;
  }

  findKemPrekey(id: number): KemPrekey | undefined {
    if (this.kemPrekey.id === id) return this.kemPrekey;
    return this.previousKemPrekey?.id === id ? this.previousKemPrekey : undefined;
  }

  findOneTimePrekey(id: number): OneTimePrekeyPair | undefined {
    return this.oneTime.get(id);
  }

  /** Deletes a one-time prekey once a handshake that used it has been authenticated. */
  consumeOneTimePrekey(id: number): void {
    this.oneTime.delete(id);
  }

  /**
   * The secrets, for storage encrypted at rest (public keys and signatures are re-derived):
   *   01 ‖ spk (id 4 ‖ created 4 ‖ secret 32) ‖ kem (id 4 ‖ created 4 ‖ seed 64)
   *      ‖ has-previous-spk (1) [‖ spk] ‖ has-previous-kem (1) [‖ kem]
   *      ‖ next one-time id (4) ‖ count (2) ‖ count × (id 4 ‖ secret 32)
   */
  encode(): Uint8Array {
    const spk = (k: SignedPrekey): Uint8Array[] => [
      u32(k.id),
      u32(k.createdAtSeconds),
      k.keyPair.secretKey,
    ];
    const kem = (k: KemPrekey): Uint8Array[] => [u32(k.id), u32(k.createdAtSeconds), k.seed];
    const prevSpk = this.previousSignedPrekey;
    const prevKem = this.previousKemPrekey;
    return concatBytes(
      u8(PREKEY_RECORD_VERSION),
      ...spk(this.signedPrekey),
      ...kem(this.kemPrekey),
      ...(prevSpk === null ? [u8(0)] : [u8(1), ...spk(prevSpk)]),
      ...(prevKem === null ? [u8(0)] : [u8(1), ...kem(prevKem)]),
      u32(this.nextOneTimeId),
      u16(this.oneTime.size),
      ...[...this.oneTime.values()].flatMap((k) => [u32(k.id), k.keyPair.secretKey]),
    );
  }

  /** Strict decoding of `encode` for `identity` (whose key re-signs the prekeys). */
  static decode(p: Primitives, identity: DeviceIdentity, bytes: Uint8Array): DevicePrekeys {
    const r = new ByteReader(bytes);
    expectVersion(r, PREKEY_RECORD_VERSION);
    const spk = (): SignedPrekey =>
      signedPrekeyFromSecret(p, identity, r.u32(), r.u32(), r.bytesN(X25519_KEY_BYTES));
    const kem = (): KemPrekey =>
      kemPrekeyFromSeed(p, identity, r.u32(), r.u32(), r.bytesN(MLKEM768_SEED_BYTES));
    const prekeys = new DevicePrekeys(p, identity, spk(), kem());
    prekeys.previousSignedPrekey = r.flag() ? spk() : null;
    prekeys.previousKemPrekey = r.flag() ? kem() : null;
    prekeys.nextOneTimeId = r.u32();
    const count = r.u16();
    for (let i = 0; i < count; i++) {
      const id = r.u32();
      const keyPair = x25519KeyPairFromSecret(p, r.bytesN(X25519_KEY_BYTES));
      if (prekeys.oneTime.has(id)) throw new CryptoError(CryptoErrorCode.BAD_ENCODING);
      prekeys.oneTime.set(id, { id, keyPair });
    }
    r.end();
    return prekeys;
  }

  /** The public identity these prekeys are signed by. */
  get publicIdentity(): PublicIdentity {
    return this.identity.publicIdentity;
  }
}
