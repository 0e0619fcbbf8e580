import { describe, expect, it } from '@jest/globals';
import {
  MEMORY_ENTRY_OVERHEAD_BYTES as ENTRY,
  MEMORY_MAILBOX_OVERHEAD_BYTES as BOX,
  MemoryStore,
} from './memory.js';
import { MAX_DEDUP_IDS_PER_MAILBOX, type StoreErrorCode } from './store.js';
import {
  CONTRACT_LIMITS,
  newEnvelope,
  newMailbox,
  newMessageId,
  runStoreContract,
} from './store.contract.js';

runStoreContract('MemoryStore', (limits) => {
  // Starts at the real time: a profile's expiry is absolute (Unix seconds), as on Redis.
  let now = Date.now();
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
    expect(store.dangerousTestOnlySize()).toEqual({
      mailboxes: 0,
      directory: 1,
      bytes: bundleBytes('i', 's'),
    });
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

/** Bytes the store counts for a mailbox holding nothing yet (ids from newMailbox are 43 chars). */
const MAILBOX_BYTES = BOX + 43;
/** Bytes counted for a queued envelope and for a remembered id. */
const envBytes = (id: string, env: string) => ENTRY + id.length + env.length;
const dedupBytes = (id: string) => ENTRY + id.length;
/** Bytes counted for a directory entry (without one-time prekeys) and for a one-time prekey. */
const bundleBytes = (identity: string, spk: string) => BOX + 43 + identity.length + spk.length;
const keyBytes = (key: string) => ENTRY + key.length;

async function codeOf(promise: Promise<unknown>): Promise<StoreErrorCode | 'ok'> {
  return promise.then(
    () => 'ok' as const,
    (e: unknown) => (e as { code: StoreErrorCode }).code,
  );
}

describe('MemoryStore global byte bound: queued envelopes', () => {
  const limits = { ...CONTRACT_LIMITS, maxQueuedPerMailbox: 100 };
  /** Room for exactly one mailbox with one envelope of a one-character id and 49-char body. */
  const ONE = MAILBOX_BYTES + envBytes('a', 'x'.repeat(49));

  it('stores an envelope that fills the bound exactly', async () => {
    const store = new MemoryStore(limits, Date.now, { maxBytes: ONE });
    expect(await store.enqueue(newMailbox(), 'a', 'x'.repeat(49))).toBe('stored');
    expect(store.bytesHeld).toBe(ONE);
    await store.close();
  });

  it('refuses an envelope one byte past the bound with overloaded and stores nothing', async () => {
    const store = new MemoryStore(limits, Date.now, { maxBytes: ONE - 1 });
    const mb = newMailbox();
    expect(await codeOf(store.enqueue(mb, 'a', 'x'.repeat(49)))).toBe('overloaded');
    expect(store.bytesHeld).toBe(0);
    expect(store.dangerousTestOnlySize()).toEqual({ mailboxes: 0, directory: 0, bytes: 0 });
    expect(await store.peek(mb, 10)).toEqual([]);
    await store.close();
  });

  it('counts the overhead of a new mailbox: a byte-sized envelope into a new mailbox is refused at the bound', async () => {
    const store = new MemoryStore(limits, Date.now, { maxBytes: ONE + envBytes('b', 'y') });
    const mb = newMailbox();
    await store.enqueue(mb, 'a', 'x'.repeat(49));
    // The same envelope fits the existing mailbox but not a new one, which costs BOX more.
    expect(await codeOf(store.enqueue(newMailbox(), 'b', 'y'))).toBe('overloaded');
    expect(await store.enqueue(mb, 'b', 'y')).toBe('stored');
    expect(await codeOf(store.enqueue(mb, 'c', ''))).toBe('overloaded');
    await store.close();
  });

  it('makes room again when envelopes are acknowledged or expire', async () => {
    let now = 0;
    // Two full mailboxes plus the overhead of one more entry: an acknowledgement frees the
    // envelope's body (its record keeps the id), which then makes room for a second envelope.
    const store = new MemoryStore(limits, () => now, { maxBytes: 2 * ONE + ENTRY });
    const a = newMailbox();
    const b = newMailbox();
    await store.enqueue(a, 'a', 'x'.repeat(49));
    await store.enqueue(b, 'b', 'x'.repeat(49));
    expect(await codeOf(store.enqueue(a, 'c', 'x'.repeat(48)))).toBe('overloaded');
    await store.ack(a, ['a']);
    expect(store.bytesHeld).toBe(2 * ONE - 49);
    expect(await store.enqueue(a, 'c', 'x'.repeat(48))).toBe('stored');
    expect(store.bytesHeld).toBe(2 * ONE + ENTRY);
    now += CONTRACT_LIMITS.queueTtlSeconds * 1000 + 1;
    store.sweep();
    expect(store.bytesHeld).toBe(0);
    expect(await store.enqueue(b, 'd', 'x'.repeat(49))).toBe('stored');
    await store.close();
  });

  it('does not count a duplicate twice', async () => {
    const store = new MemoryStore(limits, Date.now, { maxBytes: ONE });
    const mb = newMailbox();
    await store.enqueue(mb, 'a', 'x'.repeat(49));
    expect(await store.enqueue(mb, 'a', 'x'.repeat(49))).toBe('duplicate');
    expect(store.bytesHeld).toBe(ONE);
    await store.close();
  });

  it('refuses limits and options that are not positive integers', () => {
    expect(() => new MemoryStore(limits, Date.now, { maxBytes: 0 })).toThrow(RangeError);
    expect(() => new MemoryStore(limits, Date.now, { maxBytes: Infinity })).toThrow(RangeError);
    expect(() => new MemoryStore({ ...limits, maxDedupIdsPerMailbox: -1 }, Date.now)).toThrow(
      RangeError,
    );
  });
});

describe('MemoryStore global byte bound: acknowledged ids', () => {
  const limits = { ...CONTRACT_LIMITS, maxQueuedPerMailbox: 1000 };

  it('still acknowledges at the bound, freeing the envelope and remembering the id', async () => {
    const env = newEnvelope();
    const max = MAILBOX_BYTES + 2 * envBytes('aa', env);
    const store = new MemoryStore(limits, Date.now, { maxBytes: max });
    const mb = newMailbox();
    await store.enqueue(mb, 'aa', env);
    await store.enqueue(mb, 'bb', env);
    expect(store.bytesHeld).toBe(max);
    await store.ack(mb, ['aa', 'bb']);
    expect(store.bytesHeld).toBe(MAILBOX_BYTES + 2 * dedupBytes('aa'));
    expect(await store.peek(mb, 10)).toEqual([]);
    expect(await store.enqueue(mb, 'aa', env)).toBe('duplicate');
    expect(await store.enqueue(mb, 'bb', env)).toBe('duplicate');
    await store.close();
  });

  it('counts remembered ids against the bound, so a send-and-ack flood is refused once it fills it', async () => {
    let now = 0;
    const id = () => newMessageId(); // 22 characters
    const perMessage = dedupBytes('x'.repeat(22));
    // Room for the mailbox and ten remembered ids, plus one envelope in flight.
    const max = MAILBOX_BYTES + 10 * perMessage + envBytes('x'.repeat(22), 'e');
    const store = new MemoryStore(limits, () => now, { maxBytes: max });
    const mb = newMailbox();
    let refused = 0;
    for (let i = 0; i < 50; i += 1) {
      const m = id();
      const code = await codeOf(store.enqueue(mb, m, 'e'));
      if (code === 'overloaded') refused += 1;
      else await store.ack(mb, [m]);
      expect(store.bytesHeld).toBeLessThanOrEqual(max);
      now += 1;
    }
    // 11 messages fit (the 11th envelope becomes the 11th record in the room of its envelope)…
    expect(refused).toBe(39);
    expect(store.bytesHeld).toBe(MAILBOX_BYTES + 11 * perMessage);
    // …and the room comes back when the remembered ids expire.
    now += CONTRACT_LIMITS.dedupTtlSeconds * 1000;
    store.sweep();
    expect(store.bytesHeld).toBe(0);
    expect(await store.enqueue(mb, id(), 'e')).toBe('stored');
    await store.close();
  });

  it('remembers at most maxDedupIdsPerMailbox ids per mailbox, forgetting the oldest first', async () => {
    let now = 0;
    const store = new MemoryStore({ ...limits, maxDedupIdsPerMailbox: 3 }, () => now);
    const mb = newMailbox();
    const ids = ['i0', 'i1', 'i2', 'i3', 'i4'];
    for (const m of ids) {
      await store.enqueue(mb, m, 'e');
      await store.ack(mb, [m]);
      now += 1;
    }
    expect(store.bytesHeld).toBe(MAILBOX_BYTES + 3 * dedupBytes('i0'));
    // The three newest are still duplicates; the two oldest were forgotten and are stored again.
    for (const m of ['i2', 'i3', 'i4']) expect(await store.enqueue(mb, m, 'e')).toBe('duplicate');
    for (const m of ['i0', 'i1']) expect(await store.enqueue(mb, m, 'e')).toBe('stored');
    await store.close();
  });

  it('keeps the per-mailbox dedup cap apart between mailboxes', async () => {
    const store = new MemoryStore({ ...limits, maxDedupIdsPerMailbox: 2 }, Date.now);
    const a = newMailbox();
    const b = newMailbox();
    for (const m of ['a0', 'a1']) {
      await store.enqueue(a, m, 'e');
      await store.ack(a, [m]);
    }
    for (const m of ['b0', 'b1', 'b2']) {
      await store.enqueue(b, m, 'e');
      await store.ack(b, [m]);
    }
    expect(await store.enqueue(a, 'a0', 'e')).toBe('duplicate');
    expect(await store.enqueue(b, 'b0', 'e')).toBe('stored');
    await store.close();
  });

  it('bounds remembered ids at the default MAX_DEDUP_IDS_PER_MAILBOX', async () => {
    const store = new MemoryStore(
      { ...limits, maxQueuedPerMailbox: 500, maxDedupIdsPerMailbox: MAX_DEDUP_IDS_PER_MAILBOX },
      Date.now,
    );
    const mb = newMailbox();
    const n = MAX_DEDUP_IDS_PER_MAILBOX + 5;
    for (let start = 0; start < n; start += 500) {
      const batch = Array.from({ length: Math.min(500, n - start) }, (_, k) => `m${start + k}`);
      for (const m of batch) await store.enqueue(mb, m, 'e');
      await store.ack(mb, batch);
    }
    const expected = MAILBOX_BYTES;
    let records = 0;
    for (let k = 5; k < n; k += 1) records += dedupBytes(`m${k}`);
    expect(store.bytesHeld).toBe(expected + records);
    expect(await store.enqueue(mb, 'm4', 'e')).toBe('stored');
    expect(await store.enqueue(mb, 'm5', 'e')).toBe('duplicate');
    await store.close();
  });
});

describe('MemoryStore global byte bound: prekey directory', () => {
  const identity = 'I'.repeat(44);
  const spk = 'S'.repeat(100);
  const keys = (ids: number[], len = 50) => ids.map((id) => ({ id, key: 'K'.repeat(len) }));
  const BUNDLE = bundleBytes(identity, spk);
  const KEY = keyBytes('K'.repeat(50));

  it('publishes a bundle with one-time prekeys that fill the bound exactly', async () => {
    const store = new MemoryStore(CONTRACT_LIMITS, Date.now, { maxBytes: BUNDLE + 3 * KEY });
    const mb = newMailbox();
    expect(await store.publishPrekeys(mb, { identity, signedPrekey: spk }, keys([1, 2, 3]))).toBe(
      3,
    );
    expect(store.bytesHeld).toBe(BUNDLE + 3 * KEY);
    await store.close();
  });

  it('refuses a first bundle past the bound with overloaded and stores nothing', async () => {
    const store = new MemoryStore(CONTRACT_LIMITS, Date.now, { maxBytes: BUNDLE - 1 });
    const mb = newMailbox();
    expect(await codeOf(store.publishPrekeys(mb, { identity, signedPrekey: spk }, []))).toBe(
      'overloaded',
    );
    expect(store.bytesHeld).toBe(0);
    expect(await store.fetchPrekeys(mb)).toBeNull();
    expect(store.dangerousTestOnlySize().directory).toBe(0);
    await store.close();
  });

  it('refuses one-time prekeys one byte past the bound and keeps the earlier publish unchanged', async () => {
    const store = new MemoryStore(CONTRACT_LIMITS, Date.now, { maxBytes: BUNDLE + 3 * KEY - 1 });
    const mb = newMailbox();
    await store.publishPrekeys(mb, { identity, signedPrekey: spk }, keys([1, 2]));
    const code = await codeOf(
      store.publishPrekeys(mb, { identity: 'J'.repeat(44), signedPrekey: spk }, keys([3])),
    );
    expect(code).toBe('overloaded');
    expect(store.bytesHeld).toBe(BUNDLE + 2 * KEY);
    expect(await store.countPrekeys(mb)).toBe(2);
    // The bundle was not replaced either.
    expect(await store.fetchPrekeys(mb)).toMatchObject({ identity, oneTime: { id: 1 } });
    await store.close();
  });

  it('refuses a second mailbox bundle when the first fills the bound', async () => {
    const store = new MemoryStore(CONTRACT_LIMITS, Date.now, { maxBytes: BUNDLE + 2 * KEY });
    await store.publishPrekeys(newMailbox(), { identity, signedPrekey: spk }, keys([1, 2]));
    const other = newMailbox();
    expect(await codeOf(store.publishPrekeys(other, { identity, signedPrekey: spk }, []))).toBe(
      'overloaded',
    );
    expect(await store.countPrekeys(other)).toBe(0);
    await store.close();
  });

  it('refuses an envelope when bundles fill the bound (one accounting for everything)', async () => {
    const store = new MemoryStore(CONTRACT_LIMITS, Date.now, { maxBytes: BUNDLE + KEY });
    await store.publishPrekeys(newMailbox(), { identity, signedPrekey: spk }, keys([1]));
    expect(await codeOf(store.enqueue(newMailbox(), 'a', 'e'))).toBe('overloaded');
    await store.close();
  });

  it('accepts a republish at the bound that replaces keys with ones no larger', async () => {
    const store = new MemoryStore(CONTRACT_LIMITS, Date.now, { maxBytes: BUNDLE + 2 * KEY });
    const mb = newMailbox();
    await store.publishPrekeys(mb, { identity, signedPrekey: spk }, keys([1, 2]));
    expect(
      await store.publishPrekeys(mb, { identity, signedPrekey: 'T'.repeat(90) }, keys([1], 40)),
    ).toBe(2);
    expect(store.bytesHeld).toBe(BUNDLE - 10 + 2 * KEY - 10);
    await store.close();
  });

  it('frees a one-time prekey on fetch, so the room can be published into again', async () => {
    const store = new MemoryStore(CONTRACT_LIMITS, Date.now, { maxBytes: BUNDLE + 2 * KEY });
    const mb = newMailbox();
    await store.publishPrekeys(mb, { identity, signedPrekey: spk }, keys([1, 2]));
    expect(await codeOf(store.publishPrekeys(mb, { identity, signedPrekey: spk }, keys([3])))).toBe(
      'overloaded',
    );
    await store.fetchPrekeys(mb);
    expect(store.bytesHeld).toBe(BUNDLE + KEY);
    expect(await store.publishPrekeys(mb, { identity, signedPrekey: spk }, keys([3]))).toBe(2);
    await store.close();
  });

  it('checks prekeys_full before the byte bound', async () => {
    const store = new MemoryStore(CONTRACT_LIMITS, Date.now, { maxBytes: BUNDLE });
    const many = keys(Array.from({ length: CONTRACT_LIMITS.maxOneTimePrekeys + 1 }, (_, i) => i));
    expect(
      await codeOf(store.publishPrekeys(newMailbox(), { identity, signedPrekey: spk }, many)),
    ).toBe('prekeys_full');
    expect(store.bytesHeld).toBe(0);
    await store.close();
  });
});

describe('MemoryStore byte accounting returns to zero', () => {
  it('holds zero bytes after everything is fetched, acknowledged and expired', async () => {
    let now = 0;
    const limits = { ...CONTRACT_LIMITS, maxQueuedPerMailbox: 20 };
    const store = new MemoryStore(limits, () => now);
    const boxes = Array.from({ length: 5 }, () => newMailbox());
    for (const mb of boxes) {
      const ids = Array.from({ length: 8 }, () => newMessageId());
      for (const m of ids) await store.enqueue(mb, m, newEnvelope(100));
      await store.ack(mb, ids.slice(0, 5));
      await store.publishPrekeys(mb, { identity: 'i', signedPrekey: 's' }, [
        { id: 1, key: 'k1' },
        { id: 2, key: 'k22' },
      ]);
      await store.publishPrekeys(mb, { identity: 'ii', signedPrekey: 's' }, [
        { id: 2, key: 'k' },
        { id: 3, key: 'k333' },
      ]);
      await store.fetchPrekeys(mb);
    }
    expect(store.bytesHeld).toBeGreaterThan(0);
    // Acknowledge the rest, let the remembered ids expire (swept), then the directory (lazily).
    for (const mb of boxes) {
      await store.ack(
        mb,
        (await store.peek(mb, 20)).map((m) => m.id),
      );
    }
    now += limits.dedupTtlSeconds * 1000;
    store.sweep();
    expect(store.dangerousTestOnlySize()).toMatchObject({ mailboxes: 0, directory: 5 });
    now += limits.prekeyTtlSeconds * 1000;
    for (const mb of boxes) expect(await store.countPrekeys(mb)).toBe(0);
    expect(store.dangerousTestOnlySize()).toEqual({ mailboxes: 0, directory: 0, bytes: 0 });
    expect(store.bytesHeld).toBe(0);
    await store.close();
  });

  it('holds zero bytes after unacknowledged envelopes expire lazily on the next operation', async () => {
    let now = 0;
    const store = new MemoryStore(CONTRACT_LIMITS, () => now);
    const mb = newMailbox();
    await store.enqueue(mb, 'a', 'e');
    now += CONTRACT_LIMITS.queueTtlSeconds * 1000;
    expect(await store.peek(mb, 10)).toEqual([]);
    expect(store.bytesHeld).toBe(0);
    await store.close();
  });

  it('holds zero bytes after close', async () => {
    const store = new MemoryStore(CONTRACT_LIMITS);
    await store.enqueue(newMailbox(), 'a', 'e');
    await store.close();
    expect(store.bytesHeld).toBe(0);
  });
});

describe('MemoryStore global byte bound: state and attachment blobs', () => {
  /** Bytes counted for a state blob of a 43-char mailbox, and for a blob or reservation. */
  const stateBytes = (blob: string) => ENTRY + 43 + blob.length;
  const blobBytes = (data: string) => ENTRY + 22 + data.length;
  const ID = 'C'.repeat(22);
  const HASH = 'h'.repeat(43);

  it('stores a state that fills the bound exactly, and refuses one byte more with overloaded', async () => {
    const blob = 'x'.repeat(100);
    const fits = new MemoryStore(CONTRACT_LIMITS, Date.now, { maxBytes: stateBytes(blob) });
    expect(await codeOf(fits.putState(newMailbox(), blob, 0, 1))).toBe('ok');
    expect(fits.bytesHeld).toBe(stateBytes(blob));
    const tight = new MemoryStore(CONTRACT_LIMITS, Date.now, { maxBytes: stateBytes(blob) - 1 });
    const mb = newMailbox();
    expect(await codeOf(tight.putState(mb, blob, 0, 1))).toBe('overloaded');
    expect(await tight.getState(mb)).toBeNull();
    expect(tight.bytesHeld).toBe(0);
    await Promise.all([fits.close(), tight.close()]);
  });

  it('counts a replaced state by the difference, and frees it on delete and on expiry', async () => {
    let now = 1_000_000;
    const store = new MemoryStore(CONTRACT_LIMITS, () => now);
    const mb = newMailbox();
    await store.putState(mb, 'x'.repeat(10), 0, 1);
    await store.putState(mb, 'y'.repeat(30), 1, 2);
    expect(store.bytesHeld).toBe(stateBytes('y'.repeat(30)));
    await store.deleteState(mb);
    expect(store.bytesHeld).toBe(0);
    await store.putState(mb, 'z', 0, 3);
    now += CONTRACT_LIMITS.queueTtlSeconds * 1000;
    store.sweep();
    expect(store.bytesHeld).toBe(0);
    await store.close();
  });

  it('counts a reservation, then the blob in its place, and frees both on expiry', async () => {
    let now = 1_000_000;
    const data = 'd'.repeat(500);
    const store = new MemoryStore(CONTRACT_LIMITS, () => now);
    await store.reserveBlob(ID, HASH, 10_000);
    expect(store.bytesHeld).toBe(blobBytes(HASH));
    await store.putBlob(ID, HASH, data);
    expect(store.bytesHeld).toBe(blobBytes(data));
    await store.reserveBlob('D'.repeat(22), HASH, 10_000);
    now += 10_000;
    store.sweep();
    expect(store.bytesHeld).toBe(blobBytes(data));
    now += CONTRACT_LIMITS.queueTtlSeconds * 1000;
    store.sweep();
    expect(store.bytesHeld).toBe(0);
    await store.close();
  });

  it('refuses a blob past the bound with overloaded, keeping the reservation for a retry', async () => {
    const data = 'd'.repeat(500);
    const store = new MemoryStore(CONTRACT_LIMITS, Date.now, { maxBytes: blobBytes(data) - 1 });
    await store.reserveBlob(ID, HASH, 10_000);
    expect(await codeOf(store.putBlob(ID, HASH, data))).toBe('overloaded');
    expect(await store.blobReserved(ID, HASH)).toBe(true);
    expect(await store.getBlob(ID)).toBeNull();
    expect(await codeOf(store.putBlob(ID, HASH, 'd'.repeat(400)))).toBe('ok');
    await store.close();
  });
});
