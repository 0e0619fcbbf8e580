/**
 * The one way bytes from the network become frames. Input is `unknown` until it has passed,
 * in order: (client frames only) the structural bounds, JSON, an object, the version, a known
 * type, then the type's strict schema. Each failure has its own stable code; nothing here
 * throws. The zod schemas are the definition; valid `send` and `ack` frames take a hand-written
 * shortcut that accepts exactly the same frames (fast-parse.ts, and ADR 0009).
 */
import type { z } from 'zod';
import { base64urlDecodedLength, isCanonicalBase64url } from './base64url.js';
import { ERROR_MESSAGES, ErrorCode, RETRYABLE_CODES } from './errors.js';
import { fastParseClientFrame } from './fast-parse.js';
import {
  CLIENT_FRAME_SCHEMAS,
  SERVER_FRAME_SCHEMAS,
  type ClientFrame,
  type ServerFrame,
} from './frames.js';
import {
  MAX_ACK_IDS,
  MAX_ENVELOPE_BYTES,
  MAX_ONE_TIME_PREKEYS_PER_PUBLISH,
  MAX_REQUEST_ID,
  MAX_STATE_BLOB_BYTES,
  PROTOCOL_VERSION,
} from './limits.js';

/** Why a frame was rejected. `rid` is echoed when the rejected frame carried a valid one. */
export interface FrameError {
  readonly code: ErrorCode;
  readonly rid?: number;
  /** Which field failed (a path, never a value), for the relay's own debugging. */
  readonly detail?: string;
}

export type ParseResult<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: FrameError };

/** Turns unknown data into a typed value or a `bad_frame` error; never throws. */
export function parseUnknown<S extends z.ZodType>(
  schema: S,
  data: unknown,
): ParseResult<z.infer<S>> {
  const result = schema.safeParse(data);
  if (result.success) return { ok: true, value: result.data };
  const issue = result.error.issues[0];
  return {
    ok: false,
    error: { code: ErrorCode.BAD_FRAME, detail: issue ? issue.path.join('.') || issue.code : '' },
  };
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function validRid(x: unknown): number | undefined {
  return typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= MAX_REQUEST_ID
    ? x
    : undefined;
}

function fail(code: ErrorCode, rid: number | undefined, detail?: string): ParseResult<never> {
  const error: FrameError = {
    code,
    ...(rid === undefined ? {} : { rid }),
    ...(detail === undefined ? {} : { detail }),
  };
  return { ok: false, error };
}

/** What `parseJson` returns for text that is not JSON (JSON.parse never returns a symbol). */
const NOT_JSON: unique symbol = Symbol('not JSON');

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return NOT_JSON;
  }
}

function parseDataWith<F>(
  data: unknown,
  schemas: Readonly<Record<string, z.ZodType>>,
): ParseResult<F> {
  if (data === NOT_JSON) return fail(ErrorCode.BAD_FRAME, undefined, 'json');
  if (!isRecord(data)) return fail(ErrorCode.BAD_FRAME, undefined, 'not an object');
  const rid = validRid(data['rid']);
  // The version comes first: a frame of another version is not read any further.
  const v = data['v'];
  if (typeof v !== 'number' || !Number.isInteger(v)) return fail(ErrorCode.BAD_FRAME, rid, 'v');
  if (v !== PROTOCOL_VERSION) return fail(ErrorCode.UNSUPPORTED_VERSION, rid);
  const t = data['t'];
  if (typeof t !== 'string') return fail(ErrorCode.BAD_FRAME, rid, 't');
  const schema = Object.hasOwn(schemas, t) ? schemas[t] : undefined;
  if (!schema) return fail(ErrorCode.UNKNOWN_TYPE, rid);
  const parsed = parseUnknown(schema, data);
  if (!parsed.ok) return fail(parsed.error.code, rid, parsed.error.detail);
  return { ok: true, value: parsed.value as F };
}

/** The zod path for a client frame: `data` is what JSON.parse made of the text, or NOT_JSON. */
function clientFrameFromData(data: unknown): ParseResult<ClientFrame> {
  const result = parseDataWith<ClientFrame>(data, CLIENT_FRAME_SCHEMAS);
  if (result.ok && result.value.t === 'state.put') {
    // Like the envelope: a too-large state blob has its own code.
    const blob = result.value.blob;
    const bytes = base64urlDecodedLength(blob.length);
    if (bytes > MAX_STATE_BLOB_BYTES) return fail(ErrorCode.STATE_TOO_LARGE, result.value.rid);
    if (bytes < 1 || !isCanonicalBase64url(blob)) {
      return fail(ErrorCode.BAD_FRAME, result.value.rid, 'blob');
    }
    return result;
  }
  if (!result.ok || result.value.t !== 'send') return result;
  // The envelope gets its own check so that a too-large one has its own code.
  const env = result.value.env;
  const bytes = base64urlDecodedLength(env.length);
  if (bytes > MAX_ENVELOPE_BYTES) {
    return fail(ErrorCode.ENVELOPE_TOO_LARGE, result.value.rid);
  }
  if (bytes < 1 || !isCanonicalBase64url(env)) {
    return fail(ErrorCode.BAD_FRAME, result.value.rid, 'env');
  }
  return result;
}

/*
 * Structural bounds of a client frame, checked before JSON.parse. A frame of up to
 * MAX_FRAME_BYTES nested tens of thousands of levels deep, or an object of thousands of keys,
 * costs JSON.parse milliseconds, some thirty times a maximal valid `send`, and that before any
 * rate limit can count the frame. No valid v1 client frame has a '{', '[', '"' or ',' inside a
 * string (every string value is base64url or a type name, every key one of the schema's), so
 * in a valid frame the counts of these characters are those of its structure:
 *
 *   '{'  a maximal prekeys.publish: the frame and MAX_ONE_TIME_PREKEYS_PER_PUBLISH one-time
 *        prekey objects: 1 + 32 = 33
 *   '['  ack (`ids`) and prekeys.publish (`oneTime`) have one array, other frames none: 1
 *   '"'  a maximal ack: 3 keys (v, t, ids) × 2 + its type × 2 + MAX_ACK_IDS ids × 2
 *        = 6 + 2 + 512 = 520;
 *        a maximal prekeys.publish: 6 keys × 2 + 3 strings (t, identity, signedPrekey) × 2 +
 *        32 × (2 keys (id, key) × 2 + the key × 2) = 12 + 6 + 192 = 210;
 *        every other frame has fewer (a send: 6 × 2 + 4 × 2 = 20)
 *   ','  a maximal ack: 2 between its 3 keys + MAX_ACK_IDS - 1 between ids = 257;
 *        a maximal prekeys.publish: 5 between its 6 keys + 31 between the 32 one-time prekeys
 *        + 1 inside each = 68; a send 5. (Without this bound an array of ~48,000 numbers
 *        passes the other three and costs JSON.parse half a millisecond.)
 *
 * A frame over a bound cannot be valid, save one that repeats keys (JSON allows it, and the
 * last value counts): one that repeats them past the bound is refused too; no encoder writes
 * one. The count is what shows it, so it does not matter where in the text the characters are.
 */
const MAX_OPEN_BRACES = 1 + MAX_ONE_TIME_PREKEYS_PER_PUBLISH;
const MAX_OPEN_BRACKETS = 1;
const MAX_QUOTES = Math.max(
  3 * 2 + 2 + MAX_ACK_IDS * 2,
  6 * 2 + 3 * 2 + MAX_ONE_TIME_PREKEYS_PER_PUBLISH * (2 * 2 + 2),
);
const MAX_COMMAS = Math.max(
  2 + (MAX_ACK_IDS - 1),
  5 + (MAX_ONE_TIME_PREKEYS_PER_PUBLISH - 1) + MAX_ONE_TIME_PREKEYS_PER_PUBLISH,
);

/**
 * True when `char` occurs at most `max` times in `text`. A loop of native `indexOf` searches,
 * not a JS loop over every character: this runs on every frame, maximal sends included, and
 * stops at the first occurrence past `max`.
 */
function occursAtMost(text: string, char: string, max: number): boolean {
  let count = 0;
  for (let i = text.indexOf(char); i !== -1; i = text.indexOf(char, i + 1)) {
    if (++count > max) return false;
  }
  return true;
}

/** True unless `text` has more objects, arrays, quotes or commas than any valid client frame. */
function withinStructureBounds(text: string): boolean {
  return (
    occursAtMost(text, '[', MAX_OPEN_BRACKETS) &&
    occursAtMost(text, '{', MAX_OPEN_BRACES) &&
    occursAtMost(text, '"', MAX_QUOTES) &&
    occursAtMost(text, ',', MAX_COMMAS)
  );
}

/**
 * Parses one text message from a client. A text with more objects, arrays, quotes or commas than
 * any valid frame is refused before JSON.parse (`bad_frame`, detail 'structure', no rid).
 * Valid `send` and `ack` frames (the hot path) are accepted by a hand-written validator
 * (fast-parse.ts); every other frame, and every frame that validator does not accept, goes
 * through the zod schemas, which produce all errors.
 * The result is the same as `parseClientFrameReference`'s for every input.
 */
export function parseClientFrame(text: string): ParseResult<ClientFrame> {
  if (!withinStructureBounds(text)) return fail(ErrorCode.BAD_FRAME, undefined, 'structure');
  const data = parseJson(text);
  const fast = fastParseClientFrame(data);
  if (fast !== undefined) return { ok: true, value: fast };
  return clientFrameFromData(data);
}

/**
 * Parses one text message from a client with the zod schemas alone: the definition that
 * `parseClientFrame` must match, kept for the differential test and the micro-benchmark.
 */
export function parseClientFrameReference(text: string): ParseResult<ClientFrame> {
  if (!withinStructureBounds(text)) return fail(ErrorCode.BAD_FRAME, undefined, 'structure');
  return clientFrameFromData(parseJson(text));
}

/** Parses one text message from the relay. */
export function parseServerFrame(text: string): ParseResult<ServerFrame> {
  return parseDataWith<ServerFrame>(parseJson(text), SERVER_FRAME_SCHEMAS);
}

/**
 * Serialises a frame object. Frames are plain JSON. The relay writes its frames with the
 * encoders of encode.ts, which give the same text as this for the same frame.
 */
export function encodeFrame(frame: ClientFrame | ServerFrame): string {
  return JSON.stringify(frame);
}

/** The error frame for a failure, with the generic message for its code. */
export function errorFrame(code: ErrorCode, rid?: number): ServerFrame {
  return {
    v: PROTOCOL_VERSION,
    t: 'error',
    ...(rid === undefined ? {} : { rid }),
    code,
    retryable: RETRYABLE_CODES.has(code),
    message: ERROR_MESSAGES[code],
  };
}
