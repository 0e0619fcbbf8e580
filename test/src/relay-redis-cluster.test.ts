/**
 * Two relay processes on a three-node Redis Cluster that the test starts on loopback: messages
 * to many mailboxes (so many slots, on every shard) are delivered across relays and acknowledged,
 * one-time prekeys stay unique under concurrent fetches through both relays, and no key on any
 * node lacks a TTL afterwards.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { PROTOCOL_VERSION } from '@passage/shared/protocol/limits';
import { ClientPool } from '@passage/testing/client-pool';
import { envelope, identity, messageId } from '@passage/testing/test-client';
import {
  keyCount,
  keysWithoutTtl,
  startRedisCluster,
  type RedisClusterHandle,
} from '@passage/testing/redis';
import { startRelay, stopAllRelays, type RelayProcess } from '@passage/testing/relay-process';

const v = PROTOCOL_VERSION;
const clients = new ClientPool();
const connect = (relay: RelayProcess) => clients.connect(relay);
afterEach(() => clients.closeAll());

describe('two relays on a three-node Redis Cluster', () => {
  let cluster: RedisClusterHandle;
  let a: RelayProcess;
  let b: RelayProcess;
  beforeAll(async () => {
    cluster = await startRedisCluster();
    const env = { REDIS_CLUSTER_NODES: cluster.urls.join(',') };
    [a, b] = await Promise.all([startRelay(env), startRelay(env)]);
  }, 120_000);
  afterAll(async () => {
    await stopAllRelays();
    await cluster?.stop();
  });

  it('delivers across relays and forgets after ack, for mailboxes on every shard', async () => {
    const people = Array.from({ length: 12 }, () => identity());
    // Half the recipients are online on B; the other half connect later, to A.
    const online = await Promise.all(
      people.slice(0, 6).map(async (who) => {
        const client = await connect(b);
        await client.authenticate(who);
        return client;
      }),
    );
    const sender = await connect(a);
    const sent = people.map((who, i) => ({
      to: who.mailbox,
      id: messageId(),
      env: envelope(),
      rid: i + 1,
    }));
    for (const m of sent) sender.send({ v, t: 'send', rid: m.rid, to: m.to, id: m.id, env: m.env });
    for (let i = 0; i < sent.length; i += 1) {
      expect(await sender.next('stored')).toMatchObject({ t: 'stored' });
    }

    const later = await Promise.all(
      people.slice(6).map(async (who) => {
        const client = await connect(a);
        await client.authenticate(who);
        return client;
      }),
    );
    const recipients = [...online, ...later];
    for (const [i, client] of recipients.entries()) {
      const m = sent[i]!;
      expect(await client.next('deliver')).toEqual({ v, t: 'deliver', id: m.id, env: m.env });
      client.send({ v, t: 'ack', ids: [m.id] });
      await client.roundTrip();
    }
    await Promise.all(recipients.map((c) => c.close()));

    // Reconnecting to the other relay brings nothing back.
    for (const [i, who] of people.entries()) {
      const client = await connect(i < 6 ? a : b);
      await client.authenticate(who);
      await client.roundTrip();
      expect(client.pending.filter((f) => f.t === 'deliver')).toEqual([]);
    }
  }, 60_000);

  it('hands each one-time prekey out once under concurrent fetches through both relays', async () => {
    const alice = identity();
    const owner = await connect(b);
    await owner.authenticate(alice);
    const oneTime = Array.from({ length: 10 }, (_, i) => ({ id: 100 + i, key: envelope(32) }));
    owner.send({
      v,
      t: 'prekeys.publish',
      rid: 1,
      identity: envelope(32),
      signedPrekey: envelope(96),
      oneTime,
    });
    expect(await owner.next('prekeys.count')).toMatchObject({ remaining: 10 });
    const fetchers = await Promise.all(
      Array.from({ length: 6 }, (_, i) => connect(i % 2 === 0 ? a : b)),
    );
    const frames = await Promise.all(
      fetchers.map(async (client) => {
        for (let rid = 1; rid <= 2; rid += 1) {
          client.send({ v, t: 'prekeys.fetch', rid, mailbox: alice.mailbox });
        }
        return [await client.next('prekeys.bundle'), await client.next('prekeys.bundle')];
      }),
    );
    const ids = frames.flat().flatMap((f) => (f.bundle?.oneTime ? [f.bundle.oneTime.id] : []));
    expect(ids.sort((x, y) => x - y)).toEqual(oneTime.map((k) => k.id));
  }, 60_000);

  it('leaves no key without a TTL on any node', async () => {
    let total = 0;
    for (const url of cluster.urls) {
      total += await keyCount(url);
      expect(await keysWithoutTtl(url)).toEqual([]);
    }
    expect(total).toBeGreaterThan(0);
  });
});
