/**
 * Regression tests from a security review of the relay. Each test is named after the defect it
 * pins. Where a test needs a store operation to be slow, it wraps the real MemoryStore (as a
 * network store would answer a `peek` with what was there when the command ran) rather than
 * mocking it.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { CloseCode, ErrorCode } from '@passage/shared/protocol/errors';
import { MAX_ONE_TIME_PREKEYS_STORED } from '@passage/shared/protocol/limits';
import { TestClient, envelope, identity, messageId } from '@passage/testing/test-client';
import { startInProcessRelay, type InProcessRelay } from '@passage/testing/in-process';
import { ConfigError, loadConfig } from '../config.js';
import { scrub } from '../log.js';
import { MemoryStore } from '../store/memory.js';
import {
  StoreError,
  type EnqueueResult,
  type QueuedEnvelope,
  type StoreHealth,
} from '../store/store.js';

// Real sockets on a loaded 2-core machine: generous, and above the harness's own waits.
jest.setTimeout(60_000);

/** A MemoryStore whose `peek` can be held after taking its snapshot. */
class SlowPeekStore extends MemoryStore {
  #gate: Promise<void> | undefined;
  #open: (() => void) | undefined;
  #entered: (() => void) | undefined;

  /** Holds every peek from now on until `release`; resolves when one is waiting. */
  hold(): Promise<void> {
    this.#gate = new Promise((resolve) => (this.#open = resolve));
    return new Promise((resolve) => (this.#entered = resolve));
  }

  release(): void {
    this.#gate = undefined;
    this.#open?.();
  }

  override async peek(mailbox: string, limit: number): Promise<QueuedEnvelope[]> {
    const snapshot = await super.peek(mailbox, limit);
    if (this.#gate !== undefined) {
      this.#entered?.();
      await this.#gate;
    }
    return snapshot;
  }
}

const clients: TestClient[] = [];
async function connect(relay: InProcessRelay, autoPong = true): Promise<TestClient> {
  const client = await TestClient.connect(relay.wsUrl, { autoPong });
  clients.push(client);
  return client;
}
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

/** Rejects when `promise` has not settled within `ms` (so a failing test ends cleanly). */
async function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`not within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits until `condition` holds, looking again every 10 ms, for at most 30 s. */
async function until(condition: () => boolean): Promise<void> {
  for (let waited = 0; !condition(); waited += 10) {
    if (waited > 30_000) throw new Error('condition not reached');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function sendStored(from: TestClient, to: string, rid: number): Promise<string> {
  const id = messageId();
  from.send({ v: 1, t: 'send', rid, to, id, env: envelope() });
  expect(await from.next('stored')).toMatchObject({ rid, id });
  return id;
}

describe('review: redelivery after ack', () => {
  let relay: InProcessRelay;
  let store: SlowPeekStore;
  beforeAll(async () => {
    relay = await startInProcessRelay({
      store: (config) => (store = new SlowPeekStore(config.storeLimits)),
    });
  });
  afterEach(() => store.release());
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
    const held = store.hold();
    const second = await connect(relay);
    await second.authenticate(who);
    await held;
    second.send({ v: 1, t: 'ack', ids: [id] });
    await second.roundTrip(); // the ack has reached the store: the message is gone
    store.release();

    // Deliveries are in order: if the acknowledged message came back, it would come first.
    const sentinel = await sendStored(bob, who.mailbox, 2);
    expect(await second.next('deliver')).toMatchObject({ id: sentinel });
  });
});

describe('review: heartbeat', () => {
  let relay: InProcessRelay;
  beforeAll(async () => {
    relay = await startInProcessRelay({
      env: {
        // Slack for a loaded machine: a live client must not look dead after an event-loop stall.
        PING_INTERVAL_MS: '250',
        HEARTBEAT_TIMEOUT_MS: '2000',
      },
    });
  });
  afterAll(() => relay.stop());

  it('does not count unsolicited pongs from a peer that reads nothing as heartbeat answers', async () => {
    // RFC 6455 allows unsolicited pongs. A peer that never reads can still send them; if they
    // counted, it would hold its socket (and everything buffered for it) for ever.
    const idle = await connect(relay, false);
    idle.pauseReading();
    const ponger = setInterval(() => idle.socket.pong(), 50);
    try {
      await within(30_000, relay.waitForLog(`"closeCode":${CloseCode.HEARTBEAT_TIMEOUT}`));
      await within(30_000, relay.waitForLog('"msg":"connection dropped"'));
    } finally {
      clearInterval(ponger);
      idle.resumeReading();
    }
    expect([CloseCode.HEARTBEAT_TIMEOUT, 1006]).toContain((await idle.closed).code);
  });

  it('keeps a peer that echoes the pings it reads, past several heartbeat timeouts', async () => {
    const alive = await connect(relay);
    // 12 pings at PING_INTERVAL_MS 250 span more than one HEARTBEAT_TIMEOUT_MS of 2000.
    await new Promise<void>((resolve) => {
      let pings = 0;
      const onPing = () => {
        if (++pings < 12) return;
        alive.socket.off('ping', onPing);
        resolve();
      };
      alive.socket.on('ping', onPing);
    });
    await alive.roundTrip();
  });
});

describe('review: connection bound', () => {
  let relay: InProcessRelay;
  beforeAll(async () => {
    relay = await startInProcessRelay({ env: { MAX_CONNECTIONS: '2' } });
  });
  afterAll(() => relay.stop());

  it('refuses upgrades past MAX_CONNECTIONS with 503, keeps the open ones, and admits again once one closes', async () => {
    const a = await connect(relay);
    const b = await connect(relay);
    await expect(TestClient.connect(relay.wsUrl)).rejects.toThrow('HTTP 503');
    await a.roundTrip();
    await b.roundTrip();
    await a.close();
    await until(() => relay.server.relay.connectionCount < 2);
    const c = await connect(relay);
    await c.roundTrip();
  });
});

/** A MemoryStore whose next enqueue stores the envelope and then fails, as a lost reply does. */
class LostReplyStore extends SlowPeekStore {
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

describe('review: a send whose store reply was lost', () => {
  let relay: InProcessRelay;
  let store: LostReplyStore;
  beforeAll(async () => {
    relay = await startInProcessRelay({
      store: (config) => (store = new LostReplyStore(config.storeLimits)),
    });
  });
  afterEach(() => store.release());
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
    const held = store.hold();
    const alice = await connect(relay);
    const mailbox = await alice.authenticate();
    await held; // the first peek's snapshot is taken (empty) and its answer is held
    const bob = await connect(relay);
    const id = messageId();
    store.loseNextReply = true;
    bob.send({ v: 1, t: 'send', rid: 1, to: mailbox, id, env: envelope() });
    expect(await bob.next('error')).toMatchObject({ rid: 1, code: 'unavailable' });
    store.release();
    bob.send({ v: 1, t: 'send', rid: 2, to: mailbox, id, env: envelope() });
    expect(await bob.next('stored')).toMatchObject({ rid: 2, id });

    const later = await sendStored(bob, mailbox, 3);
    expect(await alice.next('deliver')).toMatchObject({ id });
    expect(await alice.next('deliver')).toMatchObject({ id: later });
  });
});

describe('review: log scrubbing', () => {
  it('does not keep the head of an id that the length cap cuts in two', () => {
    const id = 'Zx9_Qm2-Lp4Rt7Vw1Yb3Nc5Kd8Hf6Gj0Sa2Ue4Io6Py'; // 43 characters, like a mailbox id
    for (let at = 280; at <= 300; at++) {
      const text = 'x '.repeat(at / 2) + (at % 2 === 0 ? '' : ' ') + id;
      const out = scrub(text);
      // No run of 6 or more characters of the id survives, wherever the cut falls.
      for (let i = 0; i + 6 <= id.length; i++) expect(out).not.toContain(id.slice(i, i + 6));
    }
  });

  it('does not keep the head of an address that the length cap cuts in two', () => {
    for (const address of ['203.0.113.77', '2001:db8:85a3::8a2e:370:7334']) {
      for (let at = 285; at <= 300; at++) {
        const out = scrub('x'.repeat(at) + ' ' + address + ' and more text after it');
        expect(out).not.toMatch(/203\.0|db8|85a3/);
      }
    }
  });

  it('still keeps ordinary words at the cut', () => {
    expect(scrub('word '.repeat(100))).toMatch(/word …$|word…$/);
  });
});

describe('review: one-time prekeys drained in one burst', () => {
  let relay: InProcessRelay;
  beforeAll(async () => {
    relay = await startInProcessRelay({
      env: {
        PREKEY_FETCHES_PER_MINUTE: '1',
        PREKEY_FETCH_BURST: '3',
        MAILBOX_SENDS_PER_SECOND: '1',
        MAILBOX_SEND_BURST: '2',
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

  it('refuses prekey fetches for one mailbox past PREKEY_FETCH_BURST, leaving the rest of its one-time prekeys', async () => {
    const target = await owner(32);
    const fetcher = await connect(relay);
    for (let rid = 1; rid <= 20; rid++) {
      fetcher.send({ v: 1, t: 'prekeys.fetch', rid, mailbox: target.mailbox });
    }
    const answers = [];
    for (let i = 0; i < 20; i++) answers.push(await fetcher.nextOf(['prekeys.bundle', 'error']));
    const bundles = answers.filter((f) => f.t === 'prekeys.bundle');
    const refused = answers.filter((f) => f.t === 'error');
    expect(bundles).toHaveLength(3);
    expect(refused).toHaveLength(17);
    for (const f of refused) expect(f).toMatchObject({ code: ErrorCode.RATE_LIMITED });
    target.client.send({ v: 1, t: 'prekeys.status', rid: 3 });
    expect(await target.client.next('prekeys.count')).toMatchObject({ rid: 3, remaining: 29 });
  });

  it('counts fetches from different connections against the same mailbox', async () => {
    const target = await owner(8);
    const answers = [];
    for (let rid = 1; rid <= 4; rid++) {
      const fetcher = await connect(relay);
      fetcher.send({ v: 1, t: 'prekeys.fetch', rid, mailbox: target.mailbox });
      answers.push(await fetcher.nextOf(['prekeys.bundle', 'error']));
    }
    expect(answers.map((f) => f.t)).toEqual([
      'prekeys.bundle',
      'prekeys.bundle',
      'prekeys.bundle',
      'error',
    ]);
  });

  it('does not refuse sends to a mailbox whose prekey fetches are used up', async () => {
    const target = await owner(4);
    const fetcher = await connect(relay);
    for (let rid = 1; rid <= 4; rid++) {
      fetcher.send({ v: 1, t: 'prekeys.fetch', rid, mailbox: target.mailbox });
    }
    expect(await fetcher.next('error')).toMatchObject({ rid: 4, code: ErrorCode.RATE_LIMITED });
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

  it('has defaults that let a few fetches through but never a whole device of prekeys at once', () => {
    const { relay: settings } = loadConfig({});
    expect(settings.prekeyFetchesPerSecond).toBe(6 / 60);
    expect(settings.prekeyFetchBurst).toBe(16);
    expect(settings.prekeyFetchBurst).toBeLessThan(MAX_ONE_TIME_PREKEYS_STORED / 4);
    expect(settings.mailboxSendBurst).toBeGreaterThan(MAX_ONE_TIME_PREKEYS_STORED);
  });

  it.each([
    ['PREKEY_FETCHES_PER_MINUTE', '0'],
    ['PREKEY_FETCHES_PER_MINUTE', '1.5'],
    ['PREKEY_FETCH_BURST', '0'],
    ['PREKEY_FETCH_BURST', '-3'],
  ])('refuses to start with %s=%s', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
  });
});

/**
 * A MemoryStore that can be made unreachable: `peek` fails and `health` says not ready. It notes
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

  override async peek(mailbox: string, limit: number): Promise<QueuedEnvelope[]> {
    if (this.down) {
      this.failedPeeks++;
      throw new StoreError('unavailable');
    }
    if (this.failedPeeks > 0) this.firstPeekAfterOutageInRecoveryTurn ??= this.#inRecoveryTurn;
    return super.peek(mailbox, limit);
  }
}

describe('review: refill retry after a store outage', () => {
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

describe('review: CPU cost of hostile JSON before any rate check', () => {
  let relay: InProcessRelay;
  beforeAll(async () => {
    relay = await startInProcessRelay();
  });
  afterAll(() => relay.stop());

  it('answers a frame nested tens of thousands of levels deep with bad_frame, and goes on', async () => {
    const client = await connect(relay);
    const depth = 49_000;
    client.sendRaw('['.repeat(depth) + ']'.repeat(depth));
    expect(await client.next('error')).toMatchObject({ code: ErrorCode.BAD_FRAME });
    client.sendRaw(`{"v":1,"t":"ping","rid":1,${'"k":1,'.repeat(9_000)}"x":1}`);
    expect(await client.next('error')).toMatchObject({ code: ErrorCode.BAD_FRAME });
    await client.roundTrip();
  });
});
