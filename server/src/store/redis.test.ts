import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import {
  existingKeys,
  keyCount,
  keysWithoutTtl,
  redisCommand,
  startRedis,
  type RedisServer,
} from '@passage/testing/redis';
import { startTcpProxy, type TcpProxy } from '@passage/testing/tcp-proxy';
import { within } from '@passage/testing/wait';
import { envelopeKey, prekeyKeys, queueKey, stateKey } from './keys.js';
import { RedisStore, STALL_TIMEOUT_MS, SUBSCRIBE_TIMEOUT_MS, type StoreLogger } from './redis.js';
import {
  ACK,
  COUNT_PREKEYS,
  ENQUEUE,
  FETCH_PREKEYS,
  READ_PREKEY_BUNDLE,
  MAX_PEEK_LIMIT,
  PEEK,
  PUBLISH_PREKEYS,
} from './scripts.js';
import {
  CONTRACT_LIMITS,
  newEnvelope,
  newMailbox,
  newMessageId,
  runStoreContract,
} from './store.contract.js';
import { StoreError, type QueuedEnvelope, type StoreLimits } from './store.js';

/** Collects log lines so tests can check what was (and was not) logged. */
function memoryLogger(): StoreLogger & { lines: string[] } {
  const lines: string[] = [];
  const log = (obj: object, msg: string) => lines.push(JSON.stringify({ ...obj, msg }));
  return { lines, info: log, warn: log, error: log };
}

/** Resolves when `condition` holds; polls (the test's own timeout bounds the wait). */
async function until(condition: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, 20));
}

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});

async function openStore(
  limits: StoreLimits = CONTRACT_LIMITS,
  extra: { offset?: () => number; maxPendingOps?: number; url?: string } = {},
): Promise<RedisStore> {
  const store = new RedisStore({
    limits,
    logger: memoryLogger(),
    url: extra.url ?? redis.url,
    ...(extra.offset ? { dangerousTestOnlyClockOffsetMs: extra.offset } : {}),
    ...(extra.maxPendingOps ? { maxPendingOps: extra.maxPendingOps } : {}),
  });
  await store.start(10_000);
  return store;
}

runStoreContract('RedisStore', async (limits) => {
  let offset = 0;
  const store = await openStore(limits, { offset: () => offset });
  return {
    store,
    advance: (ms: number) => {
      offset += ms;
    },
  };
});

describe('RedisStore deleteState', () => {
  it('leaves no key of the mailbox: state, queue, envelopes and remembered ids are gone', async () => {
    const store = await openStore();
    try {
      const mb = newMailbox();
      const ids = [newMessageId(), newMessageId(), newMessageId()];
      for (const id of ids) await store.enqueue(mb, id, newEnvelope());
      await store.ack(mb, [ids[0]!]);
      await store.putState(mb, newEnvelope(), 0, 7);
      const keys = [queueKey(mb), stateKey(mb), ...ids.map((id) => envelopeKey(mb, id))];
      expect(await existingKeys(redis.url, keys)).toBe(4);
      await store.deleteState(mb);
      expect(await existingKeys(redis.url, keys)).toBe(0);
      const scan = (await redisCommand(redis.url, [
        'SCAN',
        '0',
        'MATCH',
        `*{${mb}}*`,
        'COUNT',
        '10000',
      ])) as [string, string[]];
      expect(scan[1]).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('deletes more ids than one round reads (MAX_PEEK_LIMIT)', async () => {
    const limits = { ...CONTRACT_LIMITS, maxQueuedPerMailbox: MAX_PEEK_LIMIT + 5 };
    const store = await openStore(limits);
    try {
      const mb = newMailbox();
      const ids = Array.from({ length: MAX_PEEK_LIMIT + 5 }, newMessageId);
      await Promise.all(ids.map((id) => store.enqueue(mb, id, newEnvelope(8))));
      expect(await redisCommand(redis.url, ['ZCARD', queueKey(mb)])).toBe(MAX_PEEK_LIMIT + 5);
      await store.deleteState(mb);
      expect(
        await existingKeys(redis.url, [queueKey(mb), ...ids.map((id) => envelopeKey(mb, id))]),
      ).toBe(0);
    } finally {
      await store.close();
    }
  });
});

describe('RedisStore shared rate limits', () => {
  const RATE = { perSecond: 1, burst: 3 };

  it('regression: each relay had its own prekey-fetch bucket; two stores on one Redis now share one', async () => {
    let offset = 0;
    const a = await openStore(CONTRACT_LIMITS, { offset: () => offset });
    const b = await openStore(CONTRACT_LIMITS, { offset: () => offset });
    try {
      const mailbox = newMailbox();
      const taken = [];
      for (const store of [a, b, a, b]) {
        taken.push(await store.takeShared('prekey-fetch', mailbox, RATE));
      }
      expect(taken).toEqual([true, true, true, false]); // the burst, then one past it
      expect(await b.takeShared('prekey-fetch', newMailbox(), RATE)).toBe(true); // per mailbox
      // Redis's own clock moves too, so leave it half a token of slack either way.
      offset += 500;
      expect(await a.takeShared('prekey-fetch', mailbox, RATE)).toBe(false);
      offset += 500;
      expect(await a.takeShared('prekey-fetch', mailbox, RATE)).toBe(true); // one refilled
      expect(await b.takeShared('prekey-fetch', mailbox, RATE)).toBe(false);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('keeps each bucket only until it is full again', async () => {
    const store = await openStore();
    try {
      const mailbox = newMailbox();
      await store.takeShared('prekey-fetch', mailbox, { perSecond: 10, burst: 5 });
      const key = `passage:v1:{${mailbox}}:r:pf`;
      const ttl = (await redisCommand(redis.url, ['PTTL', key])) as number;
      // One token short of full at 10 a second: 100 ms.
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(100);
      await until(async () => (await redisCommand(redis.url, ['EXISTS', key])) === 0);
      expect(await keysWithoutTtl(redis.url)).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('refuses (nothing taken) past the burst at a fractional rate, as 6 a minute is', async () => {
    let offset = 0;
    const store = await openStore(CONTRACT_LIMITS, { offset: () => offset });
    try {
      const mailbox = newMailbox();
      const rate = { perSecond: 6 / 60, burst: 2 };
      expect(await store.takeShared('prekey-fetch', mailbox, rate)).toBe(true);
      expect(await store.takeShared('prekey-fetch', mailbox, rate)).toBe(true);
      expect(await store.takeShared('prekey-fetch', mailbox, rate)).toBe(false);
      offset += 5_000;
      expect(await store.takeShared('prekey-fetch', mailbox, rate)).toBe(false);
      offset += 5_000;
      expect(await store.takeShared('prekey-fetch', mailbox, rate)).toBe(true);
    } finally {
      await store.close();
    }
  });
});

describe('RedisStore on one node', () => {
  it('leaves no key without a TTL after the contract workload', async () => {
    // The contract suite above wrote queues, dedup sets, bundles and one-time prekeys.
    expect(await keyCount(redis.url)).toBeGreaterThan(0);
    expect(await keysWithoutTtl(redis.url)).toEqual([]);
  });

  it('keeps a state under the mailbox hash tag and a blob under its own, each with PX = the queue TTL', async () => {
    const store = await openStore();
    try {
      const mailbox = newMailbox();
      await store.putState(mailbox, 'c3RhdGU', 0, 5);
      const stateTtl = (await redisCommand(redis.url, [
        'PTTL',
        `passage:v1:{${mailbox}}:st`,
      ])) as number;
      const queueTtlMs = CONTRACT_LIMITS.queueTtlSeconds * 1000;
      expect(stateTtl).toBeGreaterThan(queueTtlMs - 5_000);
      expect(stateTtl).toBeLessThanOrEqual(queueTtlMs);
      const id = 'B'.repeat(22);
      const hash = 'h'.repeat(43);
      await store.reserveBlob(id, hash, 30_000);
      const reservationTtl = (await redisCommand(redis.url, [
        'PTTL',
        `passage:v1:{~blob:${id}}:t`,
      ])) as number;
      expect(reservationTtl).toBeGreaterThan(25_000);
      expect(reservationTtl).toBeLessThanOrEqual(30_000);
      await store.putBlob(id, hash, 'YmxvYg');
      expect(await redisCommand(redis.url, ['EXISTS', `passage:v1:{~blob:${id}}:t`])).toBe(0);
      const blobTtl = (await redisCommand(redis.url, [
        'PTTL',
        `passage:v1:{~blob:${id}}:b`,
      ])) as number;
      expect(blobTtl).toBeGreaterThan(queueTtlMs - 5_000);
      expect(blobTtl).toBeLessThanOrEqual(queueTtlMs);
    } finally {
      await store.close();
    }
  });

  it('has an audit that does find a key without a TTL (so the audit above can fail)', async () => {
    await redisCommand(redis.url, ['SET', 'passage:v1:audit-probe', 'x']);
    try {
      expect(await keysWithoutTtl(redis.url)).toEqual(['passage:v1:audit-probe']);
    } finally {
      await redisCommand(redis.url, ['DEL', 'passage:v1:audit-probe']);
    }
  });

  it('lets Redis itself expire the keys of a mailbox nobody touches again', async () => {
    const store = await openStore({ ...CONTRACT_LIMITS, queueTtlSeconds: 1, dedupTtlSeconds: 1 });
    const mb = newMailbox();
    await store.enqueue(mb, 'a', 'env');
    await store.enqueue(mb, 'b', 'env');
    await store.ack(mb, ['a']);
    const keys = [queueKey(mb), envelopeKey(mb, 'b')];
    expect(await existingKeys(redis.url, keys)).toBe(2);
    expect(await existingKeys(redis.url, [envelopeKey(mb, 'a')])).toBe(0);
    await until(async () => (await existingKeys(redis.url, keys)) === 0);
    await store.close();
  }, 30_000);

  it('tells a subscribed instance about envelopes another instance enqueued, not its own', async () => {
    const a = await openStore();
    const b = await openStore();
    const heard: Array<[string, QueuedEnvelope]> = [];
    a.onRemote((mailbox, message) => heard.push([mailbox, message]));
    const mb = newMailbox();
    await a.subscribe(mb);
    const own = { id: newMessageId(), env: newEnvelope() };
    const remote = { id: newMessageId(), env: newEnvelope(2_000) };
    await a.enqueue(mb, own.id, own.env);
    await b.enqueue(mb, remote.id, remote.env);
    // Notifications arrive in publish order on one connection: once the remote one is here,
    // the own one would have been too.
    await until(() => heard.length > 0);
    expect(heard).toEqual([[mb, remote]]);
    await Promise.all([a.close(), b.close()]);
  }, 20_000);

  it('publishes a notification only when an instance other than the sender listens', async () => {
    const spublishCalls = async () => {
      const info = String(await redisCommand(redis.url, ['INFO', 'commandstats']));
      return Number(/cmdstat_spublish:calls=(\d+)/.exec(info)?.[1] ?? 0);
    };
    const a = await openStore();
    const b = await openStore();
    const mb = newMailbox();
    const before = await spublishCalls();
    await a.enqueue(mb, newMessageId(), 'nobody-listens');
    await a.subscribe(mb);
    await a.enqueue(mb, newMessageId(), 'only-the-sender-listens');
    expect(await spublishCalls()).toBe(before);
    const heard: string[] = [];
    a.onRemote((_mailbox, message) => heard.push(message.env));
    await b.enqueue(mb, newMessageId(), 'another-instance-listens');
    await until(() => heard.length > 0);
    expect(heard).toEqual(['another-instance-listens']);
    expect(await spublishCalls()).toBe(before + 1);
    await Promise.all([a.close(), b.close()]);
  }, 20_000);

  it('hands over what was enqueued while its subscriber connection was away', async () => {
    const a = await openStore();
    const b = await openStore();
    const heard: string[] = [];
    a.onRemote((_mailbox, message) => heard.push(message.id));
    const mb = newMailbox();
    await a.subscribe(mb);
    await redisCommand(redis.url, ['CLIENT', 'KILL', 'TYPE', 'pubsub']);
    // At once, while A's subscriber is still reconnecting (its backoff is at least 25 ms): nobody
    // listens, so nothing is published, and only the resync after reconnecting can bring it.
    // (Were A back first, it would be heard live: the test cannot pass wrongly either way.)
    await b.enqueue(mb, 'meanwhile', 'e');
    await until(() => heard.includes('meanwhile'));
    // And the subscription itself is back: a later envelope is heard live.
    await b.enqueue(mb, 'later', 'e');
    await until(() => heard.includes('later'));
    await Promise.all([a.close(), b.close()]);
  }, 30_000);

  it('stops telling an instance about a mailbox it unsubscribed from', async () => {
    const a = await openStore();
    const b = await openStore();
    const heard: string[] = [];
    a.onRemote((mailbox) => heard.push(mailbox));
    const gone = newMailbox();
    const kept = newMailbox();
    await a.subscribe(gone);
    await a.subscribe(kept);
    await a.unsubscribe(gone);
    await b.enqueue(gone, newMessageId(), 'e');
    await b.enqueue(kept, newMessageId(), 'e');
    await until(() => heard.length > 0);
    expect(heard).toEqual([kept]);
    await Promise.all([a.close(), b.close()]);
  }, 20_000);

  it('does not tell an instance about a duplicate or refused enqueue', async () => {
    const a = await openStore();
    const b = await openStore({ ...CONTRACT_LIMITS, maxQueuedPerMailbox: 1 });
    const heard: string[] = [];
    a.onRemote((_mailbox, message) => heard.push(message.id));
    const mb = newMailbox();
    const sentinel = newMailbox();
    await a.subscribe(mb);
    await a.subscribe(sentinel);
    await b.enqueue(mb, 'first', 'e');
    await b.enqueue(mb, 'first', 'e');
    await expect(b.enqueue(mb, 'second', 'e')).rejects.toThrow(StoreError);
    await b.enqueue(sentinel, 'last', 'e');
    await until(() => heard.includes('last'));
    expect(heard).toEqual(['first', 'last']);
    await Promise.all([a.close(), b.close()]);
  }, 20_000);

  it('sends the enqueues of one event-loop turn as one script call, answering each on its own', async () => {
    const evalCalls = async () => {
      const info = String(await redisCommand(redis.url, ['INFO', 'commandstats']));
      return Number(/cmdstat_evalsha:calls=(\d+)/.exec(info)?.[1] ?? 0);
    };
    const store = await openStore({ ...CONTRACT_LIMITS, maxQueuedPerMailbox: 1 });
    const a = newMailbox();
    const b = newMailbox();
    const before = await evalCalls();
    const results = await Promise.allSettled([
      store.enqueue(a, 'x', 'first'),
      store.enqueue(a, 'x', 'again'),
      store.enqueue(a, 'y', 'full'),
      store.enqueue(b, 'x', 'other'),
    ]);
    expect(await evalCalls()).toBe(before + 1);
    expect(
      results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as StoreError).code)),
    ).toEqual(['stored', 'duplicate', 'mailbox_full', 'stored']);
    expect(await store.peek(a, 10)).toEqual([{ id: 'x', env: 'first' }]);
    expect(await store.peek(b, 10)).toEqual([{ id: 'x', env: 'other' }]);
    await Promise.all([store.ack(a, ['x']), store.ack(b, ['x', 'unknown'])]);
    expect(await evalCalls()).toBe(before + 2);
    expect(await store.peek(a, 10)).toEqual([]);
    expect(await store.peek(b, 10)).toEqual([]);
    await store.close();
  });

  it('refuses work beyond maxPendingOps with overloaded and stores nothing for it', async () => {
    const store = await openStore(
      { ...CONTRACT_LIMITS, maxQueuedPerMailbox: 100 },
      { maxPendingOps: 2 },
    );
    const mb = newMailbox();
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => store.enqueue(mb, `m${i}`, 'e')),
    );
    const codes = results.map((r) =>
      r.status === 'fulfilled' ? r.value : (r.reason as StoreError).code,
    );
    expect(codes).toEqual(['stored', 'stored', ...Array<string>(8).fill('overloaded')]);
    expect((await store.peek(mb, 100)).map((m) => m.id)).toEqual(['m0', 'm1']);
    await store.close();
  });

  it('regression: admits an ack while enqueues at the pending bound are refused overloaded', async () => {
    // At the old fixed bound, acks of a busy relay were shed with the sends; each shed ack
    // became a duplicate delivery. Acks are bounded by what was delivered and never shed.
    const store = await openStore(
      { ...CONTRACT_LIMITS, maxQueuedPerMailbox: 100 },
      { maxPendingOps: 2 },
    );
    try {
      const mb = newMailbox();
      await store.enqueue(mb, 'old', 'e');
      const enqueues = Promise.allSettled([
        store.enqueue(mb, 'm0', 'e'),
        store.enqueue(mb, 'm1', 'e'),
      ]);
      expect(store.pendingOps()).toBe(2);
      const [ack, refused] = await Promise.allSettled([
        store.ack(mb, ['old']),
        store.enqueue(mb, 'm2', 'e'),
      ]);
      await enqueues;
      expect(ack).toEqual({ status: 'fulfilled', value: undefined });
      expect(refused).toMatchObject({ status: 'rejected', reason: { code: 'overloaded' } });
      expect((await store.peek(mb, 100)).map((m) => m.id)).toEqual(['m0', 'm1']);
    } finally {
      await store.close();
    }
  });

  it('refuses an ack while Redis is unreachable (unavailable), as every other operation', async () => {
    const store = await openStore();
    const mb = newMailbox();
    await store.close();
    await expect(store.ack(mb, ['x'])).rejects.toMatchObject({ code: 'unavailable' });
  });

  it('rejects a mailbox or message id that could break the key layout or the payload', async () => {
    const store = await openStore();
    await expect(store.enqueue('a}b', 'id', 'e')).rejects.toThrow(RangeError);
    await expect(store.peek('x:y', 1)).rejects.toThrow(RangeError);
    await expect(store.fetchPrekeys('')).rejects.toThrow(RangeError);
    await expect(store.fetchPrekeys('a}b', 'withhold')).rejects.toThrow(RangeError);
    await expect(store.enqueue(newMailbox(), 'has space', 'e')).rejects.toThrow(RangeError);
    await store.close();
  });

  it('loads its scripts as soon as it connects to a Redis that has none', async () => {
    await redisCommand(redis.url, ['SCRIPT', 'FLUSH']);
    const store = await openStore();
    const shas = [
      ENQUEUE,
      PEEK,
      ACK,
      PUBLISH_PREKEYS,
      FETCH_PREKEYS,
      READ_PREKEY_BUNDLE,
      COUNT_PREKEYS,
    ].map((s) => s.sha1);
    await until(async () => {
      const exists = (await redisCommand(redis.url, ['SCRIPT', 'EXISTS', ...shas])) as number[];
      return exists.every((x) => x === 1);
    });
    await store.close();
  }, 20_000);

  it('still works when Redis forgot its scripts (NOSCRIPT falls back to EVAL)', async () => {
    const store = await openStore();
    const mb = newMailbox();
    await redisCommand(redis.url, ['SCRIPT', 'FLUSH']);
    expect(await store.enqueue(mb, 'id', 'env')).toBe('stored');
    expect(await store.peek(mb, 1)).toEqual([{ id: 'id', env: 'env' }]);
    await store.close();
  });

  it('refuses the test clock outside tests', () => {
    const saved = process.env['NODE_ENV'];
    process.env['NODE_ENV'] = 'production';
    try {
      expect(
        () =>
          new RedisStore({
            limits: CONTRACT_LIMITS,
            logger: memoryLogger(),
            url: redis.url,
            dangerousTestOnlyClockOffsetMs: () => 0,
          }),
      ).toThrow(/tests only/);
    } finally {
      process.env['NODE_ENV'] = saved;
    }
  });

  it('needs exactly one of url and clusterNodes', () => {
    expect(() => new RedisStore({ limits: CONTRACT_LIMITS, logger: memoryLogger() })).toThrow(
      RangeError,
    );
  });
});

/** Redis's own clock, in ms (the clock its key TTLs run on). */
async function redisNowMs(url: string): Promise<number> {
  const [seconds, micros] = (await redisCommand(url, ['TIME'])) as [string, string];
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

/** Waits until Redis's clock has reached `ms`; meanwhile runs `keepWarm` every 100 ms. */
async function untilRedisTime(
  url: string,
  ms: number,
  keepWarm: () => Promise<unknown>,
): Promise<void> {
  while ((await redisNowMs(url)) < ms) {
    await keepWarm();
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * The acknowledged ids a mailbox's queue set remembers (negative scores), oldest acknowledged
 * first.
 */
async function remembered(mailbox: string): Promise<unknown> {
  return await redisCommand(redis.url, [
    'ZRANGE',
    queueKey(mailbox),
    '(0',
    '-inf',
    'BYSCORE',
    'REV',
  ]);
}

/** Every string in a reply (node-redis answers HGETALL with an object). */
function flatten(reply: unknown): string[] {
  if (reply === null || reply === undefined) return [];
  if (Array.isArray(reply)) return reply.flatMap(flatten);
  if (reply instanceof Map) return [...reply.entries()].flat().flatMap(flatten);
  if (typeof reply === 'object') return Object.entries(reply).flat().flatMap(flatten);
  return [typeof reply === 'string' ? reply : JSON.stringify(reply)];
}

/**
 * Every key on the node whose name or content (string value, hash fields and values, ZSET/SET/
 * LIST members) contains one of `needles`, as `<key>` entries: what a seized Redis would show.
 */
async function keysHolding(url: string, needles: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = (await redisCommand(url, ['SCAN', cursor, 'COUNT', '1000'])) as [
      string,
      string[],
    ];
    cursor = next;
    for (const key of keys) {
      const type = String(await redisCommand(url, ['TYPE', key]));
      const read: Record<string, string[]> = {
        string: ['GET', key],
        hash: ['HGETALL', key],
        zset: ['ZRANGE', key, '0', '-1'],
        set: ['SMEMBERS', key],
        list: ['LRANGE', key, '0', '-1'],
      };
      const command = read[type];
      const reply = command === undefined ? [] : await redisCommand(url, command);
      const content = [key, ...flatten(reply)];
      if (content.some((text) => needles.some((needle) => text.includes(needle)))) {
        found.push(key);
      }
    }
  } while (cursor !== '0');
  return found;
}

describe('RedisStore physical expiry (nothing older than its expiry on a seized server)', () => {
  const SHORT: StoreLimits = {
    ...CONTRACT_LIMITS,
    queueTtlSeconds: 1,
    dedupTtlSeconds: 1,
    maxQueuedPerMailbox: 1_000,
  };

  it('has a content audit that does find an envelope and an id (so the audits below can fail)', async () => {
    const store = await openStore();
    const mb = newMailbox();
    const id = newMessageId();
    const env = newEnvelope(1_024);
    await store.enqueue(mb, id, env);
    expect(await keysHolding(redis.url, [env])).toEqual([envelopeKey(mb, id)]);
    expect((await keysHolding(redis.url, [id])).sort()).toEqual(
      [envelopeKey(mb, id), queueKey(mb)].sort(),
    );
    // Hash fields and values too (the prekey bundle is a hash).
    const identity = newEnvelope();
    await store.publishPrekeys(mb, { identity, signedPrekey: 's' }, []);
    expect(await keysHolding(redis.url, [identity])).toEqual([prekeyKeys(mb)[0]]);
    await store.close();
  });

  it('REGRESSION expired envelopes outlive their expiry in a mailbox that keeps receiving: an expired envelope and its id are gone from Redis while newer ones keep arriving', async () => {
    const store = await openStore(SHORT);
    const mb = newMailbox();
    const old = { id: newMessageId(), env: newEnvelope(1_024) };
    const expiresAt = (await redisNowMs(redis.url)) + SHORT.queueTtlSeconds * 1000;
    await store.enqueue(mb, old.id, old.env);
    const ttl = Number(await redisCommand(redis.url, ['PTTL', envelopeKey(mb, old.id)]));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(SHORT.queueTtlSeconds * 1000);
    // The mailbox stays warm (every enqueue pushes the queue's TTL out) and is never read.
    const newer: string[] = [];
    const enqueueNewer = async () => {
      const id = newMessageId();
      newer.push(id);
      expect(await store.enqueue(mb, id, newEnvelope(1_024))).toBe('stored');
    };
    try {
      await untilRedisTime(redis.url, expiresAt + 50, enqueueNewer);
      await enqueueNewer();
      // The mailbox itself is still there, holding the newest envelope. Checked first and by name:
      // the full-content scan below can take longer than the 1 s TTL on a loaded machine.
      const newest = newer.at(-1) as string;
      expect(await existingKeys(redis.url, [queueKey(mb), envelopeKey(mb, newest)])).toBe(2);
      expect(await keysHolding(redis.url, [old.env, old.id])).toEqual([]);
    } finally {
      await store.close();
    }
  }, 60_000);

  it('REGRESSION acknowledged ids outlive their dedup window: an expired acknowledged id is gone from Redis while the mailbox keeps being used', async () => {
    // A second instance with a long dedup window acknowledges another id of the same mailbox
    // afterwards, so anything per mailbox that remembers acknowledged ids stays alive.
    const short = await openStore(SHORT);
    const long = await openStore({ ...SHORT, dedupTtlSeconds: 60 });
    const mb = newMailbox();
    const acked = newMessageId();
    const later = newMessageId();
    await short.enqueue(mb, acked, newEnvelope());
    await short.ack(mb, [acked]);
    // Read after the ack, so no later than the end of its dedup window.
    const forgetAt = (await redisNowMs(redis.url)) + SHORT.dedupTtlSeconds * 1000;
    expect(await short.enqueue(mb, acked, newEnvelope())).toBe('duplicate');
    const ttl = Number(await redisCommand(redis.url, ['PTTL', queueKey(mb)]));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(SHORT.dedupTtlSeconds * 1000);
    await long.enqueue(mb, later, newEnvelope());
    await long.ack(mb, [later]);
    await untilRedisTime(redis.url, forgetAt + 50, () => short.enqueue(mb, newMessageId(), 'e'));
    // The mailbox is used once more after the window ended (expired ids, queued or remembered,
    // leave the queue's set on every enqueue and ack of its mailbox).
    await short.enqueue(mb, newMessageId(), 'e');
    expect(await keysHolding(redis.url, [acked])).toEqual([]);
    expect(await keysHolding(redis.url, [later])).toEqual([queueKey(mb)]);
    expect(await remembered(mb)).toEqual([later]);
    await Promise.all([short.close(), long.close()]);
  }, 60_000);

  it('keeps each envelope in its own key and the acknowledged ids in the queue set with negative scores, each with a TTL', async () => {
    const store = await openStore();
    const mb = newMailbox();
    await store.enqueue(mb, 'kept', 'k');
    await store.enqueue(mb, 'acked', 'a');
    await store.ack(mb, ['acked']);
    expect(await redisCommand(redis.url, ['GET', envelopeKey(mb, 'kept')])).toBe('k');
    expect(await existingKeys(redis.url, [envelopeKey(mb, 'acked')])).toBe(0);
    expect(await remembered(mb)).toEqual(['acked']);
    // The one queued id scores its expiry (ahead of now); the remembered one minus its window's end.
    // node-redis answers WITHSCORES as [member, score] pairs.
    const scores = (await redisCommand(redis.url, [
      'ZRANGE',
      queueKey(mb),
      '0',
      '-1',
      'WITHSCORES',
    ])) as [string, number][];
    expect(scores.map(([member]) => member)).toEqual(['acked', 'kept']);
    expect(Number(scores[0]?.[1])).toBeLessThan(0);
    expect(Number(scores[1]?.[1])).toBeGreaterThan(0);
    const pttl = async (key: string) => Number(await redisCommand(redis.url, ['PTTL', key]));
    // Read in this order, each later reading can only be lower than it would have been earlier.
    const queueTtl = await pttl(queueKey(mb));
    const envelopeTtl = await pttl(envelopeKey(mb, 'kept'));
    await store.close();
    expect(envelopeTtl).toBeGreaterThan(0);
    expect(envelopeTtl).toBeLessThanOrEqual(CONTRACT_LIMITS.queueTtlSeconds * 1000);
    // The queue lives as long as the later of its newest envelope and its newest dedup window.
    expect(queueTtl).toBeGreaterThanOrEqual(envelopeTtl);
    expect(queueTtl).toBeLessThanOrEqual(
      Math.max(CONTRACT_LIMITS.queueTtlSeconds, CONTRACT_LIMITS.dedupTtlSeconds) * 1000,
    );
  });

  it('never lowers the TTL the remembered ids gave the queue when an envelope with a shorter life arrives', async () => {
    const store = await openStore({ ...CONTRACT_LIMITS, queueTtlSeconds: 5, dedupTtlSeconds: 60 });
    try {
      const mb = newMailbox();
      await store.enqueue(mb, 'a', 'e');
      await store.ack(mb, ['a']);
      await store.enqueue(mb, 'b', 'e');
      const ttl = Number(await redisCommand(redis.url, ['PTTL', queueKey(mb)]));
      expect(ttl).toBeGreaterThan(5_000);
      expect(await store.enqueue(mb, 'a', 'e')).toBe('duplicate');
    } finally {
      await store.close();
    }
  });

  it('regression: RedisStore remembered every acknowledged id for the whole dedup window, one key each, with no bound per mailbox', async () => {
    const limits = { ...CONTRACT_LIMITS, maxQueuedPerMailbox: 100, maxDedupIdsPerMailbox: 3 };
    const store = await openStore(limits);
    try {
      const mb = newMailbox();
      const ids = Array.from({ length: 8 }, newMessageId);
      for (const id of ids) await store.enqueue(mb, id, 'e');
      await store.ack(mb, ids.slice(0, 5));
      await store.ack(mb, ids.slice(5));
      // One key remembers the mailbox's acknowledged ids (the queue's own set, nothing queued
      // any more), and it holds the newest three, in acknowledgement order.
      expect(await keysHolding(redis.url, ids)).toEqual([queueKey(mb)]);
      expect(await remembered(mb)).toEqual(ids.slice(5));
      expect(await keysWithoutTtl(redis.url)).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('keeps the remembered ids of each mailbox under its own bound', async () => {
    const limits = { ...CONTRACT_LIMITS, maxDedupIdsPerMailbox: 2 };
    const store = await openStore(limits);
    try {
      const [a, b] = [newMailbox(), newMailbox()];
      // One script call for both mailboxes (one event-loop turn, one node).
      for (const id of ['a1', 'a2', 'a3']) await store.enqueue(a, id, 'e');
      await store.enqueue(b, 'b1', 'e');
      await Promise.all([store.ack(a, ['a1', 'a2', 'a3']), store.ack(b, ['b1'])]);
      expect(await remembered(a)).toEqual(['a2', 'a3']);
      expect(await remembered(b)).toEqual(['b1']);
    } finally {
      await store.close();
    }
  });

  it('skips a queued id whose envelope key is gone when peeking', async () => {
    const store = await openStore();
    const mb = newMailbox();
    for (const id of ['a', 'b', 'c']) await store.enqueue(mb, id, `env-${id}`);
    await redisCommand(redis.url, ['DEL', envelopeKey(mb, 'b')]);
    expect(await store.peek(mb, 10)).toEqual([
      { id: 'a', env: 'env-a' },
      { id: 'c', env: 'env-c' },
    ]);
    await store.close();
  });

  it('ignores an acknowledged id that cannot be a key, and acknowledges the others', async () => {
    const store = await openStore();
    const mb = newMailbox();
    await store.enqueue(mb, 'ok', 'e');
    await store.ack(mb, ['a}b', 'has space', '']);
    expect(await store.peek(mb, 10)).toEqual([{ id: 'ok', env: 'e' }]);
    await store.ack(mb, ['x:y', 'ok']);
    expect(await store.peek(mb, 10)).toEqual([]);
    expect(await store.enqueue(mb, 'ok', 'e')).toBe('duplicate');
    await store.close();
  });
});

describe('RedisStore when Redis goes away', () => {
  let own: RedisServer;
  beforeAll(async () => {
    own = await startRedis({ args: ['--requirepass', 'hunter2-secret'] });
  });
  afterAll(async () => {
    await own.stop();
  });

  it('fails fast with unavailable while Redis is down and recovers by itself', async () => {
    const logger = memoryLogger();
    const url = `redis://:hunter2-secret@127.0.0.1:${own.port}`;
    const a = new RedisStore({ limits: CONTRACT_LIMITS, logger, url });
    const b = new RedisStore({ limits: CONTRACT_LIMITS, logger: memoryLogger(), url });
    await Promise.all([a.start(10_000), b.start(10_000)]);
    const heard: string[] = [];
    a.onRemote((_mailbox, message) => heard.push(message.id));
    const mb = newMailbox();
    await a.subscribe(mb);
    await b.enqueue(mb, 'before', 'e');
    await until(() => heard.includes('before'));

    await own.stop();
    await until(() => !a.health().ready && !b.health().ready);
    const err = await b.enqueue(mb, 'during', 'e').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).code).toBe('unavailable');
    await expect(a.peek(mb, 1)).rejects.toThrow(StoreError);

    await own.start();
    await until(() => a.health().ready && b.health().ready);
    // The subscription came back with the connection: a new envelope is heard again.
    await until(async () => {
      await b.enqueue(mb, newMessageId(), 'e').catch(() => undefined);
      return heard.length > 1;
    });
    expect(await b.enqueue(mb, 'after', 'e')).toBe('stored');
    expect((await a.peek(mb, 100)).map((m) => m.id)).toContain('after');
    await Promise.all([a.close(), b.close()]);

    const log = logger.lines.join('\n');
    expect(log).toContain('redis_unavailable');
    expect(log).not.toContain('hunter2-secret');
    expect(log).not.toContain(mb);
    expect(log).not.toContain(String(own.port));
  }, 60_000);

  it('replaces a connection that stopped answering and recovers when Redis thaws', async () => {
    const url = `redis://:hunter2-secret@127.0.0.1:${own.port}`;
    const logger = memoryLogger();
    const store = new RedisStore({ limits: CONTRACT_LIMITS, logger, url });
    await store.start(10_000);
    const mb = newMailbox();
    own.freeze();
    try {
      const err = await store.enqueue(mb, 'stuck', 'e').catch((e: unknown) => e);
      expect((err as StoreError).code).toBe('unavailable');
      expect(store.health().ready).toBe(false);
      expect(logger.lines.join('\n')).toContain('redis_stalled');
    } finally {
      own.thaw();
    }
    await until(() => store.health().ready);
    // The stuck enqueue may or may not have run once Redis thawed; a resend is idempotent.
    expect(['stored', 'duplicate']).toContain(await store.enqueue(mb, 'stuck', 'e'));
    expect(await store.peek(mb, 10)).toEqual([{ id: 'stuck', env: 'e' }]);
    await store.close();
  }, 60_000);

  it('closes within a bound even when Redis stopped answering', async () => {
    const url = `redis://:hunter2-secret@127.0.0.1:${own.port}`;
    const store = new RedisStore({ limits: CONTRACT_LIMITS, logger: memoryLogger(), url });
    await store.start(10_000);
    own.freeze();
    try {
      const stuck = store.enqueue(newMailbox(), 'id', 'e').catch((e: unknown) => e);
      await store.close();
      expect(await stuck).toBeInstanceOf(StoreError);
    } finally {
      own.thaw();
    }
  }, 60_000);

  it('leaves no key without a TTL after the outage workload', async () => {
    expect(await keysWithoutTtl(`redis://:hunter2-secret@127.0.0.1:${own.port}`)).toEqual([]);
  });
});

describe('regression: a subscriber connection that stopped answering left the store waiting forever', () => {
  // Only the subscriber connection is frozen (a proxy holds its bytes), the command connection
  // keeps working: a subscriber cut off silently, which SIGSTOP cannot show (it stops both).
  let proxy: TcpProxy;
  beforeEach(async () => {
    proxy = await startTcpProxy(redis.port);
  });
  afterEach(async () => {
    await proxy.close();
  });

  async function openProxied(logger = memoryLogger()): Promise<RedisStore> {
    const store = new RedisStore({
      limits: CONTRACT_LIMITS,
      logger,
      url: `redis://127.0.0.1:${proxy.port}`,
    });
    await store.start(10_000);
    return store;
  }

  it('fails a subscribe the subscriber does not answer within SUBSCRIBE_TIMEOUT_MS, reconnects, and subscribes again', async () => {
    const logger = memoryLogger();
    const a = await openProxied(logger);
    const b = await openStore();
    const heard: string[] = [];
    a.onRemote((_mailbox, message) => heard.push(message.id));
    const first = newMailbox();
    await a.subscribe(first);
    expect(proxy.freezeWhere('SSUBSCRIBE')).toBe(1);
    try {
      const err = await within(
        SUBSCRIBE_TIMEOUT_MS + 10_000,
        a.subscribe(newMailbox()).catch((e: unknown) => e),
      );
      expect(err).toBeInstanceOf(StoreError);
      expect((err as StoreError).code).toBe('unavailable');
    } finally {
      proxy.thawAll();
    }
    // A new connection, with the subscriptions that were in place: `first` is heard again.
    await until(() => a.health().ready);
    await until(async () => {
      await b.enqueue(first, newMessageId(), 'e');
      return heard.length > 0;
    });
    expect(logger.lines.join('\n')).toContain('redis_stalled');
    await Promise.all([a.close(), b.close()]);
  }, 60_000);

  it('notices an idle subscriber connection that stopped answering and hands over what was enqueued meanwhile', async () => {
    const logger = memoryLogger();
    const a = await openProxied(logger);
    const b = await openStore();
    const heard: string[] = [];
    a.onRemote((_mailbox, message) => heard.push(message.id));
    const mb = newMailbox();
    await a.subscribe(mb);
    expect(proxy.freezeWhere('SSUBSCRIBE')).toBe(1);
    try {
      // Published into the frozen connection: only a new subscriber's peek can bring it.
      await b.enqueue(mb, 'meanwhile', 'e');
      await within(
        2 * STALL_TIMEOUT_MS + 10_000,
        until(() => heard.includes('meanwhile')),
      );
    } finally {
      proxy.thawAll();
    }
    expect(logger.lines.join('\n')).toContain('redis_stalled');
    await b.enqueue(mb, 'later', 'e');
    await until(() => heard.includes('later'));
    await Promise.all([a.close(), b.close()]);
  }, 60_000);

  it('keeps a subscriber connection that answers (no reconnect while idle)', async () => {
    const logger = memoryLogger();
    const a = await openProxied(logger);
    await a.subscribe(newMailbox());
    await new Promise((resolve) => setTimeout(resolve, STALL_TIMEOUT_MS + 2_000));
    expect(logger.lines.join('\n')).not.toContain('redis_stalled');
    await a.close();
  }, 60_000);
});

describe('RedisStore when Redis is at maxmemory', () => {
  let small: RedisServer;
  beforeAll(async () => {
    small = await startRedis({ args: ['--maxmemory', '4mb', '--maxmemory-policy', 'noeviction'] });
  });
  afterAll(async () => {
    await small.stop();
  });

  it('sheds sends with overloaded, storing nothing, while peek and ack still work', async () => {
    const limits = { ...CONTRACT_LIMITS, maxQueuedPerMailbox: 1_000 };
    const store = new RedisStore({ limits, logger: memoryLogger(), url: small.url });
    await store.start(10_000);
    const mb = newMailbox();
    const env = newEnvelope(60_000);
    const stored: string[] = [];
    let refused: unknown;
    while (refused === undefined) {
      const id = newMessageId();
      await store.enqueue(mb, id, env).then(
        () => stored.push(id),
        (err: unknown) => {
          refused = err;
        },
      );
      expect(stored.length).toBeLessThan(1_000); // 4 MB cannot hold 1000 × 80 KB
    }
    expect(refused).toBeInstanceOf(StoreError);
    expect((refused as StoreError).code).toBe('overloaded');
    // Nothing of the refused send was kept, and the queue is readable as before.
    expect((await store.peek(mb, 1_000)).map((m) => m.id)).toEqual(stored);
    // Acknowledging is the way out of OOM, so it is allowed there, and it makes room.
    await store.ack(mb, stored);
    expect(await store.peek(mb, 1_000)).toEqual([]);
    expect(await store.enqueue(mb, newMessageId(), env)).toBe('stored');
    await store.close();
  }, 60_000);
});
