import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startRedis, type RedisServer } from '@passage/testing/redis';
import { createLogger } from '../log.js';
import { createStore } from './create.js';
import { MemoryStore } from './memory.js';
import { RedisStore } from './redis.js';
import { CONTRACT_LIMITS, newMailbox } from './store.contract.js';

function capturingLogger() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  return { lines, logger: createLogger({ level: 'info', destination }) };
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 20));
}

const PASSWORD = 'correct-horse-battery';
let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis({ args: ['--requirepass', PASSWORD] });
});
afterAll(async () => {
  await redis.stop();
});

describe('createStore', () => {
  it('uses the embedded MemoryStore when no Redis is configured', async () => {
    const { logger, lines } = capturingLogger();
    const store = await createStore({ limits: CONTRACT_LIMITS, logger });
    expect(store).toBeInstanceOf(MemoryStore);
    expect(lines.join('')).toContain('"store":"memory"');
    await store.close();
  });

  it('treats an empty REDIS_URL as unset', async () => {
    const { logger } = capturingLogger();
    const store = await createStore({ limits: CONTRACT_LIMITS, logger, redisUrl: '' });
    expect(store).toBeInstanceOf(MemoryStore);
    await store.close();
  });

  it('uses RedisStore for a URL and logs neither the password nor the address', async () => {
    const { logger, lines } = capturingLogger();
    const url = `redis://:${PASSWORD}@127.0.0.1:${redis.port}`;
    const store = await createStore({ limits: CONTRACT_LIMITS, logger, redisUrl: url });
    expect(store).toBeInstanceOf(RedisStore);
    expect(store.health().ready).toBe(true);
    const mb = newMailbox();
    expect(await store.enqueue(mb, 'id', 'env')).toBe('stored');
    await store.close();
    const log = lines.join('');
    expect(log).toContain('"store":"redis"');
    expect(log).not.toContain(PASSWORD);
    expect(log).not.toContain('127.0.0.1');
    expect(log).not.toContain(mb);
  });

  it('starts while Redis is down, reports not ready, and connects once Redis is up', async () => {
    const { logger, lines } = capturingLogger();
    await redis.stop();
    const url = `redis://:${PASSWORD}@127.0.0.1:${redis.port}`;
    const store = await createStore({ limits: CONTRACT_LIMITS, logger, redisUrl: url });
    try {
      expect(store.health().ready).toBe(false);
      await expect(store.enqueue(newMailbox(), 'id', 'env')).rejects.toMatchObject({
        code: 'unavailable',
      });
      await redis.start();
      await until(() => store.health().ready);
      expect(await store.enqueue(newMailbox(), 'id', 'env')).toBe('stored');
    } finally {
      await store.close();
    }
    expect(lines.join('')).not.toContain(PASSWORD);
  }, 30_000);

  it('refuses a wrong password: never ready, never crashes', async () => {
    const { logger, lines } = capturingLogger();
    const url = `redis://:wrong-${PASSWORD}@127.0.0.1:${redis.port}`;
    const store = await createStore({ limits: CONTRACT_LIMITS, logger, redisUrl: url });
    expect(store.health().ready).toBe(false);
    await expect(store.peek(newMailbox(), 1)).rejects.toMatchObject({ code: 'unavailable' });
    await store.close();
    expect(lines.join('')).not.toContain(PASSWORD);
  }, 30_000);
});
