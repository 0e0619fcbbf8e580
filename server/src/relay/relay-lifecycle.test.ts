/**
 * The relay in-process, around its store: the prekey directory, store failures and how they
 * reach clients, an unexpected exception in a handler, and graceful shutdown. Where a test needs
 * a store operation to hang or fail, it wraps the real MemoryStore (StoreProbe) rather than
 * mocking it: everything else the store does is real.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { toBase64url } from '@passage/shared/protocol/base64url';
import { CloseCode, ErrorCode } from '@passage/shared/protocol/errors';
import type { OneTimePrekey } from '@passage/shared/protocol/frames';
import { TestClient, envelope, identity, messageId } from '@passage/testing/test-client';
import { ClientPool } from '@passage/testing/client-pool';
import { startInProcessRelay, type InProcessRelay } from '@passage/testing/in-process';
import { until } from '@passage/testing/wait';
import { MemoryStore } from '../store/memory.js';
import {
  StoreError,
  type EnqueueResult,
  type PeekBounds,
  type PeekPage,
  type StoreErrorCode,
  type StoreHealth,
} from '../store/store.js';

// Real sockets on a loaded 2-core machine: generous, and above the harness's own waits.
jest.setTimeout(60_000);

/**
 * A MemoryStore whose `enqueue` can be held at a gate or made to fail on demand, and whose
 * `peekAfter` (the refill's read) can be held after taking its snapshot (as a slow network store would answer with what
 * was there when the command ran).
 */
class StoreProbe extends MemoryStore {
  #peekGate: Promise<void> | undefined;
  #openPeek: (() => void) | undefined;
  #peekEntered: (() => void) | undefined;

  #gate: Promise<void> | undefined;
  #open: (() => void) | undefined;
  #entered: (() => void) | undefined;
  failWith: StoreErrorCode | 'bug' | undefined;

  /** Holds every enqueue from now on until `release`; resolves when one is waiting. */
  hold(): Promise<void> {
    this.#gate = new Promise((resolve) => (this.#open = resolve));
    return new Promise((resolve) => (this.#entered = resolve));
  }

  release(): void {
    this.#gate = undefined;
    this.#open?.();
  }

  /** Holds every peek from now on until `releasePeeks`; resolves when one is waiting. */
  holdPeeks(): Promise<void> {
    this.#peekGate = new Promise((resolve) => (this.#openPeek = resolve));
    return new Promise((resolve) => (this.#peekEntered = resolve));
  }

  releasePeeks(): void {
    this.#peekGate = undefined;
    this.#openPeek?.();
  }

  override async peekAfter(mailbox: string, bounds: PeekBounds): Promise<PeekPage> {
    const snapshot = await super.peekAfter(mailbox, bounds);
    if (this.#peekGate !== undefined) {
      this.#peekEntered?.();
      await this.#peekGate;
    }
    return snapshot;
  }

  override async enqueue(mailbox: string, id: string, env: string): Promise<EnqueueResult> {
    if (this.failWith === 'bug') throw new TypeError(`bug while storing for ${mailbox}`);
    if (this.failWith !== undefined) throw new StoreError(this.failWith);
    if (this.#gate !== undefined) {
      this.#entered?.();
      await this.#gate;
    }
    return super.enqueue(mailbox, id, env);
  }
}

const clients = new ClientPool();
const connect = (relay: InProcessRelay) => clients.connect(relay);
afterEach(() => clients.closeAll());

/** Sends a message and waits for its `stored` answer; returns its id. */
async function sendStored(from: TestClient, to: string, rid: number): Promise<string> {
  const id = messageId();
  from.send({ v: 1, t: 'send', rid, to, id, env: envelope() });
  expect(await from.next('stored')).toMatchObject({ rid, id });
  return id;
}

const b64 = (n: number) => toBase64url(randomBytes(n));
const prekeys = (ids: number[]): OneTimePrekey[] => ids.map((id) => ({ id, key: b64(32) }));

describe('prekey directory', () => {
  let relay: InProcessRelay;
  beforeAll(async () => {
    relay = await startInProcessRelay({ env: { MAX_ONE_TIME_PREKEYS: '4' } });
  });
  afterAll(() => relay.stop());

  it('publishes, counts, and hands out each one-time prekey once', async () => {
    const owner = await connect(relay);
    const mailbox = await owner.authenticate();
    const identityPart = b64(64);
    const signedPrekey = b64(96);
    const oneTime = prekeys([1, 2]);
    owner.send({
      v: 1,
      t: 'prekeys.publish',
      rid: 1,
      identity: identityPart,
      signedPrekey,
      oneTime,
    });
    expect(await owner.next('prekeys.count')).toEqual({
      v: 1,
      t: 'prekeys.count',
      rid: 1,
      remaining: 2,
    });

    const fetcher = await connect(relay); // fetching needs no authentication
    const got = [];
    for (const r of [2, 3, 4]) {
      fetcher.send({ v: 1, t: 'prekeys.fetch', rid: r, mailbox });
      const bundle = await fetcher.next('prekeys.bundle');
      expect(bundle).toMatchObject({ rid: r, mailbox });
      expect(bundle.bundle).toMatchObject({ identity: identityPart, signedPrekey });
      got.push(bundle.bundle?.oneTime ?? null);
    }
    expect(got.slice(0, 2).sort((a, b) => a!.id - b!.id)).toEqual(oneTime);
    expect(got[2]).toBeNull();

    owner.send({ v: 1, t: 'prekeys.status', rid: 5 });
    expect(await owner.next('prekeys.count')).toMatchObject({ rid: 5, remaining: 0 });
  });

  it('answers a fetch for a mailbox without a bundle with null', async () => {
    const client = await connect(relay);
    const mailbox = identity().mailbox;
    client.send({ v: 1, t: 'prekeys.fetch', rid: 8, mailbox });
    expect(await client.next('prekeys.bundle')).toEqual({
      v: 1,
      t: 'prekeys.bundle',
      rid: 8,
      mailbox,
      bundle: null,
    });
  });

  it('refuses a publish past MAX_ONE_TIME_PREKEYS with prekeys_full and keeps what was there', async () => {
    const owner = await connect(relay);
    await owner.authenticate();
    const publish = (rid: number, ids: number[]) =>
      owner.send({
        v: 1,
        t: 'prekeys.publish',
        rid,
        identity: b64(64),
        signedPrekey: b64(96),
        oneTime: prekeys(ids),
      });
    publish(1, [1, 2, 3]);
    expect(await owner.next('prekeys.count')).toMatchObject({ remaining: 3 });
    publish(2, [4, 5]);
    expect(await owner.next('error')).toMatchObject({ rid: 2, code: ErrorCode.PREKEYS_FULL });
    owner.send({ v: 1, t: 'prekeys.status', rid: 3 });
    expect(await owner.next('prekeys.count')).toMatchObject({ rid: 3, remaining: 3 });
  });
});

describe('store failures', () => {
  let relay: InProcessRelay;
  let store: StoreProbe;
  beforeAll(async () => {
    relay = await startInProcessRelay({
      env: { MAX_QUEUED_PER_MAILBOX: '2' },
      store: (config) => (store = new StoreProbe(config.storeLimits)),
    });
  });
  afterEach(() => {
    store.failWith = undefined;
  });
  afterAll(() => relay.stop());

  it('answers mailbox_full, retryable, when the recipient queue is at its bound', async () => {
    const to = identity().mailbox;
    const client = await connect(relay);
    for (const rid of [1, 2, 3]) {
      client.send({ v: 1, t: 'send', rid, to, id: messageId(), env: envelope() });
    }
    expect(await client.next('stored')).toMatchObject({ rid: 1 });
    expect(await client.next('stored')).toMatchObject({ rid: 2 });
    expect(await client.next('error')).toMatchObject({
      rid: 3,
      code: ErrorCode.MAILBOX_FULL,
      retryable: true,
    });
  });

  it.each([
    ['unavailable', ErrorCode.UNAVAILABLE],
    ['overloaded', ErrorCode.OVERLOADED],
  ] as const)('answers a store that is %s with a retryable error', async (failure, code) => {
    store.failWith = failure;
    const client = await connect(relay);
    client.send({
      v: 1,
      t: 'send',
      rid: 4,
      to: identity().mailbox,
      id: messageId(),
      env: envelope(),
    });
    expect(await client.next('error')).toMatchObject({ rid: 4, code, retryable: true });
    store.failWith = undefined;
    client.send({
      v: 1,
      t: 'send',
      rid: 5,
      to: identity().mailbox,
      id: messageId(),
      env: envelope(),
    });
    expect(await client.next('stored')).toMatchObject({ rid: 5 });
  });

  it('turns an unexpected exception into an internal error, logs no user data, and carries on', async () => {
    const witness = await connect(relay);
    const witnessMailbox = await witness.authenticate();
    const client = await connect(relay);
    const to = identity().mailbox;
    store.failWith = 'bug';
    client.send({ v: 1, t: 'send', rid: 6, to, id: messageId(), env: envelope() });
    expect(await client.next('error')).toMatchObject({
      rid: 6,
      code: ErrorCode.INTERNAL,
      retryable: true,
    });
    store.failWith = undefined;
    await relay.waitForLog('frame handler failed');
    const line = relay.logs.find((l) => l.includes('frame handler failed'))!;
    expect(JSON.parse(line)).toMatchObject({ level: 50, frameType: 'send' });
    expect(line).not.toContain(to);
    // Both connections still work.
    client.send({ v: 1, t: 'send', rid: 7, to: witnessMailbox, id: messageId(), env: envelope() });
    expect(await client.next('stored')).toMatchObject({ rid: 7 });
    expect(await witness.next('deliver')).toBeDefined();
  });
});

describe('refill against a slow store', () => {
  let relay: InProcessRelay;
  let store: StoreProbe;
  beforeAll(async () => {
    relay = await startInProcessRelay({
      env: { MAX_INFLIGHT: '4' },
      store: (config) => (store = new StoreProbe(config.storeLimits)),
    });
  });
  afterEach(() => store.releasePeeks());
  afterAll(() => relay.stop());

  it('delivers a live message that arrives while the first peek is outstanding', async () => {
    const who = identity();
    const bob = await connect(relay);
    const queued = [await sendStored(bob, who.mailbox, 1), await sendStored(bob, who.mailbox, 2)];
    const held = store.holdPeeks();
    const alice = await connect(relay);
    await alice.authenticate(who);
    await held; // the peek's snapshot holds the two queued messages only
    const live = await sendStored(bob, who.mailbox, 3);
    store.releasePeeks();
    const got = [];
    for (let i = 0; i < 3; i++) got.push((await alice.next('deliver')).id);
    expect(got).toEqual([...queued, live]);
    const sentinel = await sendStored(bob, who.mailbox, 4);
    expect(await alice.next('deliver')).toMatchObject({ id: sentinel });
  });

  it('does not resend a message acknowledged while a refill peek was outstanding', async () => {
    const who = identity();
    const bob = await connect(relay);
    const ids = [];
    for (let i = 0; i < 6; i++) ids.push(await sendStored(bob, who.mailbox, 10 + i));
    const alice = await connect(relay);
    await alice.authenticate(who);
    for (let i = 0; i < 4; i++) expect(await alice.next('deliver')).toMatchObject({ id: ids[i] });
    const held = store.holdPeeks();
    alice.send({ v: 1, t: 'ack', ids: ids.slice(0, 3) });
    await held; // a refill's snapshot: ids[3], ids[4], ids[5]
    alice.send({ v: 1, t: 'ack', ids: [ids[3]] });
    await alice.roundTrip(); // the ack of ids[3] is done
    store.releasePeeks();
    expect(await alice.next('deliver')).toMatchObject({ id: ids[4] });
    expect(await alice.next('deliver')).toMatchObject({ id: ids[5] });
    const sentinel = await sendStored(bob, who.mailbox, 20);
    expect(await alice.next('deliver')).toMatchObject({ id: sentinel });
  });
});

describe('graceful shutdown', () => {
  it('answers the in-flight send, says 503 meanwhile, refuses new work, then closes with 1001', async () => {
    let store!: StoreProbe;
    const relay = await startInProcessRelay({
      store: (config) => (store = new StoreProbe(config.storeLimits)),
    });
    try {
      const recipient = await connect(relay);
      await recipient.authenticate();
      const sender = await connect(relay);
      const held = store.hold();
      const id = messageId();
      sender.send({ v: 1, t: 'send', rid: 1, to: recipient.mailbox, id, env: envelope() });
      await held; // the enqueue is running inside the store

      const stopping = relay.stop(30_000);
      expect(relay.server.relay.shuttingDown).toBe(true);
      const ready = await fetch(`${relay.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(ready.headers.get('cache-control')).toBe('no-store');
      await expect(TestClient.connect(relay.wsUrl)).rejects.toThrow('HTTP 503');
      sender.send({
        v: 1,
        t: 'send',
        rid: 2,
        to: recipient.mailbox,
        id: messageId(),
        env: envelope(),
      });
      expect(await sender.next('error')).toMatchObject({
        rid: 2,
        code: ErrorCode.SHUTTING_DOWN,
        retryable: true,
      });
      sender.send({ v: 1, t: 'ping', rid: 3 });
      expect(await sender.next('pong')).toMatchObject({ rid: 3 });

      store.release();
      expect(await sender.next('stored')).toEqual({ v: 1, t: 'stored', rid: 1, id });
      expect(await recipient.next('deliver')).toMatchObject({ id });
      expect(await sender.closed).toEqual({ code: CloseCode.GOING_AWAY, reason: 'going away' });
      expect((await recipient.closed).code).toBe(CloseCode.GOING_AWAY);
      await stopping;
    } finally {
      store.release();
      await relay.stop();
    }
  });

  it('closes sockets after SHUTDOWN_GRACE_MS even if a store operation never finishes', async () => {
    let store!: StoreProbe;
    const relay = await startInProcessRelay({
      store: (config) => (store = new StoreProbe(config.storeLimits)),
    });
    try {
      const sender = await connect(relay);
      const held = store.hold();
      sender.send({
        v: 1,
        t: 'send',
        rid: 1,
        to: identity().mailbox,
        id: messageId(),
        env: envelope(),
      });
      await held;
      await relay.stop(200);
      expect((await sender.closed).code).toBe(CloseCode.GOING_AWAY);
    } finally {
      store.release();
    }
  });
});

// Regressions from the security review of the relay, each named after the defect it pins.
describe('regression: redelivery after ack', () => {
  let relay: InProcessRelay;
  let store: StoreProbe;
  beforeAll(async () => {
    relay = await startInProcessRelay({
      store: (config) => (store = new StoreProbe(config.storeLimits)),
    });
  });
  afterEach(() => store.releasePeeks());
  afterAll(() => relay.stop());

  it('does not redeliver a message the client acknowledged (from an earlier connection) while the first peek was outstanding', async () => {
    const who = identity();
    const bob = await connect(relay);
    const id = await sendStored(bob, who.mailbox, 1);

    // The first connection receives the message and goes away before acknowledging it.
    const first = await connect(relay);
    await first.authenticate(who);
    expect(await first.next('deliver')).toMatchObject({ id });
    await first.close();

    // The client reconnects; the relay's first peek takes its snapshot (with the message) and
    // is slow to answer. Meanwhile the client acknowledges what it already has.
    const held = store.holdPeeks();
    const second = await connect(relay);
    await second.authenticate(who);
    await held;
    second.send({ v: 1, t: 'ack', ids: [id] });
    await second.roundTrip(); // the ack has reached the store: the message is gone
    store.releasePeeks();

    // Deliveries are in order: if the acknowledged message came back, it would come first.
    const sentinel = await sendStored(bob, who.mailbox, 2);
    expect(await second.next('deliver')).toMatchObject({ id: sentinel });
  });
});

/** A MemoryStore whose next enqueue stores the envelope and then fails, as a lost reply does. */
class LostReplyStore extends StoreProbe {
  loseNextReply = false;

  override async enqueue(mailbox: string, id: string, env: string): Promise<EnqueueResult> {
    const result = await super.enqueue(mailbox, id, env);
    if (this.loseNextReply) {
      this.loseNextReply = false;
      throw new StoreError('unavailable');
    }
    return result;
  }
}

describe('regression: a send whose store reply was lost', () => {
  let relay: InProcessRelay;
  let store: LostReplyStore;
  beforeAll(async () => {
    relay = await startInProcessRelay({
      store: (config) => (store = new LostReplyStore(config.storeLimits)),
    });
  });
  afterEach(() => store.releasePeeks());
  afterAll(() => relay.stop());

  it('still reaches a recipient connected to the same relay, before later messages', async () => {
    const alice = await connect(relay);
    const mailbox = await alice.authenticate();
    const bob = await connect(relay);

    // Stored, but the answer was lost: bob hears `unavailable`; his resend is a duplicate.
    const id = messageId();
    store.loseNextReply = true;
    bob.send({ v: 1, t: 'send', rid: 1, to: mailbox, id, env: envelope() });
    expect(await bob.next('error')).toMatchObject({ rid: 1, code: 'unavailable' });
    bob.send({ v: 1, t: 'send', rid: 2, to: mailbox, id, env: envelope() });
    expect(await bob.next('stored')).toMatchObject({ rid: 2, id });

    const later = await sendStored(bob, mailbox, 3);
    expect(await alice.next('deliver')).toMatchObject({ id });
    expect(await alice.next('deliver')).toMatchObject({ id: later });
  });

  it('still reaches the recipient when that happens while a refill peek is outstanding', async () => {
    const held = store.holdPeeks();
    const alice = await connect(relay);
    const mailbox = await alice.authenticate();
    await held; // the first peek's snapshot is taken (empty) and its answer is held
    const bob = await connect(relay);
    const id = messageId();
    store.loseNextReply = true;
    bob.send({ v: 1, t: 'send', rid: 1, to: mailbox, id, env: envelope() });
    expect(await bob.next('error')).toMatchObject({ rid: 1, code: 'unavailable' });
    store.releasePeeks();
    bob.send({ v: 1, t: 'send', rid: 2, to: mailbox, id, env: envelope() });
    expect(await bob.next('stored')).toMatchObject({ rid: 2, id });

    const later = await sendStored(bob, mailbox, 3);
    expect(await alice.next('deliver')).toMatchObject({ id });
    expect(await alice.next('deliver')).toMatchObject({ id: later });
  });
});

describe('one-time prekeys handed out at a rate per mailbox, bundles to everyone', () => {
  let relay: InProcessRelay;
  beforeAll(async () => {
    relay = await startInProcessRelay({
      env: {
        PREKEY_FETCHES_PER_MINUTE: '1',
        PREKEY_FETCH_BURST: '3',
        MAILBOX_SENDS_PER_SECOND: '1',
        MAILBOX_SEND_BURST: '2',
        // One sender spends the mailbox's whole send rate below.
        MAILBOX_SENDER_SHARES: '1',
      },
    });
  });
  afterAll(() => relay.stop());

  /** An authenticated owner that has published `count` one-time prekeys. */
  async function owner(count: number): Promise<{ client: TestClient; mailbox: string }> {
    const client = await connect(relay);
    const mailbox = await client.authenticate();
    const oneTime = Array.from({ length: count }, (_, i) => ({ id: i, key: envelope(32) }));
    client.send({
      v: 1,
      t: 'prekeys.publish',
      rid: 2,
      identity: envelope(32),
      signedPrekey: envelope(96),
      oneTime,
    });
    expect(await client.next('prekeys.count')).toMatchObject({ rid: 2, remaining: count });
    return { client, mailbox };
  }

  /** An owner like {@link owner} with its bundle's parts, to compare answers with. */
  async function ownerWithParts(
    count: number,
  ): Promise<{ client: TestClient; mailbox: string; identity: string; signedPrekey: string }> {
    const client = await connect(relay);
    const mailbox = await client.authenticate();
    const parts = { identity: envelope(32), signedPrekey: envelope(96) };
    const oneTime = Array.from({ length: count }, (_, i) => ({ id: i, key: envelope(32) }));
    client.send({ v: 1, t: 'prekeys.publish', rid: 2, ...parts, oneTime });
    expect(await client.next('prekeys.count')).toMatchObject({ rid: 2, remaining: count });
    return { client, mailbox, ...parts };
  }

  it('regression: fetches past PREKEY_FETCH_BURST were refused rate_limited; they now get the bundle without a one-time prekey, and the rest stay', async () => {
    const target = await ownerWithParts(32);
    const fetcher = await connect(relay);
    for (let rid = 1; rid <= 20; rid++) {
      fetcher.send({ v: 1, t: 'prekeys.fetch', rid, mailbox: target.mailbox });
    }
    const answers = [];
    for (let i = 0; i < 20; i++) answers.push(await fetcher.nextOf(['prekeys.bundle', 'error']));
    expect(answers.filter((f) => f.t === 'error')).toEqual([]);
    const bundles = answers.flatMap((f) => (f.t === 'prekeys.bundle' ? [f] : []));
    expect(bundles.map((f) => f.rid).sort((x, y) => x - y)).toEqual(
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    const withOneTime = bundles.filter((f) => f.bundle?.oneTime !== null);
    const without = bundles.filter((f) => f.bundle?.oneTime === null);
    expect(withOneTime).toHaveLength(3);
    expect(without).toHaveLength(17);
    for (const f of bundles) {
      expect(f).toMatchObject({
        mailbox: target.mailbox,
        bundle: { identity: target.identity, signedPrekey: target.signedPrekey },
      });
    }
    target.client.send({ v: 1, t: 'prekeys.status', rid: 3 });
    expect(await target.client.next('prekeys.count')).toMatchObject({ rid: 3, remaining: 29 });
  });

  it('counts fetches from different connections against the same mailbox', async () => {
    const target = await owner(8);
    const oneTimes = [];
    for (let rid = 1; rid <= 4; rid++) {
      const fetcher = await connect(relay);
      fetcher.send({ v: 1, t: 'prekeys.fetch', rid, mailbox: target.mailbox });
      const answer = await fetcher.next('prekeys.bundle');
      oneTimes.push(answer.bundle?.oneTime === null ? 'without' : 'with');
    }
    expect(oneTimes).toEqual(['with', 'with', 'with', 'without']);
    target.client.send({ v: 1, t: 'prekeys.status', rid: 3 });
    expect(await target.client.next('prekeys.count')).toMatchObject({ rid: 3, remaining: 5 });
  });

  it("keeps one mailbox's spent one-time prekey rate from withholding another's", async () => {
    const drained = await owner(8);
    const other = await owner(8);
    const fetcher = await connect(relay);
    for (let rid = 1; rid <= 4; rid++) {
      fetcher.send({ v: 1, t: 'prekeys.fetch', rid, mailbox: drained.mailbox });
      await fetcher.next('prekeys.bundle');
    }
    fetcher.send({ v: 1, t: 'prekeys.fetch', rid: 5, mailbox: other.mailbox });
    expect((await fetcher.next('prekeys.bundle')).bundle?.oneTime).not.toBeNull();
  });

  it('answers a fetch past the rate for a mailbox without a bundle with null, not rate_limited', async () => {
    const mailbox = await (await connect(relay)).authenticate(); // never publishes
    const fetcher = await connect(relay);
    // Three within the burst, then two past it: all get null, none rate_limited.
    for (let rid = 1; rid <= 5; rid++) {
      fetcher.send({ v: 1, t: 'prekeys.fetch', rid, mailbox });
      expect(await fetcher.next('prekeys.bundle')).toEqual({
        v: 1,
        t: 'prekeys.bundle',
        rid,
        mailbox,
        bundle: null,
      });
    }
  });

  it('does not close a connection that keeps fetching far past the one-time prekey rate', async () => {
    const target = await owner(4);
    const fetcher = await connect(relay);
    // Far past the burst of 3, yet well inside the connection's frame rate: nothing counts
    // towards a flood close, since nothing is refused.
    for (let rid = 1; rid <= 60; rid++) {
      fetcher.send({ v: 1, t: 'prekeys.fetch', rid, mailbox: target.mailbox });
    }
    const answers = [];
    for (let i = 0; i < 60; i++) answers.push(await fetcher.nextOf(['prekeys.bundle', 'error']));
    expect(answers.filter((f) => f.t === 'error')).toEqual([]);
    expect(
      answers.filter((f) => f.t === 'prekeys.bundle' && f.bundle?.oneTime !== null),
    ).toHaveLength(3);
    fetcher.send({ v: 1, t: 'ping', rid: 61 });
    expect(await fetcher.next('pong')).toMatchObject({ rid: 61 });
    target.client.send({ v: 1, t: 'prekeys.status', rid: 3 });
    expect(await target.client.next('prekeys.count')).toMatchObject({ rid: 3, remaining: 1 });
  });

  it('does not refuse sends to a mailbox whose one-time prekey rate is used up', async () => {
    const target = await owner(4);
    const fetcher = await connect(relay);
    for (let rid = 1; rid <= 4; rid++) {
      fetcher.send({ v: 1, t: 'prekeys.fetch', rid, mailbox: target.mailbox });
    }
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await fetcher.next('prekeys.bundle'));
    expect(answers.filter((f) => f.bundle?.oneTime === null)).toHaveLength(1);
    // The send bucket (burst 2) is untouched by the fetches.
    const id1 = await sendStored(fetcher, target.mailbox, 5);
    const id2 = await sendStored(fetcher, target.mailbox, 6);
    expect(await target.client.next('deliver')).toMatchObject({ id: id1 });
    expect(await target.client.next('deliver')).toMatchObject({ id: id2 });
  });

  it('does not refuse prekey fetches for a mailbox whose send rate is used up', async () => {
    const target = await owner(4);
    const sender = await connect(relay);
    for (let rid = 1; rid <= 3; rid++) {
      sender.send({ v: 1, t: 'send', rid, to: target.mailbox, id: messageId(), env: envelope() });
    }
    expect(await sender.next('error')).toMatchObject({ rid: 3, code: ErrorCode.RATE_LIMITED });
    sender.send({ v: 1, t: 'prekeys.fetch', rid: 4, mailbox: target.mailbox });
    const bundle = await sender.next('prekeys.bundle');
    expect(bundle).toMatchObject({ rid: 4, mailbox: target.mailbox });
    expect(bundle.bundle?.oneTime).not.toBeNull();
  });
});

/**
 * A MemoryStore that can be made unreachable: `peekAfter` (the refill's read) fails and `health` says not ready. It notes
 * whether the first peek after it came back ran in the same turn of the event loop as the
 * health check that first saw it back (the relay's tick, which resyncs every connection).
 */
class OutageStore extends MemoryStore {
  down = false;
  failedPeeks = 0;
  /** Health checks that reported "not ready" after at least one peek had failed. */
  downReportsAfterFailure = 0;
  #reportedDown = false;
  #inRecoveryTurn = false;
  /** Undefined until a peek succeeds after the outage; then whether it ran in the tick's turn. */
  firstPeekAfterOutageInRecoveryTurn: boolean | undefined;

  override health(): StoreHealth {
    if (this.down) {
      this.#reportedDown = true;
      if (this.failedPeeks > 0) this.downReportsAfterFailure++;
      return { ready: false };
    }
    if (this.#reportedDown) {
      this.#reportedDown = false;
      this.#inRecoveryTurn = true;
      queueMicrotask(() => (this.#inRecoveryTurn = false));
    }
    return super.health();
  }

  override async peekAfter(mailbox: string, bounds: PeekBounds): Promise<PeekPage> {
    if (this.down) {
      this.failedPeeks++;
      throw new StoreError('unavailable');
    }
    if (this.failedPeeks > 0) this.firstPeekAfterOutageInRecoveryTurn ??= this.#inRecoveryTurn;
    return super.peekAfter(mailbox, bounds);
  }
}

describe('regression: refill retry after a store outage', () => {
  let relay: InProcessRelay;
  let store: OutageStore;
  beforeAll(async () => {
    relay = await startInProcessRelay({
      env: { PING_INTERVAL_MS: '50', HEARTBEAT_TIMEOUT_MS: '60000' },
      store: (config) => (store = new OutageStore(config.storeLimits)),
    });
  });
  afterAll(async () => {
    store.down = false;
    await relay.stop();
  });

  it('does not wait for a backed-off refill retry once the store is back: the resync looks at once', async () => {
    const who = identity();
    const sender = await connect(relay);
    const id = await sendStored(sender, who.mailbox, 1);

    store.down = true;
    const recipient = await connect(relay);
    await recipient.authenticate(who); // subscribing works; the first peek fails
    // The relay has seen the outage (a tick found the store not ready) after a peek failed,
    // so a retry is pending and the next tick that finds the store ready resyncs.
    await until(() => store.downReportsAfterFailure >= 2);
    store.down = false;

    expect(await recipient.next('deliver')).toMatchObject({ id });
    expect(store.firstPeekAfterOutageInRecoveryTurn).toBe(true);
  });

  it('does not deliver while the store is still unreachable', async () => {
    const who = identity();
    const sender = await connect(relay);
    const id = await sendStored(sender, who.mailbox, 1);
    const failedBefore = store.failedPeeks;
    store.down = true;
    const recipient = await connect(relay);
    await recipient.authenticate(who);
    await until(() => store.failedPeeks > failedBefore);
    await recipient.roundTrip();
    expect(recipient.pending.filter((f) => f.t === 'deliver')).toEqual([]);
    store.down = false;
    expect(await recipient.next('deliver')).toMatchObject({ id });
  });
});
