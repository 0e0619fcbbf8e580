import { afterEach, describe, expect, it } from '@jest/globals';
import { createLogger } from '../log.js';
import { MemoryStore } from '../store/memory.js';
import { StoreError } from '../store/store.js';
import { Hub, type Recipient } from './hub.js';

const LIMITS = {
  queueTtlSeconds: 60,
  maxQueuedPerMailbox: 10,
  dedupTtlSeconds: 60,
  maxDedupIdsPerMailbox: 100,
  prekeyTtlSeconds: 60,
  maxOneTimePrekeys: 10,
};

/** A MemoryStore that records subscription calls and can hold or fail a subscribe. */
class RecordingStore extends MemoryStore {
  readonly calls: string[] = [];
  failNext = false;
  #gate: Promise<void> | undefined;

  /** Holds the next subscribe until the returned function is called. */
  holdNextSubscribe(): () => void {
    let release!: () => void;
    this.#gate = new Promise<void>((resolve) => (release = resolve));
    return release;
  }

  override async subscribe(mailbox: string): Promise<void> {
    this.calls.push(`sub ${mailbox}`);
    const gate = this.#gate;
    this.#gate = undefined;
    if (gate !== undefined) await gate;
    if (this.failNext) {
      this.failNext = false;
      throw new StoreError('unavailable');
    }
    return super.subscribe(mailbox);
  }

  override async unsubscribe(mailbox: string): Promise<void> {
    this.calls.push(`unsub ${mailbox}`);
    return super.unsubscribe(mailbox);
  }
}

class Inbox implements Recipient {
  readonly got: string[] = [];
  deliverLive(id: string): void {
    this.got.push(id);
  }
}

const logger = createLogger({ level: 'silent' });
const stores: MemoryStore[] = [];
function setup() {
  const store = new RecordingStore(LIMITS);
  stores.push(store);
  return { store, hub: new Hub(store, logger) };
}
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
});

/** Lets pending promise continuations run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('Hub', () => {
  it('subscribes once per mailbox and unsubscribes when the last recipient leaves', async () => {
    const { store, hub } = setup();
    const [a, b] = [new Inbox(), new Inbox()];
    await hub.add('m', a);
    await hub.add('m', b);
    hub.remove('m', a);
    await settle();
    expect(store.calls).toEqual(['sub m']);
    hub.remove('m', b);
    await settle();
    expect(store.calls).toEqual(['sub m', 'unsub m']);
    expect(hub.size).toBe(0);
  });

  it('delivers to every recipient of the mailbox and no other', async () => {
    const { hub } = setup();
    const [a, b, c] = [new Inbox(), new Inbox(), new Inbox()];
    await hub.add('m', a);
    await hub.add('m', b);
    await hub.add('n', c);
    hub.deliver('m', 'x', 'env');
    expect([a.got, b.got, c.got]).toEqual([['x'], ['x'], []]);
  });

  it('keeps delivering to the others when one recipient throws', async () => {
    const { hub } = setup();
    const broken: Recipient = {
      deliverLive() {
        throw new Error('bug');
      },
    };
    const ok = new Inbox();
    await hub.add('m', broken);
    await hub.add('m', ok);
    hub.deliver('m', 'x', 'env');
    expect(ok.got).toEqual(['x']);
  });

  it('makes a second recipient wait for the subscription the first one started', async () => {
    const { hub, store } = setup();
    const release = store.holdNextSubscribe();
    let secondDone = false;
    const first = hub.add('m', new Inbox());
    const second = (async () => {
      await hub.add('m', new Inbox());
      secondDone = true;
    })();
    await settle();
    expect(secondDone).toBe(false);
    release();
    await Promise.all([first, second]);
    expect(store.calls).toEqual(['sub m']);
  });

  it('removes the recipients and rethrows when subscribing fails, then can subscribe again', async () => {
    const { hub, store } = setup();
    store.failNext = true;
    await expect(hub.add('m', new Inbox())).rejects.toThrow(StoreError);
    expect(hub.size).toBe(0);
    await settle();
    expect(store.calls).toEqual(['sub m']); // nothing to unsubscribe
    await hub.add('m', new Inbox());
    expect(store.calls).toEqual(['sub m', 'sub m']);
  });

  it('subscribes again only after a pending unsubscribe of the same mailbox', async () => {
    const { hub, store } = setup();
    const a = new Inbox();
    await hub.add('m', a);
    hub.remove('m', a); // unsubscribe starts
    await hub.add('m', new Inbox());
    expect(store.calls).toEqual(['sub m', 'unsub m', 'sub m']);
  });

  it('ignores removing a recipient that is not there', () => {
    const { hub, store } = setup();
    hub.remove('m', new Inbox());
    expect(store.calls).toEqual([]);
  });
});
