/**
 * Backpressure on a real Redis: while Redis is paused (CLIENT PAUSE), store operations pile up;
 * the relay stops reading from the sockets that send (backpressure.ts) instead of answering
 * `overloaded`, and reads again once Redis answers. The relay runs in-process so that its
 * counters can be read.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { PROTOCOL_VERSION } from '@passage/shared/protocol/limits';
import { loadConfig } from '@passage/server/config';
import { createLogger } from '@passage/server/log';
import { RedisStore } from '@passage/server/store/redis';
import { ClientPool } from '@passage/testing/client-pool';
import { startInProcessRelay, type InProcessRelay } from '@passage/testing/in-process';
import { redisCommand, startRedis, type RedisServer } from '@passage/testing/redis';
import { envelope, messageId } from '@passage/testing/test-client';
import { until } from '@passage/testing/wait';

jest.setTimeout(60_000);

const v = PROTOCOL_VERSION;
const clients = new ClientPool();

/** The hard bound in this test: far below what the test sends in all, far above one read. */
const HARD_BOUND = 64;
const ENV = {
  STORE_PAUSE_PENDING_OPS: '4',
  STORE_RESUME_PENDING_OPS: '2',
  MAX_PENDING_STORE_OPS: String(HARD_BOUND),
  CONN_FRAMES_PER_SECOND: '100000',
  CONN_FRAME_BURST: '100000',
  MAILBOX_SENDS_PER_SECOND: '100000',
  MAILBOX_SEND_BURST: '100000',
  FLOOD_CLOSE_AFTER: '100000',
};

let redis: RedisServer;
let relay: InProcessRelay;
beforeAll(async () => {
  redis = await startRedis();
  const config = loadConfig(ENV);
  const store = new RedisStore({
    limits: config.storeLimits,
    logger: createLogger({ level: 'silent' }),
    url: redis.url,
    maxPendingOps: HARD_BOUND,
  });
  await store.start(10_000);
  relay = await startInProcessRelay({ env: ENV, store: () => store });
}, 60_000);
afterAll(async () => {
  await relay?.stop();
  await redis?.stop();
});
afterEach(() => clients.closeAll());

describe('backpressure on Redis', () => {
  it('regression: pauses reading while Redis is behind instead of answering overloaded, and loses nothing', async () => {
    // Before, a fixed bound on pending store operations answered `overloaded` for everything
    // past it (and acks too): 160 sends into a paused Redis with a bound of 64 lost 96.
    const bob = await clients.online(relay);
    const sender = await clients.connect(relay);
    const bursts = 20;
    const perBurst = 8;
    const env = envelope(2048);
    const ids: string[] = [];
    await redisCommand(redis.url, ['CLIENT', 'PAUSE', '2000', 'ALL']);
    for (let b = 0; b < bursts; b++) {
      for (let i = 0; i < perBurst; i++) {
        const id = messageId();
        ids.push(id);
        sender.send({ v, t: 'send', rid: ids.length, to: bob.mailbox, id, env });
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const answers = [];
    while (answers.length < ids.length) answers.push(await sender.nextOf(['stored', 'error']));
    expect(answers.filter((a) => a.t === 'error')).toEqual([]);
    const delivered = new Set<string>();
    while (delivered.size < ids.length) {
      const frame = await bob.next('deliver');
      expect(delivered.has(frame.id)).toBe(false);
      delivered.add(frame.id);
    }
    expect([...delivered].sort()).toEqual([...ids].sort());
    const load = relay.server.relay.load.totals();
    expect(load.pauseEpisodes).toBeGreaterThanOrEqual(1);
    expect(load.shed).toBe(0);
    // What was read after the pause began stayed far under the hard bound.
    expect(load.maxPending).toBeLessThan(HARD_BOUND);
    await until(() => relay.server.relay.backpressure.pausedCount === 0);
    expect(relay.logs.some((l) => l.includes('store_behind'))).toBe(true);
  });

  it('reads pongs and frames again after a pause: the connection stays usable', async () => {
    const bob = await clients.online(relay);
    const sender = await clients.connect(relay);
    await redisCommand(redis.url, ['CLIENT', 'PAUSE', '500', 'ALL']);
    for (let i = 0; i < 8; i++) {
      sender.send({ v, t: 'send', rid: i + 1, to: bob.mailbox, id: messageId(), env: envelope() });
    }
    for (let i = 0; i < 8; i++)
      expect(await sender.nextOf(['stored', 'error'])).toMatchObject({ t: 'stored' });
    await sender.roundTrip();
    await bob.roundTrip();
  });
});
