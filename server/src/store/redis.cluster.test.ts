import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  keyCount,
  keysWithoutTtl,
  startRedisCluster,
  type RedisClusterHandle,
} from '../../../test/src/harness/redis.js';
import { RedisStore, type StoreLogger } from './redis.js';
import { CONTRACT_LIMITS, newMailbox, newMessageId, runStoreContract } from './store.contract.js';
import type { StoreLimits } from './store.js';

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
