/**
 * The argument builders of scripts.ts, on their own (no Redis): the KEYS and ARGV layout each
 * script reads, and the inputs each refuses. The scripts themselves run against a real Redis in
 * redis.test.ts, equivalence.test.ts and the cluster test.
 */
import { describe, expect, it } from '@jest/globals';
import { MAX_PREKEY_ID } from '@passage/shared/protocol/limits';
import { blobKeys, envelopeKey, mailboxChannel, prekeyKeys, queueKey, stateKey } from './keys.js';
import {
  ACK,
  COUNT_PREKEYS,
  ENQUEUE,
  FETCH_PREKEYS,
  READ_PREKEY_BUNDLE,
  MAX_BATCH_ACK_IDS,
  MAX_BATCH_OPERATIONS,
  MAX_PEEK_LIMIT,
  MAX_SCRIPT_TTL_MS,
  PEEK,
  PEEK_AFTER,
  PUBLISH_PREKEYS,
  RATE_TAKE,
  READ_ENVELOPES,
  BLOB_RESERVED,
  DELETE_STATE,
  GET_UNEXPIRED,
  GET_STATE,
  PUT_BLOB,
  PUT_STATE,
  RESERVE_BLOB,
  blobReservedCall,
  deleteStateCall,
  getBlobCall,
  getStateCall,
  putBlobCall,
  putStateCall,
  reserveBlobCall,
  ackCall,
  countPrekeysCall,
  enqueueCall,
  fetchPrekeysCall,
  readPrekeyBundleCall,
  peekAfterCall,
  peekCall,
  publishPrekeysCall,
  rateTakeCall,
  readEnvelopesCall,
  type EnqueueItem,
  type EnqueueSettings,
} from './scripts.js';

const A = 'mailboxA';
const B = 'mailboxB';
const SETTINGS: EnqueueSettings = {
  offsetMs: 0,
  queueTtlMs: 60_000,
  maxQueued: 5,
  payloadPrefix: 'origin ',
  stagingSerial: 41,
};
const item = (mailbox: string, id: string, originSubscribed = false): EnqueueItem => ({
  mailbox,
  id,
  env: `env-${id}`,
  originSubscribed,
});
const ids = (n: number) => Array.from({ length: n }, (_, i) => `id${i}`);

describe('enqueueCall', () => {
  it('lays out three keys and three arguments per envelope, and one write per envelope, in batch order', () => {
    const call = enqueueCall({ ...SETTINGS, offsetMs: 7 }, [item(A, 'x', true), item(B, 'y')]);
    expect(call.script).toBe(ENQUEUE);
    const staged = (mailbox: string, index: number) =>
      `passage:v1:{${mailbox}}:w:origin-15-${index}`;
    expect(call.keys).toEqual([
      queueKey(A),
      envelopeKey(A, 'x'),
      staged(A, 0),
      queueKey(B),
      envelopeKey(B, 'y'),
      staged(B, 1),
    ]);
    expect(call.args).toEqual([
      '7',
      '60000',
      '5',
      'origin ',
      'x',
      mailboxChannel(A),
      '1',
      'y',
      mailboxChannel(B),
      '0',
    ]);
    // The envelopes go to Redis as writes of their own, never through the script.
    expect(call.args.some((arg) => arg.startsWith('env-'))).toBe(false);
    expect(call.writes).toEqual([
      ['SET', staged(A, 0), 'env-x', 'PX', '60000'],
      ['SET', staged(B, 1), 'env-y', 'PX', '60000'],
    ]);
  });

  it('names a staged key per call and per place in the batch, never per id', () => {
    const stagedKeys = (call: { keys: readonly string[] }) =>
      call.keys.filter((k) => k.includes(':w:'));
    const twice = enqueueCall(SETTINGS, [item(A, 'x'), item(A, 'x')]);
    const [first, second] = stagedKeys(twice);
    expect(first).not.toBe(second);
    const next = enqueueCall({ ...SETTINGS, stagingSerial: 42 }, [item(A, 'x')]);
    expect(stagedKeys(next)[0]).not.toBe(first);
    const otherOrigin = enqueueCall({ ...SETTINGS, payloadPrefix: 'other ' }, [item(A, 'x')]);
    expect(stagedKeys(otherOrigin)[0]).not.toBe(first);
  });

  it('refuses a staging serial that is negative, fractional or past the safe integers', () => {
    for (const stagingSerial of [-1, 0.5, Number.MAX_SAFE_INTEGER + 1, Number.NaN]) {
      expect(() => enqueueCall({ ...SETTINGS, stagingSerial }, [item(A, 'x')])).toThrow(RangeError);
    }
  });

  it('takes a full batch of MAX_BATCH_OPERATIONS envelopes', () => {
    const batch = ids(MAX_BATCH_OPERATIONS).map((id) => item(A, id));
    expect(enqueueCall(SETTINGS, batch).keys).toHaveLength(3 * MAX_BATCH_OPERATIONS);
  });

  it('refuses an empty batch and one past MAX_BATCH_OPERATIONS', () => {
    expect(() => enqueueCall(SETTINGS, [])).toThrow(RangeError);
    const batch = ids(MAX_BATCH_OPERATIONS + 1).map((id) => item(A, id));
    expect(() => enqueueCall(SETTINGS, batch)).toThrow(RangeError);
  });

  it('refuses a mailbox or message id that would change the key layout', () => {
    for (const bad of ['a}b', 'a{b', 'a:b', 'has space', '', 'x'.repeat(129)]) {
      expect(() => enqueueCall(SETTINGS, [item(bad, 'id')])).toThrow(RangeError);
      expect(() => enqueueCall(SETTINGS, [item(A, bad)])).toThrow(RangeError);
    }
  });

  it('refuses a TTL, bound or clock offset that is not an integer in range', () => {
    const bad: Array<Partial<EnqueueSettings>> = [
      { queueTtlMs: 0 },
      { queueTtlMs: 1.5 },
      { queueTtlMs: MAX_SCRIPT_TTL_MS + 1 },
      { maxQueued: 0 },
      { maxQueued: Number.NaN },
      { offsetMs: -1 },
      { offsetMs: Number.POSITIVE_INFINITY },
    ];
    for (const patch of bad) {
      expect(() => enqueueCall({ ...SETTINGS, ...patch }, [item(A, 'x')])).toThrow(RangeError);
    }
  });

  it('refuses a payload prefix that is not one id and one separator', () => {
    for (const payloadPrefix of ['origin', 'or igin ', ' ', 'origin  ', 'a}b ']) {
      expect(() => enqueueCall({ ...SETTINGS, payloadPrefix }, [item(A, 'x')])).toThrow(RangeError);
    }
  });
});

describe('peekCall', () => {
  it('declares the queue and passes the offset and the limit', () => {
    expect(peekCall(A, 3, 10)).toEqual({ script: PEEK, keys: [queueKey(A)], args: ['3', '10'] });
    expect(peekCall(A, 0, MAX_PEEK_LIMIT).args).toEqual(['0', String(MAX_PEEK_LIMIT)]);
  });

  it('refuses a limit below 1 or past MAX_PEEK_LIMIT, and a key-unsafe mailbox', () => {
    expect(() => peekCall(A, 0, 0)).toThrow(RangeError);
    expect(() => peekCall(A, 0, MAX_PEEK_LIMIT + 1)).toThrow(RangeError);
    expect(() => peekCall(A, 0, 2.5)).toThrow(RangeError);
    expect(() => peekCall('x:y', 0, 1)).toThrow(RangeError);
  });
});

describe('peekAfterCall', () => {
  it('declares the queue and passes the offset, the scan and the cursor', () => {
    expect(peekAfterCall(A, 3, 10, '1234')).toEqual({
      script: PEEK_AFTER,
      keys: [queueKey(A)],
      args: ['3', '10', '1234'],
    });
  });

  it('passes an empty cursor for the oldest, and takes the scan at MAX_PEEK_LIMIT', () => {
    expect(peekAfterCall(A, 0, MAX_PEEK_LIMIT, undefined).args).toEqual([
      '0',
      String(MAX_PEEK_LIMIT),
      '',
    ]);
  });

  it('refuses a scan below 1 or past MAX_PEEK_LIMIT, or not an integer', () => {
    expect(() => peekAfterCall(A, 0, 0, undefined)).toThrow(RangeError);
    expect(() => peekAfterCall(A, 0, MAX_PEEK_LIMIT + 1, undefined)).toThrow(RangeError);
    expect(() => peekAfterCall(A, 0, 2.5, undefined)).toThrow(RangeError);
  });

  it('refuses a cursor that is not decimal digits (it is spliced into a score range)', () => {
    for (const after of ['', '(5', '-1', '1.5', 'inf', '+inf', '1 2', '9'.repeat(18)]) {
      expect(() => peekAfterCall(A, 0, 1, after)).toThrow(RangeError);
    }
  });

  it('refuses a key-unsafe mailbox', () => {
    expect(() => peekAfterCall('x:y', 0, 1, undefined)).toThrow(RangeError);
  });
});

describe('readEnvelopesCall', () => {
  it("declares the ids' envelope keys in order and passes the offset and maxBytes", () => {
    expect(readEnvelopesCall(A, 3, ['a', 'b'], 100)).toEqual({
      script: READ_ENVELOPES,
      keys: [envelopeKey(A, 'a'), envelopeKey(A, 'b')],
      args: ['3', '100'],
    });
  });

  it('takes maxBytes 0 and MAX_PEEK_LIMIT ids', () => {
    const ids = Array.from({ length: MAX_PEEK_LIMIT }, (_, i) => `m${i}`);
    expect(readEnvelopesCall(A, 0, ids, 0).keys).toHaveLength(MAX_PEEK_LIMIT);
  });

  it('refuses no ids, or more than MAX_PEEK_LIMIT', () => {
    const ids = Array.from({ length: MAX_PEEK_LIMIT + 1 }, (_, i) => `m${i}`);
    expect(() => readEnvelopesCall(A, 0, [], 10)).toThrow(RangeError);
    expect(() => readEnvelopesCall(A, 0, ids, 10)).toThrow(RangeError);
  });

  it('refuses a negative or fractional maxBytes', () => {
    expect(() => readEnvelopesCall(A, 0, ['a'], -1)).toThrow(RangeError);
    expect(() => readEnvelopesCall(A, 0, ['a'], 0.5)).toThrow(RangeError);
  });

  it('refuses a key-unsafe mailbox or message id', () => {
    expect(() => readEnvelopesCall('x:y', 0, ['a'], 10)).toThrow(RangeError);
    expect(() => readEnvelopesCall(A, 0, ['a', 'b:c'], 10)).toThrow(RangeError);
  });
});

describe('ackCall', () => {
  const SETTINGS_ACK = { offsetMs: 0, dedupTtlMs: 30_000, maxDedupIds: 20 };

  it('lays out per mailbox its queue, then one key per id; ARGV holds each count and its ids', () => {
    const call = ackCall({ offsetMs: 5, dedupTtlMs: 30_000, maxDedupIds: 20 }, [
      { mailbox: A, ids: ['x', 'y'] },
      { mailbox: B, ids: ['z'] },
    ]);
    expect(call.script).toBe(ACK);
    expect(call.keys).toEqual([
      queueKey(A),
      envelopeKey(A, 'x'),
      envelopeKey(A, 'y'),
      queueKey(B),
      envelopeKey(B, 'z'),
    ]);
    expect(call.args).toEqual(['5', '30000', '20', '2', 'x', 'y', '1', 'z']);
  });

  it('takes MAX_BATCH_ACK_IDS ids in one call', () => {
    const call = ackCall(SETTINGS_ACK, [{ mailbox: A, ids: ids(MAX_BATCH_ACK_IDS) }]);
    expect(call.args).toHaveLength(4 + MAX_BATCH_ACK_IDS);
  });

  it('refuses no groups, an empty group, too many groups and one id past MAX_BATCH_ACK_IDS', () => {
    expect(() => ackCall(SETTINGS_ACK, [])).toThrow(RangeError);
    expect(() => ackCall(SETTINGS_ACK, [{ mailbox: A, ids: [] }])).toThrow(RangeError);
    const many = ids(MAX_BATCH_OPERATIONS + 1).map((mailbox) => ({ mailbox, ids: ['x'] }));
    expect(() => ackCall(SETTINGS_ACK, many)).toThrow(RangeError);
    const split = [
      { mailbox: A, ids: ids(MAX_BATCH_ACK_IDS) },
      { mailbox: B, ids: ['x'] },
    ];
    expect(() => ackCall(SETTINGS_ACK, split)).toThrow(RangeError);
  });

  it('refuses a key-unsafe id or mailbox, and a dedup TTL or bound out of range', () => {
    expect(() => ackCall(SETTINGS_ACK, [{ mailbox: A, ids: ['x', 'a}b'] }])).toThrow(RangeError);
    expect(() => ackCall(SETTINGS_ACK, [{ mailbox: 'a b', ids: ['x'] }])).toThrow(RangeError);
    const group = [{ mailbox: A, ids: ['x'] }];
    for (const patch of [
      { dedupTtlMs: 0 },
      { dedupTtlMs: MAX_SCRIPT_TTL_MS + 1 },
      { maxDedupIds: 0 },
      { maxDedupIds: 2.5 },
    ]) {
      expect(() => ackCall({ ...SETTINGS_ACK, ...patch }, group)).toThrow(RangeError);
    }
  });
});

describe('publishPrekeysCall', () => {
  const SETTINGS_PUB = { offsetMs: 0, prekeyTtlMs: 120_000, maxOneTime: 10 };
  const bundle = { identity: 'IDENTITY', signedPrekey: 'SIGNED' };

  it('passes the bounds, the bundle, then id and key of each one-time prekey', () => {
    const call = publishPrekeysCall(A, SETTINGS_PUB, bundle, [
      { id: 0, key: 'k0' },
      { id: MAX_PREKEY_ID, key: 'kmax' },
    ]);
    expect(call.script).toBe(PUBLISH_PREKEYS);
    expect(call.keys).toEqual(prekeyKeys(A));
    expect(call.args).toEqual([
      '0',
      '120000',
      '10',
      'IDENTITY',
      'SIGNED',
      '0',
      'k0',
      String(MAX_PREKEY_ID),
      'kmax',
    ]);
  });

  it('refuses a one-time prekey id below 0, past MAX_PREKEY_ID or not an integer', () => {
    for (const id of [-1, MAX_PREKEY_ID + 1, 1.5, Number.NaN]) {
      expect(() => publishPrekeysCall(A, SETTINGS_PUB, bundle, [{ id, key: 'k' }])).toThrow(
        RangeError,
      );
    }
  });

  it('refuses a TTL or bound out of range and a key-unsafe mailbox', () => {
    for (const patch of [{ prekeyTtlMs: 0 }, { maxOneTime: 0 }, { offsetMs: -5 }]) {
      expect(() => publishPrekeysCall(A, { ...SETTINGS_PUB, ...patch }, bundle, [])).toThrow(
        RangeError,
      );
    }
    expect(() => publishPrekeysCall('{A}', SETTINGS_PUB, bundle, [])).toThrow(RangeError);
  });
});

describe('fetchPrekeysCall, readPrekeyBundleCall and countPrekeysCall', () => {
  it('declare the bundle key alone for the read that withholds one-time prekeys, a no-writes script', () => {
    expect(readPrekeyBundleCall(A, 7)).toEqual({
      script: READ_PREKEY_BUNDLE,
      keys: [prekeyKeys(A)[0]],
      args: ['7'],
    });
    expect(READ_PREKEY_BUNDLE.readOnly).toBe(true);
    expect(READ_PREKEY_BUNDLE.source).not.toMatch(/ZPOP|ZREM|DEL|HSET|EXPIRE/);
    expect(FETCH_PREKEYS.readOnly).toBe(false);
  });

  it('refuse a key-unsafe mailbox and a negative or fractional offset for the read', () => {
    expect(() => readPrekeyBundleCall('', 0)).toThrow(RangeError);
    expect(() => readPrekeyBundleCall('a}b', 0)).toThrow(RangeError);
    expect(() => readPrekeyBundleCall(A, -1)).toThrow(RangeError);
    expect(() => readPrekeyBundleCall(A, 0.5)).toThrow(RangeError);
  });

  it('declare the two prekey keys and pass the clock offset', () => {
    expect(fetchPrekeysCall(A, 9)).toEqual({
      script: FETCH_PREKEYS,
      keys: prekeyKeys(A),
      args: ['9'],
    });
    expect(countPrekeysCall(A, 0)).toEqual({
      script: COUNT_PREKEYS,
      keys: prekeyKeys(A),
      args: ['0'],
    });
  });

  it('refuse a key-unsafe mailbox and a negative or fractional offset', () => {
    expect(() => fetchPrekeysCall('', 0)).toThrow(RangeError);
    expect(() => countPrekeysCall('a:b', 0)).toThrow(RangeError);
    expect(() => fetchPrekeysCall(A, -1)).toThrow(RangeError);
    expect(() => countPrekeysCall(A, 0.5)).toThrow(RangeError);
  });
});

describe('rateTakeCall', () => {
  it('declares the mailbox bucket of its kind and passes rate, burst and a cost of one', () => {
    expect(rateTakeCall(A, 'prekey-fetch', { perSecond: 0.1, burst: 16 }, 3)).toEqual({
      script: RATE_TAKE,
      keys: ['passage:v1:{mailboxA}:r:pf'],
      args: ['3', '0.1', '16', '1'],
    });
    expect(
      rateTakeCall(A, 'prekey-fetch', { perSecond: 1e9, burst: 1_000_000_000 }, 0).args,
    ).toEqual(['0', '1000000000', '1000000000', '1']);
  });

  it('refuses a key-unsafe mailbox, an unknown kind, a rate or burst out of range', () => {
    const rate = { perSecond: 1, burst: 1 };
    expect(() => rateTakeCall('a}b', 'prekey-fetch', rate, 0)).toThrow(RangeError);
    expect(() => rateTakeCall(A, 'sends' as 'prekey-fetch', rate, 0)).toThrow(RangeError);
    for (const perSecond of [0, -1, Infinity, NaN, 1e9 + 1]) {
      expect(() => rateTakeCall(A, 'prekey-fetch', { perSecond, burst: 1 }, 0)).toThrow(RangeError);
    }
    for (const burst of [0, 1.5, 1_000_000_001]) {
      expect(() => rateTakeCall(A, 'prekey-fetch', { perSecond: 1, burst }, 0)).toThrow(RangeError);
    }
    expect(() => rateTakeCall(A, 'prekey-fetch', rate, -1)).toThrow(RangeError);
  });
});

describe('script sources', () => {
  it('build notification payloads and one-time prekey members with the separators of keys.ts', () => {
    expect(ENQUEUE.source).toContain("prefix .. id .. ' ' .. redis.call('GET', m)");
    expect(PUBLISH_PREKEYS.source).toContain("ARGV[i] .. '.' .. ARGV[i + 1]");
  });
});

describe('state script builders', () => {
  const S = { offsetMs: 0, ttlMs: 60_000 };

  it('putStateCall declares the state key and passes ifGeneration, the new generation, blob, TTL', () => {
    const call = putStateCall(A, S, 'blob', 0, 9_007_199_254_740_991);
    expect(call.script).toBe(PUT_STATE);
    expect(call.keys).toEqual([stateKey(A)]);
    expect(call.args).toEqual(['0', '0', '9007199254740991', 'blob', '60000']);
  });

  it('getStateCall declares the state key only', () => {
    expect(getStateCall(A, 5)).toEqual({ script: GET_STATE, keys: [stateKey(A)], args: ['5'] });
    expect(GET_STATE.readOnly).toBe(true);
  });

  it('deleteStateCall declares the state, the queue and the envelope of each id (one hash tag)', () => {
    expect(deleteStateCall(B, 0)).toEqual({
      script: DELETE_STATE,
      keys: [stateKey(B), queueKey(B)],
      args: ['0', '1'],
    });
    expect(deleteStateCall(B, 7, false, ['id1', 'id2'])).toEqual({
      script: DELETE_STATE,
      keys: [stateKey(B), queueKey(B), envelopeKey(B, 'id1'), envelopeKey(B, 'id2')],
      args: ['7', '0', 'id1', 'id2'],
    });
    expect(DELETE_STATE.readOnly).toBe(false);
  });

  it('deleteStateCall refuses a key-unsafe id and more ids than MAX_PEEK_LIMIT', () => {
    expect(() => deleteStateCall(B, 0, true, ['a:b'])).toThrow(RangeError);
    expect(() => deleteStateCall(B, 0, true, ['a{b}'])).toThrow(RangeError);
    expect(() => deleteStateCall(B, 0, true, [''])).toThrow(RangeError);
    const many = Array.from({ length: MAX_PEEK_LIMIT + 1 }, (_, i) => `i${i}`);
    expect(() => deleteStateCall(B, 0, true, many)).toThrow(RangeError);
    expect(deleteStateCall(B, 0, true, many.slice(1)).keys).toHaveLength(MAX_PEEK_LIMIT + 2);
  });

  it('refuse a key-unsafe mailbox, a blob that is not base64url, generations out of range', () => {
    expect(() => putStateCall('a{b}', S, 'blob', 0, 1)).toThrow(RangeError);
    expect(() => getStateCall('a:b', 0)).toThrow(RangeError);
    expect(() => deleteStateCall('', 0)).toThrow(RangeError);
    expect(() => putStateCall(A, S, 'a"b', 0, 1)).toThrow(RangeError);
    expect(() => putStateCall(A, S, 'blob', -1, 1)).toThrow(RangeError);
    expect(() => putStateCall(A, S, 'blob', 0, 0)).toThrow(RangeError);
    expect(() => putStateCall(A, S, 'blob', 0, 2 ** 53)).toThrow(RangeError);
    expect(() => putStateCall(A, S, 'blob', 3, 3)).toThrow(RangeError);
    expect(() => putStateCall(A, { ...S, ttlMs: 0 }, 'blob', 0, 1)).toThrow(RangeError);
    expect(() => putStateCall(A, { ...S, ttlMs: MAX_SCRIPT_TTL_MS + 1 }, 'b', 0, 1)).toThrow(
      RangeError,
    );
  });
});

describe('attachment blob script builders', () => {
  const ID = 'A'.repeat(22);
  const HASH = 'h'.repeat(43);
  const S = { offsetMs: 0, ttlMs: 60_000 };

  it('reserveBlobCall and putBlobCall declare reservation and blob keys under one hash tag', () => {
    const [reservation, blob] = blobKeys(ID);
    expect(reservation).toBe(`passage:v1:{~blob:${ID}}:t`);
    expect(blob).toBe(`passage:v1:{~blob:${ID}}:b`);
    expect(reserveBlobCall(ID, HASH, 600_000, 0)).toEqual({
      script: RESERVE_BLOB,
      keys: [reservation, blob],
      args: ['0', HASH, '600000'],
    });
    expect(putBlobCall(ID, HASH, 'data', S)).toEqual({
      script: PUT_BLOB,
      keys: [reservation, blob],
      args: ['0', HASH, 'data', '60000'],
    });
  });

  it('blobReservedCall and getBlobCall declare one key each and are read-only', () => {
    const [reservation, blob] = blobKeys(ID);
    expect(blobReservedCall(ID, HASH, 0)).toEqual({
      script: BLOB_RESERVED,
      keys: [reservation],
      args: ['0', HASH],
    });
    expect(getBlobCall(ID, 0)).toEqual({ script: GET_UNEXPIRED, keys: [blob], args: ['0'] });
    expect(BLOB_RESERVED.readOnly && GET_UNEXPIRED.readOnly).toBe(true);
  });

  it('refuse an id that is not 22 base64url characters, a bad hash, blob or TTL', () => {
    for (const id of ['A'.repeat(21), 'A'.repeat(23), `${'A'.repeat(20)}}:`, '']) {
      expect(() => reserveBlobCall(id, HASH, 1, 0)).toThrow(RangeError);
      expect(() => getBlobCall(id, 0)).toThrow(RangeError);
      expect(() => blobReservedCall(id, HASH, 0)).toThrow(RangeError);
      expect(() => putBlobCall(id, HASH, 'data', S)).toThrow(RangeError);
    }
    expect(() => reserveBlobCall(ID, 'h'.repeat(42), 1, 0)).toThrow(RangeError);
    expect(() => blobReservedCall(ID, `${'h'.repeat(42)}=`, 0)).toThrow(RangeError);
    expect(() => reserveBlobCall(ID, HASH, 0, 0)).toThrow(RangeError);
    expect(() => putBlobCall(ID, HASH, 'a b', S)).toThrow(RangeError);
    expect(() => putBlobCall(ID, HASH, 'data', { ...S, ttlMs: 1.5 })).toThrow(RangeError);
  });
});
