/**
 * Relays on a shared Redis, as deployed: two relay processes on one redis-server, speaking the
 * real protocol over real WebSockets. Cross-instance delivery, redelivery after reconnect to
 * either relay, no redelivery after ack, one-time prekeys unique across relays, a Redis restart
 * under running relays, and no Redis key without a TTL afterwards.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { PROTOCOL_VERSION } from '@passage/shared/protocol/limits';
import { ClientPool } from '@passage/testing/client-pool';
import {
  envelope,
  identity,
  messageId,
  type TestClient,
  type TestIdentity,
} from '@passage/testing/test-client';
import { keyCount, keysWithoutTtl, startRedis, type RedisServer } from '@passage/testing/redis';
import { startRelay, stopAllRelays, type RelayProcess } from '@passage/testing/relay-process';

const v = PROTOCOL_VERSION;
const clients = new ClientPool();
const connect = (relay: RelayProcess) => clients.connect(relay);
const connectAs = (relay: RelayProcess, who: TestIdentity) => clients.online(relay, who);

/** Sends and returns the relay's answer frame (stored or error). */
async function send(client: TestClient, rid: number, to: string, id: string, env: string) {
  client.send({ v, t: 'send', rid, to, id, env });
  for (;;) {
    const answer = await client.nextOf(['stored', 'error']);
    if (answer.rid === rid) return answer;
  }
}

/** Asserts that nothing was delivered: a ping round trip proves everything sent before is here. */
/** Publishes a bundle with one-time prekeys 1…12 for `owner`'s mailbox, waits for the count, returns them. */
async function publishTwelveOneTimePrekeys(
  owner: TestClient,
): Promise<{ id: number; key: string }[]> {
  const oneTime = Array.from({ length: 12 }, (_, i) => ({ id: i + 1, key: envelope(32) }));
  owner.send({
    v,
    t: 'prekeys.publish',
    rid: 1,
    identity: envelope(32),
    signedPrekey: envelope(96),
    oneTime,
  });
  expect(await owner.next('prekeys.count')).toMatchObject({ remaining: 12 });
  return oneTime;
}

async function expectNoDelivery(client: TestClient): Promise<void> {
  await client.roundTrip();
  expect(client.pending.filter((f) => f.t === 'deliver')).toEqual([]);
}

async function readyz(relay: RelayProcess): Promise<number> {
  try {
    return (await fetch(`${relay.url}/readyz`)).status;
  } catch {
    return 0;
  }
}

async function until(condition: () => Promise<boolean> | boolean): Promise<void> {
  while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, 50));
}

afterEach(() => clients.closeAll());

describe('two relays on one Redis', () => {
  let redis: RedisServer;
  let a: RelayProcess;
  let b: RelayProcess;
  beforeAll(async () => {
    redis = await startRedis();
    // 24 fetches of one mailbox below: its fetch rate, shared by both relays, must not refuse.
    const env = { REDIS_URL: redis.url, PREKEY_FETCH_BURST: '64' };
    [a, b] = await Promise.all([startRelay(env), startRelay(env)]);
  }, 60_000);
  afterAll(async () => {
    await stopAllRelays();
    await redis?.stop();
  });

  it('delivers live to a recipient on relay B a message sent through relay A', async () => {
    const bob = identity();
    const recipient = await connectAs(b, bob);
    const sender = await connect(a);
    const id = messageId();
    const env = envelope(1024);
    expect(await send(sender, 1, bob.mailbox, id, env)).toMatchObject({ t: 'stored', id });
    expect(await recipient.next('deliver')).toEqual({ v, t: 'deliver', id, env });
  }, 30_000);

  it('delivers a message sent while the recipient was offline when it connects to either relay', async () => {
    const bob = identity();
    const sender = await connect(a);
    const first = { id: messageId(), env: envelope() };
    await send(sender, 1, bob.mailbox, first.id, first.env);

    const onB = await connectAs(b, bob);
    expect(await onB.next('deliver')).toMatchObject(first);
    await onB.close(); // not acknowledged

    const onA = await connectAs(a, bob);
    expect(await onA.next('deliver')).toMatchObject(first);
  }, 30_000);

  it('never delivers a message again after it was acknowledged, on either relay', async () => {
    const bob = identity();
    const sender = await connect(a);
    const id = messageId();
    await send(sender, 1, bob.mailbox, id, envelope());
    const onB = await connectAs(b, bob);
    await onB.next('deliver');
    onB.send({ v, t: 'ack', ids: [id] });
    await onB.roundTrip();
    await onB.close();

    for (const relay of [a, b]) {
      const again = await connectAs(relay, bob);
      await expectNoDelivery(again);
      await again.close();
    }
    // A late resend of the acknowledged id is answered stored but not delivered again.
    const resender = await connect(b);
    expect(await send(resender, 2, bob.mailbox, id, envelope())).toMatchObject({ t: 'stored' });
    const live = await connectAs(a, bob);
    await expectNoDelivery(live);
  }, 30_000);

  it('hands each one-time prekey out once when two relays fetch concurrently', async () => {
    const alice = identity();
    const owner = await connectAs(a, alice);
    const oneTime = await publishTwelveOneTimePrekeys(owner);

    const fetchers = await Promise.all(
      Array.from({ length: 8 }, (_, i) => connect(i % 2 === 0 ? a : b)),
    );
    const bundles = await Promise.all(
      fetchers.map(async (client) => {
        const got = [];
        for (let rid = 1; rid <= 3; rid += 1) {
          client.send({ v, t: 'prekeys.fetch', rid, mailbox: alice.mailbox });
        }
        for (let i = 0; i < 3; i += 1) got.push(await client.next('prekeys.bundle'));
        return got;
      }),
    );
    const handedOut = bundles
      .flat()
      .flatMap((f) => (f.bundle?.oneTime ? [f.bundle.oneTime.id] : []));
    expect(handedOut.sort((x, y) => x - y)).toEqual(oneTime.map((k) => k.id));
    owner.send({ v, t: 'prekeys.status', rid: 2 });
    expect(await owner.next('prekeys.count')).toMatchObject({ remaining: 0 });
  }, 30_000);

  it('leaves no key without a TTL in Redis after the workload', async () => {
    expect(await keyCount(redis.url)).toBeGreaterThan(0);
    expect(await keysWithoutTtl(redis.url)).toEqual([]);
  });
});

describe('prekey fetch rate across relays', () => {
  let redis: RedisServer;
  let a: RelayProcess;
  let b: RelayProcess;
  beforeAll(async () => {
    redis = await startRedis();
    const env = { REDIS_URL: redis.url, PREKEY_FETCH_BURST: '4', PREKEY_FETCHES_PER_MINUTE: '1' };
    [a, b] = await Promise.all([startRelay(env), startRelay(env)]);
  }, 60_000);
  afterAll(async () => {
    await stopAllRelays();
    await redis?.stop();
  });

  it('regression: each relay had its own fetch burst, so two relays handed out twice the prekeys; the burst now holds across both, and past it both answer bundles without one', async () => {
    const alice = identity();
    const owner = await connectAs(a, alice);
    await publishTwelveOneTimePrekeys(owner);

    const answers = [];
    for (const relay of [a, b]) {
      const fetcher = await connect(relay);
      for (let rid = 1; rid <= 3; rid += 1) {
        fetcher.send({ v, t: 'prekeys.fetch', rid, mailbox: alice.mailbox });
        answers.push(await fetcher.nextOf(['prekeys.bundle', 'error']));
      }
    }
    expect(answers.filter((f) => f.t === 'error')).toEqual([]);
    const bundles = answers.flatMap((f) => (f.t === 'prekeys.bundle' ? [f] : []));
    expect(bundles).toHaveLength(6);
    expect(bundles.filter((f) => f.bundle?.oneTime !== null)).toHaveLength(4);
    // a's three take from the shared bucket first; b's first takes the last token.
    expect(bundles.slice(4).map((f) => f.bundle?.oneTime)).toEqual([null, null]);
    for (const f of bundles) expect(f.bundle).not.toBeNull();
    owner.send({ v, t: 'prekeys.status', rid: 2 });
    expect(await owner.next('prekeys.count')).toMatchObject({ remaining: 8 });
  }, 30_000);

  it('leaves no key without a TTL in Redis after the workload', async () => {
    expect(await keysWithoutTtl(redis.url)).toEqual([]);
  });
});

describe('relays through a Redis restart', () => {
  let redis: RedisServer;
  let a: RelayProcess;
  let b: RelayProcess;
  beforeAll(async () => {
    redis = await startRedis();
    [a, b] = await Promise.all([
      startRelay({ REDIS_URL: redis.url }),
      startRelay({ REDIS_URL: redis.url }),
    ]);
  }, 60_000);
  afterAll(async () => {
    await stopAllRelays();
    await redis?.stop();
  });

  it('reports not ready and answers unavailable while Redis is down, then recovers by itself', async () => {
    const bob = identity();
    const recipient = await connectAs(b, bob);
    const sender = await connect(a);
    const before = messageId();
    await send(sender, 1, bob.mailbox, before, envelope());
    await recipient.next('deliver');

    await redis.stop();
    await until(async () => (await readyz(a)) === 503 && (await readyz(b)) === 503);
    const refused = await send(sender, 2, bob.mailbox, messageId(), envelope());
    expect(refused).toMatchObject({ t: 'error', code: 'unavailable', retryable: true });
    expect(a.child.exitCode).toBeNull();
    expect(b.child.exitCode).toBeNull();
    // Connections stay up through the outage; the relay is still answering.
    await recipient.roundTrip();

    await redis.start();
    await until(async () => (await readyz(a)) === 200 && (await readyz(b)) === 200);
    // Without persistence Redis lost what was queued (by design); new messages flow again,
    // live to the recipient that stayed connected on the other relay.
    const after = { id: messageId(), env: envelope() };
    let rid = 10;
    await until(
      async () => (await send(sender, rid++, bob.mailbox, after.id, after.env)).t === 'stored',
    );
    const delivered = await recipient.next('deliver');
    expect(delivered).toMatchObject(after);
    expect(a.stdout() + b.stdout()).not.toContain(bob.mailbox);
  }, 90_000);

  it('leaves no key without a TTL in Redis after the restart', async () => {
    expect(await keysWithoutTtl(redis.url)).toEqual([]);
  });
});
