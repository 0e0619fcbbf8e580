/**
 * Relays on a Redis that stops answering, and recovering from it: two relay processes on one
 * redis-server, real WebSockets. First the whole server is frozen (SIGSTOP) for longer than the
 * store's stall timeout and thawed (SIGCONT); then only relay B's subscriber connection stops
 * answering (a proxy holds its bytes; SIGSTOP cannot freeze one connection). Either way every
 * message sent meanwhile reaches its recipient on the other relay once Redis answers again, and a
 * client that authenticated meanwhile gets what was queued for it.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { PROTOCOL_VERSION } from '@passage/shared/protocol/limits';
import { STALL_TIMEOUT_MS } from '@passage/server/store/redis';
import { ClientPool } from '@passage/testing/client-pool';
import { startRedis, type RedisServer } from '@passage/testing/redis';
import { startRelay, stopAllRelays, type RelayProcess } from '@passage/testing/relay-process';
import { startTcpProxy, type TcpProxy } from '@passage/testing/tcp-proxy';
import { envelope, identity, messageId, type TestClient } from '@passage/testing/test-client';

jest.setTimeout(120_000);

const v = PROTOCOL_VERSION;
const clients = new ClientPool();
afterEach(() => clients.closeAll());

/** Messages sent while Redis does not answer, per recipient. */
const MESSAGES = 20;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Sends `ids` to `to` and resends each one answered with an error (Redis unreachable) until the
 * relay stores it; a resend of one that was stored after all is answered `stored` as well.
 */
async function sendAll(sender: TestClient, to: string, ids: readonly string[]): Promise<void> {
  let rid = 0;
  let pending = [...ids];
  while (pending.length > 0) {
    const byRid = new Map<number, string>();
    for (const id of pending) {
      byRid.set(++rid, id);
      sender.send({ v, t: 'send', rid, to, id, env: envelope() });
    }
    const failed: string[] = [];
    for (let i = 0; i < byRid.size; i++) {
      const answer = await sender.nextOf(['stored', 'error'], 30_000);
      if (answer.t === 'error') {
        // Every refusal of a send names its request: one that does not is a relay defect, and
        // resending `undefined` would only turn it into invalid frames (and a 4003 close).
        const id = answer.rid === undefined ? undefined : byRid.get(answer.rid);
        if (id === undefined)
          throw new Error(`a send refused without its rid: ${JSON.stringify(answer)}`);
        failed.push(id);
      }
    }
    pending = failed;
    if (pending.length > 0) await sleep(200);
  }
}

/** Receives (and acknowledges) deliveries until every one of `ids` has arrived. */
async function receiveAll(client: TestClient, ids: readonly string[]): Promise<void> {
  const missing = new Set(ids);
  while (missing.size > 0) {
    const frame = await client.next('deliver', 30_000);
    missing.delete(frame.id);
    client.send({ v, t: 'ack', ids: [frame.id] });
  }
}

/** Authenticates, retrying while the relay answers that the store is unavailable. */
async function authenticateWhenReachable(relay: RelayProcess, who = identity()) {
  for (;;) {
    const client = await clients.connect(relay);
    try {
      await client.authenticate(who);
      return client;
    } catch {
      await client.close();
      await sleep(200);
    }
  }
}

describe('relays through a frozen Redis (SIGSTOP, then SIGCONT)', () => {
  let redis: RedisServer;
  let a: RelayProcess;
  let b: RelayProcess;
  beforeAll(async () => {
    redis = await startRedis();
    const env = { REDIS_URL: redis.url };
    [a, b] = await Promise.all([startRelay(env), startRelay(env)]);
  }, 60_000);
  afterAll(async () => {
    await stopAllRelays();
    await redis.stop();
  });

  it('recovers after the freeze and delivers everything sent meanwhile, to a recipient online on the other relay and to one that authenticated meanwhile', async () => {
    const online = await clients.online(b);
    const later = identity();
    // One sender connection per recipient: each `sendAll` numbers its own requests and reads its
    // own answers, so two of them on one socket would reuse rids and take each other's answers.
    const senderToOnline = await clients.connect(a);
    const senderToLater = await clients.connect(a);
    const toOnline = Array.from({ length: MESSAGES }, () => messageId());
    const toLater = Array.from({ length: MESSAGES }, () => messageId());

    redis.freeze();
    let thawed = false;
    try {
      const sending = Promise.all([
        sendAll(senderToOnline, online.mailbox!, toOnline),
        sendAll(senderToLater, later.mailbox, toLater),
      ]);
      const authenticating = authenticateWhenReachable(b, later);
      // Longer than the store's stall timeout: both relays give up on their connections.
      await sleep(STALL_TIMEOUT_MS + 2_000);
      redis.thaw();
      thawed = true;
      await sending;
      const laterClient = await authenticating;
      await Promise.all([receiveAll(online, toOnline), receiveAll(laterClient, toLater)]);
    } finally {
      if (!thawed) redis.thaw();
    }
    expect(b.stdout()).toContain('redis_stalled');
  });
});

describe('regression: a relay whose subscriber connection stopped answering never delivered live again', () => {
  let redis: RedisServer;
  let proxy: TcpProxy;
  let a: RelayProcess;
  let b: RelayProcess;
  beforeAll(async () => {
    redis = await startRedis();
    proxy = await startTcpProxy(redis.port);
    [a, b] = await Promise.all([
      startRelay({ REDIS_URL: redis.url }),
      startRelay({ REDIS_URL: `redis://127.0.0.1:${proxy.port}` }),
    ]);
  }, 60_000);
  afterAll(async () => {
    await stopAllRelays();
    await proxy.close();
    await redis.stop();
  });

  it('replaces the silent subscriber connection, resubscribes, and delivers what was sent meanwhile', async () => {
    const online = await clients.online(b);
    const sender = await clients.connect(a);
    const ids = Array.from({ length: MESSAGES }, () => messageId());
    expect(proxy.freezeWhere('SSUBSCRIBE')).toBe(1);
    try {
      // Stored at once (relay A's connections are fine); the notifications go into the frozen
      // connection, so only relay B's resubscription and peek can bring them.
      await sendAll(sender, online.mailbox!, ids);
      await receiveAll(online, ids);
    } finally {
      proxy.thawAll();
    }
    expect(b.stdout()).toContain('redis_stalled');
    // And live delivery works again afterwards.
    const after = messageId();
    await sendAll(sender, online.mailbox!, [after]);
    await receiveAll(online, [after]);
  });
});
