/**
 * Sealed envelopes: the only bytes the relay sees. Like Signal's sealed sender, an envelope is
 * encrypted to the recipient DEVICE with a fresh ephemeral X25519 key against the device's
 * identity X25519 key, so the relay learns neither the sender nor the ratchet header, and every
 * envelope looks alike apart from its size bucket.
 *
 *   envelope = 0x01 ‖ E (32) ‖ XChaCha20-Poly1305(k, n, padded inner, ad = 0x01 ‖ E ‖ R)
 *   k ‖ n    = HKDF-SHA256(ikm = DH(e, R), salt = E ‖ R, info = "passage/v1/sealed-envelope", 56)
 *   inner    = kind (1) ‖ sender identity (129) ‖ [PQXDH initial (1279) when kind = 2]
 *              ‖ ratchet message
 *
 * where E is the ephemeral public key and R the recipient's identity X25519 key. The key and
 * nonce come from a DH with a fresh ephemeral, so they never repeat and no nonce is drawn.
 *
 * The sender identity inside is not trusted on its own: it selects the session, and the session's
 * associated data (both identities, from the handshake) must authenticate the ratchet message.
 * A forged sender therefore fails to decrypt; for an initial message the named identity must
 * also be the handshake's initiator, whose X25519 secret DH1 needs. See `fanout.ts`.
 *
 * Sizes: the inner bytes are padded (padding.ts) so that the whole envelope is one of
 * `ENVELOPE_SIZES_BYTES`; the largest is `MAX_ENVELOPE_BYTES`, the relay's limit.
 */
import { MAX_ENVELOPE_BYTES } from '../protocol/limits.js';
import { CryptoError, CryptoErrorCode } from './errors.js';
import type { Primitives } from './primitives.js';
import {
  POLY1305_TAG_BYTES,
  X25519_KEY_BYTES,
  XCHACHA20POLY1305_KEY_BYTES,
  XCHACHA20POLY1305_NONCE_BYTES,
} from './primitives.js';
import { ByteReader, concatBytes, expectVersion, labelBytes, u8 } from './encoding.js';
import { KDF_LABELS } from './kdf.js';
import type { DeviceIdentity } from './identity.js';
import { PUBLIC_IDENTITY_BYTES, PublicIdentity } from './identity.js';
import type { X25519PublicKey } from './keys.js';
import { asX25519PublicKey, generateX25519KeyPair } from './keys.js';
import { pad, unpad } from './padding.js';
import { PQXDH_INITIAL_BYTES } from './x3dh.js';

export const ENVELOPE_VERSION = 1;
/** Bytes an envelope adds around its padded inner bytes: version, ephemeral key, tag. */
export const ENVELOPE_OVERHEAD_BYTES = 1 + X25519_KEY_BYTES + POLY1305_TAG_BYTES;
/**
 * The only sizes an envelope can have, in bytes. Chosen against the ratchet's plaintext buckets
 * (256 B, 1 KiB, 4 KiB, 16 KiB, 60 KiB): a short message, with or without the 1.2 KiB handshake,
 * fits 2 KiB; each larger plaintext bucket, with the handshake, fits the next envelope size.
 */
export const ENVELOPE_SIZES_BYTES: readonly number[] = Object.freeze([
  2_048,
  4_096,
  8_192,
  20_480,
  MAX_ENVELOPE_BYTES,
]);
const INNER_BUCKETS = ENVELOPE_SIZES_BYTES.map((size) => size - ENVELOPE_OVERHEAD_BYTES);

/** Kind byte of the inner content. */
export const EnvelopeKind = {
  /** A ratchet message in an existing session. */
  MESSAGE: 1,
  /** A PQXDH initial message followed by the session's ratchet message. */
  PREKEY_MESSAGE: 2,
} as const;

/** What an envelope carries once opened (the sender identity is verified but not yet trusted). */
export interface EnvelopeContent {
  readonly sender: PublicIdentity;
  /** The encoded PQXDH initial message, for a prekey message. */
  readonly initial: Uint8Array | null;
  readonly message: Uint8Array;
}

const SEALED_INFO = labelBytes(KDF_LABELS.sealedEnvelope);

function envelopeKeys(
  p: Primitives,
  dh: Uint8Array,
  ephemeral: X25519PublicKey,
  recipient: X25519PublicKey,
): { key: Uint8Array; nonce: Uint8Array; ad: Uint8Array } {
  const okm = p.hkdfSha256(
    dh,
    concatBytes(ephemeral, recipient),
    SEALED_INFO,
    XCHACHA20POLY1305_KEY_BYTES + XCHACHA20POLY1305_NONCE_BYTES,
  );
  return {
    key: okm.slice(0, XCHACHA20POLY1305_KEY_BYTES),
    nonce: okm.slice(XCHACHA20POLY1305_KEY_BYTES),
    ad: concatBytes(u8(ENVELOPE_VERSION), ephemeral, recipient),
  };
}

/**
 * Seals content to a recipient device. Throws `limit_exceeded` when the content does not fit the
 * largest envelope.
 */
export function sealEnvelope(
  p: Primitives,
  recipient: PublicIdentity,
  content: EnvelopeContent,
): Uint8Array {
  if (content.initial !== null && content.initial.length !== PQXDH_INITIAL_BYTES) {
    throw new CryptoError(CryptoErrorCode.BAD_LENGTH);
  }
  const inner = concatBytes(
    u8(content.initial === null ? EnvelopeKind.MESSAGE : EnvelopeKind.PREKEY_MESSAGE),
    content.sender.encode(),
    content.initial ?? new Uint8Array(0),
    content.message,
  );
  const ephemeral = generateX25519KeyPair(p);
  const dh = p.x25519(ephemeral.secretKey, recipient.dhKey);
  // Best effort (a JavaScript engine may have copied them): the ephemeral secret and the DH
  // output are not needed after this envelope.
  ephemeral.secretKey.fill(0);
  const { key, nonce, ad } = envelopeKeys(p, dh, ephemeral.publicKey, recipient.dhKey);
  dh.fill(0);
  const sealed = p.xchacha20poly1305Seal(key, nonce, pad(inner, INNER_BUCKETS), ad);
  key.fill(0);
  return concatBytes(u8(ENVELOPE_VERSION), ephemeral.publicKey, sealed);
}

/** An opened envelope whose sender identity has not been decoded or verified yet. */
export interface OpenedEnvelope {
  /** The sender's encoded identity (129 bytes, see identity.ts). */
  readonly senderBytes: Uint8Array;
  readonly initial: Uint8Array | null;
  readonly message: Uint8Array;
}

/**
 * Opens an envelope addressed to `me` without verifying the sender identity's self-signature,
 * so that a receiver can compare it byte for byte with a peer it already verified (an Ed25519
 * verification costs about 0.1 ms in WASM and 1 ms in JavaScript, more than the rest of a
 * message). Throws `unsupported_version`, `bad_encoding` (not an envelope size, or malformed
 * inside), `low_order` or `decrypt_failed`.
 */
export function openEnvelopeUnverified(
  p: Primitives,
  me: DeviceIdentity,
  envelope: Uint8Array,
): OpenedEnvelope {
  const r = new ByteReader(envelope);
  expectVersion(r, ENVELOPE_VERSION);
  if (!ENVELOPE_SIZES_BYTES.includes(envelope.length)) {
    throw new CryptoError(CryptoErrorCode.BAD_ENCODING);
  }
  const ephemeral = asX25519PublicKey(r.bytesN(X25519_KEY_BYTES));
  const sealed = r.rest();
  const recipient = me.publicIdentity.dhKey;
  const { key, nonce, ad } = envelopeKeys(
    p,
    p.x25519(me.dh.secretKey, ephemeral),
    ephemeral,
    recipient,
  );
  const inner = new ByteReader(
    unpad(p.xchacha20poly1305Open(key, nonce, sealed, ad), INNER_BUCKETS),
  );
  const kind = inner.u8();
  if (kind !== EnvelopeKind.MESSAGE && kind !== EnvelopeKind.PREKEY_MESSAGE) {
    throw new CryptoError(CryptoErrorCode.BAD_ENCODING);
  }
  const senderBytes = inner.bytesN(PUBLIC_IDENTITY_BYTES);
  const initial = kind === EnvelopeKind.PREKEY_MESSAGE ? inner.bytesN(PQXDH_INITIAL_BYTES) : null;
  const message = inner.rest();
  return { senderBytes, initial, message };
}

/**
 * Opens an envelope addressed to `me` and decodes the sender identity (verifying that it is
 * self-signed: `bad_signature` otherwise), plus the errors of `openEnvelopeUnverified`. Decides
 * nothing about the sender's authenticity: that is the session's job.
 */
export function openEnvelope(
  p: Primitives,
  me: DeviceIdentity,
  envelope: Uint8Array,
): EnvelopeContent {
  const opened = openEnvelopeUnverified(p, me, envelope);
  return {
    sender: PublicIdentity.decode(p, opened.senderBytes),
    initial: opened.initial,
    message: opened.message,
  };
}
