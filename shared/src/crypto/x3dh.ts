/**
 * The handshake: X3DH with an ML-KEM-768 share, as Signal's PQXDH (revision 3) does.
 *
 * Initiator A, responder B. B published IK_B (Ed25519 + signed X25519), a signed X25519 prekey
 * SPK_B, a signed ML-KEM-768 prekey PQSPK_B and maybe a one-time prekey OPK_B. A verifies both
 * signatures (decodePrekeyBundle), draws an ephemeral EK_A and an encapsulation seed, and computes
 *
 *   DH1 = DH(IK_A, SPK_B)   DH2 = DH(EK_A, IK_B)   DH3 = DH(EK_A, SPK_B)   [DH4 = DH(EK_A, OPK_B)]
 *   (CT, SS) = ML-KEM-768.Encaps(PQSPK_B)
 *   SK = HKDF-SHA256(ikm = 0xFF×32 ‖ DH1 ‖ DH2 ‖ DH3 [‖ DH4] ‖ SS, salt = 0×32,
 *                    info = "passage/v1/pqxdh/x25519-sha256-mlkem768", 32)
 *   AD = SHA-256("passage/v1/pqxdh/ad" ‖ 0 ‖ IK_A ‖ IK_B ‖ kem id ‖ PQSPK_B)
 *
 * The 0xFF prefix is X3DH's: for X25519 it makes the input never collide with a valid
 * Ed25519-derived secret prefix (§2.2 of the X3DH spec). AD goes into every ratchet message's
 * associated data, so the session is bound to both identities (a forged sender cannot decrypt or
 * be decrypted) and to the exact KEM key used. Any all-zero DH output aborts (`low_order`).
 *
 * The initial message, carried until the responder answers (encoding strict, version first):
 *   0x02 ‖ IK_A (129, identity.ts) ‖ EK_A (32) ‖ spk id (4) ‖ kem id (4) ‖ has-opk (1)
 *        ‖ opk id (4, zero when has-opk = 0) ‖ CT (1088) ‖ tag (16)
 *   tag = HMAC-SHA256(HKDF-SHA256(DH1, salt = 0×32, "passage/v1/pqxdh/initial-auth", 32),
 *                     IK_B ‖ everything before the tag)[0..16]
 *
 * The early tag lets the responder refuse an initial message not made by the holder of IK_A
 * after one DH (DH1, which needs IK_A's secret or SPK_B's) instead of the whole handshake
 * (three or four DHs and the ML-KEM decapsulation): an outsider can name any peer the
 * responder holds, because identities are public, but cannot compute DH1. It covers every byte
 * of the message and the responder's identity, so no field can be changed and no message can be
 * redirected to another device. It is a filter against work, not the handshake's
 * authentication (SK and the first ratchet message are), and it does NOT prove:
 * - freshness: a replayed initial message carries a valid tag (the responder's replay memory,
 *   cipher.ts, refuses it);
 * - that the KEM ciphertext or the ephemeral key are well formed: the initiator itself can tag
 *   garbage, and then costs the whole handshake (limited per peer by the failure budget);
 * - anything about a new identity: a throwaway identity computes a valid tag for itself, so a
 *   first contact from a stranger still costs the whole handshake (bounded by the relay's
 *   first-contact admission, ADR 0011, and by the peer bound, limits.ts);
 * - anything once SPK_B's secret is known: its holder can compute DH1 for every initiator.
 * Version 1 (no tag) is refused with `unsupported_version`.
 */
import { CryptoError, CryptoErrorCode, requireBytes } from './errors.js';
import type { Primitives } from './primitives.js';
import {
  MLKEM768_CIPHERTEXT_BYTES,
  MLKEM768_ENCAPS_SEED_BYTES,
  SHA256_BYTES,
  X25519_KEY_BYTES,
} from './primitives.js';
import {
  ByteReader,
  concatBytes,
  expectVersion,
  labelBytes,
  labelPrefix,
  u32,
  u8,
} from './encoding.js';
import { EARLY_TAG_BYTES, KDF_LABELS, earlyTag, initialAuthKey } from './kdf.js';
import { constantTimeEqual } from './checks.js';
import type { DeviceIdentity } from './identity.js';
import type { VerifiedPrekeyBundle } from './bundle.js';
import type { KemPrekey, OneTimePrekeyPair, SignedPrekey } from './prekeys.js';
import { PUBLIC_IDENTITY_BYTES, PublicIdentity } from './identity.js';
import type { MlKemPublicKey, X25519KeyPair, X25519PublicKey } from './keys.js';
import { asX25519PublicKey, generateX25519KeyPair } from './keys.js';

/**
 * Version byte of the initial message. Version 2 added the early authentication tag; version 1
 * (no tag) is refused with `unsupported_version`.
 */
export const PQXDH_INITIAL_VERSION = 2;
/** Bytes of an encoded initial message before its tag: what the tag covers (with IK_B). */
const PQXDH_INITIAL_HEADER_BYTES =
  1 + PUBLIC_IDENTITY_BYTES + X25519_KEY_BYTES + 4 + 4 + 1 + 4 + MLKEM768_CIPHERTEXT_BYTES;
/** Bytes of an encoded initial message. */
export const PQXDH_INITIAL_BYTES = PQXDH_INITIAL_HEADER_BYTES + EARLY_TAG_BYTES;
/** The handshake's shared secret SK (the ratchet's first root key). */
export const SHARED_SECRET_BYTES = 32;

const F = new Uint8Array(X25519_KEY_BYTES).fill(0xff);
const ZERO_SALT = new Uint8Array(SHA256_BYTES);
const PQXDH_INFO = labelBytes(KDF_LABELS.pqxdh);
const AD_PREFIX = labelPrefix(KDF_LABELS.pqxdhAssociatedData);

/** The fields of an initial message that its tag covers. */
export interface PqxdhInitialFields {
  readonly initiator: PublicIdentity;
  readonly ephemeral: X25519PublicKey;
  readonly signedPrekeyId: number;
  readonly kemPrekeyId: number;
  readonly oneTimePrekeyId: number | null;
  readonly kemCiphertext: Uint8Array;
}

/** What the initiator sends so that the responder can compute the same secret. */
export interface PqxdhInitialMessage extends PqxdhInitialFields {
  /** The early authentication tag (`pqxdhInitialTag`); checked by `respondPqxdh`. */
  readonly tag: Uint8Array;
}

/** The encoding of everything before the tag (one value, one encoding: see `decodePqxdhInitial`). */
function encodeFields(m: PqxdhInitialFields): Uint8Array {
  return concatBytes(
    u8(PQXDH_INITIAL_VERSION),
    m.initiator.encode(),
    m.ephemeral,
    u32(m.signedPrekeyId),
    u32(m.kemPrekeyId),
    u8(m.oneTimePrekeyId === null ? 0 : 1),
    u32(m.oneTimePrekeyId ?? 0),
    m.kemCiphertext,
  );
}

export function encodePqxdhInitial(m: PqxdhInitialMessage): Uint8Array {
  requireBytes(m.tag, EARLY_TAG_BYTES);
  return concatBytes(encodeFields(m), m.tag);
}

/**
 * The early tag of an initial message with `fields` for `responder`, from DH1 = DH(IK_A, SPK_B)
 * (the initiator computes it with IK_A's secret, the responder with SPK_B's).
 */
export function pqxdhInitialTag(
  p: Primitives,
  dh1: Uint8Array,
  responder: PublicIdentity,
  fields: PqxdhInitialFields,
): Uint8Array {
  const key = initialAuthKey(p, dh1);
  const tag = earlyTag(p, key, concatBytes(responder.encode(), encodeFields(fields)));
  key.fill(0);
  return tag;
}

/**
 * Strict decoding; verifies the initiator identity's signature, unless its bytes equal those of
 * `verifiedInitiator` (an identity the caller has already verified). The tag is read, not
 * checked: it needs the responder's signed prekey (`respondPqxdh` checks it).
 */
export function decodePqxdhInitial(
  p: Primitives,
  bytes: Uint8Array,
  verifiedInitiator?: PublicIdentity,
): PqxdhInitialMessage {
  const r = new ByteReader(bytes);
  expectVersion(r, PQXDH_INITIAL_VERSION);
  const identityBytes = r.bytesN(PUBLIC_IDENTITY_BYTES);
  const ephemeral = asX25519PublicKey(r.bytesN(X25519_KEY_BYTES));
  const signedPrekeyId = r.u32();
  const kemPrekeyId = r.u32();
  const hasOneTime = r.flag();
  const oneTimeId = r.u32();
  // One value, one encoding: an absent one-time prekey must carry id 0. (The tag is computed over
  // the re-encoded fields, so this also keeps the tag's input equal to the bytes received.)
  if (!hasOneTime && oneTimeId !== 0) throw new CryptoError(CryptoErrorCode.BAD_ENCODING);
  const kemCiphertext = r.bytesN(MLKEM768_CIPHERTEXT_BYTES);
  const tag = r.bytesN(EARLY_TAG_BYTES);
  r.end();
  // The caller already knows who sent it: an initial message naming anyone else is refused
  // without verifying the identity it names (an Ed25519 verification an outsider could ask for).
  if (verifiedInitiator !== undefined && !verifiedInitiator.hasEncoding(identityBytes)) {
    throw new CryptoError(CryptoErrorCode.DECRYPT_FAILED, { unauthenticated: true });
  }
  return {
    initiator: verifiedInitiator ?? PublicIdentity.decode(p, identityBytes),
    ephemeral,
    signedPrekeyId,
    kemPrekeyId,
    oneTimePrekeyId: hasOneTime ? oneTimeId : null,
    kemCiphertext,
    tag,
  };
}

function deriveSecret(
  p: Primitives,
  dhs: readonly Uint8Array[],
  kemSecret: Uint8Array,
): Uint8Array {
  return p.hkdfSha256(
    concatBytes(F, ...dhs, kemSecret),
    ZERO_SALT,
    PQXDH_INFO,
    SHARED_SECRET_BYTES,
  );
}

function associatedData(
  p: Primitives,
  initiator: PublicIdentity,
  responder: PublicIdentity,
  kemPrekeyId: number,
  kemPublicKey: MlKemPublicKey,
): Uint8Array {
  return p.sha256(
    concatBytes(AD_PREFIX, initiator.encode(), responder.encode(), u32(kemPrekeyId), kemPublicKey),
  );
}

/** The result of either side of the handshake. */
export interface PqxdhResult {
  readonly sharedSecret: Uint8Array;
  readonly associatedData: Uint8Array;
}

/**
 * The initiator's side. `bundle` must come from `decodePrekeyBundle` (signatures verified).
 * Throws `low_order` if any DH is all zero.
 */
export function initiatePqxdh(
  p: Primitives,
  me: DeviceIdentity,
  bundle: VerifiedPrekeyBundle,
): PqxdhResult & {
  readonly initial: PqxdhInitialMessage;
  readonly remoteSignedPrekey: X25519PublicKey;
} {
  const ephemeral: X25519KeyPair = generateX25519KeyPair(p);
  const spk = bundle.signedPrekey.publicKey;
  const dhs = [
    p.x25519(me.dh.secretKey, spk),
    p.x25519(ephemeral.secretKey, bundle.identity.dhKey),
    p.x25519(ephemeral.secretKey, spk),
  ];
  if (bundle.oneTimePrekey !== null)
    dhs.push(p.x25519(ephemeral.secretKey, bundle.oneTimePrekey.publicKey));
  const { ciphertext, sharedSecret: kemSecret } = p.mlkem768Encapsulate(
    bundle.kemPrekey.publicKey,
    p.random.bytes(MLKEM768_ENCAPS_SEED_BYTES),
  );
  const sharedSecret = deriveSecret(p, dhs, kemSecret);
  const fields: PqxdhInitialFields = {
    initiator: me.publicIdentity,
    ephemeral: ephemeral.publicKey,
    signedPrekeyId: bundle.signedPrekey.id,
    kemPrekeyId: bundle.kemPrekey.id,
    oneTimePrekeyId: bundle.oneTimePrekey?.id ?? null,
    kemCiphertext: ciphertext,
  };
  const tag = pqxdhInitialTag(p, dhs[0]!, bundle.identity, fields);
  // Best effort: the ephemeral secret and the DH outputs are not needed again.
  ephemeral.secretKey.fill(0);
  for (const dh of dhs) dh.fill(0);
  kemSecret.fill(0);
  return {
    sharedSecret,
    associatedData: associatedData(
      p,
      me.publicIdentity,
      bundle.identity,
      bundle.kemPrekey.id,
      bundle.kemPrekey.publicKey,
    ),
    remoteSignedPrekey: spk,
    initial: { ...fields, tag },
  };
}

/** The responder's secrets, looked up by the ids the initial message names. */
export interface PrekeyLookup {
  findSignedPrekey(id: number): SignedPrekey | undefined;
  findKemPrekey(id: number): KemPrekey | undefined;
  findOneTimePrekey(id: number): OneTimePrekeyPair | undefined;
}

/**
 * The responder's side. Throws `unknown_prekey` when a named prekey is not (or no longer) held,
 * `low_order` on an all-zero DH, and `decrypt_failed` when the early tag does not verify: that
 * is checked right after DH1, before the other DHs and the KEM decapsulation, so a forgery
 * costs one DH. A wrong KEM ciphertext under a valid tag (only the initiator can make one) is
 * not detected here (ML-KEM's implicit rejection yields an unrelated secret): the first ratchet
 * message then fails to authenticate, and the caller must not consume the one-time prekey until
 * it has.
 */
export function respondPqxdh(
  p: Primitives,
  me: DeviceIdentity,
  prekeys: PrekeyLookup,
  initial: PqxdhInitialMessage,
): PqxdhResult & { readonly signedPrekey: X25519KeyPair } {
  const spk = prekeys.findSignedPrekey(initial.signedPrekeyId);
  const kem = prekeys.findKemPrekey(initial.kemPrekeyId);
  const opk =
    initial.oneTimePrekeyId === null ? null : prekeys.findOneTimePrekey(initial.oneTimePrekeyId);
  if (spk === undefined || kem === undefined || opk === undefined) {
    throw new CryptoError(CryptoErrorCode.UNKNOWN_PREKEY);
  }
  const dh1 = p.x25519(spk.keyPair.secretKey, initial.initiator.dhKey);
  if (!constantTimeEqual(initial.tag, pqxdhInitialTag(p, dh1, me.publicIdentity, initial))) {
    dh1.fill(0);
    throw new CryptoError(CryptoErrorCode.DECRYPT_FAILED, { unauthenticated: true });
  }
  const dhs = [
    dh1,
    p.x25519(me.dh.secretKey, initial.ephemeral),
    p.x25519(spk.keyPair.secretKey, initial.ephemeral),
  ];
  if (opk !== null) dhs.push(p.x25519(opk.keyPair.secretKey, initial.ephemeral));
  const kemSecret = p.mlkem768Decapsulate(kem.keyPair.secretKey, initial.kemCiphertext);
  const sharedSecret = deriveSecret(p, dhs, kemSecret);
  for (const dh of dhs) dh.fill(0);
  kemSecret.fill(0);
  return {
    sharedSecret,
    associatedData: associatedData(p, initial.initiator, me.publicIdentity, kem.id, kem.publicKey),
    signedPrekey: spk.keyPair,
  };
}
