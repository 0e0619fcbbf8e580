/**
 * A hand-written validator for the two frames on the relay's hot path, `send` and `ack`. Under
 * load, zod's generic object walk was about a tenth of the relay's CPU; these two frames are
 * nearly all of its traffic.
 *
 * It only ever says "valid, here is the frame" or "not sure": it never rejects. Anything it
 * does not accept goes on to the zod schemas in frames.ts, which stay the one definition of
 * the protocol and produce every error (code, echoed rid, detail). So the fast path must be
 * exactly right on what it accepts and nothing else; fast-parse.test.ts checks that against zod
 * on many thousands of mutated frames.
 */
import { base64urlDecodedLength, isCanonicalBase64url } from './base64url.js';
import type { ClientFrameOf } from './frames.js';
import {
  MAILBOX_ID_BYTES,
  MAX_ACK_IDS,
  MAX_ENVELOPE_BYTES,
  MAX_REQUEST_ID,
  MESSAGE_ID_BYTES,
  PROTOCOL_VERSION,
} from './limits.js';

/** The frames the fast path can accept. */
export type FastClientFrame = ClientFrameOf<'send'> | ClientFrameOf<'ack'>;

/** Length of the unpadded base64url spelling of exactly `bytes` bytes. */
function exactEncodedLength(bytes: number): number {
  return Math.ceil((bytes * 4) / 3);
}

const MAILBOX_ID_CHARS = exactEncodedLength(MAILBOX_ID_BYTES);
const MESSAGE_ID_CHARS = exactEncodedLength(MESSAGE_ID_BYTES);

function isMessageId(x: unknown): x is string {
  return typeof x === 'string' && x.length === MESSAGE_ID_CHARS && isCanonicalBase64url(x);
}

/**
 * The frame, when `data` (the result of `JSON.parse`) is a valid `send` or `ack` frame exactly
 * as the zod schemas define it; otherwise undefined, and the caller must ask zod. Never throws.
 */
export function fastParseClientFrame(data: unknown): FastClientFrame | undefined {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return undefined;
  const frame = data as Record<string, unknown>;
  if (frame['v'] !== PROTOCOL_VERSION) return undefined;
  const t = frame['t'];
  if (t === 'send') return fastSend(frame);
  if (t === 'ack') return fastAck(frame);
  return undefined;
}

function fastSend(frame: Record<string, unknown>): FastClientFrame | undefined {
  // `for...in`, as zod's strict objects use to find unknown keys: it also sees an own
  // `__proto__` key that JSON.parse creates, and anything enumerable up the prototype chain.
  for (const key in frame) {
    if (
      key !== 'v' &&
      key !== 't' &&
      key !== 'rid' &&
      key !== 'to' &&
      key !== 'id' &&
      key !== 'env'
    ) {
      return undefined;
    }
  }
  const rid = frame['rid'];
  if (typeof rid !== 'number' || !Number.isInteger(rid) || rid < 0 || rid > MAX_REQUEST_ID) {
    return undefined;
  }
  const to = frame['to'];
  if (typeof to !== 'string' || to.length !== MAILBOX_ID_CHARS || !isCanonicalBase64url(to)) {
    return undefined;
  }
  const id = frame['id'];
  if (!isMessageId(id)) return undefined;
  const env = frame['env'];
  if (typeof env !== 'string') return undefined;
  const envBytes = base64urlDecodedLength(env.length);
  if (envBytes < 1 || envBytes > MAX_ENVELOPE_BYTES || !isCanonicalBase64url(env)) {
    return undefined;
  }
  // A fresh object with the keys in schema order, as zod returns it.
  return { v: PROTOCOL_VERSION, t: 'send', rid, to, id, env };
}

function fastAck(frame: Record<string, unknown>): FastClientFrame | undefined {
  for (const key in frame) {
    if (key !== 'v' && key !== 't' && key !== 'ids') return undefined;
  }
  const ids = frame['ids'];
  if (!Array.isArray(ids) || ids.length < 1 || ids.length > MAX_ACK_IDS) return undefined;
  for (let i = 0; i < ids.length; i++) {
    if (!isMessageId(ids[i])) return undefined;
  }
  // A copy, as zod returns one; the caller may keep it after the parsed JSON is gone.
  return { v: PROTOCOL_VERSION, t: 'ack', ids: ids.slice() as string[] };
}
