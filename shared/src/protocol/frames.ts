/**
 * Every frame of wire protocol v1, in both directions, as strict zod schemas. A frame is one
 * JSON text WebSocket message: an object with the version `v`, the type `t`, and the fields of
 * that type; nothing else (unknown keys are rejected). Byte strings travel as canonical unpadded
 * base64url. See docs/protocol.md for the exchange these frames make up.
 */
import { z } from 'zod';
import { base64urlDecodedLength, isCanonicalBase64url } from './base64url.js';
import { ErrorCode } from './errors.js';
import {
  AUTH_NONCE_BYTES,
  BLOB_ID_BYTES,
  BLOB_TOKEN_BYTES,
  ED25519_PUBLIC_KEY_BYTES,
  ED25519_SIGNATURE_BYTES,
  MAILBOX_ID_BYTES,
  MAX_ACK_IDS,
  MAX_ENVELOPE_BYTES,
  MAX_ONE_TIME_PREKEYS_PER_PUBLISH,
  MAX_ONE_TIME_PREKEYS_STORED,
  MAX_ONE_TIME_PREKEY_BYTES,
  MAX_PREKEY_ID,
  MAX_PREKEY_PART_BYTES,
  MAX_FIRST_CONTACT_COUNT,
  MAX_POW_SENDS_PER_ADMISSION,
  MAX_REQUEST_ID,
  MAX_STATE_BLOB_BYTES,
  MAX_STATE_GENERATION,
  MESSAGE_ID_BYTES,
  POW_MAX_BITS,
  POW_MIN_BITS,
  POW_NONCE_BYTES,
  POW_SOLUTION_BYTES,
  POW_VERSION,
  PROTOCOL_VERSION,
} from './limits.js';

/** Longest base64url string that can encode `bytes` bytes. */
function encodedLength(bytes: number): number {
  return Math.ceil((bytes * 4) / 3);
}

/** Canonical base64url whose decoded length lies in [minBytes, maxBytes]. */
function bytesField(minBytes: number, maxBytes: number) {
  return z
    .string()
    .max(encodedLength(maxBytes))
    .refine(
      (s) => {
        const n = base64urlDecodedLength(s.length);
        return n >= minBytes && n <= maxBytes && isCanonicalBase64url(s);
      },
      { message: `expected base64url of ${minBytes}..${maxBytes} bytes` },
    );
}

function fixedBytes(bytes: number) {
  return bytesField(bytes, bytes);
}

const version = z.literal(PROTOCOL_VERSION);
const requestId = z.number().int().min(0).max(MAX_REQUEST_ID);

/** A mailbox id (see mailbox.ts). */
export const MailboxId = fixedBytes(MAILBOX_ID_BYTES);
/** A client-chosen message id: random, unique per recipient; a resend reuses it. */
export const MessageId = fixedBytes(MESSAGE_ID_BYTES);
/** An opaque envelope; the relay never looks inside. Empty envelopes are refused. */
export const Envelope = bytesField(1, MAX_ENVELOPE_BYTES);

const OneTimePrekey = z.strictObject({
  id: z.number().int().min(0).max(MAX_PREKEY_ID),
  key: bytesField(1, MAX_ONE_TIME_PREKEY_BYTES),
});
export type OneTimePrekey = z.infer<typeof OneTimePrekey>;

const PrekeyPart = bytesField(1, MAX_PREKEY_PART_BYTES);

/** A mailbox's opaque state blob; the relay never looks inside. Empty blobs are refused. */
export const StateBlob = bytesField(1, MAX_STATE_BLOB_BYTES);
/** A held state's generation: 1 … MAX_STATE_GENERATION, random, never reused for a mailbox. */
const StateGeneration = z.number().int().min(1).max(MAX_STATE_GENERATION);
/** A generation or 0, "none held". */
const StateGenerationOrNone = z.number().int().min(0).max(MAX_STATE_GENERATION);
/** An attachment blob id (random, drawn by the relay: a capability). */
export const BlobId = fixedBytes(BLOB_ID_BYTES);

// ---------------------------------------------------------------------------------------------
// Client → relay

/** Proves possession of a mailbox's Ed25519 key by signing the relay's challenge. */
export const AuthFrame = z.strictObject({
  v: version,
  t: z.literal('auth'),
  rid: requestId,
  pk: fixedBytes(ED25519_PUBLIC_KEY_BYTES),
  sig: fixedBytes(ED25519_SIGNATURE_BYTES),
});

/** Queues an envelope for a mailbox. Needs no authentication and reveals no sender. */
export const SendFrame = z.strictObject({
  v: version,
  t: z.literal('send'),
  rid: requestId,
  to: MailboxId,
  id: MessageId,
  env: z.string(), // checked by `Envelope` below, so an oversized one gets its own code
});

/** Acknowledges delivered messages; only then does the relay delete them. */
export const AckFrame = z.strictObject({
  v: version,
  t: z.literal('ack'),
  ids: z.array(MessageId).min(1).max(MAX_ACK_IDS),
});

/** Application-level heartbeat (browsers cannot send WebSocket pings). */
export const PingFrame = z.strictObject({
  v: version,
  t: z.literal('ping'),
  rid: requestId,
});

/** Publishes (replaces) the device's bundle and adds one-time prekeys. Needs authentication. */
export const PrekeysPublishFrame = z.strictObject({
  v: version,
  t: z.literal('prekeys.publish'),
  rid: requestId,
  identity: PrekeyPart,
  signedPrekey: PrekeyPart,
  oneTime: z
    .array(OneTimePrekey)
    .max(MAX_ONE_TIME_PREKEYS_PER_PUBLISH)
    .refine((keys) => new Set(keys.map((k) => k.id)).size === keys.length, {
      message: 'one-time prekey ids must be distinct',
    }),
});

/** Fetches a mailbox's bundle, taking one one-time prekey from it (never the same one twice). */
export const PrekeysFetchFrame = z.strictObject({
  v: version,
  t: z.literal('prekeys.fetch'),
  rid: requestId,
  mailbox: MailboxId,
});

/** Asks how many one-time prekeys of the authenticated mailbox remain. */
export const PrekeysStatusFrame = z.strictObject({
  v: version,
  t: z.literal('prekeys.status'),
  rid: requestId,
});

/** Asks for a proof-of-work challenge for a first `send` to `to` on this connection. */
export const PowRequestFrame = z.strictObject({
  v: version,
  t: z.literal('pow.request'),
  rid: requestId,
  to: MailboxId,
});

/** Answers an open challenge of this connection (named by its nonce) with a solution. */
export const PowSolveFrame = z.strictObject({
  v: version,
  t: z.literal('pow.solve'),
  rid: requestId,
  nonce: fixedBytes(POW_NONCE_BYTES),
  solution: fixedBytes(POW_SOLUTION_BYTES),
});

/** Asks how many first contacts the authenticated mailbox had lately (the spam signal). */
export const FirstContactStatusFrame = z.strictObject({
  v: version,
  t: z.literal('firstcontact.status'),
  rid: requestId,
});

/**
 * Replaces the authenticated mailbox's state blob, if the generation held now is `ifGeneration`
 * (0: only if none is held). Keeps it for the queue TTL from now. Needs authentication.
 */
export const StatePutFrame = z.strictObject({
  v: version,
  t: z.literal('state.put'),
  rid: requestId,
  blob: z.string(), // checked by `StateBlob` in parse.ts, so an oversized one gets its own code
  ifGeneration: StateGenerationOrNone,
});

/** Reads the authenticated mailbox's state blob. Needs authentication. */
export const StateGetFrame = z.strictObject({
  v: version,
  t: z.literal('state.get'),
  rid: requestId,
});

/** Deletes the authenticated mailbox's state blob, if any. Needs authentication. */
export const StateDeleteFrame = z.strictObject({
  v: version,
  t: z.literal('state.delete'),
  rid: requestId,
});

/**
 * Reserves one attachment upload: the relay draws a blob id and a one-time upload token for
 * `PUT /v1/blobs/<id>`. Needs authentication and a solved proof-of-work on this connection.
 */
export const BlobReserveFrame = z.strictObject({
  v: version,
  t: z.literal('blob.reserve'),
  rid: requestId,
});

export const CLIENT_FRAME_SCHEMAS = {
  auth: AuthFrame,
  send: SendFrame,
  ack: AckFrame,
  ping: PingFrame,
  'prekeys.publish': PrekeysPublishFrame,
  'prekeys.fetch': PrekeysFetchFrame,
  'prekeys.status': PrekeysStatusFrame,
  'pow.request': PowRequestFrame,
  'pow.solve': PowSolveFrame,
  'firstcontact.status': FirstContactStatusFrame,
  'state.put': StatePutFrame,
  'state.get': StateGetFrame,
  'state.delete': StateDeleteFrame,
  'blob.reserve': BlobReserveFrame,
} as const;

export type ClientFrameType = keyof typeof CLIENT_FRAME_SCHEMAS;
export type ClientFrame = {
  [K in ClientFrameType]: z.infer<(typeof CLIENT_FRAME_SCHEMAS)[K]>;
}[ClientFrameType];

// ---------------------------------------------------------------------------------------------
// Relay → client

/** Sent once when the connection opens: the nonce to sign in `auth`. */
export const ChallengeFrame = z.strictObject({
  v: version,
  t: z.literal('challenge'),
  nonce: fixedBytes(AUTH_NONCE_BYTES),
});

/** The connection now holds this mailbox; queued messages follow as `deliver` frames. */
export const AuthedFrame = z.strictObject({
  v: version,
  t: z.literal('authed'),
  rid: requestId,
  mailbox: MailboxId,
});

/** The envelope is stored (or was already: a resend with the same id is not stored twice). */
export const StoredFrame = z.strictObject({
  v: version,
  t: z.literal('stored'),
  rid: requestId,
  id: MessageId,
});

/** An envelope for the authenticated mailbox. Repeats until acknowledged. */
export const DeliverFrame = z.strictObject({
  v: version,
  t: z.literal('deliver'),
  id: MessageId,
  env: Envelope,
});

export const PongFrame = z.strictObject({
  v: version,
  t: z.literal('pong'),
  rid: requestId,
});

/** Answer to `prekeys.publish` and `prekeys.status`: one-time prekeys left. */
export const PrekeysCountFrame = z.strictObject({
  v: version,
  t: z.literal('prekeys.count'),
  rid: requestId,
  remaining: z.number().int().min(0).max(MAX_ONE_TIME_PREKEYS_STORED),
});

/** Answer to `prekeys.fetch`; `bundle` is null when none is published (or it expired). */
export const PrekeysBundleFrame = z.strictObject({
  v: version,
  t: z.literal('prekeys.bundle'),
  rid: requestId,
  mailbox: MailboxId,
  bundle: z
    .strictObject({
      identity: PrekeyPart,
      signedPrekey: PrekeyPart,
      oneTime: OneTimePrekey.nullable(),
    })
    .nullable(),
});

/** A request failed, or a frame was rejected. `rid` is present when the request carried one. */
export const ErrorFrame = z.strictObject({
  v: version,
  t: z.literal('error'),
  rid: requestId.optional(),
  code: z.enum(Object.values(ErrorCode) as [ErrorCode, ...ErrorCode[]]),
  retryable: z.boolean(),
  message: z.string().max(200),
});

/**
 * A proof-of-work challenge (the wire form of shared/src/pow's `PowChallenge`). A client parses
 * it again with `parsePowChallenge`, which also refuses an expiry too far ahead.
 */
export const PowChallenge = z.strictObject({
  v: z.literal(POW_VERSION),
  nonce: fixedBytes(POW_NONCE_BYTES),
  bits: z.number().int().min(POW_MIN_BITS).max(POW_MAX_BITS),
  exp: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  to: MailboxId,
});

/** Answer to `pow.request`: the challenge to solve. */
export const PowChallengeFrame = z.strictObject({
  v: version,
  t: z.literal('pow.challenge'),
  rid: requestId,
  challenge: PowChallenge,
});

/** Answer to a valid `pow.solve`: this connection may now send to `to` (its share of sends). */
export const PowAdmittedFrame = z.strictObject({
  v: version,
  t: z.literal('pow.admitted'),
  rid: requestId,
  to: MailboxId,
  sends: z.number().int().min(1).max(MAX_POW_SENDS_PER_ADMISSION),
});

/**
 * Answer to `firstcontact.status`: proof-of-work admissions to the authenticated mailbox on this
 * relay in the last minute (an estimate that never under-counts), the difficulty a first contact
 * pays now, and whether the admissions are past the relay's nominal rate for one mailbox (likely
 * spam: the owner's client may sort or hold back messages from new senders meanwhile).
 */
export const FirstContactCountFrame = z.strictObject({
  v: version,
  t: z.literal('firstcontact.count'),
  rid: requestId,
  admissions: z.number().int().min(0).max(MAX_FIRST_CONTACT_COUNT),
  bits: z.number().int().min(POW_MIN_BITS).max(POW_MAX_BITS),
  likelySpam: z.boolean(),
});

/** Answer to `state.put`: the blob is stored under this new generation. */
export const StateStoredFrame = z.strictObject({
  v: version,
  t: z.literal('state.stored'),
  rid: requestId,
  generation: StateGeneration,
});

/**
 * Answer to `state.get`: the blob and its generation, or `blob` null and generation 0 when none
 * is held (never stored, deleted or expired: one answer for all three, and the one a wrong
 * codename's mailbox gets).
 */
export const StateBlobFrame = z
  .strictObject({
    v: version,
    t: z.literal('state.blob'),
    rid: requestId,
    blob: StateBlob.nullable(),
    generation: StateGenerationOrNone,
  })
  .refine((f) => (f.blob === null) === (f.generation === 0), {
    message: 'generation 0 exactly when no blob',
  });

/** Answer to `state.delete`: no state is held now (whether one was or not). */
export const StateDeletedFrame = z.strictObject({
  v: version,
  t: z.literal('state.deleted'),
  rid: requestId,
});

/**
 * Answer to `blob.reserve`: upload the encrypted attachment to `PUT /v1/blobs/<id>` with
 * `Authorization: Bearer <token>` before `exp` (Unix ms). The token is good for one upload.
 */
export const BlobReservedFrame = z.strictObject({
  v: version,
  t: z.literal('blob.reserved'),
  rid: requestId,
  id: BlobId,
  token: fixedBytes(BLOB_TOKEN_BYTES),
  exp: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
});

export const SERVER_FRAME_SCHEMAS = {
  challenge: ChallengeFrame,
  authed: AuthedFrame,
  stored: StoredFrame,
  deliver: DeliverFrame,
  pong: PongFrame,
  'prekeys.count': PrekeysCountFrame,
  'prekeys.bundle': PrekeysBundleFrame,
  'pow.challenge': PowChallengeFrame,
  'pow.admitted': PowAdmittedFrame,
  'firstcontact.count': FirstContactCountFrame,
  'state.stored': StateStoredFrame,
  'state.blob': StateBlobFrame,
  'state.deleted': StateDeletedFrame,
  'blob.reserved': BlobReservedFrame,
  error: ErrorFrame,
} as const;

export type ServerFrameType = keyof typeof SERVER_FRAME_SCHEMAS;
export type ServerFrame = {
  [K in ServerFrameType]: z.infer<(typeof SERVER_FRAME_SCHEMAS)[K]>;
}[ServerFrameType];

export type FrameOf<T extends ServerFrameType> = z.infer<(typeof SERVER_FRAME_SCHEMAS)[T]>;
export type ClientFrameOf<T extends ClientFrameType> = z.infer<(typeof CLIENT_FRAME_SCHEMAS)[T]>;
