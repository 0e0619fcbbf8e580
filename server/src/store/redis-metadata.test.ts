/**
 * Redis must not keep, beside the keys that expire, a record of what the relay did: its slow
 * log held mailbox ids, message ids and the relay's address after every key had expired. The
 * test harness starts Redis with the settings compose and the README give
 * (`--slowlog-max-len 0`, `--latency-monitor-threshold 0`); this checks that they hold even
 * when every command would count as slow.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { redisCommand, startRedis, type RedisServer } from '@passage/testing/redis';
import { RedisStore } from './redis.js';
import { CONTRACT_LIMITS, newEnvelope, newMailbox, newMessageId } from './store.contract.js';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});

describe('regression: Redis keeps metadata that outlives the TTLs', () => {
  it('is started with no slow log and no latency monitor', async () => {
    expect(await redisCommand(redis.url, ['CONFIG', 'GET', 'slowlog-max-len'])).toEqual({
      'slowlog-max-len': '0',
    });
    expect(await redisCommand(redis.url, ['CONFIG', 'GET', 'latency-monitor-threshold'])).toEqual({
      'latency-monitor-threshold': '0',
    });
  });

  it('has an empty SLOWLOG after a workload in which every command counts as slow', async () => {
    // Every command is "slow" from now on: only slowlog-max-len 0 keeps the log empty.
    await redisCommand(redis.url, ['CONFIG', 'SET', 'slowlog-log-slower-than', '0']);
    const lines: string[] = [];
    const log = (obj: object, msg: string) => lines.push(JSON.stringify({ ...obj, msg }));
    const store = new RedisStore({
      limits: CONTRACT_LIMITS,
      logger: { info: log, warn: log, error: log },
      url: redis.url,
    });
    await store.start(10_000);
    try {
      const mailbox = newMailbox();
      await store.subscribe(mailbox);
      const ids = [newMessageId(), newMessageId(), newMessageId()];
      for (const id of ids) await store.enqueue(mailbox, id, newEnvelope());
      expect(await store.peek(mailbox, 10)).toHaveLength(3);
      await store.ack(mailbox, ids);
      await store.unsubscribe(mailbox);
    } finally {
      await store.close();
    }
    expect(await redisCommand(redis.url, ['SLOWLOG', 'LEN'])).toBe(0);
    expect(await redisCommand(redis.url, ['SLOWLOG', 'GET', '-1'])).toEqual([]);
    expect(await redisCommand(redis.url, ['LATENCY', 'LATEST'])).toEqual([]);
  });
});
