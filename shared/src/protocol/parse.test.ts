import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { toBase64url } from './base64url.js';
import { encodeDeliverFrame } from './encode.js';
import { ErrorCode } from './errors.js';
import type { ClientFrame, ServerFrame } from './frames.js';
import {
  MAX_ACK_IDS,
  MAX_ENVELOPE_BYTES,
  MAX_ONE_TIME_PREKEY_BYTES,
  MAX_ONE_TIME_PREKEYS_PER_PUBLISH,
  MAX_PREKEY_PART_BYTES,
  MAX_REQUEST_ID,
  MAX_STATE_BLOB_BYTES,
  MAX_STATE_GENERATION,
} from './limits.js';
import { encodeFrame, errorFrame, parseClientFrame, parseServerFrame } from './parse.js';

const b64 = (n: number, fill = 1) => toBase64url(new Uint8Array(n).fill(fill));
const MAILBOX = b64(32, 2);
const MSG_ID = b64(16, 3);

/** One valid frame of every client type. */
const VALID_CLIENT: Record<ClientFrame['t'], Record<string, unknown>> = {
  auth: { v: 1, t: 'auth', rid: 1, pk: b64(32), sig: b64(64) },
  send: { v: 1, t: 'send', rid: 2, to: MAILBOX, id: MSG_ID, env: b64(100) },
  ack: { v: 1, t: 'ack', ids: [MSG_ID] },
  ping: { v: 1, t: 'ping', rid: 3 },
  'prekeys.publish': {
    v: 1,
    t: 'prekeys.publish',
    rid: 4,
    identity: b64(64),
    signedPrekey: b64(100),
    oneTime: [
      { id: 0, key: b64(32) },
      { id: 4_294_967_295, key: b64(32) },
    ],
  },
  'prekeys.fetch': { v: 1, t: 'prekeys.fetch', rid: 5, mailbox: MAILBOX },
  'prekeys.status': { v: 1, t: 'prekeys.status', rid: 6 },
  'pow.request': { v: 1, t: 'pow.request', rid: 7, to: MAILBOX },
  'pow.solve': { v: 1, t: 'pow.solve', rid: 8, nonce: b64(16), solution: b64(8) },
  'firstcontact.status': { v: 1, t: 'firstcontact.status', rid: 9 },
  'state.put': { v: 1, t: 'state.put', rid: 10, blob: b64(100), ifGeneration: 0 },
  'state.get': { v: 1, t: 'state.get', rid: 11 },
  'state.delete': { v: 1, t: 'state.delete', rid: 12 },
  'blob.reserve': { v: 1, t: 'blob.reserve', rid: 13 },
};

function client(frame: Record<string, unknown>) {
  return parseClientFrame(JSON.stringify(frame));
}

function expectCode(result: ReturnType<typeof parseClientFrame>, code: ErrorCode, rid?: number) {
  expect(result.ok).toBe(false);
  if (result.ok) return;
  expect(result.error.code).toBe(code);
  if (rid !== undefined) expect(result.error.rid).toBe(rid);
}

describe('parseClientFrame: accepts', () => {
  it.each(Object.keys(VALID_CLIENT))('a valid %s frame', (t) => {
    const result = client(VALID_CLIENT[t as ClientFrame['t']]);
    expect(result).toEqual({ ok: true, value: VALID_CLIENT[t as ClientFrame['t']] });
  });

  it('an envelope of exactly MAX_ENVELOPE_BYTES', () => {
    const result = client({ ...VALID_CLIENT.send, env: b64(MAX_ENVELOPE_BYTES) });
    expect(result.ok).toBe(true);
  });

  it('an ack of exactly MAX_ACK_IDS ids', () => {
    const ids = Array.from({ length: MAX_ACK_IDS }, () => MSG_ID);
    expect(client({ ...VALID_CLIENT.ack, ids }).ok).toBe(true);
  });

  it('the largest request id', () => {
    expect(client({ ...VALID_CLIENT.ping, rid: MAX_REQUEST_ID }).ok).toBe(true);
  });

  it('a publish at every size limit', () => {
    const oneTime = Array.from({ length: MAX_ONE_TIME_PREKEYS_PER_PUBLISH }, (_, id) => ({
      id,
      key: b64(MAX_ONE_TIME_PREKEY_BYTES),
    }));
    const frame = {
      ...VALID_CLIENT['prekeys.publish'],
      identity: b64(MAX_PREKEY_PART_BYTES),
      signedPrekey: b64(MAX_PREKEY_PART_BYTES),
      oneTime,
    };
    expect(client(frame).ok).toBe(true);
  });

  it('a publish without one-time prekeys', () => {
    expect(client({ ...VALID_CLIENT['prekeys.publish'], oneTime: [] }).ok).toBe(true);
  });
});

describe('parseClientFrame: rejects', () => {
  it('text that is not JSON', () => {
    expectCode(parseClientFrame('{"v":1,'), ErrorCode.BAD_FRAME);
    expectCode(parseClientFrame(''), ErrorCode.BAD_FRAME);
  });

  it.each([['null'], ['[]'], ['"send"'], ['42'], ['true']])(
    'JSON that is not an object: %s',
    (t) => {
      expectCode(parseClientFrame(t), ErrorCode.BAD_FRAME);
    },
  );

  it('a frame without a version', () => {
    const { v: _v, ...rest } = VALID_CLIENT.ping;
    expectCode(client(rest), ErrorCode.BAD_FRAME, 3);
  });

  it.each([['1'], [1.5], [null], [true]])('a non-integer version %p', (v) => {
    expectCode(client({ ...VALID_CLIENT.ping, v }), ErrorCode.BAD_FRAME);
  });

  it.each([[0], [2], [-1], [999]])(
    'version %p as unsupported, before reading anything else',
    (v) => {
      // The rest of the frame is nonsense; the version is what gets reported.
      expectCode(
        client({ v, t: 'no-such-type', rid: 9, junk: true }),
        ErrorCode.UNSUPPORTED_VERSION,
        9,
      );
    },
  );

  it('an unknown type', () => {
    expectCode(client({ v: 1, t: 'deliver', rid: 8 }), ErrorCode.UNKNOWN_TYPE, 8);
    expectCode(client({ v: 1, t: '__proto__', rid: 8 }), ErrorCode.UNKNOWN_TYPE);
    expectCode(client({ v: 1, t: 'toString', rid: 8 }), ErrorCode.UNKNOWN_TYPE);
  });

  it('a missing or non-string type', () => {
    expectCode(client({ v: 1, rid: 1 }), ErrorCode.BAD_FRAME, 1);
    expectCode(client({ v: 1, t: 7 }), ErrorCode.BAD_FRAME);
  });

  it.each(Object.keys(VALID_CLIENT))('a %s frame with an unknown key', (t) => {
    expectCode(client({ ...VALID_CLIENT[t as ClientFrame['t']], extra: 1 }), ErrorCode.BAD_FRAME);
  });

  it.each(Object.keys(VALID_CLIENT).filter((t) => t !== 'ack'))(
    'a %s frame without its request id',
    (t) => {
      const { rid: _rid, ...rest } = VALID_CLIENT[t as ClientFrame['t']];
      expectCode(client(rest), ErrorCode.BAD_FRAME);
    },
  );

  it.each([[-1], [MAX_REQUEST_ID + 1], [1.5], ['1']])('a request id of %p', (rid) => {
    expectCode(client({ ...VALID_CLIENT.ping, rid }), ErrorCode.BAD_FRAME);
  });

  it('an auth key or signature of the wrong length', () => {
    expectCode(client({ ...VALID_CLIENT.auth, pk: b64(31) }), ErrorCode.BAD_FRAME, 1);
    expectCode(client({ ...VALID_CLIENT.auth, pk: b64(33) }), ErrorCode.BAD_FRAME, 1);
    expectCode(client({ ...VALID_CLIENT.auth, sig: b64(63) }), ErrorCode.BAD_FRAME, 1);
  });

  it('an auth key in padded or standard base64', () => {
    const padded = Buffer.alloc(32, 1).toString('base64');
    expectCode(client({ ...VALID_CLIENT.auth, pk: padded }), ErrorCode.BAD_FRAME);
  });

  it('a send to a malformed mailbox id', () => {
    expectCode(client({ ...VALID_CLIENT.send, to: b64(31) }), ErrorCode.BAD_FRAME, 2);
    expectCode(client({ ...VALID_CLIENT.send, to: MAILBOX + '=' }), ErrorCode.BAD_FRAME, 2);
    expectCode(client({ ...VALID_CLIENT.send, to: 42 }), ErrorCode.BAD_FRAME, 2);
  });

  it('a send with a malformed message id', () => {
    expectCode(client({ ...VALID_CLIENT.send, id: b64(15) }), ErrorCode.BAD_FRAME, 2);
    expectCode(client({ ...VALID_CLIENT.send, id: b64(17) }), ErrorCode.BAD_FRAME, 2);
  });

  it('an envelope one byte over MAX_ENVELOPE_BYTES, with its own code', () => {
    expectCode(
      client({ ...VALID_CLIENT.send, env: b64(MAX_ENVELOPE_BYTES + 1) }),
      ErrorCode.ENVELOPE_TOO_LARGE,
      2,
    );
  });

  it('an empty envelope', () => {
    expectCode(client({ ...VALID_CLIENT.send, env: '' }), ErrorCode.BAD_FRAME, 2);
  });

  it('an envelope that is not canonical base64url', () => {
    expectCode(client({ ...VALID_CLIENT.send, env: 'Zh' }), ErrorCode.BAD_FRAME, 2);
    expectCode(client({ ...VALID_CLIENT.send, env: 'Zm9v Yg' }), ErrorCode.BAD_FRAME, 2);
    expectCode(client({ ...VALID_CLIENT.send, env: 'Z' }), ErrorCode.BAD_FRAME, 2);
  });

  it('an envelope that is not a string', () => {
    expectCode(client({ ...VALID_CLIENT.send, env: [1, 2] }), ErrorCode.BAD_FRAME, 2);
  });

  it('an ack without ids, with too many, or with a bad one', () => {
    expectCode(client({ ...VALID_CLIENT.ack, ids: [] }), ErrorCode.BAD_FRAME);
    const tooMany = Array.from({ length: MAX_ACK_IDS + 1 }, () => MSG_ID);
    expectCode(client({ ...VALID_CLIENT.ack, ids: tooMany }), ErrorCode.BAD_FRAME);
    expectCode(client({ ...VALID_CLIENT.ack, ids: [MSG_ID, 'x'] }), ErrorCode.BAD_FRAME);
    expectCode(client({ ...VALID_CLIENT.ack, ids: MSG_ID }), ErrorCode.BAD_FRAME);
  });

  it('a publish part one byte over MAX_PREKEY_PART_BYTES', () => {
    const big = b64(MAX_PREKEY_PART_BYTES + 1);
    expectCode(
      client({ ...VALID_CLIENT['prekeys.publish'], identity: big }),
      ErrorCode.BAD_FRAME,
      4,
    );
    expectCode(
      client({ ...VALID_CLIENT['prekeys.publish'], signedPrekey: big }),
      ErrorCode.BAD_FRAME,
      4,
    );
  });

  it('a publish with one prekey too many, or one key too large', () => {
    const tooMany = Array.from({ length: MAX_ONE_TIME_PREKEYS_PER_PUBLISH + 1 }, (_, id) => ({
      id,
      key: b64(32),
    }));
    expectCode(
      client({ ...VALID_CLIENT['prekeys.publish'], oneTime: tooMany }),
      ErrorCode.BAD_FRAME,
    );
    const bigKey = [{ id: 1, key: b64(MAX_ONE_TIME_PREKEY_BYTES + 1) }];
    expectCode(
      client({ ...VALID_CLIENT['prekeys.publish'], oneTime: bigKey }),
      ErrorCode.BAD_FRAME,
    );
  });

  it('a publish with repeated, negative or oversized prekey ids', () => {
    const frame = VALID_CLIENT['prekeys.publish'];
    const dup = [
      { id: 1, key: b64(32) },
      { id: 1, key: b64(32, 9) },
    ];
    expectCode(client({ ...frame, oneTime: dup }), ErrorCode.BAD_FRAME);
    expectCode(client({ ...frame, oneTime: [{ id: -1, key: b64(32) }] }), ErrorCode.BAD_FRAME);
    expectCode(client({ ...frame, oneTime: [{ id: 2 ** 32, key: b64(32) }] }), ErrorCode.BAD_FRAME);
    expectCode(
      client({ ...frame, oneTime: [{ id: 1, key: b64(32), extra: 1 }] }),
      ErrorCode.BAD_FRAME,
    );
  });

  it('a fetch of a malformed mailbox id', () => {
    expectCode(
      client({ ...VALID_CLIENT['prekeys.fetch'], mailbox: 'abc' }),
      ErrorCode.BAD_FRAME,
      5,
    );
  });

  it('a pow.request to a malformed mailbox id, or without one', () => {
    const frame = VALID_CLIENT['pow.request'];
    expectCode(client({ ...frame, to: 'abc' }), ErrorCode.BAD_FRAME, 7);
    expectCode(client({ ...frame, to: b64(31) }), ErrorCode.BAD_FRAME, 7);
    expectCode(client({ v: 1, t: 'pow.request', rid: 7 }), ErrorCode.BAD_FRAME, 7);
  });

  it('a pow.solve with a nonce or solution one byte short or long, or not base64url', () => {
    const frame = VALID_CLIENT['pow.solve'];
    for (const bad of [
      { nonce: b64(15) },
      { nonce: b64(17) },
      { solution: b64(7) },
      { solution: b64(9) },
      { solution: b64(8) + '=' },
      { solution: 12345678 },
      { nonce: undefined },
    ]) {
      expectCode(client({ ...frame, ...bad }), ErrorCode.BAD_FRAME, 8);
    }
  });

  it('frames that try prototype pollution', () => {
    const text = '{"v":1,"t":"ping","rid":1,"__proto__":{"polluted":true}}';
    expectCode(parseClientFrame(text), ErrorCode.BAD_FRAME);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('never throws, whatever the input', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json()), (text) => {
        const result = parseClientFrame(text);
        expect(typeof result.ok).toBe('boolean');
      }),
      { numRuns: 2000 },
    );
  });
});

describe('server frames', () => {
  const deliver: ServerFrame = { v: 1, t: 'deliver', id: MSG_ID, env: b64(10) };

  it('encodeDeliverFrame produces the same frame as the generic encoder', () => {
    const fast = encodeDeliverFrame(MSG_ID, b64(10));
    expect(JSON.parse(fast)).toEqual(JSON.parse(encodeFrame(deliver)));
    expect(parseServerFrame(fast)).toEqual({ ok: true, value: deliver });
  });

  it('errorFrame marks retryable codes and carries the generic message', () => {
    const frame = errorFrame(ErrorCode.UNAVAILABLE, 5);
    expect(frame).toMatchObject({ t: 'error', rid: 5, code: 'unavailable', retryable: true });
    expect(errorFrame(ErrorCode.BAD_FRAME)).toMatchObject({ retryable: false });
    expect(errorFrame(ErrorCode.BAD_FRAME)).not.toHaveProperty('rid');
    expect(parseServerFrame(encodeFrame(frame)).ok).toBe(true);
  });

  it('parses every server frame type', () => {
    const frames: ServerFrame[] = [
      { v: 1, t: 'challenge', nonce: b64(32) },
      { v: 1, t: 'authed', rid: 1, mailbox: MAILBOX },
      { v: 1, t: 'stored', rid: 1, id: MSG_ID },
      deliver,
      { v: 1, t: 'pong', rid: 1 },
      { v: 1, t: 'prekeys.count', rid: 1, remaining: 3 },
      {
        v: 1,
        t: 'prekeys.bundle',
        rid: 1,
        mailbox: MAILBOX,
        bundle: { identity: b64(4), signedPrekey: b64(4), oneTime: null },
      },
      { v: 1, t: 'prekeys.bundle', rid: 1, mailbox: MAILBOX, bundle: null },
      {
        v: 1,
        t: 'pow.challenge',
        rid: 1,
        challenge: { v: 1, nonce: b64(16), bits: 10, exp: 1_700_000_000_000, to: MAILBOX },
      },
      { v: 1, t: 'pow.admitted', rid: 1, to: MAILBOX, sends: 50 },
      { v: 1, t: 'firstcontact.count', rid: 1, admissions: 3, bits: 10, likelySpam: false },
      { v: 1, t: 'state.stored', rid: 1, generation: 7 },
      { v: 1, t: 'state.blob', rid: 1, blob: b64(10), generation: 7 },
      { v: 1, t: 'state.blob', rid: 1, blob: null, generation: 0 },
      { v: 1, t: 'state.deleted', rid: 1 },
      { v: 1, t: 'blob.reserved', rid: 1, id: MSG_ID, token: b64(32), exp: 1_700_000_000_000 },
      errorFrame(ErrorCode.INTERNAL, 1),
    ];
    for (const frame of frames) {
      expect(parseServerFrame(encodeFrame(frame))).toEqual({ ok: true, value: frame });
    }
  });

  it('rejects a server frame with an unknown key, type or version', () => {
    expect(parseServerFrame(JSON.stringify({ ...deliver, extra: 1 })).ok).toBe(false);
    expect(parseServerFrame(JSON.stringify({ ...deliver, t: 'send' })).ok).toBe(false);
    expect(parseServerFrame(JSON.stringify({ ...deliver, v: 2 })).ok).toBe(false);
  });

  it('rejects a challenge with a short nonce and an error with an unknown code', () => {
    expect(parseServerFrame(JSON.stringify({ v: 1, t: 'challenge', nonce: b64(31) })).ok).toBe(
      false,
    );
    const bogus = { ...errorFrame(ErrorCode.INTERNAL), code: 'teapot' };
    expect(parseServerFrame(JSON.stringify(bogus)).ok).toBe(false);
  });

  it('rejects a pow.challenge of another format version, with an unknown key or a bad field', () => {
    const challenge = { v: 1, nonce: b64(16), bits: 10, exp: 5, to: MAILBOX };
    const frame = { v: 1, t: 'pow.challenge', rid: 1, challenge };
    expect(parseServerFrame(JSON.stringify(frame)).ok).toBe(true);
    for (const bad of [
      { v: 2 },
      { extra: 1 },
      { bits: 0 },
      { bits: 33 },
      { bits: 1.5 },
      { exp: -1 },
      { exp: 2 ** 53 },
      { nonce: b64(32) },
      { to: b64(16) },
    ]) {
      const text = JSON.stringify({ ...frame, challenge: { ...challenge, ...bad } });
      expect(parseServerFrame(text).ok).toBe(false);
    }
  });

  it('rejects a pow.admitted without a share of sends, or with one of 0', () => {
    const frame = { v: 1, t: 'pow.admitted', rid: 1, to: MAILBOX, sends: 1 };
    expect(parseServerFrame(JSON.stringify(frame)).ok).toBe(true);
    expect(parseServerFrame(JSON.stringify({ ...frame, sends: 0 })).ok).toBe(false);
    expect(parseServerFrame(JSON.stringify({ ...frame, sends: undefined })).ok).toBe(false);
  });

  it('rejects a firstcontact.count without its flag, with a string count or an unknown key', () => {
    const frame = {
      v: 1,
      t: 'firstcontact.count',
      rid: 1,
      admissions: 3,
      bits: 10,
      likelySpam: true,
    };
    expect(parseServerFrame(JSON.stringify(frame)).ok).toBe(true);
    for (const bad of [
      { likelySpam: undefined },
      { likelySpam: 1 },
      { admissions: '3' },
      { x: 1 },
    ]) {
      expect(parseServerFrame(JSON.stringify({ ...frame, ...bad })).ok).toBe(false);
    }
  });

  it('rejects a count outside its range', () => {
    const frame = { v: 1, t: 'prekeys.count', rid: 1, remaining: 101 };
    expect(parseServerFrame(JSON.stringify(frame)).ok).toBe(false);
    expect(parseServerFrame(JSON.stringify({ ...frame, remaining: -1 })).ok).toBe(false);
  });
});

describe('parseClientFrame: state and blob frames', () => {
  const put = (fields: Record<string, unknown>) =>
    client({ v: 1, t: 'state.put', rid: 20, blob: b64(10), ifGeneration: 5, ...fields });

  it('accepts a state blob of exactly MAX_STATE_BLOB_BYTES and one of 1 byte', () => {
    expect(put({ blob: b64(MAX_STATE_BLOB_BYTES) }).ok).toBe(true);
    expect(put({ blob: b64(1) }).ok).toBe(true);
  });

  it('accepts ifGeneration 0 (create) and MAX_STATE_GENERATION', () => {
    expect(put({ ifGeneration: 0 }).ok).toBe(true);
    expect(put({ ifGeneration: MAX_STATE_GENERATION }).ok).toBe(true);
  });

  it('refuses a state blob one byte over MAX_STATE_BLOB_BYTES, with its own code and the rid', () => {
    expectCode(put({ blob: b64(MAX_STATE_BLOB_BYTES + 1) }), ErrorCode.STATE_TOO_LARGE, 20);
  });

  it('refuses an empty state blob, one not canonical base64url, or not a string', () => {
    expectCode(put({ blob: '' }), ErrorCode.BAD_FRAME, 20);
    expectCode(put({ blob: 'AB' }), ErrorCode.BAD_FRAME, 20);
    expectCode(put({ blob: 'AAA=' }), ErrorCode.BAD_FRAME, 20);
    expectCode(put({ blob: 'AA+/' }), ErrorCode.BAD_FRAME, 20);
    expectCode(put({ blob: 12 }), ErrorCode.BAD_FRAME, 20);
    expectCode(put({ blob: null }), ErrorCode.BAD_FRAME, 20);
  });

  it('refuses a put without ifGeneration, or one negative, fractional, past the bound or a string', () => {
    expectCode(client({ v: 1, t: 'state.put', rid: 20, blob: b64(10) }), ErrorCode.BAD_FRAME, 20);
    for (const ifGeneration of [-1, 1.5, MAX_STATE_GENERATION + 1, '1', null]) {
      expectCode(put({ ifGeneration }), ErrorCode.BAD_FRAME, 20);
    }
  });

  it('refuses an unknown key on every state and blob frame', () => {
    for (const t of ['state.put', 'state.get', 'state.delete', 'blob.reserve'] as const) {
      expectCode(client({ ...VALID_CLIENT[t], mailbox: MAILBOX }), ErrorCode.BAD_FRAME);
    }
  });

  it('refuses state and blob frames without a rid, or with one out of range', () => {
    for (const t of ['state.get', 'state.delete', 'blob.reserve'] as const) {
      expectCode(client({ v: 1, t }), ErrorCode.BAD_FRAME);
      expectCode(client({ v: 1, t, rid: -1 }), ErrorCode.BAD_FRAME);
      expectCode(client({ v: 1, t, rid: MAX_REQUEST_ID + 1 }), ErrorCode.BAD_FRAME);
    }
  });
});
