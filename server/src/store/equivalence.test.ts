/**
 * Model-based check that MemoryStore and RedisStore behave alike: fast-check generates random
 * sequences of operations (including moving time across every expiry), runs each sequence on
 * both stores in lockstep, and compares every answer, error codes included. The contract suite
 * pins the cases we thought of; this looks for the ones we did not.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { startRedis, type RedisServer } from '@passage/testing/redis';
import { MemoryStore } from './memory.js';
import { RedisStore } from './redis.js';
import { newMailbox } from './store.contract.js';
import { StoreError, type Store, type StoreLimits } from './store.js';

/** TTLs are whole multiples of the time step, so no expiry falls between the two stores' clocks
 * (RedisStore's runs on Redis's real clock plus the offset; a mismatch would need a 10 s stall). */
const STEP_MS = 10_000;
const LIMITS: StoreLimits = {
  queueTtlSeconds: 30,
  maxQueuedPerMailbox: 3,
  dedupTtlSeconds: 20,
  // Below the three ids the operations use, so random sequences reach the bound and pass it.
  maxDedupIdsPerMailbox: 2,
  prekeyTtlSeconds: 40,
  maxOneTimePrekeys: 4,
};

type Op =
  | { t: 'enqueue'; mb: number; id: string; env: string }
  | { t: 'ack'; mb: number; ids: string[] }
  | { t: 'peek'; mb: number; limit: number }
  | {
      t: 'peekAfter';
      mb: number;
      /** Continue after the `from`-th envelope of a full read (the oldest when past the end). */
      from: number;
      limit: number;
      scan: number;
      maxBytes: number;
      skip: string[];
    }
  | { t: 'advance'; steps: number }
  | { t: 'publish'; mb: number; spk: string; keys: number[] }
  | { t: 'fetch'; mb: number }
  | { t: 'count'; mb: number };

const mbArb = fc.integer({ min: 0, max: 1 });
const idArb = fc.constantFrom('a', 'b', 'c');
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      t: fc.constant('enqueue' as const),
      mb: mbArb,
      id: idArb,
      env: fc.constantFrom('E1', 'E2'),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('ack' as const),
      mb: mbArb,
      ids: fc.array(idArb, { maxLength: 3 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('peek' as const),
      mb: mbArb,
      limit: fc.integer({ min: 0, max: 4 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc
      .record({
        t: fc.constant('peekAfter' as const),
        mb: mbArb,
        from: fc.integer({ min: 0, max: 3 }),
        limit: fc.integer({ min: 1, max: 3 }),
        extra: fc.integer({ min: 0, max: 2 }),
        maxBytes: fc.integer({ min: 0, max: 6 }),
        skip: fc.uniqueArray(idArb, { maxLength: 2 }),
      })
      .map(({ extra, ...op }) => ({ ...op, scan: op.limit + extra })),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('advance' as const),
      steps: fc.integer({ min: 1, max: 3 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('publish' as const),
      mb: mbArb,
      spk: fc.constantFrom('S1', 'S2'),
      keys: fc.uniqueArray(fc.integer({ min: 0, max: 5 }), { maxLength: 3 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('fetch' as const), mb: mbArb }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('count' as const), mb: mbArb }) },
);

async function apply(store: Store, mailboxes: readonly string[], op: Op): Promise<unknown> {
  try {
    switch (op.t) {
      case 'enqueue':
        return await store.enqueue(mailboxes[op.mb]!, op.id, op.env);
      case 'ack':
        return await store.ack(mailboxes[op.mb]!, op.ids);
      case 'peek':
        return await store.peek(mailboxes[op.mb]!, op.limit);
      case 'peekAfter': {
        // Cursors differ between the stores (a score, an arrival number): each continues after
        // its own cursor of the same envelope, and the answers are compared without them.
        const mb = mailboxes[op.mb]!;
        const all = await store.peekAfter(mb, { limit: 10, maxBytes: 1_000 });
        const page = await store.peekAfter(mb, {
          after: all.messages[op.from - 1]?.cursor,
          limit: op.limit,
          scan: op.scan,
          maxBytes: op.maxBytes,
          skip: (id) => op.skip.includes(id),
        });
        return {
          messages: page.messages.map(({ id, env }) => ({ id, env })),
          at: all.messages.findIndex((m) => m.cursor === page.cursor),
          more: page.more,
        };
      }
      case 'publish':
        return await store.publishPrekeys(
          mailboxes[op.mb]!,
          { identity: 'ID', signedPrekey: op.spk },
          op.keys.map((id) => ({ id, key: `K${id}` })),
        );
      case 'fetch':
        return await store.fetchPrekeys(mailboxes[op.mb]!);
      case 'count':
        return await store.countPrekeys(mailboxes[op.mb]!);
      case 'advance':
        return undefined;
    }
  } catch (err) {
    if (err instanceof StoreError) return { error: err.code };
    throw err;
  }
}

let redis: RedisServer;
let offset = 0;
let redisStore: RedisStore;
beforeAll(async () => {
  redis = await startRedis();
  redisStore = new RedisStore({
    limits: LIMITS,
    logger: { info: () => {}, warn: () => {}, error: () => {} },
    url: redis.url,
    dangerousTestOnlyClockOffsetMs: () => offset,
  });
  await redisStore.start(10_000);
}, 30_000);
afterAll(async () => {
  await redisStore?.close();
  await redis?.stop();
});

describe('MemoryStore and RedisStore', () => {
  it('answer every random sequence of operations alike', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(opArb, { minLength: 1, maxLength: 60, size: 'max' }),
        async (ops) => {
          // Fresh mailboxes per run; both stores start their clocks together.
          const mailboxes = [newMailbox(), newMailbox()];
          let now = 1_700_000_000_000;
          const memory = new MemoryStore(LIMITS, () => now);
          try {
            for (const op of ops) {
              if (op.t === 'advance') {
                now += op.steps * STEP_MS;
                offset += op.steps * STEP_MS;
                continue;
              }
              const expected = await apply(memory, mailboxes, op);
              const actual = await apply(redisStore, mailboxes, op);
              expect({ op, result: actual }).toEqual({ op, result: expected });
            }
          } finally {
            await memory.close();
          }
        },
      ),
      { numRuns: 300 },
    );
  }, 120_000);
});
