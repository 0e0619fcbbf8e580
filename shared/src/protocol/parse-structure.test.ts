/**
 * The structural pre-check of `parseClientFrame`: a text with more objects, arrays, quotes or
 * commas than any valid v1 frame can hold is refused before JSON.parse, which would otherwise
 * spend milliseconds on it (deep nesting, thousands of keys) before any rate limit counts it.
 * Maximal valid frames are built from the limits, so a limit that grows without the bounds
 * following it fails here.
 */
import { describe, expect, it } from '@jest/globals';
import { toBase64url } from './base64url.js';
import { ErrorCode } from './errors.js';
import type { ClientFrameType } from './frames.js';
import {
  AUTH_NONCE_BYTES,
  ED25519_PUBLIC_KEY_BYTES,
  ED25519_SIGNATURE_BYTES,
  MAILBOX_ID_BYTES,
  MAX_ACK_IDS,
  MAX_ENVELOPE_BYTES,
  MAX_FRAME_BYTES,
  MAX_ONE_TIME_PREKEY_BYTES,
  MAX_ONE_TIME_PREKEYS_PER_PUBLISH,
  MAX_PREKEY_ID,
  MAX_PREKEY_PART_BYTES,
  MAX_REQUEST_ID,
  MAX_STATE_BLOB_BYTES,
  MAX_STATE_GENERATION,
  MESSAGE_ID_BYTES,
  POW_NONCE_BYTES,
  POW_SOLUTION_BYTES,
} from './limits.js';
import { parseClientFrame, parseClientFrameReference, type ParseResult } from './parse.js';

const b64 = (n: number, fill = 7) => toBase64url(new Uint8Array(n).fill(fill));
/** Distinct ids, as a client would send them. */
const messageIds = (n: number) =>
  Array.from({ length: n }, (_, i) => {
    const bytes = new Uint8Array(MESSAGE_ID_BYTES);
    new DataView(bytes.buffer).setUint32(0, i);
    return toBase64url(bytes);
  });

/** The largest valid frame of every client type, each field at its limit. */
const MAXIMAL: Record<ClientFrameType, Record<string, unknown>> = {
  auth: {
    v: 1,
    t: 'auth',
    rid: MAX_REQUEST_ID,
    pk: b64(ED25519_PUBLIC_KEY_BYTES),
    sig: b64(ED25519_SIGNATURE_BYTES),
  },
  send: {
    v: 1,
    t: 'send',
    rid: MAX_REQUEST_ID,
    to: b64(MAILBOX_ID_BYTES),
    id: b64(MESSAGE_ID_BYTES),
    env: b64(MAX_ENVELOPE_BYTES),
  },
  ack: { v: 1, t: 'ack', ids: messageIds(MAX_ACK_IDS) },
  ping: { v: 1, t: 'ping', rid: MAX_REQUEST_ID },
  'prekeys.publish': {
    v: 1,
    t: 'prekeys.publish',
    rid: MAX_REQUEST_ID,
    identity: b64(MAX_PREKEY_PART_BYTES),
    signedPrekey: b64(MAX_PREKEY_PART_BYTES),
    oneTime: Array.from({ length: MAX_ONE_TIME_PREKEYS_PER_PUBLISH }, (_, i) => ({
      id: MAX_PREKEY_ID - i,
      key: b64(MAX_ONE_TIME_PREKEY_BYTES),
    })),
  },
  'prekeys.fetch': { v: 1, t: 'prekeys.fetch', rid: MAX_REQUEST_ID, mailbox: b64(32) },
  'prekeys.status': { v: 1, t: 'prekeys.status', rid: MAX_REQUEST_ID },
  'pow.request': { v: 1, t: 'pow.request', rid: MAX_REQUEST_ID, to: b64(MAILBOX_ID_BYTES) },
  'pow.solve': {
    v: 1,
    t: 'pow.solve',
    rid: MAX_REQUEST_ID,
    nonce: b64(POW_NONCE_BYTES),
    solution: b64(POW_SOLUTION_BYTES),
  },
  'firstcontact.status': { v: 1, t: 'firstcontact.status', rid: MAX_REQUEST_ID },
  'state.put': {
    v: 1,
    t: 'state.put',
    rid: MAX_REQUEST_ID,
    blob: b64(MAX_STATE_BLOB_BYTES),
    ifGeneration: MAX_STATE_GENERATION,
  },
  'state.get': { v: 1, t: 'state.get', rid: MAX_REQUEST_ID },
  'state.delete': { v: 1, t: 'state.delete', rid: MAX_REQUEST_ID },
  'blob.reserve': { v: 1, t: 'blob.reserve', rid: MAX_REQUEST_ID },
};

/** Both parsers, which must agree on every input. */
function parseBoth(text: string): ParseResult<unknown> {
  const result = parseClientFrame(text);
  expect(parseClientFrameReference(text)).toEqual(result);
  return result;
}

function expectStructureRejected(text: string): void {
  expect(parseBoth(text)).toEqual({
    ok: false,
    error: { code: ErrorCode.BAD_FRAME, detail: 'structure' },
  });
}

/** The detail of a rejection, or 'accepted'. */
function outcome(text: string): string {
  const result = parseBoth(text);
  return result.ok ? 'accepted' : (result.error.detail ?? result.error.code);
}

describe('parseClientFrame structure bounds: accepts', () => {
  it.each(Object.keys(MAXIMAL))('a maximal valid %s frame', (t) => {
    const frame = MAXIMAL[t as ClientFrameType];
    const text = JSON.stringify(frame);
    expect(text.length).toBeLessThanOrEqual(MAX_FRAME_BYTES);
    expect(parseBoth(text)).toEqual({ ok: true, value: frame });
  });

  it('a maximal ack and publish written with whitespace and escaped key names', () => {
    for (const t of ['ack', 'prekeys.publish'] as const) {
      const text = JSON.stringify(MAXIMAL[t], null, 1).replace('"v"', '"\\u0076"');
      expect(parseBoth(text)).toEqual({ ok: true, value: MAXIMAL[t] });
    }
  });

  it('text with exactly as many of each structural character as the bound (then JSON decides)', () => {
    // At each bound the pre-check lets the text through; JSON.parse then finds it malformed.
    expect(outcome('['.repeat(1))).toBe('json');
    expect(outcome('{'.repeat(MAX_ONE_TIME_PREKEYS_PER_PUBLISH + 1))).toBe('json');
    expect(outcome('"'.repeat(2 * 3 + 2 + 2 * MAX_ACK_IDS))).toBe('json');
    expect(outcome(','.repeat(2 + MAX_ACK_IDS - 1))).toBe('json');
  });
});

describe('parseClientFrame structure bounds: rejects with bad_frame before JSON.parse', () => {
  it('text with one structural character past each bound', () => {
    expectStructureRejected('['.repeat(2));
    expectStructureRejected('{'.repeat(MAX_ONE_TIME_PREKEYS_PER_PUBLISH + 2));
    expectStructureRejected('"'.repeat(2 * 3 + 2 + 2 * MAX_ACK_IDS + 1));
    expectStructureRejected(','.repeat(2 + MAX_ACK_IDS));
  });

  it('an ack of MAX_ACK_IDS + 1 ids', () => {
    expectStructureRejected(JSON.stringify({ ...MAXIMAL.ack, ids: messageIds(MAX_ACK_IDS + 1) }));
  });

  it('a send with a nested array where a string belongs', () => {
    expectStructureRejected('{"v":1,"t":"send","rid":1,"to":[[1]],"id":"","env":""}');
  });

  it('a frame-sized text of arrays nested ~49,000 levels deep', () => {
    const depth = MAX_FRAME_BYTES >> 1;
    expectStructureRejected('['.repeat(depth) + ']'.repeat(depth));
  });

  it('a frame-sized text of objects nested deep', () => {
    const depth = Math.floor(MAX_FRAME_BYTES / 7);
    expectStructureRejected('{"a":'.repeat(depth) + '1' + '}'.repeat(depth));
  });

  it('an object of 9,000 keys', () => {
    const keys = Array.from({ length: 9_000 }, (_, i) => `"k${i}":1`).join(',');
    expectStructureRejected(`{"v":1,"t":"ping","rid":1,${keys}}`);
  });

  it('an ack whose ids are an array of 48,000 numbers', () => {
    const numbers = new Array<string>(48_000).fill('0').join(',');
    expectStructureRejected(`{"v":1,"t":"ack","ids":[${numbers}]}`);
  });

  it('a maximal ack with one key too many, and one that repeats its ids key', () => {
    const ack = JSON.stringify(MAXIMAL.ack);
    expectStructureRejected(ack.replace('{', '{"x":1,'));
    expectStructureRejected(ack.replace('{', `{"ids":${JSON.stringify(messageIds(1))},`));
  });

  it('a send whose envelope hides structural characters in a string', () => {
    // Inside a string they are no structure, but no valid frame has them there either.
    expectStructureRejected(JSON.stringify({ ...MAXIMAL.send, env: '"'.repeat(600) }));
    expectStructureRejected(JSON.stringify({ ...MAXIMAL.send, env: '[['.repeat(10) }));
  });

  it('a publish with one more one-time prekey object than a publish may carry, before zod', () => {
    const oneTime = [...(MAXIMAL['prekeys.publish']['oneTime'] as unknown[]), { id: 0, key: 'AA' }];
    const result = parseBoth(JSON.stringify({ ...MAXIMAL['prekeys.publish'], oneTime }));
    expect(result).toEqual({
      ok: false,
      error: { code: ErrorCode.BAD_FRAME, detail: 'structure' },
    });
  });
});

describe('parseClientFrame structure bounds: unchanged for small invalid frames', () => {
  it('still echoes the rid of a small invalid frame, which the pre-check lets through', () => {
    const result = parseBoth(JSON.stringify({ v: 1, t: 'ping', rid: 5, extra: AUTH_NONCE_BYTES }));
    expect(result).toMatchObject({ ok: false, error: { code: ErrorCode.BAD_FRAME, rid: 5 } });
  });
});
