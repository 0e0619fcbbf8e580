/**
 * Enrolment of a coordinator device: the invite code the admin's tool prints, the request the
 * new device sends back, and the tool's verification of that request (a pure function: the
 * transport, a sealed envelope over the relay to the enrolment mailbox, is the client core's).
 *
 *   invite  = 01 ‖ invite id (16) ‖ secret (32) ‖ expires at (4) ‖ org key (32)
 *             ‖ enrolment mailbox identity (129, identity.ts)
 *   text    = "passage-invite:" ‖ base64url(invite)
 *
 * The code carries everything the device needs: the organization key to pin (the fingerprint
 * the admin reads out is computed from it), the identity of the tool's enrolment mailbox (its
 * Ed25519 key gives the mailbox id, its X25519 key is what the request is sealed to), and the
 * secret that authenticates the request. Whoever holds the code can enrol one device, once,
 * until it expires, and only after the admin approves the device's fingerprint: pass it on as
 * you would a key.
 *
 *   request = 01 ‖ invite id (16) ‖ device identity (129) ‖ created at (4) ‖ label length (1)
 *             ‖ label (UTF-8) ‖ mac (32) ‖ signature (64)
 *   mac     = HMAC-SHA256(K, "passage/v1/enrol/request-mac" ‖ 0 ‖ org key ‖ all before mac)
 *   K       = HKDF-SHA256(secret, salt = invite id, "passage/v1/enrol/mac-key", 32)
 *   sig     = Ed25519(device key, "passage/v1/sig/enrol-request" ‖ 0 ‖ org key ‖ all before sig)
 *
 * The MAC proves the sender had the invite; the signature that it holds the identity's key (an
 * invite holder cannot enrol someone else's identity); the org key in both binds the request to
 * this organization.
 *
 * Over the relay (ADR 0019), the request travels as an ordinary sealed envelope (envelope.ts,
 * kind 1) to the enrolment mailbox named in the invite: the sender field is the device's
 * identity, the message is the request. The relay sees a 2,048-byte envelope to a mailbox id,
 * like any short message; only the holder of the mailbox's X25519 secret (the admin's tool)
 * opens it. The mailbox receives nothing else, so what is inside is always a request.
 */
import { fromBase64url, toBase64url } from '../protocol/base64url.js';
import { mailboxIdFromPublicKey } from '../protocol/mailbox.js';
import { hasForbiddenCharacters } from '../org/profile.js';
import { utf8Decode, utf8Encode } from '../org/utf8.js';
import {
  ByteReader,
  bytesEqual,
  concatBytes,
  labelBytes,
  labelPrefix,
  toHex,
  u32,
  u8,
} from './encoding.js';
import { CryptoError } from './errors.js';
import { PUBLIC_IDENTITY_BYTES, PublicIdentity, type DeviceIdentity } from './identity.js';
import { openEnvelope, sealEnvelope } from './envelope.js';
import { KDF_LABELS } from './kdf.js';
import { asEd25519PublicKey, type Ed25519PublicKey } from './keys.js';
import type { Primitives } from './primitives.js';
import { ED25519_PUBLIC_KEY_BYTES, ED25519_SIGNATURE_BYTES, SHA256_BYTES } from './primitives.js';

export const INVITE_FORMAT_VERSION = 1;
export const ENROLMENT_REQUEST_VERSION = 1;
/** The text form's prefix. */
export const INVITE_TEXT_PREFIX = 'passage-invite:';
export const INVITE_ID_BYTES = 16;
export const INVITE_SECRET_BYTES = 32;
/** Bytes of an encoded invite. */
export const INVITE_BYTES =
  1 + INVITE_ID_BYTES + INVITE_SECRET_BYTES + 4 + ED25519_PUBLIC_KEY_BYTES + PUBLIC_IDENTITY_BYTES;
/** Longest device label ("Anna's laptop"), in UTF-8 bytes. */
export const MAX_DEVICE_LABEL_BYTES = 64;
/** Largest encoded request. */
export const MAX_ENROLMENT_REQUEST_BYTES =
  1 +
  INVITE_ID_BYTES +
  PUBLIC_IDENTITY_BYTES +
  4 +
  1 +
  MAX_DEVICE_LABEL_BYTES +
  SHA256_BYTES +
  ED25519_SIGNATURE_BYTES;

/** Why an invite code or an enrolment request is refused; stable, one per reason. */
export const EnrolmentErrorCode = {
  /** The invite code is not one: wrong prefix, not base64url, wrong length, a bad mailbox
   * identity. */
  INVITE_MALFORMED: 'invite_malformed',
  /** The invite code's version is not one this code understands. */
  INVITE_UNSUPPORTED_VERSION: 'invite_unsupported_version',
  /** The request is not one: truncated, trailing bytes, over the size bound, a bad label. */
  REQUEST_MALFORMED: 'enrolment_malformed',
  /** The request's version is not one this code understands. */
  REQUEST_UNSUPPORTED_VERSION: 'enrolment_unsupported_version',
  /** The request names an invite this organization never made (or forgot after it expired). */
  INVITE_UNKNOWN: 'invite_unknown',
  /** The MAC does not verify: the sender does not hold the invite's secret, or the request
   * was changed, or it was made for another organization. */
  BAD_MAC: 'enrolment_bad_mac',
  /** The device identity inside is not a valid self-signed identity. */
  BAD_IDENTITY: 'enrolment_bad_identity',
  /** The device's signature over the request does not verify. */
  BAD_SIGNATURE: 'enrolment_bad_signature',
  /** The invite expired before the request reached the tool. */
  INVITE_EXPIRED: 'invite_expired',
  /** The invite was used by an earlier request (an invite enrols one device, once). */
  INVITE_USED: 'invite_used',
  /** The device is in the roster or waiting for approval already. */
  DEVICE_KNOWN: 'device_already_known',
  /** An envelope in the enrolment mailbox that does not open with the mailbox's key, or that
   * opens but holds no enrolment request of the device that sealed it (garbage, or sealed to
   * another mailbox). */
  ENVELOPE_UNREADABLE: 'enrolment_envelope_unreadable',
} as const;

export type EnrolmentErrorCode = (typeof EnrolmentErrorCode)[keyof typeof EnrolmentErrorCode];

const ENROLMENT_ERROR_MESSAGES: Readonly<Record<EnrolmentErrorCode, string>> = {
  invite_malformed: 'The invite code is not valid.',
  invite_unsupported_version: 'The invite code format is not supported.',
  enrolment_malformed: 'The enrolment request is malformed.',
  enrolment_unsupported_version: 'The enrolment request format is not supported.',
  invite_unknown: 'The enrolment request names an unknown invite.',
  enrolment_bad_mac: 'The enrolment request is not authenticated by its invite.',
  enrolment_bad_identity: 'The device identity in the enrolment request is not valid.',
  enrolment_bad_signature: 'The device signature over the enrolment request does not verify.',
  invite_expired: 'The invite has expired.',
  invite_used: 'The invite has been used already.',
  device_already_known: 'The device is enrolled or waiting for approval already.',
  enrolment_envelope_unreadable: 'The envelope holds no readable enrolment request.',
};

export class EnrolmentError extends Error {
  override readonly name = 'EnrolmentError';
  constructor(
    readonly code: EnrolmentErrorCode,
    options?: { readonly cause?: unknown },
  ) {
    super(
      ENROLMENT_ERROR_MESSAGES[code],
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
  }
}

/** An invite, decoded. */
export interface Invite {
  /** 16 random bytes naming the invite. */
  readonly id: Uint8Array;
  readonly secret: Uint8Array;
  readonly expiresAtSeconds: number;
  readonly organizationKey: Ed25519PublicKey;
  /** The identity of the admin tool's enrolment mailbox. */
  readonly mailbox: PublicIdentity;
}

/** A new invite: fresh id and secret from the backend's random source. */
export function newInvite(
  p: Primitives,
  organizationKey: Ed25519PublicKey,
  mailbox: PublicIdentity,
  expiresAtSeconds: number,
): Invite {
  return {
    id: p.random.bytes(INVITE_ID_BYTES),
    secret: p.random.bytes(INVITE_SECRET_BYTES),
    expiresAtSeconds,
    organizationKey,
    mailbox,
  };
}

/** The invite's text form, to hand to the new coordinator. */
export function encodeInvite(invite: Invite): string {
  const bytes = concatBytes(
    u8(INVITE_FORMAT_VERSION),
    invite.id,
    invite.secret,
    u32(invite.expiresAtSeconds),
    invite.organizationKey,
    invite.mailbox.encode(),
  );
  return INVITE_TEXT_PREFIX + toBase64url(bytes);
}

/** Decodes an invite's text form (surrounding white space ignored); throws `EnrolmentError`. */
export function decodeInvite(p: Primitives, text: string): Invite {
  const trimmed = text.trim();
  if (!trimmed.startsWith(INVITE_TEXT_PREFIX)) {
    throw new EnrolmentError(EnrolmentErrorCode.INVITE_MALFORMED);
  }
  const bytes = fromBase64url(trimmed.slice(INVITE_TEXT_PREFIX.length));
  if (bytes === undefined || bytes.length === 0) {
    throw new EnrolmentError(EnrolmentErrorCode.INVITE_MALFORMED);
  }
  if (bytes[0] !== INVITE_FORMAT_VERSION) {
    throw new EnrolmentError(EnrolmentErrorCode.INVITE_UNSUPPORTED_VERSION);
  }
  if (bytes.length !== INVITE_BYTES) throw new EnrolmentError(EnrolmentErrorCode.INVITE_MALFORMED);
  const r = new ByteReader(bytes.subarray(1));
  const id = r.bytesN(INVITE_ID_BYTES);
  const secret = r.bytesN(INVITE_SECRET_BYTES);
  const expiresAtSeconds = r.u32();
  const organizationKey = r.bytesN(ED25519_PUBLIC_KEY_BYTES);
  let mailbox: PublicIdentity;
  try {
    if (!p.ed25519IsValidPublicKey(organizationKey)) throw new Error('organization key');
    mailbox = PublicIdentity.decode(p, r.bytesN(PUBLIC_IDENTITY_BYTES));
  } catch (cause) {
    throw new EnrolmentError(EnrolmentErrorCode.INVITE_MALFORMED, { cause });
  }
  r.end();
  return {
    id,
    secret,
    expiresAtSeconds,
    organizationKey: asEd25519PublicKey(organizationKey),
    mailbox,
  };
}

/** The invite id as the tool keys its invites: lower-case hex. */
export function inviteIdHex(id: Uint8Array): string {
  return toHex(id);
}

function macKey(p: Primitives, inviteId: Uint8Array, secret: Uint8Array): Uint8Array {
  return p.hkdfSha256(secret, inviteId, labelBytes(KDF_LABELS.enrolmentMacKey), 32);
}

function macInput(organizationKey: Uint8Array, beforeMac: Uint8Array): Uint8Array {
  return concatBytes(labelPrefix(KDF_LABELS.enrolmentRequestMac), organizationKey, beforeMac);
}

function signatureInput(organizationKey: Uint8Array, beforeSignature: Uint8Array): Uint8Array {
  return concatBytes(
    labelPrefix(KDF_LABELS.enrolmentRequestSignature),
    organizationKey,
    beforeSignature,
  );
}

/** What a new device puts in its request. */
export interface EnrolmentRequestInput {
  readonly invite: Invite;
  readonly device: DeviceIdentity;
  /** A name for the device that the admin sees ("Anna's laptop"); may be empty. */
  readonly label: string;
  readonly nowSeconds: number;
}

/** The device side: builds and authenticates a request (the client core seals and sends it). */
export function createEnrolmentRequest(p: Primitives, input: EnrolmentRequestInput): Uint8Array {
  const label = utf8Encode(input.label);
  if (label.length > MAX_DEVICE_LABEL_BYTES || hasForbiddenCharacters(input.label)) {
    throw new RangeError('enrolment: the device label is too long or holds control characters');
  }
  const beforeMac = concatBytes(
    u8(ENROLMENT_REQUEST_VERSION),
    input.invite.id,
    input.device.publicIdentity.encode(),
    u32(input.nowSeconds),
    u8(label.length),
    label,
  );
  const mac = p.hmacSha256(
    macKey(p, input.invite.id, input.invite.secret),
    macInput(input.invite.organizationKey, beforeMac),
  );
  const beforeSignature = concatBytes(beforeMac, mac);
  return concatBytes(
    beforeSignature,
    input.device.sign(signatureInput(input.invite.organizationKey, beforeSignature)),
  );
}

/** An invite as the tool keeps it. */
export interface IssuedInvite {
  readonly secret: Uint8Array;
  readonly expiresAtSeconds: number;
  /** When a request used it, or null while unused. */
  readonly usedAtSeconds: number | null;
}

/** What the tool checks a request against. */
export interface EnrolmentCheck {
  readonly organizationKey: Ed25519PublicKey;
  readonly nowSeconds: number;
  /** The invite with this id (hex), or undefined when there is none. */
  readonly findInvite: (inviteIdHex: string) => IssuedInvite | undefined;
  /** True when the device (by `PublicIdentity.id`) is in the roster or pending already. */
  readonly isKnownDevice: (deviceId: string) => boolean;
}

/** A verified request, ready to be listed for approval. */
export interface VerifiedEnrolment {
  readonly inviteId: string;
  readonly identity: PublicIdentity;
  readonly label: string;
  readonly createdAtSeconds: number;
}

/**
 * The tool side: verifies a request, in this order: structure (`enrolment_malformed`,
 * `enrolment_unsupported_version`), the invite it names (`invite_unknown`), the MAC
 * (`enrolment_bad_mac`), the identity (`enrolment_bad_identity`), the device's signature
 * (`enrolment_bad_signature`), then the invite's state (`invite_expired`, `invite_used`) and
 * the device's (`device_already_known`). Nothing about the invite's state is told to a sender
 * that cannot show its secret. Pure: the caller marks the invite used and stores the request.
 */
export function verifyEnrolmentRequest(
  p: Primitives,
  bytes: Uint8Array,
  check: EnrolmentCheck,
): VerifiedEnrolment {
  if (bytes.length > MAX_ENROLMENT_REQUEST_BYTES || bytes.length === 0) {
    throw new EnrolmentError(EnrolmentErrorCode.REQUEST_MALFORMED);
  }
  if (bytes[0] !== ENROLMENT_REQUEST_VERSION) {
    throw new EnrolmentError(EnrolmentErrorCode.REQUEST_UNSUPPORTED_VERSION);
  }
  let inviteId: Uint8Array;
  let identityBytes: Uint8Array;
  let createdAtSeconds: number;
  let labelBytesRead: Uint8Array;
  let mac: Uint8Array;
  let signature: Uint8Array;
  try {
    const r = new ByteReader(bytes.subarray(1));
    inviteId = r.bytesN(INVITE_ID_BYTES);
    identityBytes = r.bytesN(PUBLIC_IDENTITY_BYTES);
    createdAtSeconds = r.u32();
    labelBytesRead = r.bytesN(r.u8());
    mac = r.bytesN(SHA256_BYTES);
    signature = r.bytesN(ED25519_SIGNATURE_BYTES);
    r.end();
  } catch (cause) {
    if (cause instanceof CryptoError) {
      throw new EnrolmentError(EnrolmentErrorCode.REQUEST_MALFORMED, { cause });
    }
    throw cause;
  }
  let label: string;
  try {
    label = utf8Decode(labelBytesRead);
  } catch (cause) {
    throw new EnrolmentError(EnrolmentErrorCode.REQUEST_MALFORMED, { cause });
  }
  if (labelBytesRead.length > MAX_DEVICE_LABEL_BYTES || hasForbiddenCharacters(label)) {
    throw new EnrolmentError(EnrolmentErrorCode.REQUEST_MALFORMED);
  }

  const idHex = inviteIdHex(inviteId);
  const invite = check.findInvite(idHex);
  if (invite === undefined) throw new EnrolmentError(EnrolmentErrorCode.INVITE_UNKNOWN);
  const macEnd = bytes.length - ED25519_SIGNATURE_BYTES - SHA256_BYTES;
  const expected = p.hmacSha256(
    macKey(p, inviteId, invite.secret),
    macInput(check.organizationKey, bytes.subarray(0, macEnd)),
  );
  if (!bytesEqual(expected, mac)) throw new EnrolmentError(EnrolmentErrorCode.BAD_MAC);

  let identity: PublicIdentity;
  try {
    identity = PublicIdentity.decode(p, identityBytes);
  } catch (cause) {
    throw new EnrolmentError(EnrolmentErrorCode.BAD_IDENTITY, { cause });
  }
  const signed = signatureInput(
    check.organizationKey,
    bytes.subarray(0, bytes.length - ED25519_SIGNATURE_BYTES),
  );
  if (!p.ed25519Verify(identity.signingKey, signed, signature)) {
    throw new EnrolmentError(EnrolmentErrorCode.BAD_SIGNATURE);
  }
  if (check.nowSeconds >= invite.expiresAtSeconds) {
    throw new EnrolmentError(EnrolmentErrorCode.INVITE_EXPIRED);
  }
  if (invite.usedAtSeconds !== null) throw new EnrolmentError(EnrolmentErrorCode.INVITE_USED);
  if (check.isKnownDevice(identity.id)) throw new EnrolmentError(EnrolmentErrorCode.DEVICE_KNOWN);
  return { inviteId: idHex, identity, label, createdAtSeconds };
}

/** Where a device sends its request: the mailbox id of the invite's enrolment mailbox. */
export function enrolmentMailboxId(p: Primitives, invite: Invite): string {
  return mailboxIdFromPublicKey(invite.mailbox.signingKey, (data) => p.sha256(data));
}

/** A request sealed for the relay, and the mailbox to send it to. */
export interface EnrolmentEnvelope {
  /** The sealed envelope (2,048 bytes: the smallest envelope size). */
  readonly envelope: Uint8Array;
  /** The enrolment mailbox's id (base64url), the `to` of the `send`. */
  readonly to: string;
}

/**
 * The device side, whole: builds and authenticates the request (`createEnrolmentRequest`) and
 * seals it to the invite's enrolment mailbox. The client core sends the result
 * (`sendEnrolment` in shared/src/client).
 */
export function createEnrolmentEnvelope(
  p: Primitives,
  input: EnrolmentRequestInput,
): EnrolmentEnvelope {
  const request = createEnrolmentRequest(p, input);
  return {
    envelope: sealEnvelope(p, input.invite.mailbox, {
      sender: input.device.publicIdentity,
      initial: null,
      message: request,
    }),
    to: enrolmentMailboxId(p, input.invite),
  };
}

/** What the enrolment mailbox's envelope held. */
export interface OpenedEnrolment {
  /** The request's bytes, for `verifyEnrolmentRequest`. */
  readonly request: Uint8Array;
  /** The device that sealed it (self-signed; the same identity the request names). */
  readonly sender: PublicIdentity;
}

/** Offset of the device identity inside a request: after the version and the invite id. */
const REQUEST_IDENTITY_OFFSET = 1 + INVITE_ID_BYTES;

/**
 * The tool side, first step: opens an envelope of the enrolment mailbox `mailbox`. Anything but
 * a kind-1 envelope that opens, from a self-signed identity, holding a message that names that
 * same identity where a request does, is `enrolment_envelope_unreadable`: the request inside is
 * then checked in full by `verifyEnrolmentRequest`.
 */
export function openEnrolmentEnvelope(
  p: Primitives,
  mailbox: DeviceIdentity,
  envelope: Uint8Array,
): OpenedEnrolment {
  let opened;
  try {
    opened = openEnvelope(p, mailbox, envelope);
  } catch (cause) {
    if (cause instanceof CryptoError) {
      throw new EnrolmentError(EnrolmentErrorCode.ENVELOPE_UNREADABLE, { cause });
    }
    throw cause;
  }
  const named = opened.message.subarray(
    REQUEST_IDENTITY_OFFSET,
    REQUEST_IDENTITY_OFFSET + PUBLIC_IDENTITY_BYTES,
  );
  if (
    opened.initial !== null ||
    opened.message.length > MAX_ENROLMENT_REQUEST_BYTES ||
    !bytesEqual(named, opened.sender.encode())
  ) {
    throw new EnrolmentError(EnrolmentErrorCode.ENVELOPE_UNREADABLE);
  }
  return { request: opened.message, sender: opened.sender };
}
