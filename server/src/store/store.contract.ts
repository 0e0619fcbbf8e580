/**
 * The contract every Store implementation passes: memory.test.ts and redis.test.ts (one node and
 * a cluster) run this same suite. Expiry is tested by moving a clock the implementation reads
 * (a fake clock for MemoryStore, an offset added to Redis's TIME for RedisStore), never by
 * sleeping, so the suite is deterministic on a loaded machine.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from '@jest/globals';
import {
  MAX_PEEK_CURSOR_DIGITS,
  MAX_PEEK_SCAN,
  StoreError,
  isPeekCursor,
  type OneTimePrekeyMode,
  type PeekPage,
  type Store,
  type StoreErrorCode,
  type StoreLimits,
} from './store.js';
import { MAX_PROFILE_VALIDITY_SECONDS } from '@passage/shared/org/limits';
import { MAX_BLOB_BYTES, MAX_STATE_BLOB_BYTES } from '@passage/shared/protocol/limits';

/** A store made for one test, and the handle that moves its clock forward. */
export interface StoreUnderTest {
  readonly store: Store;
  /** Moves the time the store sees forward by `ms`. */
  readonly advance: (ms: number) => void;
}

export type MakeStore = (limits: StoreLimits) => Promise<StoreUnderTest>;

/** Small limits so bounds are reached quickly; TTLs in seconds as StoreLimits has them. */
export const CONTRACT_LIMITS: StoreLimits = {
  queueTtlSeconds: 60,
  maxQueuedPerMailbox: 5,
  dedupTtlSeconds: 30,
  maxDedupIdsPerMailbox: 20,
  prekeyTtlSeconds: 120,
  maxOneTimePrekeys: 10,
};

/** A fresh mailbox id (32 random bytes, base64url) so tests on one Redis never collide. */
export function newMailbox(): string {
  return randomBytes(32).toString('base64url');
}

export function newMessageId(): string {
  return randomBytes(16).toString('base64url');
}

export function newEnvelope(bytes = 48): string {
  return randomBytes(bytes).toString('base64url');
}

async function expectStoreError(promise: Promise<unknown>, code: StoreErrorCode): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StoreError);
  expect((err as StoreError).code).toBe(code);
}

export function runStoreContract(name: string, makeStore: MakeStore): void {
  describe(`${name} (store contract)`, () => {
    const made: Store[] = [];
    const make = async (limits: StoreLimits = CONTRACT_LIMITS) => {
      const handle = await makeStore(limits);
      made.push(handle.store);
      return handle;
    };
    afterEach(async () => {
      await Promise.all(made.splice(0).map((s) => s.close()));
    });

    describe('queue', () => {
      it('returns stored for a new id and peeks envelopes oldest first', async () => {
        const { store } = await make();
        const mb = newMailbox();
        const msgs = [1, 2, 3].map(() => ({ id: newMessageId(), env: newEnvelope() }));
        for (const m of msgs) expect(await store.enqueue(mb, m.id, m.env)).toBe('stored');
        expect(await store.peek(mb, 10)).toEqual(msgs);
      });

      it('keeps arrival order for many envelopes enqueued concurrently', async () => {
        const { store } = await make({ ...CONTRACT_LIMITS, maxQueuedPerMailbox: 50 });
        const mb = newMailbox();
        const msgs = Array.from({ length: 40 }, () => ({ id: newMessageId(), env: newEnvelope() }));
        // Issued in order without awaiting: the store must keep the order it received them in.
        const results = await Promise.all(msgs.map((m) => store.enqueue(mb, m.id, m.env)));
        expect(results.every((r) => r === 'stored')).toBe(true);
        expect(await store.peek(mb, 50)).toEqual(msgs);
      });

      it('returns at most `limit` envelopes, the oldest', async () => {
        const { store } = await make();
        const mb = newMailbox();
        const ids = [1, 2, 3, 4].map(() => newMessageId());
        for (const id of ids) await store.enqueue(mb, id, newEnvelope());
        expect((await store.peek(mb, 2)).map((m) => m.id)).toEqual(ids.slice(0, 2));
      });

      it('removes nothing when peeking', async () => {
        const { store } = await make();
        const mb = newMailbox();
        await store.enqueue(mb, newMessageId(), newEnvelope());
        const first = await store.peek(mb, 10);
        expect(await store.peek(mb, 10)).toEqual(first);
        expect(first).toHaveLength(1);
      });

      it('deletes acknowledged envelopes and keeps the others in order', async () => {
        const { store } = await make();
        const mb = newMailbox();
        const ids = [1, 2, 3].map(() => newMessageId());
        for (const id of ids) await store.enqueue(mb, id, newEnvelope());
        await store.ack(mb, [ids[0] as string, ids[2] as string]);
        expect((await store.peek(mb, 10)).map((m) => m.id)).toEqual([ids[1]]);
      });

      it('keeps mailboxes apart', async () => {
        const { store } = await make();
        const a = newMailbox();
        const b = newMailbox();
        const id = newMessageId();
        await store.enqueue(a, id, 'AAAA');
        expect(await store.enqueue(b, id, 'BBBB')).toBe('stored');
        expect(await store.peek(a, 10)).toEqual([{ id, env: 'AAAA' }]);
        expect(await store.peek(b, 10)).toEqual([{ id, env: 'BBBB' }]);
      });

      it('stores a large envelope unchanged', async () => {
        const { store } = await make();
        const mb = newMailbox();
        const env = newEnvelope(65_536);
        await store.enqueue(mb, 'big', env);
        expect(await store.peek(mb, 1)).toEqual([{ id: 'big', env }]);
      });

      it('answers duplicate for an id that is queued, and keeps the first envelope', async () => {
        const { store } = await make();
        const mb = newMailbox();
        const id = newMessageId();
        await store.enqueue(mb, id, 'first');
        expect(await store.enqueue(mb, id, 'second')).toBe('duplicate');
        expect(await store.peek(mb, 10)).toEqual([{ id, env: 'first' }]);
      });

      it('answers duplicate for a resend after ack, and does not queue it again', async () => {
        const { store } = await make();
        const mb = newMailbox();
        const id = newMessageId();
        await store.enqueue(mb, id, 'x1');
        await store.ack(mb, [id]);
        expect(await store.enqueue(mb, id, 'x1')).toBe('duplicate');
        expect(await store.peek(mb, 10)).toEqual([]);
      });

      it('ignores an ack of an unknown id', async () => {
        const { store } = await make();
        const mb = newMailbox();
        const id = newMessageId();
        await store.enqueue(mb, id, 'kept');
        await expect(store.ack(mb, [newMessageId()])).resolves.toBeUndefined();
        await expect(store.ack(newMailbox(), [id])).resolves.toBeUndefined();
        expect(await store.peek(mb, 10)).toEqual([{ id, env: 'kept' }]);
      });

      it('treats a second ack of the same id as harmless', async () => {
        const { store } = await make();
        const mb = newMailbox();
        const id = newMessageId();
        await store.enqueue(mb, id, 'once');
        await store.ack(mb, [id]);
        await expect(store.ack(mb, [id, id])).resolves.toBeUndefined();
        expect(await store.peek(mb, 10)).toEqual([]);
      });

      it('ignores an ack with no ids', async () => {
        const { store } = await make();
        const mb = newMailbox();
        await store.enqueue(mb, 'a', 'env');
        await expect(store.ack(mb, [])).resolves.toBeUndefined();
        expect(await store.peek(mb, 10)).toHaveLength(1);
      });

      it('does not remember an id acknowledged before it was ever sent', async () => {
        const { store } = await make();
        const mb = newMailbox();
        const id = newMessageId();
        await store.ack(mb, [id]);
        expect(await store.enqueue(mb, id, 'later')).toBe('stored');
        expect(await store.peek(mb, 10)).toEqual([{ id, env: 'later' }]);
      });

      it('returns nothing for a mailbox that has nothing, or for a limit of 0', async () => {
        const { store } = await make();
        const mb = newMailbox();
        expect(await store.peek(mb, 10)).toEqual([]);
        await store.enqueue(mb, 'a', 'env');
        expect(await store.peek(mb, 0)).toEqual([]);
        expect(await store.peek(mb, -1)).toEqual([]);
      });

      it('refuses a send beyond the bound with mailbox_full and stores nothing', async () => {
        const { store } = await make();
        const mb = newMailbox();
        const ids = Array.from({ length: CONTRACT_LIMITS.maxQueuedPerMailbox }, newMessageId);
        for (const id of ids) expect(await store.enqueue(mb, id, 'e')).toBe('stored');
        const refused = newMessageId();
        await expectStoreError(store.enqueue(mb, refused, 'e'), 'mailbox_full');
        const queued = (await store.peek(mb, 100)).map((m) => m.id);
        expect(queued).toEqual(ids);
        // Nothing of the refused send was kept, not even its id: once there is room it is stored.
        await store.ack(mb, [ids[0] as string]);
        expect(await store.enqueue(mb, refused, 'e')).toBe('stored');
      });

      it('answers duplicate, not mailbox_full, for a resend into a full mailbox', async () => {
        const { store } = await make();
        const mb = newMailbox();
        const ids = Array.from({ length: CONTRACT_LIMITS.maxQueuedPerMailbox }, newMessageId);
        for (const id of ids) await store.enqueue(mb, id, 'e');
        expect(await store.enqueue(mb, ids[2] as string, 'e')).toBe('duplicate');
      });

      it('drops an envelope after queueTtlSeconds', async () => {
        const { store, advance } = await make();
        const mb = newMailbox();
        await store.enqueue(mb, 'old', 'e');
        advance(30_000);
        await store.enqueue(mb, 'young', 'e');
        advance(CONTRACT_LIMITS.queueTtlSeconds * 1000 - 30_000 + 1);
        expect(await store.peek(mb, 10)).toEqual([{ id: 'young', env: 'e' }]);
      });

      it('does not count expired envelopes against the bound', async () => {
        const { store, advance } = await make();
        const mb = newMailbox();
        for (let i = 0; i < CONTRACT_LIMITS.maxQueuedPerMailbox; i += 1) {
          await store.enqueue(mb, `m${i}`, 'e');
        }
        advance(CONTRACT_LIMITS.queueTtlSeconds * 1000 + 1);
        expect(await store.enqueue(mb, 'fresh', 'e')).toBe('stored');
        expect(await store.peek(mb, 10)).toEqual([{ id: 'fresh', env: 'e' }]);
      });

      it('stores again an id whose envelope expired unacknowledged', async () => {
        const { store, advance } = await make();
        const mb = newMailbox();
        await store.enqueue(mb, 'id', 'v1');
        advance(CONTRACT_LIMITS.queueTtlSeconds * 1000 + 1);
        expect(await store.enqueue(mb, 'id', 'v2')).toBe('stored');
        expect(await store.peek(mb, 10)).toEqual([{ id: 'id', env: 'v2' }]);
      });

      it('forgets an acknowledged id after dedupTtlSeconds, not before', async () => {
        const { store, advance } = await make();
        const mb = newMailbox();
        await store.enqueue(mb, 'id', 'v1');
        await store.ack(mb, ['id']);
        advance(CONTRACT_LIMITS.dedupTtlSeconds * 1000 - 1_000);
        expect(await store.enqueue(mb, 'id', 'v1')).toBe('duplicate');
        advance(1_001);
        expect(await store.enqueue(mb, 'id', 'v2')).toBe('stored');
        expect(await store.peek(mb, 10)).toEqual([{ id: 'id', env: 'v2' }]);
      });

      describe('remembered ids at maxDedupIdsPerMailbox', () => {
        const limits = { ...CONTRACT_LIMITS, maxQueuedPerMailbox: 50 };
        const bound = CONTRACT_LIMITS.maxDedupIdsPerMailbox;

        /** Enqueues and acknowledges `ids` in `mb`, one ack call per id. */
        async function ackEach(store: Store, mb: string, ids: readonly string[]): Promise<void> {
          for (const id of ids) {
            expect(await store.enqueue(mb, id, 'e')).toBe('stored');
            await store.ack(mb, [id]);
          }
        }

        it('remembers exactly maxDedupIdsPerMailbox acknowledged ids: each resend is a duplicate', async () => {
          const { store } = await make(limits);
          const mb = newMailbox();
          const ids = Array.from({ length: bound }, newMessageId);
          await ackEach(store, mb, ids);
          for (const id of ids) expect(await store.enqueue(mb, id, 'again')).toBe('duplicate');
          expect(await store.peek(mb, 50)).toEqual([]);
        });

        it('one past the bound forgets the oldest acknowledged id: its resend is stored and delivered again', async () => {
          const { store } = await make(limits);
          const mb = newMailbox();
          const ids = Array.from({ length: bound + 1 }, newMessageId);
          await ackEach(store, mb, ids);
          const [oldest, ...kept] = ids as [string, ...string[]];
          for (const id of kept) expect(await store.enqueue(mb, id, 'again')).toBe('duplicate');
          expect(await store.enqueue(mb, oldest, 'again')).toBe('stored');
          expect(await store.peek(mb, 50)).toEqual([{ id: oldest, env: 'again' }]);
        });

        it('forgets in acknowledgement order within one ack, not in the order of the ids', async () => {
          const { store } = await make(limits);
          const mb = newMailbox();
          // Acknowledged in one call, in the reverse of their sort order: the first is the oldest.
          const ids = Array.from({ length: bound + 2 }, (_, i) => `id${String(99 - i)}`);
          for (const id of ids) await store.enqueue(mb, id, 'e');
          await store.ack(mb, ids);
          expect(await store.enqueue(mb, ids[0] as string, 'e')).toBe('stored');
          expect(await store.enqueue(mb, ids[1] as string, 'e')).toBe('stored');
          expect(await store.enqueue(mb, ids[2] as string, 'e')).toBe('duplicate');
          expect(await store.enqueue(mb, ids.at(-1) as string, 'e')).toBe('duplicate');
        });

        it('keeps the bound per mailbox: a full mailbox does not make another forget', async () => {
          const { store } = await make(limits);
          const [full, other] = [newMailbox(), newMailbox()];
          const first = newMessageId();
          await ackEach(store, other, [first]);
          await ackEach(store, full, Array.from({ length: bound + 1 }, newMessageId));
          expect(await store.enqueue(other, first, 'e')).toBe('duplicate');
        });

        it('does not count an id acknowledged twice, or one never queued, against the bound', async () => {
          const { store } = await make(limits);
          const mb = newMailbox();
          const ids = Array.from({ length: bound }, newMessageId);
          await ackEach(store, mb, ids);
          await store.ack(mb, [ids[0] as string, ids[0] as string, newMessageId(), newMessageId()]);
          for (const id of ids) expect(await store.enqueue(mb, id, 'e')).toBe('duplicate');
        });
      });

      it('does not acknowledge (or remember) an envelope that already expired', async () => {
        const { store, advance } = await make();
        const mb = newMailbox();
        await store.enqueue(mb, 'id', 'v1');
        advance(CONTRACT_LIMITS.queueTtlSeconds * 1000 + 1);
        await store.ack(mb, ['id']);
        expect(await store.enqueue(mb, 'id', 'v2')).toBe('stored');
      });
    });

    describe('peekAfter (the refill: by cursor, within count and byte bounds)', () => {
      const ALL = { limit: 100, maxBytes: 1_000_000 } as const;
      const ids = (page: PeekPage) => page.messages.map((m) => m.id);

      /** `n` envelopes of `bytes` characters each, enqueued in order; their ids. */
      async function fill(store: Store, mb: string, n: number, bytes = 10): Promise<string[]> {
        const out: string[] = [];
        for (let i = 0; i < n; i += 1) {
          const id = `m${i}`;
          expect(await store.enqueue(mb, id, 'e'.repeat(bytes))).toBe('stored');
          out.push(id);
        }
        return out;
      }

      it('reads from the oldest, each envelope with a cursor, and says nothing more follows', async () => {
        const { store } = await make();
        const mb = newMailbox();
        const queued = await fill(store, mb, 3);
        const page = await store.peekAfter(mb, ALL);
        expect(ids(page)).toEqual(queued);
        expect(page.messages.map((m) => m.env)).toEqual([
          'e'.repeat(10),
          'e'.repeat(10),
          'e'.repeat(10),
        ]);
        expect(page.more).toBe(false);
        expect(page.cursor).toBe(page.messages[2]?.cursor);
        for (const m of page.messages) expect(isPeekCursor(m.cursor)).toBe(true);
      });

      it('continues after a cursor, and returns an empty page after the last', async () => {
        const { store } = await make();
        const mb = newMailbox();
        const queued = await fill(store, mb, 4);
        const first = await store.peekAfter(mb, { ...ALL, limit: 2 });
        expect(ids(first)).toEqual(queued.slice(0, 2));
        const second = await store.peekAfter(mb, { ...ALL, after: first.cursor });
        expect(ids(second)).toEqual(queued.slice(2));
        const third = await store.peekAfter(mb, { ...ALL, after: second.cursor });
        expect(third).toEqual({ messages: [], cursor: second.cursor, more: false });
      });

      it('says more may follow when it stops at the limit, also with nothing after it', async () => {
        const { store } = await make();
        const mb = newMailbox();
        await fill(store, mb, 3);
        expect((await store.peekAfter(mb, { ...ALL, limit: 3 })).more).toBe(true);
        expect((await store.peekAfter(mb, { ...ALL, limit: 4 })).more).toBe(false);
      });

      it('returns envelopes up to maxBytes in all: at the bound, and one byte under it', async () => {
        const { store } = await make();
        const mb = newMailbox();
        const queued = await fill(store, mb, 3, 10);
        const at = await store.peekAfter(mb, { limit: 10, maxBytes: 20 });
        expect(ids(at)).toEqual(queued.slice(0, 2));
        expect(at.more).toBe(true);
        expect(at.cursor).toBe(at.messages[1]?.cursor);
        const under = await store.peekAfter(mb, { limit: 10, maxBytes: 19 });
        expect(ids(under)).toEqual(queued.slice(0, 1));
        expect(under.more).toBe(true);
        expect(ids(await store.peekAfter(mb, { limit: 10, maxBytes: 30 }))).toEqual(queued);
      });

      it('returns the first envelope whatever its size, so a reader with no room moves on', async () => {
        const { store } = await make();
        const mb = newMailbox();
        const queued = await fill(store, mb, 2, 50);
        const page = await store.peekAfter(mb, { limit: 10, maxBytes: 0 });
        expect(ids(page)).toEqual(queued.slice(0, 1));
        expect(page.more).toBe(true);
        const next = await store.peekAfter(mb, { limit: 10, maxBytes: 0, after: page.cursor });
        expect(ids(next)).toEqual(queued.slice(1));
      });

      it('passes over skipped ids unread, moving the cursor past them', async () => {
        const { store } = await make();
        const mb = newMailbox();
        const queued = await fill(store, mb, 5);
        const held = new Set([queued[0], queued[1], queued[3]]);
        const page = await store.peekAfter(mb, {
          limit: 2,
          scan: 5,
          maxBytes: 1_000,
          skip: (id) => held.has(id),
        });
        expect(ids(page)).toEqual([queued[2], queued[4]]);
        // A skipped id after the last returned one is passed over too (scan reached: more).
        const tail = await store.peekAfter(mb, {
          limit: 1,
          scan: 2,
          maxBytes: 1_000,
          skip: (id) => id === queued[1],
        });
        expect(ids(tail)).toEqual([queued[0]]);
        const after = await store.peekAfter(mb, {
          limit: 5,
          scan: 5,
          maxBytes: 1_000,
          after: tail.cursor,
          skip: (id) => id === queued[1],
        });
        expect(ids(after)).toEqual(queued.slice(2));
      });

      it('looks at no more than scan ids, skipped ones included', async () => {
        const { store } = await make();
        const mb = newMailbox();
        const queued = await fill(store, mb, 5);
        const page = await store.peekAfter(mb, {
          limit: 2,
          scan: 3,
          maxBytes: 1_000,
          skip: (id) => id !== queued[2],
        });
        expect(ids(page)).toEqual([queued[2]]);
        expect(page.more).toBe(true);
        const rest = await store.peekAfter(mb, {
          limit: 2,
          scan: 3,
          maxBytes: 1_000,
          after: page.cursor,
        });
        expect(ids(rest)).toEqual(queued.slice(3));
      });

      it('leaves out acknowledged and expired envelopes after the cursor', async () => {
        const { store, advance } = await make();
        const mb = newMailbox();
        await store.enqueue(mb, 'old', 'e');
        const first = await store.peekAfter(mb, ALL);
        advance(30_000);
        await store.enqueue(mb, 'acked', 'e');
        await store.enqueue(mb, 'young', 'e');
        await store.ack(mb, ['acked']);
        advance(CONTRACT_LIMITS.queueTtlSeconds * 1000 - 30_000 + 1);
        expect(ids(await store.peekAfter(mb, ALL))).toEqual(['young']);
        expect(ids(await store.peekAfter(mb, { ...ALL, after: first.cursor }))).toEqual(['young']);
      });

      it('orders an envelope stored after the mailbox emptied after every earlier cursor', async () => {
        const { store } = await make();
        const mb = newMailbox();
        await store.enqueue(mb, 'a', 'e');
        const page = await store.peekAfter(mb, ALL);
        await store.ack(mb, ['a']);
        await store.enqueue(newMailbox(), 'elsewhere', 'e');
        await store.enqueue(mb, 'b', 'e');
        expect(ids(await store.peekAfter(mb, { ...ALL, after: page.cursor }))).toEqual(['b']);
      });

      it('removes nothing, and keeps mailboxes apart', async () => {
        const { store } = await make();
        const a = newMailbox();
        await fill(store, a, 2);
        const first = await store.peekAfter(a, ALL);
        expect(await store.peekAfter(a, ALL)).toEqual(first);
        expect(await store.peekAfter(newMailbox(), ALL)).toEqual({
          messages: [],
          cursor: undefined,
          more: false,
        });
      });

      it('refuses a cursor that is not decimal digits', async () => {
        const { store } = await make();
        const mb = newMailbox();
        for (const after of [
          '',
          'abc',
          '-1',
          '1.5',
          '1e5',
          ' 1',
          '1'.repeat(MAX_PEEK_CURSOR_DIGITS + 1),
        ]) {
          await expect(store.peekAfter(mb, { ...ALL, after })).rejects.toThrow(RangeError);
        }
        // The longest cursor is accepted.
        await expect(
          store.peekAfter(mb, { ...ALL, after: '9'.repeat(MAX_PEEK_CURSOR_DIGITS) }),
        ).resolves.toMatchObject({ messages: [] });
      });

      it('refuses a limit below 1 or not an integer', async () => {
        const { store } = await make();
        const mb = newMailbox();
        for (const limit of [0, -1, 1.5, Number.NaN]) {
          await expect(store.peekAfter(mb, { limit, maxBytes: 10 })).rejects.toThrow(RangeError);
        }
      });

      it('refuses a scan below the limit or above MAX_PEEK_SCAN, and accepts it at both ends', async () => {
        const { store } = await make();
        const mb = newMailbox();
        await expect(store.peekAfter(mb, { limit: 2, scan: 1, maxBytes: 10 })).rejects.toThrow(
          RangeError,
        );
        await expect(
          store.peekAfter(mb, { limit: 2, scan: MAX_PEEK_SCAN + 1, maxBytes: 10 }),
        ).rejects.toThrow(RangeError);
        await expect(
          store.peekAfter(mb, { limit: 2, scan: 2, maxBytes: 10 }),
        ).resolves.toBeDefined();
        await expect(
          store.peekAfter(mb, { limit: 2, scan: MAX_PEEK_SCAN, maxBytes: 10 }),
        ).resolves.toBeDefined();
      });

      it('refuses a negative or fractional maxBytes', async () => {
        const { store } = await make();
        const mb = newMailbox();
        for (const maxBytes of [-1, 0.5, Number.POSITIVE_INFINITY]) {
          await expect(store.peekAfter(mb, { limit: 1, maxBytes })).rejects.toThrow(RangeError);
        }
      });
    });

    describe('prekey directory', () => {
      const bundle = { identity: 'IDENTITY', signedPrekey: 'SIGNED' };
      const keys = (from: number, n: number) =>
        Array.from({ length: n }, (_, i) => ({ id: from + i, key: `k${from + i}` }));

      it('publishes a bundle and hands out one-time prekeys lowest id first', async () => {
        const { store } = await make();
        const mb = newMailbox();
        expect(await store.publishPrekeys(mb, bundle, [...keys(5, 2), ...keys(1, 2)])).toBe(4);
        expect(await store.countPrekeys(mb)).toBe(4);
        expect(await store.fetchPrekeys(mb)).toEqual({ ...bundle, oneTime: { id: 1, key: 'k1' } });
        expect(await store.fetchPrekeys(mb)).toEqual({ ...bundle, oneTime: { id: 2, key: 'k2' } });
        expect(await store.countPrekeys(mb)).toBe(2);
      });

      it('returns the bundle with no one-time prekey once they are used up', async () => {
        const { store } = await make();
        const mb = newMailbox();
        await store.publishPrekeys(mb, bundle, keys(1, 1));
        await store.fetchPrekeys(mb);
        expect(await store.fetchPrekeys(mb)).toEqual({ ...bundle, oneTime: null });
        expect(await store.countPrekeys(mb)).toBe(0);
      });

      it('replaces the bundle and adds to the one-time prekeys on a new publish', async () => {
        const { store } = await make();
        const mb = newMailbox();
        await store.publishPrekeys(mb, bundle, keys(1, 3));
        const next = { identity: 'IDENTITY', signedPrekey: 'SIGNED2' };
        expect(await store.publishPrekeys(mb, next, keys(10, 2))).toBe(5);
        expect(await store.fetchPrekeys(mb)).toEqual({ ...next, oneTime: { id: 1, key: 'k1' } });
      });

      it('never hands out the same one-time prekey twice under concurrent fetches', async () => {
        const { store } = await make();
        const mb = newMailbox();
        await store.publishPrekeys(mb, bundle, keys(100, 10));
        const fetched = await Promise.all(Array.from({ length: 25 }, () => store.fetchPrekeys(mb)));
        const ids = fetched.map((f) => f?.oneTime?.id).filter((id) => id !== undefined);
        expect(ids).toHaveLength(10);
        expect(new Set(ids).size).toBe(10);
        expect(fetched.filter((f) => f !== null && f.oneTime === null)).toHaveLength(15);
      });

      it("withholds the one-time prekey when asked, leaving the owner's count as it was", async () => {
        const { store } = await make();
        const mb = newMailbox();
        await store.publishPrekeys(mb, bundle, keys(1, 3));
        for (let i = 0; i < 5; i++) {
          expect(await store.fetchPrekeys(mb, 'withhold')).toEqual({ ...bundle, oneTime: null });
        }
        expect(await store.countPrekeys(mb)).toBe(3);
        // The withheld one is still the next handed out.
        expect(await store.fetchPrekeys(mb, 'take')).toEqual({
          ...bundle,
          oneTime: { id: 1, key: 'k1' },
        });
        expect(await store.countPrekeys(mb)).toBe(2);
      });

      it('answers a withholding fetch with the newest bundle after a republish', async () => {
        const { store } = await make();
        const mb = newMailbox();
        await store.publishPrekeys(mb, bundle, keys(1, 1));
        const next = { identity: 'IDENTITY', signedPrekey: 'SIGNED2' };
        await store.publishPrekeys(mb, next, []);
        expect(await store.fetchPrekeys(mb, 'withhold')).toEqual({ ...next, oneTime: null });
      });

      it('returns null to a withholding fetch for a mailbox that never published', async () => {
        const { store } = await make();
        const mb = newMailbox();
        expect(await store.fetchPrekeys(mb, 'withhold')).toBeNull();
        expect(await store.countPrekeys(mb)).toBe(0);
      });

      it('returns null to a withholding fetch once the bundle expired', async () => {
        const { store, advance } = await make();
        const mb = newMailbox();
        await store.publishPrekeys(mb, bundle, keys(1, 2));
        advance(CONTRACT_LIMITS.prekeyTtlSeconds * 1000 + 1);
        expect(await store.fetchPrekeys(mb, 'withhold')).toBeNull();
      });

      it('withholds also when the one-time prekeys are used up', async () => {
        const { store } = await make();
        const mb = newMailbox();
        await store.publishPrekeys(mb, bundle, []);
        expect(await store.fetchPrekeys(mb, 'withhold')).toEqual({ ...bundle, oneTime: null });
        expect(await store.countPrekeys(mb)).toBe(0);
      });

      it('never hands a one-time prekey to a withholding fetch under concurrent taking ones', async () => {
        const { store } = await make();
        const mb = newMailbox();
        await store.publishPrekeys(mb, bundle, keys(100, 6));
        const modes = Array.from({ length: 20 }, (_, i): OneTimePrekeyMode =>
          i % 2 === 0 ? 'take' : 'withhold',
        );
        const fetched = await Promise.all(modes.map((mode) => store.fetchPrekeys(mb, mode)));
        for (const [i, f] of fetched.entries()) {
          if (modes[i] === 'withhold') expect(f).toEqual({ ...bundle, oneTime: null });
        }
        const ids = fetched.map((f) => f?.oneTime?.id).filter((id) => id !== undefined);
        expect(new Set(ids).size).toBe(6);
        expect(await store.countPrekeys(mb)).toBe(0);
      });

      it('rejects an unknown one-time prekey mode with RangeError and takes nothing', async () => {
        const { store } = await make();
        const mb = newMailbox();
        await store.publishPrekeys(mb, bundle, keys(1, 2));
        for (const mode of ['peek', '', 'TAKE', 'withheld']) {
          await expect(store.fetchPrekeys(mb, mode as OneTimePrekeyMode)).rejects.toThrow(
            RangeError,
          );
        }
        expect(await store.countPrekeys(mb)).toBe(2);
      });

      it('keeps exactly maxOneTimePrekeys', async () => {
        const { store } = await make();
        const mb = newMailbox();
        expect(await store.publishPrekeys(mb, bundle, keys(1, 10))).toBe(10);
      });

      it('refuses a publish past maxOneTimePrekeys with prekeys_full and stores nothing', async () => {
        const { store } = await make();
        const mb = newMailbox();
        await store.publishPrekeys(mb, bundle, keys(1, 8));
        const other = { identity: 'OTHER', signedPrekey: 'OTHER' };
        await expectStoreError(store.publishPrekeys(mb, other, keys(20, 3)), 'prekeys_full');
        expect(await store.countPrekeys(mb)).toBe(8);
        expect(await store.fetchPrekeys(mb)).toEqual({ ...bundle, oneTime: { id: 1, key: 'k1' } });
      });

      it('refuses a first publish that alone passes maxOneTimePrekeys', async () => {
        const { store } = await make();
        const mb = newMailbox();
        await expectStoreError(store.publishPrekeys(mb, bundle, keys(1, 11)), 'prekeys_full');
        expect(await store.fetchPrekeys(mb)).toBeNull();
      });

      it('counts a republished one-time prekey id once (a retried publish is idempotent)', async () => {
        const { store } = await make();
        const mb = newMailbox();
        await store.publishPrekeys(mb, bundle, keys(1, 6));
        expect(await store.publishPrekeys(mb, bundle, keys(1, 6))).toBe(6);
        expect(await store.publishPrekeys(mb, bundle, keys(5, 6))).toBe(10);
      });

      it('returns null and a count of 0 for a mailbox that never published', async () => {
        const { store } = await make();
        const mb = newMailbox();
        expect(await store.fetchPrekeys(mb)).toBeNull();
        expect(await store.countPrekeys(mb)).toBe(0);
      });

      it('keeps prekey directories of different mailboxes apart', async () => {
        const { store } = await make();
        const a = newMailbox();
        await store.publishPrekeys(a, bundle, keys(1, 2));
        expect(await store.fetchPrekeys(newMailbox())).toBeNull();
        expect(await store.countPrekeys(a)).toBe(2);
      });

      it('expires the bundle and its one-time prekeys after prekeyTtlSeconds', async () => {
        const { store, advance } = await make();
        const mb = newMailbox();
        await store.publishPrekeys(mb, bundle, keys(1, 3));
        advance(CONTRACT_LIMITS.prekeyTtlSeconds * 1000 - 1_000);
        expect(await store.countPrekeys(mb)).toBe(3);
        advance(1_001);
        expect(await store.fetchPrekeys(mb)).toBeNull();
        expect(await store.countPrekeys(mb)).toBe(0);
        // A publish after expiry starts afresh: the expired one-time prekeys are not revived.
        expect(await store.publishPrekeys(mb, bundle, keys(50, 1))).toBe(1);
        expect(await store.fetchPrekeys(mb)).toEqual({
          ...bundle,
          oneTime: { id: 50, key: 'k50' },
        });
      });

      it('extends the expiry of all one-time prekeys on a new publish', async () => {
        const { store, advance } = await make();
        const mb = newMailbox();
        await store.publishPrekeys(mb, bundle, keys(1, 2));
        advance(CONTRACT_LIMITS.prekeyTtlSeconds * 1000 - 1_000);
        await store.publishPrekeys(mb, bundle, []);
        advance(2_000);
        expect(await store.countPrekeys(mb)).toBe(2);
      });
    });

    describe('organization profile', () => {
      const nowSeconds = () => Math.floor(Date.now() / 1000);
      const newOrg = () => randomBytes(32).toString('base64url');
      const profile = (version: number, expiresIn = 3600, bytes = 64) => ({
        version,
        profile: randomBytes(bytes).toString('base64url'),
        expiresAtSeconds: nowSeconds() + expiresIn,
      });

      it('holds nothing for an organization that never published', async () => {
        const { store } = await make();
        expect(await store.getProfile(newOrg())).toBeNull();
      });

      it('stores a profile and returns its bytes', async () => {
        const { store } = await make();
        const org = newOrg();
        const p1 = profile(1);
        expect(await store.putProfile(org, p1)).toBe('stored');
        expect(await store.getProfile(org)).toBe(p1.profile);
      });

      it('replaces it with a greater version only', async () => {
        const { store } = await make();
        const org = newOrg();
        const p5 = profile(5);
        await store.putProfile(org, p5);
        expect(await store.putProfile(org, profile(4))).toBe('stale');
        expect(await store.getProfile(org)).toBe(p5.profile);
        const p6 = profile(6);
        expect(await store.putProfile(org, p6)).toBe('stored');
        expect(await store.getProfile(org)).toBe(p6.profile);
      });

      it('answers unchanged for the same version and bytes, stale for the same version with others', async () => {
        const { store } = await make();
        const org = newOrg();
        const p3 = profile(3);
        await store.putProfile(org, p3);
        expect(await store.putProfile(org, p3)).toBe('unchanged');
        expect(await store.putProfile(org, profile(3))).toBe('stale');
        expect(await store.getProfile(org)).toBe(p3.profile);
      });

      it('keeps organizations apart', async () => {
        const { store } = await make();
        const [a, b] = [newOrg(), newOrg()];
        const pa = profile(9);
        await store.putProfile(a, pa);
        expect(await store.putProfile(b, profile(1))).toBe('stored');
        expect(await store.getProfile(a)).toBe(pa.profile);
      });

      it('expires a profile at its expiry; then any version may be stored again', async () => {
        const { store, advance } = await make();
        const org = newOrg();
        await store.putProfile(org, profile(7, 60));
        advance(61_000);
        expect(await store.getProfile(org)).toBeNull();
        // The store no longer remembers version 7: an older, unexpired profile is taken again
        // (the replay window docs/adr/0013-organization-profile-in-the-store.md describes).
        const older = { ...profile(2), expiresAtSeconds: nowSeconds() + 3600 + 61 };
        expect(await store.putProfile(org, older)).toBe('stored');
      });

      it('refuses a profile whose expiry has passed, storing nothing', async () => {
        const { store } = await make();
        const org = newOrg();
        expect(await store.putProfile(org, profile(1, -1))).toBe('expired');
        expect(await store.getProfile(org)).toBeNull();
      });

      it('keeps a profile at most MAX_PROFILE_VALIDITY_SECONDS, whatever its expiry says', async () => {
        const { store, advance } = await make();
        const org = newOrg();
        await store.putProfile(org, profile(1, 10 * MAX_PROFILE_VALIDITY_SECONDS));
        advance(MAX_PROFILE_VALIDITY_SECONDS * 1000 - 5_000);
        expect(await store.getProfile(org)).not.toBeNull();
        advance(10_000);
        expect(await store.getProfile(org)).toBeNull();
      });

      it('refuses an organization key or numbers it cannot store, with RangeError', async () => {
        const { store } = await make();
        await expect(store.putProfile('not{base64url}', profile(1))).rejects.toThrow(RangeError);
        await expect(store.putProfile(newOrg(), profile(-1))).rejects.toThrow(RangeError);
        await expect(store.putProfile(newOrg(), profile(2 ** 32))).rejects.toThrow(RangeError);
        await expect(store.putProfile(newOrg(), { ...profile(1), profile: 'a b' })).rejects.toThrow(
          RangeError,
        );
      });
    });

    describe('state blob (one per mailbox, compare-and-set)', () => {
      const gen = () => 1 + Math.floor(Math.random() * 2 ** 52);

      it('holds nothing for a mailbox that never put one', async () => {
        const { store } = await make();
        expect(await store.getState(newMailbox())).toBeNull();
      });

      it('creates with ifGeneration 0 and returns the blob with its generation', async () => {
        const { store } = await make();
        const mb = newMailbox();
        const blob = newEnvelope(200);
        expect(await store.putState(mb, blob, 0, 42)).toEqual({ generation: 42 });
        expect(await store.getState(mb)).toEqual({ blob, generation: 42 });
      });

      it('replaces it when ifGeneration is the one held, and only then', async () => {
        const { store } = await make();
        const mb = newMailbox();
        await store.putState(mb, newEnvelope(), 0, 7);
        const next = newEnvelope();
        expect(await store.putState(mb, next, 7, 8)).toEqual({ generation: 8 });
        expect(await store.putState(mb, newEnvelope(), 7, 9)).toBe('conflict');
        expect(await store.putState(mb, newEnvelope(), 0, 10)).toBe('conflict');
        expect(await store.getState(mb)).toEqual({ blob: next, generation: 8 });
      });

      it('refuses a put against a generation when none is held', async () => {
        const { store } = await make();
        const mb = newMailbox();
        expect(await store.putState(mb, newEnvelope(), 5, 6)).toBe('conflict');
        expect(await store.getState(mb)).toBeNull();
      });

      it('lets exactly one of two concurrent puts on one generation win', async () => {
        const { store } = await make();
        const mb = newMailbox();
        await store.putState(mb, newEnvelope(), 0, 1);
        const [a, b] = [newEnvelope(), newEnvelope()];
        const results = await Promise.all([
          store.putState(mb, a, 1, 2),
          store.putState(mb, b, 1, 3),
        ]);
        expect(results.filter((r) => r === 'conflict')).toHaveLength(1);
        const held = await store.getState(mb);
        expect([
          { blob: a, generation: 2 },
          { blob: b, generation: 3 },
        ]).toContainEqual(held);
      });

      it('stores a blob of MAX_STATE_BLOB_BYTES unchanged', async () => {
        const { store } = await make();
        const mb = newMailbox();
        const blob = newEnvelope(MAX_STATE_BLOB_BYTES);
        await store.putState(mb, blob, 0, 3);
        expect((await store.getState(mb))?.blob).toBe(blob);
      });

      it('keeps mailboxes apart', async () => {
        const { store } = await make();
        const [a, b] = [newMailbox(), newMailbox()];
        const blob = newEnvelope();
        await store.putState(a, blob, 0, 11);
        expect(await store.getState(b)).toBeNull();
        expect(await store.putState(b, newEnvelope(), 11, 12)).toBe('conflict');
        expect(await store.putState(b, newEnvelope(), 0, 12)).toEqual({ generation: 12 });
        expect(await store.getState(a)).toEqual({ blob, generation: 11 });
      });

      it('deletes it: then nothing is held, as for a mailbox that never had one', async () => {
        const { store } = await make();
        const mb = newMailbox();
        await store.putState(mb, newEnvelope(), 0, 21);
        await store.deleteState(mb);
        expect(await store.getState(mb)).toBeNull();
        expect(await store.putState(mb, newEnvelope(), 21, 22)).toBe('conflict');
        expect(await store.putState(mb, newEnvelope(), 0, 23)).toEqual({ generation: 23 });
        await store.deleteState(newMailbox()); // deleting none is harmless
      });

      it('deletes with it what is queued and remembered: the mailbox looks never used', async () => {
        const { store } = await make();
        const mb = newMailbox();
        const ids = [newMessageId(), newMessageId(), newMessageId()];
        for (const id of ids) expect(await store.enqueue(mb, id, newEnvelope())).toBe('stored');
        await store.ack(mb, [ids[0]!]); // remembered for deduplication
        await store.putState(mb, newEnvelope(), 0, 41);
        await store.deleteState(mb);
        expect(await store.getState(mb)).toBeNull();
        expect(await store.peek(mb, 10)).toEqual([]);
        // The acknowledged id is forgotten too: a resend is queued as for a fresh mailbox.
        const env = newEnvelope();
        expect(await store.enqueue(mb, ids[0]!, env)).toBe('stored');
        expect(await store.peek(mb, 10)).toEqual([{ id: ids[0], env }]);
      });

      it('deletes a full queue and every remembered id, with no state held', async () => {
        const { store } = await make();
        const mb = newMailbox();
        const { maxDedupIdsPerMailbox: remembered, maxQueuedPerMailbox: queued } = CONTRACT_LIMITS;
        const acked = Array.from({ length: remembered }, newMessageId);
        for (let i = 0; i < remembered; i += queued) {
          const round = acked.slice(i, i + queued);
          for (const id of round) expect(await store.enqueue(mb, id, newEnvelope())).toBe('stored');
          await store.ack(mb, round);
        }
        for (let i = 0; i < queued; i++) await store.enqueue(mb, newMessageId(), newEnvelope());
        await store.deleteState(mb);
        expect(await store.peek(mb, 10)).toEqual([]);
        // Room for a full queue again, and none of the remembered ids is a duplicate any more.
        for (const id of acked.slice(-queued)) {
          expect(await store.enqueue(mb, id, newEnvelope())).toBe('stored');
        }
      });

      it('leaves the queue and state of every other mailbox alone', async () => {
        const { store } = await make();
        const [a, b] = [newMailbox(), newMailbox()];
        const kept = { id: newMessageId(), env: newEnvelope() };
        const ackedB = newMessageId();
        await store.enqueue(a, newMessageId(), newEnvelope());
        await store.enqueue(b, kept.id, kept.env);
        await store.enqueue(b, ackedB, newEnvelope());
        await store.ack(b, [ackedB]);
        await store.putState(b, 'Yg', 0, 51);
        await store.deleteState(a);
        expect(await store.peek(b, 10)).toEqual([kept]);
        expect(await store.enqueue(b, ackedB, newEnvelope())).toBe('duplicate');
        expect(await store.getState(b)).toEqual({ blob: 'Yg', generation: 51 });
      });

      it('expires it after queueTtlSeconds from the last put, which refreshes it', async () => {
        const { store, advance } = await make();
        const mb = newMailbox();
        await store.putState(mb, newEnvelope(), 0, 31);
        advance(CONTRACT_LIMITS.queueTtlSeconds * 1000 - 2_000);
        expect(await store.putState(mb, newEnvelope(), 31, 32)).toEqual({ generation: 32 });
        advance(4_000);
        expect((await store.getState(mb))?.generation).toBe(32);
        advance(CONTRACT_LIMITS.queueTtlSeconds * 1000);
        expect(await store.getState(mb)).toBeNull();
        // An expired state counts as none: a create succeeds, a put against it conflicts.
        expect(await store.putState(mb, newEnvelope(), 32, 33)).toBe('conflict');
        expect(await store.putState(mb, newEnvelope(), 0, gen())).not.toBe('conflict');
      });

      it('does not extend the expiry on a read', async () => {
        const { store, advance } = await make();
        const mb = newMailbox();
        await store.putState(mb, newEnvelope(), 0, 41);
        advance(CONTRACT_LIMITS.queueTtlSeconds * 1000 - 2_000);
        expect(await store.getState(mb)).not.toBeNull();
        advance(4_000);
        expect(await store.getState(mb)).toBeNull();
      });

      it('refuses arguments it cannot store, with RangeError, storing nothing', async () => {
        const { store } = await make();
        const mb = newMailbox();
        await expect(store.putState('a{b}', newEnvelope(), 0, 1)).rejects.toThrow(RangeError);
        await expect(store.putState(mb, 'a b', 0, 1)).rejects.toThrow(RangeError);
        await expect(store.putState(mb, newEnvelope(), -1, 1)).rejects.toThrow(RangeError);
        await expect(store.putState(mb, newEnvelope(), 0, 0)).rejects.toThrow(RangeError);
        await expect(store.putState(mb, newEnvelope(), 0, 1.5)).rejects.toThrow(RangeError);
        await expect(store.putState(mb, newEnvelope(), 0, 2 ** 53)).rejects.toThrow(RangeError);
        await expect(store.putState(mb, newEnvelope(), 4, 4)).rejects.toThrow(RangeError);
        expect(await store.getState(mb)).toBeNull();
      });
    });

    describe('attachment blobs (reserved, then uploaded once)', () => {
      const newId = () => randomBytes(16).toString('base64url');
      const newHash = () => randomBytes(32).toString('base64url');
      const TTL_MS = 10_000;

      it('stores a blob for its reservation and returns it', async () => {
        const { store } = await make();
        const [id, hash] = [newId(), newHash()];
        expect(await store.reserveBlob(id, hash, TTL_MS)).toBe(true);
        expect(await store.blobReserved(id, hash)).toBe(true);
        const blob = newEnvelope(5_000);
        expect(await store.putBlob(id, hash, blob)).toBe('stored');
        expect(await store.getBlob(id)).toBe(blob);
      });

      it('holds nothing for an id never reserved or reserved and not uploaded', async () => {
        const { store } = await make();
        expect(await store.getBlob(newId())).toBeNull();
        const id = newId();
        await store.reserveBlob(id, newHash(), TTL_MS);
        expect(await store.getBlob(id)).toBeNull();
      });

      it('refuses an upload with another token, storing nothing and keeping the reservation', async () => {
        const { store } = await make();
        const [id, hash] = [newId(), newHash()];
        await store.reserveBlob(id, hash, TTL_MS);
        expect(await store.blobReserved(id, newHash())).toBe(false);
        expect(await store.putBlob(id, newHash(), newEnvelope())).toBe('not_reserved');
        expect(await store.getBlob(id)).toBeNull();
        expect(await store.putBlob(id, hash, newEnvelope())).toBe('stored');
      });

      it('refuses an upload without a reservation', async () => {
        const { store } = await make();
        const id = newId();
        expect(await store.blobReserved(id, newHash())).toBe(false);
        expect(await store.putBlob(id, newHash(), newEnvelope())).toBe('not_reserved');
        expect(await store.getBlob(id)).toBeNull();
      });

      it('spends the reservation: a second upload with the same token is refused', async () => {
        const { store } = await make();
        const [id, hash] = [newId(), newHash()];
        await store.reserveBlob(id, hash, TTL_MS);
        const first = newEnvelope();
        await store.putBlob(id, hash, first);
        expect(await store.blobReserved(id, hash)).toBe(false);
        expect(await store.putBlob(id, hash, newEnvelope())).toBe('not_reserved');
        expect(await store.getBlob(id)).toBe(first);
      });

      it('lets exactly one of two concurrent uploads on one reservation win', async () => {
        const { store } = await make();
        const [id, hash] = [newId(), newHash()];
        await store.reserveBlob(id, hash, TTL_MS);
        const [a, b] = [newEnvelope(), newEnvelope()];
        const results = await Promise.all([store.putBlob(id, hash, a), store.putBlob(id, hash, b)]);
        expect([...results].sort()).toEqual(['not_reserved', 'stored']);
        expect([a, b]).toContain(await store.getBlob(id));
      });

      it('refuses to reserve an id that is reserved or held already', async () => {
        const { store } = await make();
        const [id, hash] = [newId(), newHash()];
        await store.reserveBlob(id, hash, TTL_MS);
        expect(await store.reserveBlob(id, newHash(), TTL_MS)).toBe(false);
        await store.putBlob(id, hash, newEnvelope());
        expect(await store.reserveBlob(id, newHash(), TTL_MS)).toBe(false);
      });

      it('expires a reservation after its TTL: the upload is refused', async () => {
        const { store, advance } = await make();
        const [id, hash] = [newId(), newHash()];
        await store.reserveBlob(id, hash, TTL_MS);
        advance(TTL_MS + 1_000);
        expect(await store.blobReserved(id, hash)).toBe(false);
        expect(await store.putBlob(id, hash, newEnvelope())).toBe('not_reserved');
        expect(await store.getBlob(id)).toBeNull();
      });

      it('expires a blob after queueTtlSeconds: then it is like one never stored', async () => {
        const { store, advance } = await make();
        const [id, hash] = [newId(), newHash()];
        await store.reserveBlob(id, hash, TTL_MS);
        await store.putBlob(id, hash, newEnvelope());
        advance(CONTRACT_LIMITS.queueTtlSeconds * 1000 - 2_000);
        expect(await store.getBlob(id)).not.toBeNull();
        advance(4_000);
        expect(await store.getBlob(id)).toBeNull();
      });

      it('stores a blob of MAX_BLOB_BYTES unchanged', async () => {
        const { store } = await make();
        const [id, hash] = [newId(), newHash()];
        await store.reserveBlob(id, hash, TTL_MS);
        const blob = newEnvelope(MAX_BLOB_BYTES);
        expect(await store.putBlob(id, hash, blob)).toBe('stored');
        expect(await store.getBlob(id)).toBe(blob);
      }, 30_000);

      it('refuses ids, hashes and blobs it cannot store, with RangeError', async () => {
        const { store } = await make();
        const hash = newHash();
        await expect(store.reserveBlob('short', hash, TTL_MS)).rejects.toThrow(RangeError);
        await expect(store.reserveBlob(newId(), hash, 0)).rejects.toThrow(RangeError);
        await expect(store.blobReserved('a{b}c'.padEnd(22, 'A'), hash)).rejects.toThrow(RangeError);
        await expect(store.putBlob(newId(), hash, 'a b')).rejects.toThrow(RangeError);
        await expect(store.getBlob(newId() + 'A')).rejects.toThrow(RangeError);
      });
    });

    describe('lifecycle', () => {
      it('refuses limits that are not positive integers', async () => {
        await expect(make({ ...CONTRACT_LIMITS, queueTtlSeconds: 0 })).rejects.toThrow(RangeError);
        await expect(make({ ...CONTRACT_LIMITS, maxQueuedPerMailbox: 1.5 })).rejects.toThrow(
          RangeError,
        );
      });

      it('reports ready while open and accepts subscribe and unsubscribe', async () => {
        const { store } = await make();
        const mb = newMailbox();
        store.onRemote(() => {});
        expect(store.health().ready).toBe(true);
        await store.subscribe(mb);
        await store.unsubscribe(mb);
        await store.unsubscribe(mb);
      });

      it('fails operations with unavailable after close', async () => {
        const { store } = await make();
        await store.close();
        expect(store.health().ready).toBe(false);
        await expectStoreError(store.enqueue(newMailbox(), 'id', 'e'), 'unavailable');
      });
    });
  });
}
