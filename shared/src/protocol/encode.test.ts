import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { toBase64url } from './base64url.js';
import {
  encodeAuthedFrame,
  encodeChallengeFrame,
  encodeDeliverFrame,
  encodeErrorFrame,
  encodeFirstContactCountFrame,
  encodePongFrame,
  encodePowAdmittedFrame,
  encodePowChallengeFrame,
  encodePrekeysBundleFrame,
  encodePrekeysCountFrame,
  encodeStoredFrame,
  encodeBlobReservedFrame,
  encodeStateBlobFrame,
  encodeStateDeletedFrame,
  encodeStateStoredFrame,
  type EncodableBundle,
} from './encode.js';
import { ErrorCode } from './errors.js';
import { SERVER_FRAME_SCHEMAS, type ServerFrame, type ServerFrameType } from './frames.js';
import {
  AUTH_NONCE_BYTES,
  BLOB_ID_BYTES,
  BLOB_TOKEN_BYTES,
  MAILBOX_ID_BYTES,
  MAX_STATE_BLOB_BYTES,
  MAX_STATE_GENERATION,
  MAX_ENVELOPE_BYTES,
  MAX_FRAME_BYTES,
  MAX_ONE_TIME_PREKEYS_STORED,
  MAX_ONE_TIME_PREKEY_BYTES,
  MAX_PREKEY_ID,
  MAX_FIRST_CONTACT_COUNT,
  MAX_POW_SENDS_PER_ADMISSION,
  MAX_PREKEY_PART_BYTES,
  MAX_REQUEST_ID,
  MESSAGE_ID_BYTES,
  POW_MAX_BITS,
  POW_MIN_BITS,
  POW_NONCE_BYTES,
} from './limits.js';
import { encodeFrame, errorFrame, parseServerFrame } from './parse.js';

/*
 * The wire as the relay wrote it before the encoders existed, copied verbatim from
 * server/src/relay/connection.ts and parse.ts: the encoders must stay byte for byte the same.
 */
const V = 1;
const legacy = {
  challenge: (nonce: string) => `{"v":${V},"t":"challenge","nonce":"${nonce}"}`,
  authed: (rid: number, mailbox: string) =>
    `{"v":${V},"t":"authed","rid":${rid},"mailbox":"${mailbox}"}`,
  stored: (rid: number, id: string) => `{"v":${V},"t":"stored","rid":${rid},"id":"${id}"}`,
  deliver: (id: string, env: string) => `{"v":${V},"t":"deliver","id":"${id}","env":"${env}"}`,
  pong: (rid: number) => `{"v":${V},"t":"pong","rid":${rid}}`,
  count: (rid: number, remaining: number) =>
    `{"v":${V},"t":"prekeys.count","rid":${rid},"remaining":${remaining}}`,
  bundle: (rid: number, mailbox: string, bundle: EncodableBundle) =>
    encodeFrame({
      v: V,
      t: 'prekeys.bundle',
      rid,
      mailbox,
      bundle:
        bundle === null
          ? null
          : {
              identity: bundle.identity,
              signedPrekey: bundle.signedPrekey,
              oneTime: bundle.oneTime,
            },
    }),
  error: (code: ErrorCode, rid?: number) => encodeFrame(errorFrame(code, rid)),
};

const b64 = (n: number, fill = 1) => toBase64url(new Uint8Array(n).fill(fill));

/**
 * The encoder's output against the frame object it stands for: the same text as
 * JSON.stringify of the object (keys in schema order), accepted by that type's zod schema,
 * parsed back into the same object (-0, key order and all), and re-encoded to the same text.
 */
function expectEncodes(text: string, frame: ServerFrame): void {
  expect(text).toBe(JSON.stringify(frame));
  const schema = SERVER_FRAME_SCHEMAS[frame.t];
  expect(schema.safeParse(JSON.parse(text)).success).toBe(true);
  const parsed = parseServerFrame(text);
  expect(parsed).toStrictEqual({ ok: true, value: frame });
  if (parsed.ok) expect(JSON.stringify(parsed.value)).toBe(text);
  expect(text.length).toBeLessThanOrEqual(MAX_FRAME_BYTES);
}

function expectRejectedByParser(text: string): void {
  expect(parseServerFrame(text).ok).toBe(false);
}

// Arbitraries of valid field values, edges weighted in.
/** fast-check's records are not plain objects, which toStrictEqual would tell apart. */
const plain = <T extends object>(record: T): T => ({ ...record });
const bytesOf = (n: number) =>
  fc.uint8Array({ minLength: n, maxLength: n }).map((bytes) => toBase64url(bytes));
const bytesUpTo = (max: number) =>
  fc
    .oneof(
      { weight: 4, arbitrary: fc.integer({ min: 1, max: Math.min(max, 300) }) },
      { weight: 1, arbitrary: fc.constantFrom(1, 2, 3, max - 1, max) },
    )
    .chain(bytesOf);
const rid = fc.oneof(
  fc.integer({ min: 0, max: MAX_REQUEST_ID }),
  fc.constantFrom(0, 1, MAX_REQUEST_ID - 1, MAX_REQUEST_ID),
);
const mailboxId = bytesOf(MAILBOX_ID_BYTES);
const messageId = bytesOf(MESSAGE_ID_BYTES);
const nonce = bytesOf(AUTH_NONCE_BYTES);
const envelope = bytesUpTo(MAX_ENVELOPE_BYTES);
const remaining = fc.oneof(
  fc.integer({ min: 0, max: MAX_ONE_TIME_PREKEYS_STORED }),
  fc.constantFrom(0, MAX_ONE_TIME_PREKEYS_STORED),
);
const oneTime = fc.option(
  fc
    .record({
      id: fc.oneof(fc.integer({ min: 0, max: MAX_PREKEY_ID }), fc.constantFrom(0, MAX_PREKEY_ID)),
      key: bytesUpTo(MAX_ONE_TIME_PREKEY_BYTES),
    })
    .map(plain),
);
const bundle: fc.Arbitrary<EncodableBundle> = fc.option(
  fc
    .record({
      identity: bytesUpTo(MAX_PREKEY_PART_BYTES),
      signedPrekey: bytesUpTo(MAX_PREKEY_PART_BYTES),
      oneTime,
    })
    .map(plain),
);
const errorCode = fc.constantFrom(...Object.values(ErrorCode));
const powChallenge = fc
  .record({
    v: fc.constant(1 as const),
    nonce: bytesOf(POW_NONCE_BYTES),
    bits: fc.oneof(
      fc.integer({ min: POW_MIN_BITS, max: POW_MAX_BITS }),
      fc.constantFrom(POW_MIN_BITS, POW_MAX_BITS),
    ),
    exp: fc.oneof(fc.nat(), fc.constantFrom(0, Number.MAX_SAFE_INTEGER)),
    to: mailboxId,
  })
  .map(plain);
const sends = fc.oneof(
  fc.integer({ min: 1, max: MAX_POW_SENDS_PER_ADMISSION }),
  fc.constantFrom(1, MAX_POW_SENDS_PER_ADMISSION),
);
const generation = fc.oneof(
  fc.integer({ min: 1, max: MAX_STATE_GENERATION }),
  fc.constantFrom(1, MAX_STATE_GENERATION),
);
const stateBlob = bytesUpTo(MAX_STATE_BLOB_BYTES);
const RUNS = { numRuns: 300 };

describe('server frame encoders: differential against the zod schemas and the old wire', () => {
  it('challenge', () => {
    fc.assert(
      fc.property(nonce, (n) => {
        const text = encodeChallengeFrame(n);
        expect(text).toBe(legacy.challenge(n));
        expectEncodes(text, { v: 1, t: 'challenge', nonce: n });
      }),
      RUNS,
    );
  });

  it('authed', () => {
    fc.assert(
      fc.property(rid, mailboxId, (r, mailbox) => {
        const text = encodeAuthedFrame(r, mailbox);
        expect(text).toBe(legacy.authed(r, mailbox));
        expectEncodes(text, { v: 1, t: 'authed', rid: r, mailbox });
      }),
      RUNS,
    );
  });

  it('stored', () => {
    fc.assert(
      fc.property(rid, messageId, (r, id) => {
        const text = encodeStoredFrame(r, id);
        expect(text).toBe(legacy.stored(r, id));
        expectEncodes(text, { v: 1, t: 'stored', rid: r, id });
      }),
      RUNS,
    );
  });

  it('deliver', () => {
    fc.assert(
      fc.property(messageId, envelope, (id, env) => {
        const text = encodeDeliverFrame(id, env);
        expect(text).toBe(legacy.deliver(id, env));
        expectEncodes(text, { v: 1, t: 'deliver', id, env });
      }),
      { numRuns: 100 },
    );
  });

  it('pong', () => {
    fc.assert(
      fc.property(rid, (r) => {
        const text = encodePongFrame(r);
        expect(text).toBe(legacy.pong(r));
        expectEncodes(text, { v: 1, t: 'pong', rid: r });
      }),
      RUNS,
    );
  });

  it('prekeys.count', () => {
    fc.assert(
      fc.property(rid, remaining, (r, left) => {
        const text = encodePrekeysCountFrame(r, left);
        expect(text).toBe(legacy.count(r, left));
        expectEncodes(text, { v: 1, t: 'prekeys.count', rid: r, remaining: left });
      }),
      RUNS,
    );
  });

  it('prekeys.bundle', () => {
    fc.assert(
      fc.property(rid, mailboxId, bundle, (r, mailbox, b) => {
        const text = encodePrekeysBundleFrame(r, mailbox, b);
        expect(text).toBe(legacy.bundle(r, mailbox, b));
        expectEncodes(text, { v: 1, t: 'prekeys.bundle', rid: r, mailbox, bundle: b });
      }),
      { numRuns: 100 },
    );
  });

  it('pow.challenge', () => {
    fc.assert(
      fc.property(rid, powChallenge, (r, challenge) => {
        const text = encodePowChallengeFrame(r, challenge);
        expectEncodes(text, { v: 1, t: 'pow.challenge', rid: r, challenge });
      }),
      RUNS,
    );
  });

  it('pow.admitted', () => {
    fc.assert(
      fc.property(rid, mailboxId, sends, (r, to, n) => {
        const text = encodePowAdmittedFrame(r, to, n);
        expectEncodes(text, { v: 1, t: 'pow.admitted', rid: r, to, sends: n });
      }),
      RUNS,
    );
  });

  it('firstcontact.count', () => {
    const admissions = fc.oneof(
      fc.integer({ min: 0, max: MAX_FIRST_CONTACT_COUNT }),
      fc.constantFrom(0, MAX_FIRST_CONTACT_COUNT),
    );
    const bits = fc.integer({ min: POW_MIN_BITS, max: POW_MAX_BITS });
    fc.assert(
      fc.property(rid, admissions, bits, fc.boolean(), (r, n, b, likelySpam) => {
        const text = encodeFirstContactCountFrame(r, n, b, likelySpam);
        expectEncodes(text, {
          v: 1,
          t: 'firstcontact.count',
          rid: r,
          admissions: n,
          bits: b,
          likelySpam,
        });
      }),
      RUNS,
    );
  });

  it('state.stored', () => {
    fc.assert(
      fc.property(rid, generation, (r, g) => {
        expectEncodes(encodeStateStoredFrame(r, g), {
          v: 1,
          t: 'state.stored',
          rid: r,
          generation: g,
        });
      }),
      RUNS,
    );
  });

  it('state.blob, with a blob and with none', () => {
    fc.assert(
      fc.property(rid, fc.option(fc.record({ blob: stateBlob, generation })), (r, held) => {
        expectEncodes(encodeStateBlobFrame(r, held), {
          v: 1,
          t: 'state.blob',
          rid: r,
          blob: held === null ? null : held.blob,
          generation: held === null ? 0 : held.generation,
        });
      }),
      { numRuns: 100 },
    );
  });

  it('state.deleted', () => {
    fc.assert(
      fc.property(rid, (r) => {
        expectEncodes(encodeStateDeletedFrame(r), { v: 1, t: 'state.deleted', rid: r });
      }),
      RUNS,
    );
  });

  it('blob.reserved', () => {
    const exp = fc.oneof(fc.nat(), fc.constantFrom(0, Number.MAX_SAFE_INTEGER));
    fc.assert(
      fc.property(
        rid,
        bytesOf(BLOB_ID_BYTES),
        bytesOf(BLOB_TOKEN_BYTES),
        exp,
        (r, id, token, e) => {
          expectEncodes(encodeBlobReservedFrame(r, id, token, e), {
            v: 1,
            t: 'blob.reserved',
            rid: r,
            id,
            token,
            exp: e,
          });
        },
      ),
      RUNS,
    );
  });

  it('error, with and without a rid', () => {
    fc.assert(
      fc.property(errorCode, fc.option(rid, { nil: undefined }), (code, r) => {
        const text = encodeErrorFrame(code, r);
        expect(text).toBe(legacy.error(code, r));
        expectEncodes(text, errorFrame(code, r));
      }),
      RUNS,
    );
  });

  it('has an encoder for every server frame type the schemas define', () => {
    // One text per encoder; if a frame type is added to the schemas, this list must grow.
    const encoded: string[] = [
      encodeChallengeFrame(b64(AUTH_NONCE_BYTES)),
      encodeAuthedFrame(1, b64(MAILBOX_ID_BYTES)),
      encodeStoredFrame(1, b64(MESSAGE_ID_BYTES)),
      encodeDeliverFrame(b64(MESSAGE_ID_BYTES), b64(1)),
      encodePongFrame(1),
      encodePrekeysCountFrame(1, 0),
      encodePrekeysBundleFrame(1, b64(MAILBOX_ID_BYTES), null),
      encodePowChallengeFrame(1, {
        v: 1,
        nonce: b64(POW_NONCE_BYTES),
        bits: 8,
        exp: 1,
        to: b64(MAILBOX_ID_BYTES),
      }),
      encodePowAdmittedFrame(1, b64(MAILBOX_ID_BYTES), 1),
      encodeFirstContactCountFrame(1, 0, 10, false),
      encodeStateStoredFrame(1, 1),
      encodeStateBlobFrame(1, null),
      encodeStateDeletedFrame(1),
      encodeBlobReservedFrame(1, b64(BLOB_ID_BYTES), b64(BLOB_TOKEN_BYTES), 1),
      encodeErrorFrame(ErrorCode.INTERNAL),
    ];
    const types = encoded.map((text) => {
      const parsed = parseServerFrame(text);
      if (!parsed.ok) throw new Error(`not a server frame: ${text}`);
      return parsed.value.t;
    });
    expect(new Set<ServerFrameType>(types)).toEqual(
      new Set(Object.keys(SERVER_FRAME_SCHEMAS) as ServerFrameType[]),
    );
  });
});

describe('server frame encoders: edge values', () => {
  const MAILBOX = b64(MAILBOX_ID_BYTES, 2);
  const MSG_ID = b64(MESSAGE_ID_BYTES, 3);

  it('encodes every error code, with rid 0, MAX_REQUEST_ID and none', () => {
    for (const code of Object.values(ErrorCode)) {
      for (const r of [0, MAX_REQUEST_ID, undefined]) {
        const text = encodeErrorFrame(code, r);
        expect(text).toBe(legacy.error(code, r));
        expectEncodes(text, errorFrame(code, r));
      }
    }
  });

  it('encodes the largest deliver frame within MAX_FRAME_BYTES', () => {
    const env = b64(MAX_ENVELOPE_BYTES, 0xff);
    expectEncodes(encodeDeliverFrame(MSG_ID, env), { v: 1, t: 'deliver', id: MSG_ID, env });
  });

  it('encodes a bundle with maximal parts and prekey ids 0 and MAX_PREKEY_ID', () => {
    for (const id of [0, MAX_PREKEY_ID]) {
      const b: EncodableBundle = {
        identity: b64(MAX_PREKEY_PART_BYTES),
        signedPrekey: b64(MAX_PREKEY_PART_BYTES, 2),
        oneTime: { id, key: b64(MAX_ONE_TIME_PREKEY_BYTES, 3) },
      };
      const text = encodePrekeysBundleFrame(MAX_REQUEST_ID, MAILBOX, b);
      expect(text).toBe(legacy.bundle(MAX_REQUEST_ID, MAILBOX, b));
      expectEncodes(text, {
        v: 1,
        t: 'prekeys.bundle',
        rid: MAX_REQUEST_ID,
        mailbox: MAILBOX,
        bundle: b,
      });
    }
  });

  it('encodes no bundle and a bundle without a one-time prekey as null', () => {
    const none = encodePrekeysBundleFrame(0, MAILBOX, null);
    expect(none).toBe(`{"v":1,"t":"prekeys.bundle","rid":0,"mailbox":"${MAILBOX}","bundle":null}`);
    const b = { identity: b64(1), signedPrekey: b64(1), oneTime: null };
    expectEncodes(encodePrekeysBundleFrame(0, MAILBOX, b), {
      v: 1,
      t: 'prekeys.bundle',
      rid: 0,
      mailbox: MAILBOX,
      bundle: b,
    });
  });

  it('writes -0 as 0, as JSON.stringify does', () => {
    expect(encodeStoredFrame(-0, MSG_ID)).toBe(legacy.stored(0, MSG_ID));
    expect(encodePongFrame(-0)).toBe(JSON.stringify({ v: 1, t: 'pong', rid: -0 }));
  });
});

/*
 * The encoders trust their callers (see encode.ts): these pin that a value outside its field's
 * schema yields a frame the schema refuses, so the differential tests above are what stands
 * between a caller's mistake and the wire, and a wrong call cannot pass unnoticed in a test.
 */
describe('server frame encoders: values outside the schema give frames the schema refuses', () => {
  const MAILBOX = b64(MAILBOX_ID_BYTES, 2);
  const MSG_ID = b64(MESSAGE_ID_BYTES, 3);

  it('a rid below 0 or above MAX_REQUEST_ID, or not an integer', () => {
    expectRejectedByParser(encodeStoredFrame(-1, MSG_ID));
    expectRejectedByParser(encodePongFrame(MAX_REQUEST_ID + 1));
    expectRejectedByParser(encodeAuthedFrame(1.5, MAILBOX));
    expectRejectedByParser(encodeErrorFrame(ErrorCode.INTERNAL, -1));
  });

  it('a count below 0 or above MAX_ONE_TIME_PREKEYS_STORED', () => {
    expectRejectedByParser(encodePrekeysCountFrame(1, -1));
    expectRejectedByParser(encodePrekeysCountFrame(1, MAX_ONE_TIME_PREKEYS_STORED + 1));
  });

  it('a nonce, mailbox or message id one byte short or long', () => {
    expectRejectedByParser(encodeChallengeFrame(b64(AUTH_NONCE_BYTES - 1)));
    expectRejectedByParser(encodeChallengeFrame(b64(AUTH_NONCE_BYTES + 1)));
    expectRejectedByParser(encodeAuthedFrame(1, b64(MAILBOX_ID_BYTES - 1)));
    expectRejectedByParser(encodeStoredFrame(1, b64(MESSAGE_ID_BYTES + 1)));
  });

  it('an empty envelope and one of MAX_ENVELOPE_BYTES + 1', () => {
    expectRejectedByParser(encodeDeliverFrame(MSG_ID, ''));
    expectRejectedByParser(encodeDeliverFrame(MSG_ID, b64(MAX_ENVELOPE_BYTES + 1)));
  });

  it('a string that is not canonical base64url', () => {
    expectRejectedByParser(encodeDeliverFrame(MSG_ID, 'AB')); // spare bits set
    expectRejectedByParser(encodeStoredFrame(1, `${MSG_ID.slice(0, -1)}=`));
    // A quote in a value breaks the template's JSON: refused, not misread.
    expectRejectedByParser(encodeDeliverFrame(MSG_ID, 'AA","x":"AA'));
  });

  it('a bundle part over its limit, and an unknown key on a store record', () => {
    const big = { identity: b64(MAX_PREKEY_PART_BYTES + 1), signedPrekey: b64(1), oneTime: null };
    expectRejectedByParser(encodePrekeysBundleFrame(1, MAILBOX, big));
    const key = b64(MAX_ONE_TIME_PREKEY_BYTES + 1);
    const bigKey = { identity: b64(1), signedPrekey: b64(1), oneTime: { id: 1, key } };
    expectRejectedByParser(encodePrekeysBundleFrame(1, MAILBOX, bigKey));
    // A record with a key of its own: the encoder copies only the schema's keys.
    const extra = { identity: b64(1), signedPrekey: b64(1), oneTime: null, expiresAt: 5 };
    expect(parseServerFrame(encodePrekeysBundleFrame(1, MAILBOX, extra)).ok).toBe(true);
    expect(encodePrekeysBundleFrame(1, MAILBOX, extra)).not.toContain('expiresAt');
  });

  it('a challenge of difficulty 0 or past POW_MAX_BITS, a short nonce, a sends count of 0', () => {
    const c = { v: 1 as const, nonce: b64(POW_NONCE_BYTES), bits: 8, exp: 1, to: MAILBOX };
    expect(parseServerFrame(encodePowChallengeFrame(1, c)).ok).toBe(true);
    expectRejectedByParser(encodePowChallengeFrame(1, { ...c, bits: 0 }));
    expectRejectedByParser(encodePowChallengeFrame(1, { ...c, bits: POW_MAX_BITS + 1 }));
    expectRejectedByParser(encodePowChallengeFrame(1, { ...c, nonce: b64(POW_NONCE_BYTES - 1) }));
    expectRejectedByParser(encodePowChallengeFrame(1, { ...c, exp: -1 }));
    expectRejectedByParser(encodePowAdmittedFrame(1, MAILBOX, 0));
    expectRejectedByParser(encodePowAdmittedFrame(1, MAILBOX, MAX_POW_SENDS_PER_ADMISSION + 1));
  });

  it('a first-contact count below 0, past its maximum or fractional, and bits out of range', () => {
    expect(parseServerFrame(encodeFirstContactCountFrame(1, 0, 1, true)).ok).toBe(true);
    expectRejectedByParser(encodeFirstContactCountFrame(1, -1, 10, false));
    expectRejectedByParser(encodeFirstContactCountFrame(1, MAX_FIRST_CONTACT_COUNT + 1, 10, false));
    expectRejectedByParser(encodeFirstContactCountFrame(1, 1.5, 10, false));
    expectRejectedByParser(encodeFirstContactCountFrame(1, 0, 0, false));
    expectRejectedByParser(encodeFirstContactCountFrame(1, 0, POW_MAX_BITS + 1, false));
  });
});

describe('state and blob encoders: edge values and values outside the schema', () => {
  const ID = b64(BLOB_ID_BYTES, 4);
  const TOKEN = b64(BLOB_TOKEN_BYTES, 5);

  it('encodes a state blob of exactly MAX_STATE_BLOB_BYTES within MAX_FRAME_BYTES', () => {
    const text = encodeStateBlobFrame(MAX_REQUEST_ID, {
      blob: b64(MAX_STATE_BLOB_BYTES),
      generation: MAX_STATE_GENERATION,
    });
    expect(parseServerFrame(text).ok).toBe(true);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(MAX_FRAME_BYTES);
  });

  it('a state blob of MAX_STATE_BLOB_BYTES + 1, or an empty one', () => {
    expectRejectedByParser(
      encodeStateBlobFrame(1, { blob: b64(MAX_STATE_BLOB_BYTES + 1), generation: 1 }),
    );
    expectRejectedByParser(encodeStateBlobFrame(1, { blob: '', generation: 1 }));
  });

  it('a held blob with generation 0, or past MAX_STATE_GENERATION, or fractional', () => {
    expectRejectedByParser(encodeStateBlobFrame(1, { blob: b64(1), generation: 0 }));
    expectRejectedByParser(
      encodeStateBlobFrame(1, { blob: b64(1), generation: MAX_STATE_GENERATION + 1 }),
    );
    expectRejectedByParser(encodeStateBlobFrame(1, { blob: b64(1), generation: 1.5 }));
  });

  it('no blob with a generation other than 0', () => {
    const text = '{"v":1,"t":"state.blob","rid":1,"blob":null,"generation":3}';
    expectRejectedByParser(text);
  });

  it('a stored generation of 0 or past MAX_STATE_GENERATION', () => {
    expectRejectedByParser(encodeStateStoredFrame(1, 0));
    expectRejectedByParser(encodeStateStoredFrame(1, MAX_STATE_GENERATION + 1));
    expectRejectedByParser(encodeStateDeletedFrame(-1));
  });

  it('a blob id or token one byte short or long, or a negative expiry', () => {
    expect(parseServerFrame(encodeBlobReservedFrame(1, ID, TOKEN, 0)).ok).toBe(true);
    expectRejectedByParser(encodeBlobReservedFrame(1, b64(BLOB_ID_BYTES - 1), TOKEN, 0));
    expectRejectedByParser(encodeBlobReservedFrame(1, b64(BLOB_ID_BYTES + 1), TOKEN, 0));
    expectRejectedByParser(encodeBlobReservedFrame(1, ID, b64(BLOB_TOKEN_BYTES - 1), 0));
    expectRejectedByParser(encodeBlobReservedFrame(1, ID, b64(BLOB_TOKEN_BYTES + 1), 0));
    expectRejectedByParser(encodeBlobReservedFrame(1, ID, TOKEN, -1));
  });
});
