import { afterEach, describe, expect, it, jest } from '@jest/globals';
import type { PeekBounds, PeekPage, PeekedEnvelope } from '../store/store.js';
import { StoreError } from '../store/store.js';
import {
  ACK_RETRY_MIN_MS,
  Delivery,
  MAX_ACK_ATTEMPTS,
  MAX_ACK_BATCH,
  REFILL_RETRY_MAX_MS,
  REFILL_RETRY_MIN_MS,
  type DeliverySink,
  type DeliveryStore,
} from './delivery.js';

/*
 * Delivery against a fake of its own port (the real stores pass store.contract.ts, and the
 * relay's integration tests run delivery over them). The fake store keeps one mailbox's queue in
 * order; a peek takes its snapshot when it is called and may be held open to let things happen
 * meanwhile, as they can while a real peek is on the network.
 */

const MAILBOX = 'mailbox-of-this-connection';

interface Gate {
  readonly promise: Promise<void>;
  open(): void;
}

function gate(): Gate {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

class FakeStore implements DeliveryStore {
  /** Id → envelope and arrival number (the cursor), in arrival order. */
  readonly queue = new Map<string, { env: string; seq: number }>();
  #seq = 0;
  /** The `limit` of every peek. */
  readonly peeks: number[] = [];
  /** Every peek's bounds. */
  readonly bounds: PeekBounds[] = [];
  /** Envelopes every peek returned in all (what a real store would have read). */
  envelopesRead = 0;
  readonly acks: string[][] = [];
  /** When set, the next peek waits for it (after taking its snapshot). */
  hold: Gate | undefined;
  /** When set, the next peek (or the next `ackErrorTimes` acks) rejects with it. */
  peekError: Error | undefined;
  ackError: Error | undefined;
  ackErrorTimes = 1;

  add(...ids: string[]): void {
    for (const id of ids) this.queue.set(id, { env: `env-${id}`, seq: ++this.#seq });
  }

  /** The contract's peekAfter over `queue` (bytes counted as the stores count them). */
  async peek(mailbox: string, bounds: PeekBounds): Promise<PeekPage> {
    expect(mailbox).toBe(MAILBOX);
    this.peeks.push(bounds.limit);
    this.bounds.push(bounds);
    const error = this.peekError;
    this.peekError = undefined;
    if (error !== undefined) throw error;
    const after = bounds.after === undefined ? -Infinity : Number(bounds.after);
    const scan = bounds.scan ?? bounds.limit;
    const messages: PeekedEnvelope[] = [];
    let cursor = bounds.after;
    let more = false;
    let looked = 0;
    let bytes = 0;
    for (const [id, { env, seq }] of this.queue) {
      if (seq <= after) continue;
      if (bounds.skip?.(id) !== true) {
        if (messages.length > 0 && bytes + env.length > bounds.maxBytes) {
          more = true;
          break;
        }
        bytes += env.length;
        messages.push({ id, env, cursor: String(seq) });
      }
      cursor = String(seq);
      looked += 1;
      if (messages.length === bounds.limit || looked === scan) {
        more = true;
        break;
      }
    }
    this.envelopesRead += messages.length;
    const snapshot: PeekPage = { messages, cursor, more };
    const hold = this.hold;
    this.hold = undefined;
    if (hold !== undefined) await hold.promise;
    return snapshot;
  }

  async ack(mailbox: string, ids: readonly string[]): Promise<void> {
    expect(mailbox).toBe(MAILBOX);
    this.acks.push([...ids]);
    const error = this.ackError;
    if (--this.ackErrorTimes <= 0) this.ackError = undefined;
    await Promise.resolve();
    if (error !== undefined) throw error;
    for (const id of ids) this.queue.delete(id);
  }
}

class FakeSink implements DeliverySink {
  readonly delivered: string[] = [];
  room = true;
  stopping = false;
  /** Each failed ack: the error and whether it was the last attempt. */
  readonly ackFailures: [unknown, boolean][] = [];
  refused = 0;
  readonly peekFailures: unknown[] = [];
  readonly bugs: [unknown, string][] = [];
  /** When set, deliver throws it (a bug in the writer). */
  deliverError: Error | undefined;

  deliver(id: string, env: string): void {
    if (this.deliverError !== undefined) throw this.deliverError;
    expect(env).toBe(`env-${id}`);
    this.delivered.push(id);
  }
  /** What roomBytes answers while there is room. */
  bytes = Number.MAX_SAFE_INTEGER;
  hasRoom(): boolean {
    return this.room;
  }
  roomBytes(): number {
    return this.room ? this.bytes : 0;
  }
  ackFailed(err: unknown, final: boolean): void {
    this.ackFailures.push([err, final]);
  }
  ackRefused(): void {
    this.refused++;
  }
  peekFailed(err: unknown): void {
    this.peekFailures.push(err);
  }
  unexpected(err: unknown, during: 'ack' | 'refill'): void {
    this.bugs.push([err, during]);
  }
}

const MAX_INFLIGHT = 4;

/** Lets every pending promise continuation run (the fakes resolve within a few turns). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

function setup(queued: string[] = []) {
  const store = new FakeStore();
  store.add(...queued);
  const sink = new FakeSink();
  const delivery = new Delivery(MAILBOX, store, sink, { maxInflight: MAX_INFLIGHT });
  return { store, sink, delivery };
}

/** Delivers what is queued, then acks `ids` and waits for the store and any refill. */
async function ack(delivery: Delivery, ...ids: string[]): Promise<void> {
  delivery.queueAck(ids);
  await settle();
}

afterEach(() => {
  jest.useRealTimers();
});

describe('Delivery: sending', () => {
  it('delivers what is queued, oldest first, up to the in-flight window, after start', async () => {
    const { store, sink, delivery } = setup(['a', 'b', 'c', 'd', 'e', 'f']);
    expect(store.peeks).toEqual([]);
    delivery.start();
    await settle();
    expect(store.peeks).toEqual([MAX_INFLIGHT]);
    expect(sink.delivered).toEqual(['a', 'b', 'c', 'd']);
    expect(delivery.inflightCount).toBe(MAX_INFLIGHT);
  });

  it('delivers a live envelope directly once nothing older waits in the store', async () => {
    const { store, sink, delivery } = setup();
    delivery.start();
    await settle();
    store.add('x');
    delivery.deliverLive('x', 'env-x');
    expect(sink.delivered).toEqual(['x']);
    expect(store.peeks).toHaveLength(1); // the first one only
  });

  it('refills when acks bring the window to half, sending only what is not in flight', async () => {
    const { store, sink, delivery } = setup(['a', 'b', 'c', 'd', 'e', 'f']);
    delivery.start();
    await settle();
    await ack(delivery, 'a');
    expect(store.peeks).toHaveLength(1); // 3 in flight: above half of 4
    await ack(delivery, 'b');
    expect(store.peeks).toHaveLength(2);
    expect(sink.delivered).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
  });

  it('peeks again when an envelope arrives while a peek is out, and loses nothing', async () => {
    const { store, sink, delivery } = setup(['a']);
    store.hold = gate();
    const held = store.hold;
    delivery.start();
    await settle();
    store.add('b'); // stored after the peek's snapshot
    delivery.deliverLive('b', 'env-b');
    expect(sink.delivered).toEqual([]);
    held.open();
    await settle();
    expect(store.peeks).toHaveLength(2);
    expect(sink.delivered).toEqual(['a', 'b']);
  });

  it('resumes a refill held back by a full socket once the sink has room again', async () => {
    const { store, sink, delivery } = setup(['a', 'b']);
    sink.room = false;
    delivery.start();
    await settle();
    expect(store.peeks).toEqual([]);
    sink.room = true;
    delivery.resume();
    await settle();
    expect(sink.delivered).toEqual(['a', 'b']);
  });

  it('looks in the store again on resync, at once even while a retry is backed off', async () => {
    jest.useFakeTimers({ doNotFake: ['queueMicrotask', 'nextTick', 'setImmediate'] });
    const { store, sink, delivery } = setup(['a']);
    store.peekError = new StoreError('unavailable');
    delivery.start();
    await settle();
    expect(sink.delivered).toEqual([]);
    delivery.resync();
    await settle();
    expect(store.peeks).toHaveLength(2);
    expect(sink.delivered).toEqual(['a']);
  });

  it('retries a failed peek after a back-off, and tells the sink', async () => {
    jest.useFakeTimers({ doNotFake: ['queueMicrotask', 'nextTick', 'setImmediate'] });
    const { store, sink, delivery } = setup(['a']);
    const failure = new Error('bug in the store');
    store.peekError = failure;
    delivery.start();
    await settle();
    expect(sink.peekFailures).toEqual([failure]);
    expect(store.peeks).toHaveLength(1);
    jest.advanceTimersByTime(REFILL_RETRY_MIN_MS);
    await settle();
    expect(store.peeks).toHaveLength(2);
    expect(sink.delivered).toEqual(['a']);
  });

  it('backs off at most REFILL_RETRY_MAX_MS between failed peeks', async () => {
    jest.useFakeTimers({ doNotFake: ['queueMicrotask', 'nextTick', 'setImmediate'] });
    const { store, delivery } = setup(['a']);
    store.peekError = new StoreError('unavailable');
    delivery.start();
    await settle();
    for (let attempt = 2; attempt <= 12; attempt++) {
      store.peekError = new StoreError('unavailable');
      jest.advanceTimersByTime(REFILL_RETRY_MAX_MS);
      await settle();
      expect(store.peeks).toHaveLength(attempt);
    }
  });
});

describe('Delivery: what it must not send', () => {
  it('holds a live envelope back while older ones wait in the store (no overtaking)', async () => {
    const { store, sink, delivery } = setup(['a', 'b', 'c', 'd', 'e']);
    delivery.start();
    await settle();
    store.add('f');
    delivery.deliverLive('f', 'env-f');
    expect(sink.delivered).toEqual(['a', 'b', 'c', 'd']);
    await ack(delivery, 'a', 'b');
    expect(sink.delivered).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
  });

  it('holds a live envelope back when the window is full, and sends it after acks', async () => {
    const { store, sink, delivery } = setup();
    delivery.start();
    await settle();
    for (const id of ['a', 'b', 'c', 'd', 'e']) {
      store.add(id);
      delivery.deliverLive(id, `env-${id}`);
    }
    expect(sink.delivered).toEqual(['a', 'b', 'c', 'd']);
    await ack(delivery, 'a', 'b');
    expect(sink.delivered).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('holds a live envelope back while the socket is full', async () => {
    const { store, sink, delivery } = setup();
    delivery.start();
    await settle();
    sink.room = false;
    store.add('a');
    delivery.deliverLive('a', 'env-a');
    expect(sink.delivered).toEqual([]);
    sink.room = true;
    delivery.resume();
    await settle();
    expect(sink.delivered).toEqual(['a']);
  });

  it('does not send an envelope twice that is already in flight', async () => {
    const { store, sink, delivery } = setup(['a']);
    delivery.start();
    await settle();
    delivery.deliverLive('a', 'env-a');
    delivery.resync();
    await settle();
    expect(store.peeks).toHaveLength(2);
    expect(sink.delivered).toEqual(['a']);
  });

  it('does not resend an id acknowledged while a peek that still lists it was out', async () => {
    // Delivered on an earlier connection, acknowledged right after this one authenticated.
    const { store, sink, delivery } = setup(['old', 'b']);
    store.hold = gate();
    const held = store.hold;
    delivery.start();
    await settle();
    await ack(delivery, 'old');
    held.open();
    await settle();
    expect(sink.delivered).toEqual(['b']);
  });

  it('sends nothing and peeks no more once closed', async () => {
    jest.useFakeTimers({ doNotFake: ['queueMicrotask', 'nextTick', 'setImmediate'] });
    const { store, sink, delivery } = setup(['a']);
    store.peekError = new StoreError('unavailable');
    delivery.start();
    await settle();
    delivery.close();
    jest.advanceTimersByTime(REFILL_RETRY_MAX_MS);
    delivery.deliverLive('b', 'env-b');
    delivery.resync();
    delivery.resume();
    await settle();
    expect(store.peeks).toHaveLength(1);
    expect(sink.delivered).toEqual([]);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('drops a peek answer that arrives after close', async () => {
    const { store, sink, delivery } = setup(['a']);
    store.hold = gate();
    const held = store.hold;
    delivery.start();
    await settle();
    delivery.close();
    held.open();
    await settle();
    expect(sink.delivered).toEqual([]);
  });

  it('starts no refill while the relay is stopping', async () => {
    const { store, delivery, sink } = setup(['a']);
    sink.stopping = true;
    delivery.start();
    delivery.resync();
    await settle();
    expect(store.peeks).toEqual([]);
  });
});

describe('Delivery: acknowledgements', () => {
  it('sends all acks of one turn to the store as one batch', async () => {
    const { store, delivery } = setup(['a', 'b', 'c']);
    delivery.start();
    await settle();
    delivery.queueAck(['a']);
    delivery.queueAck(['b']);
    delivery.queueAck(['c']);
    await settle();
    expect(store.acks).toEqual([['a', 'b', 'c']]);
  });

  it('splits one turn of acks into store calls of at most MAX_ACK_BATCH ids', async () => {
    const { store, delivery } = setup();
    delivery.start();
    await settle();
    const ids = Array.from({ length: MAX_ACK_BATCH + 1 }, (_, i) => `m${i}`);
    delivery.queueAck(ids.slice(0, MAX_ACK_BATCH));
    delivery.queueAck(ids.slice(MAX_ACK_BATCH));
    await settle();
    expect(store.acks.map((batch) => batch.length)).toEqual([MAX_ACK_BATCH, 1]);
  });

  it('counts an ack as first only for ids delivered here and not yet acknowledged', async () => {
    const { delivery } = setup(['a', 'b']);
    delivery.start();
    await settle();
    expect(delivery.firstAcks(['a'])).toBe(true);
    expect(delivery.firstAcks(['a'])).toBe(false); // a repeat while the first is on its way
  });

  it('does not count as first an ack of an id never delivered here, nor of a mix', async () => {
    const { delivery } = setup(['a', 'b']);
    delivery.start();
    await settle();
    expect(delivery.firstAcks(['zz'])).toBe(false);
    expect(delivery.firstAcks(['b', 'zz'])).toBe(false);
    // The refused mix marked nothing: 'b' alone is still a first ack.
    expect(delivery.firstAcks(['b'])).toBe(true);
  });

  it('does not count an ack as first before anything was delivered', () => {
    const { delivery } = setup(['a']);
    expect(delivery.firstAcks(['a'])).toBe(false);
  });

  it('regression: retries a failed ack itself instead of sending its envelopes again at once', async () => {
    // Before, a failed ack put its envelopes back in the window and the next refill delivered
    // them again: under load every shed ack was a duplicate delivery.
    jest.useFakeTimers({ doNotFake: ['queueMicrotask', 'nextTick', 'setImmediate'] });
    const { store, sink, delivery } = setup(['a', 'b']);
    delivery.start();
    await settle();
    const failure = new StoreError('overloaded');
    store.ackError = failure;
    await ack(delivery, 'a', 'b');
    expect(sink.ackFailures).toEqual([[failure, false]]);
    expect(delivery.inflightCount).toBe(2);
    expect(store.acks).toHaveLength(1);
    jest.advanceTimersByTime(ACK_RETRY_MIN_MS);
    await settle();
    expect(store.acks).toEqual([
      ['a', 'b'],
      ['a', 'b'],
    ]);
    expect(store.queue.size).toBe(0);
    expect(delivery.inflightCount).toBe(0);
    expect(sink.delivered).toEqual(['a', 'b']);
  });

  it('does not send an envelope whose ack is being retried when a refill runs meanwhile', async () => {
    jest.useFakeTimers({ doNotFake: ['queueMicrotask', 'nextTick', 'setImmediate'] });
    const { store, sink, delivery } = setup(['a', 'b']);
    delivery.start();
    await settle();
    store.ackError = new StoreError('unavailable');
    await ack(delivery, 'a');
    store.add('c');
    delivery.resync();
    await settle();
    expect(sink.delivered).toEqual(['a', 'b', 'c']);
  });

  it(`gives an ack up after MAX_ACK_ATTEMPTS (${MAX_ACK_ATTEMPTS}) and delivers its envelopes again`, async () => {
    jest.useFakeTimers({ doNotFake: ['queueMicrotask', 'nextTick', 'setImmediate'] });
    const { store, sink, delivery } = setup(['a', 'b']);
    delivery.start();
    await settle();
    const failure = new StoreError('unavailable');
    store.ackError = failure;
    store.ackErrorTimes = MAX_ACK_ATTEMPTS;
    await ack(delivery, 'a', 'b');
    for (let i = 1; i < MAX_ACK_ATTEMPTS; i++) {
      expect(sink.delivered).toEqual(['a', 'b']);
      jest.advanceTimersByTime(ACK_RETRY_MIN_MS * 2 ** (i - 1));
      await settle();
    }
    expect(store.acks).toHaveLength(MAX_ACK_ATTEMPTS);
    expect(sink.ackFailures.map(([, final]) => final)).toEqual([
      ...Array<boolean>(MAX_ACK_ATTEMPTS - 1).fill(false),
      true,
    ]);
    expect(sink.delivered).toEqual(['a', 'b', 'a', 'b']);
    // Not one attempt more.
    jest.advanceTimersByTime(60_000);
    await settle();
    expect(store.acks).toHaveLength(MAX_ACK_ATTEMPTS);
  });

  it('succeeds on the last of MAX_ACK_ATTEMPTS attempts without delivering again', async () => {
    jest.useFakeTimers({ doNotFake: ['queueMicrotask', 'nextTick', 'setImmediate'] });
    const { store, sink, delivery } = setup(['a']);
    delivery.start();
    await settle();
    store.ackError = new StoreError('unavailable');
    store.ackErrorTimes = MAX_ACK_ATTEMPTS - 1;
    await ack(delivery, 'a');
    for (let i = 1; i < MAX_ACK_ATTEMPTS; i++) {
      jest.advanceTimersByTime(ACK_RETRY_MIN_MS * 2 ** (i - 1));
      await settle();
    }
    expect(store.acks).toHaveLength(MAX_ACK_ATTEMPTS);
    expect(sink.ackFailures.every(([, final]) => !final)).toBe(true);
    expect(store.queue.size).toBe(0);
    expect(sink.delivered).toEqual(['a']);
  });

  it('gives a failed ack up at once when the relay has begun stopping', async () => {
    const { store, sink, delivery } = setup(['a']);
    delivery.start();
    await settle();
    store.ackError = new StoreError('unavailable');
    delivery.queueAck(['a']);
    await Promise.resolve(); // the batch has gone to the store
    sink.stopping = true;
    await settle();
    expect(sink.ackFailures.map(([, final]) => final)).toEqual([true]);
    expect(store.acks).toHaveLength(1);
  });

  it('regression: an ack retry that comes due after shutdown began does not touch the store', async () => {
    jest.useFakeTimers({ doNotFake: ['queueMicrotask', 'nextTick', 'setImmediate'] });
    const { store, sink, delivery } = setup(['a']);
    delivery.start();
    await settle();
    store.ackError = new StoreError('unavailable');
    await ack(delivery, 'a');
    expect(sink.ackFailures.map(([, final]) => final)).toEqual([false]);
    sink.stopping = true;
    jest.advanceTimersByTime(60_000);
    await settle();
    expect(store.acks).toHaveLength(1);
    expect(delivery.inflightCount).toBe(0);
  });

  it('still retries a failed ack after close (the client did acknowledge)', async () => {
    jest.useFakeTimers({ doNotFake: ['queueMicrotask', 'nextTick', 'setImmediate'] });
    const { store, delivery } = setup(['a']);
    delivery.start();
    await settle();
    store.ackError = new StoreError('unavailable');
    await ack(delivery, 'a');
    delivery.close();
    jest.advanceTimersByTime(ACK_RETRY_MIN_MS);
    await settle();
    expect(store.acks).toEqual([['a'], ['a']]);
    expect(store.queue.size).toBe(0);
  });

  it('refuses acks while the relay is stopping, without touching the store', async () => {
    const { store, sink, delivery } = setup(['a']);
    delivery.start();
    await settle();
    sink.stopping = true;
    await ack(delivery, 'a');
    expect(sink.refused).toBe(1);
    expect(store.acks).toEqual([]);
    expect(delivery.inflightCount).toBe(1);
  });

  it('still sends acks queued before close to the store', async () => {
    const { store, delivery } = setup(['a']);
    delivery.start();
    await settle();
    delivery.queueAck(['a']);
    delivery.close();
    await settle();
    expect(store.acks).toEqual([['a']]);
  });

  it('reports an exception in the refill path to the sink instead of rejecting', async () => {
    const { sink, delivery } = setup(['a']);
    const bug = new Error('writer broke');
    sink.deliverError = bug;
    delivery.start();
    await settle();
    expect(sink.bugs).toEqual([[bug, 'refill']]);
  });
});

describe('Delivery: reading by cursor, only what the connection can take', () => {
  it('regression: a refill re-read the whole in-flight window (every envelope is read once)', async () => {
    const ids = Array.from({ length: 40 }, (_, i) => `m${i}`);
    const { store, sink, delivery } = setup(ids);
    delivery.start();
    await settle();
    // Acks two at a time: each brings the window to half and triggers a refill, which used to
    // peek the whole window again (the two still in flight read a second time, every time).
    while (sink.delivered.length < ids.length || delivery.inflightCount > 0) {
      const inflight = sink.delivered.slice(-delivery.inflightCount);
      await ack(delivery, ...inflight.slice(0, 2));
    }
    expect(sink.delivered).toEqual(ids);
    expect(store.envelopesRead).toBe(ids.length);
  });

  it('asks for the free slots of the window only, after the last envelope it took', async () => {
    // Nothing sent live, so nothing in flight lies after the cursor: it looks at 2 ids for 2.
    const { store, delivery } = setup(['a', 'b', 'c', 'd', 'e', 'f']);
    delivery.start();
    await settle();
    await ack(delivery, 'a', 'b');
    expect(store.bounds.map((b) => [b.after, b.limit, b.scan])).toEqual([
      [undefined, MAX_INFLIGHT, MAX_INFLIGHT],
      ['4', 2, 2],
    ]);
  });

  it('asks for no more bytes than the socket has room for, and reads on while room is left', async () => {
    // Each envelope is 'env-x', 5 bytes: room for 10 bytes takes two per peek.
    const { store, sink, delivery } = setup(['a', 'b', 'c', 'd']);
    sink.bytes = 10;
    delivery.start();
    await settle();
    expect(store.bounds.map((b) => b.maxBytes)).toEqual([10, 10]);
    expect(sink.delivered).toEqual(['a', 'b', 'c', 'd']);
    expect(store.envelopesRead).toBe(4);
  });

  it('reads nothing more while the socket has no room, and goes on after the cursor once it has', async () => {
    const { store, sink, delivery } = setup(['a', 'b', 'c']);
    sink.bytes = 5;
    delivery.start();
    await settle();
    sink.room = false;
    delivery.resume();
    await settle();
    sink.room = true;
    delivery.resume();
    await settle();
    expect(sink.delivered).toEqual(['a', 'b', 'c']);
    expect(store.envelopesRead).toBe(3);
  });

  it('passes over envelopes in flight (sent live) without reading them', async () => {
    const { store, sink, delivery } = setup();
    delivery.start();
    await settle();
    for (const id of ['a', 'b', 'c', 'd', 'e', 'f']) {
      store.add(id);
      delivery.deliverLive(id, `env-${id}`);
    }
    expect(sink.delivered).toEqual(['a', 'b', 'c', 'd']);
    await ack(delivery, 'a', 'b');
    expect(sink.delivered).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
    // The refill looked past c and d (in flight, sent live) and read e and f only.
    expect(store.bounds.at(-1)).toMatchObject({ after: undefined, limit: 2, scan: 4 });
    expect(store.envelopesRead).toBe(2);
  });

  it('asks for no more envelopes than the room holds at their mean size so far', async () => {
    const { store, sink, delivery } = setup(['a', 'b', 'c', 'd', 'e', 'f']);
    delivery.start();
    await settle();
    sink.bytes = 5; // room for one 5-byte envelope
    await ack(delivery, 'a', 'b', 'c');
    // e, f, then one look that finds nothing more (a page stopped at its limit may have more).
    expect(store.bounds.map((b) => b.limit)).toEqual([MAX_INFLIGHT, 1, 1, 1]);
    expect(sink.delivered).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
  });

  it('looks past the ids sent live after its cursor, reading none of them', async () => {
    const { store, sink, delivery } = setup(['a']);
    delivery.start();
    await settle();
    for (const id of ['b', 'c', 'd', 'e', 'f']) {
      store.add(id);
      delivery.deliverLive(id, `env-${id}`);
    }
    await ack(delivery, 'a', 'b');
    expect(sink.delivered).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
    expect(store.bounds.at(-1)).toMatchObject({ after: '1', limit: 2, scan: 4 });
    expect(store.envelopesRead).toBe(3);
  });

  it('reads from the oldest again after an ack failed every attempt, so its envelopes go out again', async () => {
    jest.useFakeTimers({ doNotFake: ['queueMicrotask', 'nextTick', 'setImmediate'] });
    const { store, sink, delivery } = setup(['a', 'b', 'c', 'd']);
    delivery.start();
    await settle();
    store.ackError = new StoreError('unavailable');
    store.ackErrorTimes = MAX_ACK_ATTEMPTS;
    await ack(delivery, 'a', 'b'); // c and d stay in flight: the cursor alone would skip a, b
    // Retried by the relay first (the ids stay in flight, nothing is sent again meanwhile)...
    for (let i = 0; i < MAX_ACK_ATTEMPTS * 2 && sink.ackFailures.at(-1)?.[1] !== true; i++) {
      expect(sink.delivered).toEqual(['a', 'b', 'c', 'd']);
      jest.advanceTimersByTime(60_000);
      await settle();
    }
    expect(sink.ackFailures).toHaveLength(MAX_ACK_ATTEMPTS);
    // ...then given up: a and b leave the window and the refill reads from the oldest.
    expect(sink.ackFailures.at(-1)?.[1]).toBe(true);
    expect(store.bounds.at(-1)?.after).toBeUndefined();
    expect(sink.delivered).toEqual(['a', 'b', 'c', 'd', 'a', 'b']);
  });

  it('reads from the oldest again on resync', async () => {
    const { store, delivery } = setup(['a', 'b', 'c']);
    delivery.start();
    await settle();
    delivery.resync();
    await settle();
    expect(store.bounds.map((b) => b.after)).toEqual([undefined, undefined]);
    expect(store.envelopesRead).toBe(3);
  });

  it('reads from the oldest once nothing is in flight, even with a cursor that passed new ids', async () => {
    const { store, sink, delivery } = setup(['a', 'b', 'c', 'd', 'e']);
    delivery.start();
    await settle();
    // An envelope placed before the cursor (as after a step back of Redis's clock).
    const reordered = [['early', { env: 'env-early', seq: 0 }] as const, ...store.queue];
    store.queue.clear();
    for (const [id, v] of reordered) store.queue.set(id, v);
    await ack(delivery, 'a', 'b', 'c', 'd');
    expect(sink.delivered).toEqual(['a', 'b', 'c', 'd', 'early', 'e']);
  });

  it('does not spin on a page of ids that are all in flight', async () => {
    const { store, sink, delivery } = setup();
    delivery.start();
    await settle();
    for (const id of ['a', 'b']) {
      store.add(id);
      delivery.deliverLive(id, `env-${id}`);
    }
    delivery.resync();
    await settle();
    expect(store.peeks).toHaveLength(2);
    expect(sink.delivered).toEqual(['a', 'b']);
    expect(store.envelopesRead).toBe(0);
  });
});
