import { describe, expect, it } from '@jest/globals';
import { MemoryStore } from './memory.js';
import { CONTRACT_LIMITS, newMailbox, runStoreContract } from './store.contract.js';

runStoreContract('MemoryStore', (limits) => {
  let now = 1_700_000_000_000;
  const store = new MemoryStore(limits, () => now);
  return Promise.resolve({
    store,
    advance: (ms: number) => {
      now += ms;
    },
  });
});

describe('MemoryStore memory', () => {
  it('sweeps expired mailboxes and prekey directories that nobody touches again', async () => {
    let now = 0;
    const store = new MemoryStore(CONTRACT_LIMITS, () => now);
    for (let i = 0; i < 20; i += 1) await store.enqueue(newMailbox(), 'id', 'env');
    const acked = newMailbox();
    await store.enqueue(acked, 'id', 'env');
    await store.ack(acked, ['id']);
    await store.publishPrekeys(newMailbox(), { identity: 'i', signedPrekey: 's' }, []);
    expect(store.dangerousTestOnlySize()).toMatchObject({ mailboxes: 21, directory: 1 });
    now += CONTRACT_LIMITS.queueTtlSeconds * 1000 + 1;
    store.sweep();
    // The acknowledged id is remembered for dedupTtlSeconds (shorter than the queue TTL).
    expect(store.dangerousTestOnlySize()).toEqual({ mailboxes: 0, directory: 1, bytes: 0 });
    now += CONTRACT_LIMITS.prekeyTtlSeconds * 1000;
    store.sweep();
    expect(store.dangerousTestOnlySize()).toEqual({ mailboxes: 0, directory: 0, bytes: 0 });
    await store.close();
  });

  it('keeps unexpired mailboxes through a sweep', async () => {
    let now = 0;
    const store = new MemoryStore(CONTRACT_LIMITS, () => now);
    const mb = newMailbox();
    await store.enqueue(mb, 'id', 'env');
    now += CONTRACT_LIMITS.queueTtlSeconds * 1000 - 1;
    store.sweep();
    expect(await store.peek(mb, 10)).toEqual([{ id: 'id', env: 'env' }]);
    await store.close();
  });

  it('never calls the remote listener (one process has no other instances)', async () => {
    const store = new MemoryStore(CONTRACT_LIMITS);
    const calls: string[] = [];
    store.onRemote((mailbox) => calls.push(mailbox));
    const mb = newMailbox();
    await store.subscribe(mb);
    await store.enqueue(mb, 'id', 'env');
    expect(calls).toEqual([]);
    await store.close();
  });
});

describe('MemoryStore global byte bound', () => {
  const limits = { ...CONTRACT_LIMITS, maxQueuedPerMailbox: 100 };

  it('refuses an enqueue past maxBytes with overloaded and stores nothing', async () => {
    const store = new MemoryStore(limits, Date.now, { maxBytes: 100 });
    const mb = newMailbox();
    expect(await store.enqueue(mb, 'a', 'x'.repeat(49))).toBe('stored'); // 50 bytes
    expect(await store.enqueue(newMailbox(), 'b', 'x'.repeat(49))).toBe('stored'); // 100
    await expect(store.enqueue(newMailbox(), 'c', 'x')).rejects.toMatchObject({
      code: 'overloaded',
    });
    expect(store.dangerousTestOnlySize().bytes).toBe(100);
    await store.close();
  });

  it('makes room again when envelopes are acknowledged or expire', async () => {
    let now = 0;
    const store = new MemoryStore(limits, () => now, { maxBytes: 100 });
    const a = newMailbox();
    const b = newMailbox();
    await store.enqueue(a, 'a', 'x'.repeat(49));
    await store.enqueue(b, 'b', 'x'.repeat(49));
    await store.ack(a, ['a']);
    expect(await store.enqueue(a, 'c', 'x'.repeat(49))).toBe('stored');
    now += CONTRACT_LIMITS.queueTtlSeconds * 1000 + 1;
    store.sweep();
    expect(store.dangerousTestOnlySize().bytes).toBe(0);
    expect(await store.enqueue(b, 'd', 'x'.repeat(99))).toBe('stored');
    await store.close();
  });

  it('does not count a duplicate twice', async () => {
    const store = new MemoryStore(limits, Date.now, { maxBytes: 100 });
    const mb = newMailbox();
    await store.enqueue(mb, 'a', 'x'.repeat(49));
    expect(await store.enqueue(mb, 'a', 'x'.repeat(49))).toBe('duplicate');
    expect(store.dangerousTestOnlySize().bytes).toBe(50);
    await store.close();
  });
});
