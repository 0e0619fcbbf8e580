/**
 * Device identities and prekeys, and the versioned byte encodings the relay's prekey directory
 * stores as opaque parts (`identity`, `signedPrekey`, one-time `{id, key}`; see
 * protocol/frames.ts `PrekeysPublishFrame`).
 *
 * A device has an Ed25519 signing key and an X25519 key signed by it (the X25519 key does the
 * Diffie-Hellman work of the handshake and of sealed envelopes; the signature ties it to the
 * signing key, which is what mailboxes, rosters and safety numbers name). It publishes:
 * - a signed X25519 prekey, rotated (`SIGNED_PREKEY_ROTATION_SECONDS`), with an id and creation
 *   time;
 * - a signed ML-KEM-768 prekey (the "last resort" PQ prekey of Signal's PQXDH), rotated with it;
 * - one-time X25519 prekeys, unsigned as in X3DH (the relay hands each out once).
 *
 * Every signature covers a distinct label, the signer's key, the prekey's id and time, and the
 * key itself, so a signature over one key type can never be presented as one over another
 * (the KEM/DH key-confusion that the PQXDH analysis by Bhargavan et al. warned about).
 *
 * Encodings (integers big-endian; every decoder is strict: unknown version, wrong length and
 * trailing bytes are rejected before any signature is checked):
 *   identity      = 0x01 ‖ Ed25519 pk (32) ‖ X25519 pk (32) ‖ sig (64)                  129 bytes
 *   signedPrekey  = 0x01 ‖ spk id (4) ‖ created (4) ‖ X25519 pk (32) ‖ sig (64)
 *                        ‖ kem id (4) ‖ created (4) ‖ ML-KEM-768 pk (1184) ‖ sig (64)  1361 bytes
 *   one-time key  = 0x01 ‖ X25519 pk (32)                                                33 bytes
 */
import { fromBase64url, toBase64url } from '../protocol/base64url.js';
import { CryptoError, CryptoErrorCode } from './errors.js';
import type { Primitives } from './primitives.js';
import {
  ED25519_PUBLIC_KEY_BYTES,
  ED25519_SEED_BYTES,
  ED25519_SIGNATURE_BYTES,
  MLKEM768_PUBLIC_KEY_BYTES,
  MLKEM768_SEED_BYTES,
  X25519_KEY_BYTES,
} from './primitives.js';
import {
  ByteReader,
  bytesEqual,
  concatBytes,
  expectVersion,
  labelPrefix,
  toHex,
  u16,
  u32,
  u8,
} from './encoding.js';
import { KDF_LABELS } from './kdf.js';
import type {
  Ed25519PublicKey,
  Ed25519Seed,
  MlKemKeyPair,
  MlKemPublicKey,
  X25519KeyPair,
  X25519PublicKey,
} from './keys.js';
import {
  asEd25519PublicKey,
  asEd25519Seed,
  asMlKemPublicKey,
  asX25519PublicKey,
  generateX25519KeyPair,
  mlKemKeyPairFromSeed,
  x25519KeyPairFromSecret,
} from './keys.js';

/** Version byte of every encoding in this module. */
export const IDENTITY_ENCODING_VERSION = 1;
export const PUBLIC_IDENTITY_BYTES =
  1 + ED25519_PUBLIC_KEY_BYTES + X25519_KEY_BYTES + ED25519_SIGNATURE_BYTES;
export const SIGNED_PREKEY_PART_BYTES =
  1 +
  4 +
  4 +
  X25519_KEY_BYTES +
  ED25519_SIGNATURE_BYTES +
  4 +
  4 +
  MLKEM768_PUBLIC_KEY_BYTES +
  ED25519_SIGNATURE_BYTES;
export const ONE_TIME_PREKEY_BYTES = 1 + X25519_KEY_BYTES;
/** A signed prekey older than this should be replaced (Signal rotates weekly to monthly). */
export const SIGNED_PREKEY_ROTATION_SECONDS = 7 * 24 * 60 * 60;
/** Largest prekey id (the wire protocol's `MAX_PREKEY_ID`). */
export const MAX_PREKEY_ID = 0xffff_ffff;

const IDENTITY_SIG_PREFIX = labelPrefix(KDF_LABELS.identityKeySignature);
const SPK_SIG_PREFIX = labelPrefix(KDF_LABELS.signedPrekeySignature);
const KEM_SIG_PREFIX = labelPrefix(KDF_LABELS.kemPrekeySignature);

/** A device's public identity: what a peer pins, what sealed envelopes name as the sender. */
export class PublicIdentity {
  /** The encoding, computed once: receivers compare incoming identities against it. */
  private readonly encoded: Uint8Array;

  private constructor(
    readonly signingKey: Ed25519PublicKey,
    readonly dhKey: X25519PublicKey,
    readonly signature: Uint8Array,
  ) {
    this.encoded = concatBytes(u8(IDENTITY_ENCODING_VERSION), signingKey, dhKey, signature);
  }

  /**
   * The `id` that an encoded identity would have, without verifying anything: only for looking
   * up a peer already verified, never to trust the bytes. Null when the bytes cannot be one.
   */
  static idOfEncoded(bytes: Uint8Array): string | null {
    if (bytes.length !== PUBLIC_IDENTITY_BYTES || bytes[0] !== IDENTITY_ENCODING_VERSION) {
      return null;
    }
    return toHex(bytes.subarray(1, 1 + ED25519_PUBLIC_KEY_BYTES));
  }

  /** True when `bytes` is exactly this (verified) identity's encoding. */
  hasEncoding(bytes: Uint8Array): boolean {
    return bytesEqual(this.encoded, bytes);
  }

  /** Decodes and verifies (the X25519 key must be signed by the Ed25519 key). */
  static decode(p: Primitives, bytes: Uint8Array): PublicIdentity {
    const r = new ByteReader(bytes);
    expectVersion(r, IDENTITY_ENCODING_VERSION);
    const signingKey = asEd25519PublicKey(r.bytesN(ED25519_PUBLIC_KEY_BYTES));
    const dhKey = asX25519PublicKey(r.bytesN(X25519_KEY_BYTES));
    const signature = r.bytesN(ED25519_SIGNATURE_BYTES);
    r.end();
    if (!p.ed25519Verify(signingKey, identitySignedMessage(signingKey, dhKey), signature)) {
      throw new CryptoError(CryptoErrorCode.BAD_SIGNATURE);
    }
    return new PublicIdentity(signingKey, dhKey, signature);
  }

  /** @internal Used by `DeviceIdentity`, which has just made the signature. */
  static fromTrusted(
    signingKey: Ed25519PublicKey,
    dhKey: X25519PublicKey,
    signature: Uint8Array,
  ): PublicIdentity {
    return new PublicIdentity(signingKey, dhKey, signature);
  }

  /** The versioned encoding (129 bytes). */
  encode(): Uint8Array {
    return this.encoded.slice();
  }

  /** A stable map key for this device (hex of the signing key; not secret, never logged). */
  get id(): string {
    return toHex(this.signingKey);
  }

  equals(other: PublicIdentity): boolean {
    return bytesEqual(this.signingKey, other.signingKey) && bytesEqual(this.dhKey, other.dhKey);
  }
}

function identitySignedMessage(signingKey: Uint8Array, dhKey: Uint8Array): Uint8Array {
  return concatBytes(IDENTITY_SIG_PREFIX, signingKey, dhKey);
}

/** A device's secret identity. */
export class DeviceIdentity {
  private constructor(
    private readonly p: Primitives,
    readonly signingSeed: Ed25519Seed,
    readonly dh: X25519KeyPair,
    readonly publicIdentity: PublicIdentity,
  ) {}

  /** From an Ed25519 seed and an X25519 secret (a codename's subkeys, or stored secrets). */
  static fromSeeds(p: Primitives, signingSeed: Uint8Array, dhSecret: Uint8Array): DeviceIdentity {
    const seed = asEd25519Seed(signingSeed.slice());
    const dh = x25519KeyPairFromSecret(p, dhSecret.slice());
    const signingKey = asEd25519PublicKey(p.ed25519KeyPairFromSeed(seed).publicKey);
    const signature = p.ed25519Sign(seed, identitySignedMessage(signingKey, dh.publicKey));
    return new DeviceIdentity(
      p,
      seed,
      dh,
      PublicIdentity.fromTrusted(signingKey, dh.publicKey, signature),
    );
  }

  /** A fresh identity from the backend's random source (coordinator devices). */
  static generate(p: Primitives): DeviceIdentity {
    return DeviceIdentity.fromSeeds(
      p,
      p.random.bytes(ED25519_SEED_BYTES),
      p.random.bytes(X25519_KEY_BYTES),
    );
  }

  sign(message: Uint8Array): Uint8Array {
    return this.p.ed25519Sign(this.signingSeed, message);
  }

  /** The secrets, `01 ‖ Ed25519 seed (32) ‖ X25519 secret (32)`; store only encrypted. */
  encodeSecret(): Uint8Array {
    return concatBytes(u8(IDENTITY_ENCODING_VERSION), this.signingSeed, this.dh.secretKey);
  }

  /** Strict decoding of `encodeSecret`. */
  static decodeSecret(p: Primitives, bytes: Uint8Array): DeviceIdentity {
    const r = new ByteReader(bytes);
    expectVersion(r, IDENTITY_ENCODING_VERSION);
    const seed = r.bytesN(ED25519_SEED_BYTES);
    const secret = r.bytesN(X25519_KEY_BYTES);
    r.end();
    return DeviceIdentity.fromSeeds(p, seed, secret);
  }
}

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

export interface OneTimePrekey {
  readonly id: number;
  readonly keyPair: X25519KeyPair;
}

function prekeySignedMessage(
  prefix: Uint8Array,
  signingKey: Uint8Array,
  id: number,
  createdAtSeconds: number,
  publicKey: Uint8Array,
): Uint8Array {
  return concatBytes(prefix, signingKey, u32(id), u32(createdAtSeconds), publicKey);
}

function checkId(id: number): void {
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
  checkId(id);
  checkId(createdAtSeconds);
  const keyPair = x25519KeyPairFromSecret(p, secret);
  // Ed25519 signatures are deterministic: restoring re-creates the published signature.
  const signature = identity.sign(
    prekeySignedMessage(
      SPK_SIG_PREFIX,
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
  checkId(id);
  checkId(createdAtSeconds);
  if (seed.length !== MLKEM768_SEED_BYTES) throw new CryptoError(CryptoErrorCode.BAD_LENGTH);
  const keyPair = mlKemKeyPairFromSeed(p, seed);
  const signature = identity.sign(
    prekeySignedMessage(
      KEM_SIG_PREFIX,
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
): OneTimePrekey[] {
  const out: OneTimePrekey[] = [];
  for (let i = 0; i < count; i++) {
    checkId(firstId + i);
    out.push({ id: firstId + i, keyPair: generateX25519KeyPair(p) });
  }
  return out;
}

/** True when the signed prekey is due for rotation at `nowSeconds`. */
export function signedPrekeyNeedsRotation(spk: SignedPrekeyPublic, nowSeconds: number): boolean {
  return nowSeconds - spk.createdAtSeconds >= SIGNED_PREKEY_ROTATION_SECONDS;
}

/** The `signedPrekey` part: the signed X25519 prekey and the signed ML-KEM-768 prekey. */
export function encodeSignedPrekeyPart(spk: SignedPrekeyPublic, kem: KemPrekeyPublic): Uint8Array {
  return concatBytes(
    u8(IDENTITY_ENCODING_VERSION),
    u32(spk.id),
    u32(spk.createdAtSeconds),
    spk.publicKey,
    spk.signature,
    u32(kem.id),
    u32(kem.createdAtSeconds),
    kem.publicKey,
    kem.signature,
  );
}

/** The `key` of a one-time prekey `{id, key}` entry. */
export function encodeOneTimePrekey(prekey: OneTimePrekey): Uint8Array {
  return concatBytes(u8(IDENTITY_ENCODING_VERSION), prekey.keyPair.publicKey);
}

/** The parts a device publishes (the caller base64url-encodes them into `prekeys.publish`). */
export function encodePrekeyPublication(
  identity: PublicIdentity,
  spk: SignedPrekeyPublic,
  kem: KemPrekeyPublic,
  oneTime: readonly OneTimePrekey[],
): {
  readonly identity: Uint8Array;
  readonly signedPrekey: Uint8Array;
  readonly oneTime: readonly { readonly id: number; readonly key: Uint8Array }[];
} {
  return {
    identity: identity.encode(),
    signedPrekey: encodeSignedPrekeyPart(spk, kem),
    oneTime: oneTime.map((k) => ({ id: k.id, key: encodeOneTimePrekey(k) })),
  };
}

/** A fetched bundle whose signatures have been verified. */
export interface PrekeyBundle {
  readonly identity: PublicIdentity;
  readonly signedPrekey: SignedPrekeyPublic;
  readonly kemPrekey: KemPrekeyPublic;
  readonly oneTimePrekey: { readonly id: number; readonly publicKey: X25519PublicKey } | null;
}

/**
 * Decodes and verifies a fetched bundle (the decoded bytes of `prekeys.bundle`). Throws
 * `bad_encoding`/`bad_length`/`unsupported_version` for malformed parts and `bad_signature` when
 * the identity, the signed prekey or the KEM prekey is not signed by the identity key.
 */
export function decodePrekeyBundle(
  p: Primitives,
  parts: {
    readonly identity: Uint8Array;
    readonly signedPrekey: Uint8Array;
    readonly oneTime: { readonly id: number; readonly key: Uint8Array } | null;
  },
): PrekeyBundle {
  const identity = PublicIdentity.decode(p, parts.identity);

  const r = new ByteReader(parts.signedPrekey);
  expectVersion(r, IDENTITY_ENCODING_VERSION);
  const spkId = r.u32();
  const spkCreated = r.u32();
  const spkPublic = asX25519PublicKey(r.bytesN(X25519_KEY_BYTES));
  const spkSignature = r.bytesN(ED25519_SIGNATURE_BYTES);
  const kemId = r.u32();
  const kemCreated = r.u32();
  const kemPublic = asMlKemPublicKey(r.bytesN(MLKEM768_PUBLIC_KEY_BYTES));
  const kemSignature = r.bytesN(ED25519_SIGNATURE_BYTES);
  r.end();

  let oneTimePrekey: PrekeyBundle['oneTimePrekey'] = null;
  if (parts.oneTime !== null) {
    checkId(parts.oneTime.id);
    const o = new ByteReader(parts.oneTime.key);
    expectVersion(o, IDENTITY_ENCODING_VERSION);
    const publicKey = asX25519PublicKey(o.bytesN(X25519_KEY_BYTES));
    o.end();
    oneTimePrekey = { id: parts.oneTime.id, publicKey };
  }

  const signer = identity.signingKey;
  const spkOk = p.ed25519Verify(
    signer,
    prekeySignedMessage(SPK_SIG_PREFIX, signer, spkId, spkCreated, spkPublic),
    spkSignature,
  );
  const kemOk = p.ed25519Verify(
    signer,
    prekeySignedMessage(KEM_SIG_PREFIX, signer, kemId, kemCreated, kemPublic),
    kemSignature,
  );
  if (!spkOk || !kemOk) throw new CryptoError(CryptoErrorCode.BAD_SIGNATURE);

  return {
    identity,
    signedPrekey: {
      id: spkId,
      createdAtSeconds: spkCreated,
      publicKey: spkPublic,
      signature: spkSignature,
    },
    kemPrekey: {
      id: kemId,
      createdAtSeconds: kemCreated,
      publicKey: kemPublic,
      signature: kemSignature,
    },
    oneTimePrekey,
  };
}

/** A prekey bundle as the `prekeys.bundle` frame carries it (base64url strings). */
export interface WirePrekeyBundle {
  readonly identity: string;
  readonly signedPrekey: string;
  readonly oneTime: { readonly id: number; readonly key: string } | null;
}

/**
 * Decodes and verifies a bundle straight from a parsed `prekeys.bundle` frame. Throws
 * `bad_encoding` for a string that is not canonical base64url, then as `decodePrekeyBundle`.
 */
export function decodeWirePrekeyBundle(p: Primitives, wire: WirePrekeyBundle): PrekeyBundle {
  const bytes = (s: string): Uint8Array => {
    const b = fromBase64url(s);
    if (b === undefined) throw new CryptoError(CryptoErrorCode.BAD_ENCODING);
    return b;
  };
  return decodePrekeyBundle(p, {
    identity: bytes(wire.identity),
    signedPrekey: bytes(wire.signedPrekey),
    oneTime: wire.oneTime === null ? null : { id: wire.oneTime.id, key: bytes(wire.oneTime.key) },
  });
}

/** A publication as the `prekeys.publish` frame carries it (base64url strings). */
export function toWirePublication(publication: ReturnType<typeof encodePrekeyPublication>): {
  readonly identity: string;
  readonly signedPrekey: string;
  readonly oneTime: { readonly id: number; readonly key: string }[];
} {
  return {
    identity: toBase64url(publication.identity),
    signedPrekey: toBase64url(publication.signedPrekey),
    oneTime: publication.oneTime.map((k) => ({ id: k.id, key: toBase64url(k.key) })),
  };
}

/**
 * The secret side of what a device has published: the current signed prekeys, the previous ones
 * (kept one rotation longer so that an initiator who fetched the old bundle still gets through),
 * and the unused one-time prekeys. Lookups by id serve the responder's handshake.
 */
export class DevicePrekeys {
  private previousSignedPrekey: SignedPrekey | null = null;
  private previousKemPrekey: KemPrekey | null = null;
  private readonly oneTime = new Map<number, OneTimePrekey>();
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
  addOneTimePrekeys(count: number): OneTimePrekey[] {
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

  findOneTimePrekey(id: number): OneTimePrekey | undefined {
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
      u8(IDENTITY_ENCODING_VERSION),
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
    expectVersion(r, IDENTITY_ENCODING_VERSION);
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

  /** The parts to publish now (identity, current signed prekeys, the given one-time prekeys). */
  publication(oneTime: readonly OneTimePrekey[]): ReturnType<typeof encodePrekeyPublication> {
    return encodePrekeyPublication(
      this.identity.publicIdentity,
      this.signedPrekey,
      this.kemPrekey,
      oneTime,
    );
  }
}
