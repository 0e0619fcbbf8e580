/**
 * The published prekeys: the parts a device publishes (`prekeys.publish`) and the bundle another
 * device fetches (`prekeys.bundle`), as the versioned byte encodings the relay's prekey directory
 * stores as opaque parts (`identity`, `signedPrekey`, one-time `{id, key}`; see
 * protocol/frames.ts `PrekeysPublishFrame`). Encodings (integers big-endian; every decoder is
 * strict: unknown version, wrong length and trailing bytes are rejected before any signature is
 * checked):
 *   identity      = see identity.ts                                                     129 bytes
 *   signedPrekey  = 0x01 ‖ spk id (4) ‖ created (4) ‖ X25519 pk (32) ‖ sig (64)
 *                        ‖ kem id (4) ‖ created (4) ‖ ML-KEM-768 pk (1184) ‖ sig (64)  1361 bytes
 *   one-time key  = 0x01 ‖ X25519 pk (32)                                                33 bytes
 */
import { fromBase64url, toBase64url } from '../protocol/base64url.js';
import type { ClientFrameOf, FrameOf } from '../protocol/frames.js';
import { CryptoError, CryptoErrorCode } from './errors.js';
import type { Primitives } from './primitives.js';
import {
  ED25519_SIGNATURE_BYTES,
  MLKEM768_PUBLIC_KEY_BYTES,
  X25519_KEY_BYTES,
} from './primitives.js';
import { ByteReader, concatBytes, expectVersion, u32, u8 } from './encoding.js';
import { PublicIdentity } from './identity.js';
import type { X25519PublicKey } from './keys.js';
import { asMlKemPublicKey, asX25519PublicKey } from './keys.js';
import type { KemPrekeyPublic, OneTimePrekeyPair, SignedPrekeyPublic } from './prekeys.js';
import {
  KEM_PREKEY_SIG_PREFIX,
  SIGNED_PREKEY_SIG_PREFIX,
  checkPrekeyId,
  prekeySignedMessage,
} from './prekeys.js';

/** Version byte of the published prekey parts. */
export const BUNDLE_ENCODING_VERSION = 1;
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

/** The `signedPrekey` part: the signed X25519 prekey and the signed ML-KEM-768 prekey. */
export function encodeSignedPrekeyPart(spk: SignedPrekeyPublic, kem: KemPrekeyPublic): Uint8Array {
  return concatBytes(
    u8(BUNDLE_ENCODING_VERSION),
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
export function encodeOneTimePrekey(prekey: OneTimePrekeyPair): Uint8Array {
  return concatBytes(u8(BUNDLE_ENCODING_VERSION), prekey.keyPair.publicKey);
}

/** The parts a device publishes (the caller base64url-encodes them into `prekeys.publish`). */
export function encodePrekeyPublication(
  identity: PublicIdentity,
  spk: SignedPrekeyPublic,
  kem: KemPrekeyPublic,
  oneTime: readonly OneTimePrekeyPair[],
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

/**
 * The parts to publish now: identity, current signed prekeys, the given one-time prekeys.
 * Throws `internal` for a store without prekeys (a caller's bug: it has nothing to publish).
 */
export function publicationOf(
  prekeys: {
    readonly publicIdentity: PublicIdentity;
    readonly currentSignedPrekey: SignedPrekeyPublic | undefined;
    readonly currentKemPrekey: KemPrekeyPublic | undefined;
  },
  oneTime: readonly OneTimePrekeyPair[],
): ReturnType<typeof encodePrekeyPublication> {
  const { currentSignedPrekey: spk, currentKemPrekey: kem } = prekeys;
  if (spk === undefined || kem === undefined) throw new CryptoError(CryptoErrorCode.INTERNAL);
  return encodePrekeyPublication(prekeys.publicIdentity, spk, kem, oneTime);
}

/** A fetched bundle whose signatures have been verified. */
export interface VerifiedPrekeyBundle {
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
): VerifiedPrekeyBundle {
  const identity = PublicIdentity.decode(p, parts.identity);

  const r = new ByteReader(parts.signedPrekey);
  expectVersion(r, BUNDLE_ENCODING_VERSION);
  const spkId = r.u32();
  const spkCreated = r.u32();
  const spkPublic = asX25519PublicKey(r.bytesN(X25519_KEY_BYTES));
  const spkSignature = r.bytesN(ED25519_SIGNATURE_BYTES);
  const kemId = r.u32();
  const kemCreated = r.u32();
  const kemPublic = asMlKemPublicKey(r.bytesN(MLKEM768_PUBLIC_KEY_BYTES));
  const kemSignature = r.bytesN(ED25519_SIGNATURE_BYTES);
  r.end();

  let oneTimePrekey: VerifiedPrekeyBundle['oneTimePrekey'] = null;
  if (parts.oneTime !== null) {
    checkPrekeyId(parts.oneTime.id);
    const o = new ByteReader(parts.oneTime.key);
    expectVersion(o, BUNDLE_ENCODING_VERSION);
    const publicKey = asX25519PublicKey(o.bytesN(X25519_KEY_BYTES));
    o.end();
    oneTimePrekey = { id: parts.oneTime.id, publicKey };
  }

  const signer = identity.signingKey;
  const spkOk = p.ed25519Verify(
    signer,
    prekeySignedMessage(SIGNED_PREKEY_SIG_PREFIX, signer, spkId, spkCreated, spkPublic),
    spkSignature,
  );
  const kemOk = p.ed25519Verify(
    signer,
    prekeySignedMessage(KEM_PREKEY_SIG_PREFIX, signer, kemId, kemCreated, kemPublic),
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
export type WirePrekeyBundle = NonNullable<FrameOf<'prekeys.bundle'>['bundle']>;

/**
 * Decodes and verifies a bundle straight from a parsed `prekeys.bundle` frame. Throws
 * `bad_encoding` for a string that is not canonical base64url, then as `decodePrekeyBundle`.
 */
export function decodeWirePrekeyBundle(
  p: Primitives,
  wire: WirePrekeyBundle,
): VerifiedPrekeyBundle {
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
export function toWirePublication(
  publication: ReturnType<typeof encodePrekeyPublication>,
): Pick<ClientFrameOf<'prekeys.publish'>, 'identity' | 'signedPrekey' | 'oneTime'> {
  return {
    identity: toBase64url(publication.identity),
    signedPrekey: toBase64url(publication.signedPrekey),
    oneTime: publication.oneTime.map((k) => ({ id: k.id, key: toBase64url(k.key) })),
  };
}
