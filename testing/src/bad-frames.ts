/**
 * Invalid client frames, at least one for every frame type, each with the error the relay must
 * answer. Shared by the in-process relay tests and the child-process ones, so both run every
 * case. Every case is sent on an unauthenticated connection.
 */
import { randomBytes } from 'node:crypto';
import { ErrorCode } from '@passage/shared/protocol/errors';
import { toBase64url } from '@passage/shared/protocol/base64url';
import {
  MAX_ACK_IDS,
  MAX_ENVELOPE_BYTES,
  MAX_ONE_TIME_PREKEYS_PER_PUBLISH,
  MAX_PREKEY_PART_BYTES,
  MAX_REQUEST_ID,
} from '@passage/shared/protocol/limits';

export interface BadFrameCase {
  /** A behaviour sentence for the test name. */
  readonly name: string;
  /** What is sent: a text message (string) or a binary one (Buffer). */
  readonly data: string | Buffer;
  readonly code: ErrorCode;
  /** The rid the error must echo; undefined when it must carry none. */
  readonly rid: number | undefined;
}

const b64 = (bytes: number): string => toBase64url(randomBytes(bytes));
const MAILBOX = b64(32);
const ID = b64(16);
const PK = b64(32);
const SIG = b64(64);
const RID = 7;

/** A canonical base64url value with its last character changed so spare bits are non-zero. */
function nonCanonical(value: string): string {
  // 32 bytes → 43 chars, 2 spare bits in the last char: 'B' (000001) sets one of them.
  return value.slice(0, -1) + 'B';
}

const frame = (fields: Record<string, unknown>): string => JSON.stringify({ v: 1, ...fields });

const oneTime = (count: number, sameId = false) =>
  Array.from({ length: count }, (_, i) => ({ id: sameId ? 1 : i, key: b64(32) }));

export const BAD_FRAMES: readonly BadFrameCase[] = [
  // Any frame
  { name: 'text that is not JSON', data: '{"v":1,', code: ErrorCode.BAD_FRAME, rid: undefined },
  { name: 'a JSON array', data: '[1,2]', code: ErrorCode.BAD_FRAME, rid: undefined },
  { name: 'a JSON string', data: '"ping"', code: ErrorCode.BAD_FRAME, rid: undefined },
  { name: 'JSON null', data: 'null', code: ErrorCode.BAD_FRAME, rid: undefined },
  { name: 'an empty text message', data: '', code: ErrorCode.BAD_FRAME, rid: undefined },
  {
    name: 'a frame without v',
    data: JSON.stringify({ t: 'ping', rid: RID }),
    code: ErrorCode.BAD_FRAME,
    rid: RID,
  },
  {
    name: 'a frame whose v is a string',
    data: JSON.stringify({ v: '1', t: 'ping', rid: RID }),
    code: ErrorCode.BAD_FRAME,
    rid: RID,
  },
  {
    name: 'a frame of version 2',
    data: JSON.stringify({ v: 2, t: 'ping', rid: RID }),
    code: ErrorCode.UNSUPPORTED_VERSION,
    rid: RID,
  },
  {
    name: 'a frame of version 0 with an unknown type',
    data: JSON.stringify({ v: 0, t: 'hello', rid: RID }),
    code: ErrorCode.UNSUPPORTED_VERSION,
    rid: RID,
  },
  {
    name: 'a frame whose v is not an integer',
    data: JSON.stringify({ v: 1.5, t: 'ping', rid: RID }),
    code: ErrorCode.BAD_FRAME,
    rid: RID,
  },
  {
    name: 'a frame without t',
    data: frame({ rid: RID }),
    code: ErrorCode.BAD_FRAME,
    rid: RID,
  },
  {
    name: 'a frame of an unknown type',
    data: frame({ t: 'subscribe', rid: RID }),
    code: ErrorCode.UNKNOWN_TYPE,
    rid: RID,
  },
  {
    name: 'a frame whose type is an Object.prototype property',
    data: frame({ t: 'constructor', rid: RID }),
    code: ErrorCode.UNKNOWN_TYPE,
    rid: RID,
  },
  {
    name: 'a frame whose type is __proto__',
    data: '{"v":1,"t":"__proto__","rid":7}',
    code: ErrorCode.UNKNOWN_TYPE,
    rid: RID,
  },
  {
    name: 'a server frame type sent by a client',
    data: frame({ t: 'deliver', id: ID, env: b64(8) }),
    code: ErrorCode.UNKNOWN_TYPE,
    rid: undefined,
  },
  {
    name: 'a negative rid',
    data: frame({ t: 'ping', rid: -1 }),
    code: ErrorCode.BAD_FRAME,
    rid: undefined,
  },
  {
    name: 'a rid above MAX_REQUEST_ID',
    data: frame({ t: 'ping', rid: MAX_REQUEST_ID + 1 }),
    code: ErrorCode.BAD_FRAME,
    rid: undefined,
  },
  {
    name: 'a fractional rid',
    data: frame({ t: 'ping', rid: 1.5 }),
    code: ErrorCode.BAD_FRAME,
    rid: undefined,
  },
  {
    name: 'a frame with a __proto__ key',
    data: '{"v":1,"t":"ping","rid":7,"__proto__":{"t":"auth"}}',
    code: ErrorCode.BAD_FRAME,
    rid: RID,
  },
  {
    name: 'a deeply nested JSON array',
    data: '['.repeat(40_000) + ']'.repeat(40_000),
    code: ErrorCode.BAD_FRAME,
    rid: undefined,
  },
  {
    name: 'a frame with a deeply nested unknown field',
    data: `{"v":1,"t":"ping","rid":7,"x":${'['.repeat(40_000)}${']'.repeat(40_000)}}`,
    code: ErrorCode.BAD_FRAME,
    // Over the structure bounds (parse.ts): refused before JSON.parse, so no rid is known.
    rid: undefined,
  },
  // ping
  {
    name: 'a ping with an unknown key',
    data: frame({ t: 'ping', rid: RID, x: 1 }),
    code: ErrorCode.BAD_FRAME,
    rid: RID,
  },
  {
    name: 'a ping without rid',
    data: frame({ t: 'ping' }),
    code: ErrorCode.BAD_FRAME,
    rid: undefined,
  },
  // auth
  {
    name: 'an auth without sig',
    data: frame({ t: 'auth', rid: RID, pk: PK }),
    code: ErrorCode.BAD_FRAME,
    rid: RID,
  },
  {
    name: 'an auth with a 31-byte key',
    data: frame({ t: 'auth', rid: RID, pk: b64(31), sig: SIG }),
    code: ErrorCode.BAD_FRAME,
    rid: RID,
  },
  {
    name: 'an auth with a 63-byte signature',
    data: frame({ t: 'auth', rid: RID, pk: PK, sig: b64(63) }),
    code: ErrorCode.BAD_FRAME,
    rid: RID,
  },
  {
    name: 'an auth with padded base64',
    data: frame({ t: 'auth', rid: RID, pk: PK + '=', sig: SIG }),
    code: ErrorCode.BAD_FRAME,
    rid: RID,
  },
  {
    name: 'an auth with non-canonical base64',
    data: frame({ t: 'auth', rid: RID, pk: nonCanonical(PK), sig: SIG }),
    code: ErrorCode.BAD_FRAME,
    rid: RID,
  },
  {
    name: 'an auth with standard (not url) base64 characters',
    data: frame({ t: 'auth', rid: RID, pk: '+/' + PK.slice(2), sig: SIG }),
    code: ErrorCode.BAD_FRAME,
    rid: RID,
  },
  {
    name: 'an auth with an unknown key',
    data: frame({ t: 'auth', rid: RID, pk: PK, sig: SIG, mailbox: MAILBOX }),
    code: ErrorCode.BAD_FRAME,
    rid: RID,
  },
  // send
  {
    name: 'a send to a 31-byte mailbox id',
    data: frame({ t: 'send', rid: RID, to: b64(31), id: ID, env: b64(8) }),
    code: ErrorCode.BAD_FRAME,
    rid: RID,
  },
  {
    name: 'a send with a 15-byte message id',
    data: frame({ t: 'send', rid: RID, to: MAILBOX, id: b64(15), env: b64(8) }),
    code: ErrorCode.BAD_FRAME,
    rid: RID,
  },
  {
    name: 'a send whose envelope is not base64url',
    data: frame({ t: 'send', rid: RID, to: MAILBOX, id: ID, env: 'not base64!' }),
    code: ErrorCode.BAD_FRAME,
    rid: RID,
  },
  {
    name: 'a send with an empty envelope',
    data: frame({ t: 'send', rid: RID, to: MAILBOX, id: ID, env: '' }),
    code: ErrorCode.BAD_FRAME,
    rid: RID,
  },
  {
    name: 'a send whose envelope is a number',
    data: frame({ t: 'send', rid: RID, to: MAILBOX, id: ID, env: 12 }),
    code: ErrorCode.BAD_FRAME,
    rid: RID,
  },
  {
    name: 'a send with an envelope of MAX_ENVELOPE_BYTES + 1',
    data: frame({ t: 'send', rid: RID, to: MAILBOX, id: ID, env: b64(MAX_ENVELOPE_BYTES + 1) }),
    code: ErrorCode.ENVELOPE_TOO_LARGE,
    rid: RID,
  },
  {
    name: 'a send with an unknown key',
    data: frame({ t: 'send', rid: RID, to: MAILBOX, id: ID, env: b64(8), from: MAILBOX }),
    code: ErrorCode.BAD_FRAME,
    rid: RID,
  },
  {
    name: 'a send without rid',
    data: frame({ t: 'send', to: MAILBOX, id: ID, env: b64(8) }),
    code: ErrorCode.BAD_FRAME,
    rid: undefined,
  },
  // ack
  {
    name: 'an ack before authentication',
    data: frame({ t: 'ack', ids: [ID] }),
    code: ErrorCode.NOT_AUTHENTICATED,
    rid: undefined,
  },
  {
    name: 'an ack with no ids',
    data: frame({ t: 'ack', ids: [] }),
    code: ErrorCode.BAD_FRAME,
    rid: undefined,
  },
  {
    name: 'an ack with more than MAX_ACK_IDS ids',
    data: frame({ t: 'ack', ids: Array.from({ length: MAX_ACK_IDS + 1 }, () => ID) }),
    code: ErrorCode.BAD_FRAME,
    rid: undefined,
  },
  {
    name: 'an ack with a malformed id',
    data: frame({ t: 'ack', ids: [b64(17)] }),
    code: ErrorCode.BAD_FRAME,
    rid: undefined,
  },
  {
    name: 'an ack carrying a rid (unknown key)',
    data: frame({ t: 'ack', rid: RID, ids: [ID] }),
    code: ErrorCode.BAD_FRAME,
    rid: RID,
  },
  // prekeys.publish
  {
    name: 'a prekeys.publish before authentication',
    data: frame({
      t: 'prekeys.publish',
      rid: RID,
      identity: b64(64),
      signedPrekey: b64(96),
      oneTime: [],
    }),
    code: ErrorCode.NOT_AUTHENTICATED,
    rid: RID,
  },
  {
    name: 'a prekeys.publish with repeated one-time prekey ids',
    data: frame({
      t: 'prekeys.publish',
      rid: RID,
      identity: b64(64),
      signedPrekey: b64(96),
      oneTime: oneTime(2, true),
    }),
    code: ErrorCode.BAD_FRAME,
    rid: RID,
  },
  {
    name: 'a prekeys.publish with more than MAX_ONE_TIME_PREKEYS_PER_PUBLISH keys',
    data: frame({
      t: 'prekeys.publish',
      rid: RID,
      identity: b64(64),
      signedPrekey: b64(96),
      oneTime: oneTime(MAX_ONE_TIME_PREKEYS_PER_PUBLISH + 1),
    }),
    code: ErrorCode.BAD_FRAME,
    // One '{' more than any valid frame holds: refused before JSON.parse, so no rid is known.
    rid: undefined,
  },
  {
    name: 'a prekeys.publish with an identity part over MAX_PREKEY_PART_BYTES',
    data: frame({
      t: 'prekeys.publish',
      rid: RID,
      identity: b64(MAX_PREKEY_PART_BYTES + 1),
      signedPrekey: b64(96),
      oneTime: [],
    }),
    code: ErrorCode.BAD_FRAME,
    rid: RID,
  },
  {
    name: 'a prekeys.publish with a negative one-time prekey id',
    data: frame({
      t: 'prekeys.publish',
      rid: RID,
      identity: b64(64),
      signedPrekey: b64(96),
      oneTime: [{ id: -1, key: b64(32) }],
    }),
    code: ErrorCode.BAD_FRAME,
    rid: RID,
  },
  // prekeys.fetch
  {
    name: 'a prekeys.fetch without mailbox',
    data: frame({ t: 'prekeys.fetch', rid: RID }),
    code: ErrorCode.BAD_FRAME,
    rid: RID,
  },
  {
    name: 'a prekeys.fetch of a 33-byte mailbox id',
    data: frame({ t: 'prekeys.fetch', rid: RID, mailbox: b64(33) }),
    code: ErrorCode.BAD_FRAME,
    rid: RID,
  },
  // prekeys.status
  {
    name: 'a prekeys.status before authentication',
    data: frame({ t: 'prekeys.status', rid: RID }),
    code: ErrorCode.NOT_AUTHENTICATED,
    rid: RID,
  },
  {
    name: 'a prekeys.status with an unknown key',
    data: frame({ t: 'prekeys.status', rid: RID, mailbox: MAILBOX }),
    code: ErrorCode.BAD_FRAME,
    rid: RID,
  },
  // binary
  {
    name: 'a binary message',
    data: Buffer.from(frame({ t: 'ping', rid: RID })),
    code: ErrorCode.BINARY_NOT_SUPPORTED,
    rid: undefined,
  },
];
