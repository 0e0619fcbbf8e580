/**
 * Regression tests from a security review of the relay. Each test is named after the defect it
 * pins. Where a test needs a store operation to be slow, it wraps the real MemoryStore (as a
 * network store would answer a `peek` with what was there when the command ran) rather than
 * mocking it.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { CloseCode } from '@passage/shared/protocol/errors';
import { TestClient, envelope, identity, messageId } from '../../../test/src/harness/client.js';
import { startInProcessRelay, type InProcessRelay } from '../../../test/src/harness/in-process.js';
import { scrub } from '../log.js';
import { MemoryStore } from '../store/memory.js';
import { StoreError, type EnqueueResult, type QueuedEnvelope } from '../store/store.js';

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
