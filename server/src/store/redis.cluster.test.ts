import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  keyCount,
  keysWithoutTtl,
  redisCommand,
  startRedisCluster,
  type RedisClusterHandle,
} from '@passage/testing/redis';
import { mailboxTag } from './keys.js';
import { RedisStore, type StoreLogger } from './redis.js';
import { CONTRACT_LIMITS, newMailbox, newMessageId, runStoreContract } from './store.contract.js';
import { StoreError, type StoreLimits } from './store.js';

const quiet: StoreLogger = { info: () => {}, warn: () => {}, error: () => {} };

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 20));
}

let cluster: RedisClusterHandle;
beforeAll(async () => {
  cluster = await startRedisCluster();
}, 90_000);
afterAll(async () => {
  await cluster?.stop();
});

async function openStore(limits: StoreLimits, offset?: () => number): Promise<RedisStore> {
  const store = new RedisStore({
    limits,
    logger: quiet,
    clusterNodes: cluster.urls,
    ...(offset ? { dangerousTestOnlyClockOffsetMs: offset } : {}),
  });
  await store.start(20_000);
  return store;
}

runStoreContract('RedisStore on a 3-node Redis Cluster', async (limits) => {
  let offset = 0;
  const store = await openStore(limits, () => offset);
  return {
    store,
    advance: (ms: number) => {
      offset += ms;
    },
  };
});

describe('RedisStore on a Redis Cluster', () => {
  it('leaves no key without a TTL on any node after a workload', async () => {
    const store = await openStore(CONTRACT_LIMITS);
    for (let i = 0; i < 30; i += 1) {
      const mb = newMailbox();
      await store.enqueue(mb, 'a', 'env');
      await store.enqueue(mb, 'b', 'env');
      await store.ack(mb, ['a']);
      await store.publishPrekeys(mb, { identity: 'i', signedPrekey: 's' }, [{ id: 1, key: 'k' }]);
      await store.putState(mb, 'state', 0, i + 1);
      const id = randomBytes(16).toString('base64url');
      const hash = randomBytes(32).toString('base64url');
      await store.reserveBlob(id, hash, 60_000);
      if (i % 2 === 0) await store.putBlob(id, hash, 'blob');
    }
    await store.close();
    let total = 0;
    for (const url of cluster.urls) {
      total += await keyCount(url);
      expect(await keysWithoutTtl(url)).toEqual([]);
    }
    expect(total).toBeGreaterThan(0);
  }, 30_000);

  it('tells a subscribed instance about envelopes enqueued through another, on every shard', async () => {
    const a = await openStore(CONTRACT_LIMITS);
    const b = await openStore(CONTRACT_LIMITS);
    const heard = new Map<string, string>();
    a.onRemote((mailbox, message) => heard.set(mailbox, message.id));
    const mailboxes = Array.from({ length: 12 }, newMailbox);
    for (const mb of mailboxes) await a.subscribe(mb);
    const sent = new Map(mailboxes.map((mb) => [mb, newMessageId()]));
    for (const [mb, id] of sent) await b.enqueue(mb, id, 'env');
    await until(() => heard.size === mailboxes.length);
    expect(heard).toEqual(sent);
    await Promise.all([a.close(), b.close()]);
  }, 30_000);

  it('hands out each one-time prekey once across two instances fetching concurrently', async () => {
    const a = await openStore(CONTRACT_LIMITS);
    const b = await openStore(CONTRACT_LIMITS);
    const mb = newMailbox();
    const keys = Array.from({ length: 10 }, (_, i) => ({ id: i, key: `k${i}` }));
    await a.publishPrekeys(mb, { identity: 'i', signedPrekey: 's' }, keys);
    const fetched = await Promise.all(
      Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? a : b).fetchPrekeys(mb)),
    );
    const ids = fetched.flatMap((f) => (f?.oneTime ? [f.oneTime.id] : []));
    expect(ids.sort((x, y) => x - y)).toEqual(keys.map((k) => k.id));
    await Promise.all([a.close(), b.close()]);
  }, 30_000);
});

/** A fresh mailbox whose keys live on the node listening on `port`. */
async function mailboxOnNode(port: number): Promise<string> {
  const slots = (await redisCommand(cluster.urls[0]!, ['CLUSTER', 'SLOTS'])) as [
    number,
    number,
    [string, number, ...unknown[]],
  ][];
  const ranges = slots.filter(([, , master]) => master[1] === port);
  for (;;) {
    const mb = newMailbox();
    const slot = (await redisCommand(cluster.urls[0]!, [
      'CLUSTER',
      'KEYSLOT',
      mailboxTag(mb),
    ])) as number;
    if (ranges.some(([from, to]) => slot >= from && slot <= to)) return mb;
  }
}

describe('RedisStore when a cluster node goes away', () => {
  it('is not ready and answers unavailable while a node is down, and recovers by itself', async () => {
    const a = await openStore(CONTRACT_LIMITS);
    const b = await openStore(CONTRACT_LIMITS);
    const mb = await mailboxOnNode(cluster.ports[0]!);
    const heard: string[] = [];
    a.onRemote((_mailbox, message) => heard.push(message.id));
    await a.subscribe(mb);

    await cluster.stopNode(0);
    try {
      await until(() => !a.health().ready && !b.health().ready);
      const err = await b.enqueue(mb, 'during', 'env').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreError);
      expect((err as StoreError).code).toBe('unavailable');
    } finally {
      await cluster.startNode(0);
    }
    await until(() => a.health().ready && b.health().ready);
    // Retried until the client has reconnected to the node; then it is heard live again.
    let stored = false;
    while (!stored) {
      stored = (await b.enqueue(mb, 'after', 'env').catch(() => null)) !== null;
      if (!stored) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await until(() => heard.includes('after'));
    expect(heard).not.toContain('during');
    await Promise.all([a.close(), b.close()]);
  }, 90_000);
});
