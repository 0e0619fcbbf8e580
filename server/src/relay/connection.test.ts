/**
 * One connection's life around the relay's own pauses and store failures, on the real relay
 * in-process with real sockets: the auth window (AUTH_TIMEOUT_MS) while backpressure has
 * stopped reading, and after an auth whose store subscription failed. Where a store operation
 * must hang or fail, a MemoryStore is wrapped (ProbeStore) rather than mocked.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { CloseCode, ErrorCode } from '@passage/shared/protocol/errors';
import { ClientPool } from '@passage/testing/client-pool';
import { startInProcessRelay, type InProcessRelay } from '@passage/testing/in-process';
import { envelope, identity, messageId, type TestClient } from '@passage/testing/test-client';
import { until, within } from '@passage/testing/wait';
import { MemoryStore } from '../store/memory.js';
import { StoreError, type EnqueueResult } from '../store/store.js';

jest.setTimeout(60_000);

const clients = new ClientPool();
afterEach(() => clients.closeAll());

const AUTH_TIMEOUT_MS = 400;
/** Comfortably past the auth window (a wait, not an assertion about time). */
const PAST_THE_WINDOW_MS = 3 * AUTH_TIMEOUT_MS;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A gate that a store operation waits at. */
interface Gate {
  /** Resolves once an operation is waiting at the gate. */
  readonly entered: Promise<void>;
  /** Lets the waiting operation go on (`fail`: throw a store error instead). */
  open(fail?: boolean): void;
}

/** A MemoryStore whose enqueues and subscribes can be held at a gate, and failed. */
class ProbeStore extends MemoryStore {
  #enqueueGate: { wait: Promise<boolean>; entered: () => void } | undefined;
  #subscribeGate: { wait: Promise<boolean>; entered: () => void } | undefined;

  static #gate(): { gate: Gate; held: { wait: Promise<boolean>; entered: () => void } } {
    let entered!: () => void;
    let open!: (fail: boolean) => void;
    const enteredP = new Promise<void>((resolve) => (entered = resolve));
    const wait = new Promise<boolean>((resolve) => (open = resolve));
    return {
      gate: { entered: enteredP, open: (fail = false) => open(fail) },
      held: { wait, entered },
    };
  }

  /** Holds every enqueue from now on until the gate opens. */
  holdEnqueues(): Gate {
    const { gate, held } = ProbeStore.#gate();
    this.#enqueueGate = held;
    return {
      entered: gate.entered,
      open: (fail) => {
        this.#enqueueGate = undefined;
        gate.open(fail);
      },
    };
  }

  /** Holds the next subscribe until the gate opens. */
  holdSubscribe(): Gate {
    const { gate, held } = ProbeStore.#gate();
    this.#subscribeGate = held;
    return gate;
  }

  override async enqueue(mailbox: string, id: string, env: string): Promise<EnqueueResult> {
    const held = this.#enqueueGate;
    if (held !== undefined) {
      held.entered();
      if (await held.wait) throw new StoreError('unavailable');
    }
    return super.enqueue(mailbox, id, env);
  }

  override async subscribe(mailbox: string): Promise<void> {
    const held = this.#subscribeGate;
    this.#subscribeGate = undefined;
    if (held !== undefined) {
      held.entered();
      if (await held.wait) throw new StoreError('unavailable');
    }
    return super.subscribe(mailbox);
  }
}

async function startProbed(env: Record<string, string>) {
  let store: ProbeStore | undefined;
  const relay = await startInProcessRelay({
    env,
    store: (config) => (store = new ProbeStore(config.storeLimits)),
  });
  return { relay, store: store! };
}

/** A `send` from `from` to a fresh mailbox. */
function sendSomething(from: TestClient, rid: number): void {
  from.send({ v: 1, t: 'send', rid, to: identity().mailbox, id: messageId(), env: envelope() });
}

describe('regression: the auth window ran on while the relay had stopped reading the connection', () => {
  let relay: InProcessRelay;
  let store: ProbeStore;
  beforeAll(async () => {
    ({ relay, store } = await startProbed({
      AUTH_TIMEOUT_MS: String(AUTH_TIMEOUT_MS),
      // One pending store operation shuts the gate: a held enqueue pauses whoever sends next.
      STORE_PAUSE_PENDING_OPS: '1',
      STORE_RESUME_PENDING_OPS: '0',
    }));
  });
  afterAll(() => relay.stop());

  /** Shuts the backpressure gate (a held send) and pauses `client` with one frame. */
  async function pauseByBackpressure(client: TestClient): Promise<Gate> {
    const gate = store.holdEnqueues();
    const other = await clients.connect(relay);
    sendSomething(other, 1);
    await gate.entered;
    const backpressure = relay.server.relay.backpressure;
    expect(backpressure.engaged).toBe(true);
    await client.nonce();
    client.send({ v: 1, t: 'ping', rid: 7 });
    expect(await client.next('pong')).toMatchObject({ rid: 7 });
    await until(() => backpressure.pausedCount === 1);
    return gate;
  }

  it('lets a client that backpressure paused past AUTH_TIMEOUT_MS authenticate once reading resumes', async () => {
    const client = await clients.connect(relay);
    const gate = await pauseByBackpressure(client);
    // The relay reads nothing from the client meanwhile: it could not have authenticated.
    await sleep(PAST_THE_WINDOW_MS);
    gate.open();
    await until(() => !relay.server.relay.backpressure.engaged);
    await client.authenticate();
    await client.roundTrip();
  });

  it('still closes with 4004 a paused client that does not authenticate once reading resumes', async () => {
    const client = await clients.connect(relay);
    const gate = await pauseByBackpressure(client);
    await sleep(PAST_THE_WINDOW_MS);
    gate.open();
    expect((await within(15_000, client.closed)).code).toBe(CloseCode.AUTH_TIMEOUT);
  });

  it('closes with 4004 a client that was never paused and does not authenticate', async () => {
    const client = await clients.connect(relay);
    expect((await within(15_000, client.closed)).code).toBe(CloseCode.AUTH_TIMEOUT);
  });
});

describe('regression: an auth that failed at the store after the auth window ended left the connection unauthenticated without a timer', () => {
  let relay: InProcessRelay;
  let store: ProbeStore;
  beforeAll(async () => {
    ({ relay, store } = await startProbed({ AUTH_TIMEOUT_MS: String(AUTH_TIMEOUT_MS) }));
  });
  afterAll(() => relay.stop());

  it('closes with 4004 a connection whose subscribe failed after its auth window ended', async () => {
    const client = await clients.connect(relay);
    const gate = store.holdSubscribe();
    const refused = client.authenticate().catch((err: unknown) => err);
    await gate.entered;
    await sleep(PAST_THE_WINDOW_MS);
    gate.open(true);
    expect(String(await refused)).toContain(ErrorCode.UNAVAILABLE);
    expect((await within(10_000, client.closed)).code).toBe(CloseCode.AUTH_TIMEOUT);
    expect(relay.server.relay.admission.unauthenticatedCount).toBe(0);
  });

  it('lets a client retry an auth whose subscribe failed within its auth window', async () => {
    const who = identity();
    const client = await clients.connect(relay);
    const gate = store.holdSubscribe();
    const refused = client.authenticate(who).catch((err: unknown) => err);
    await gate.entered;
    gate.open(true);
    expect(String(await refused)).toContain(ErrorCode.UNAVAILABLE);
    expect(await client.authenticate(who)).toBe(who.mailbox);
    await sleep(PAST_THE_WINDOW_MS);
    await client.roundTrip();
  });

  it('keeps a connection whose subscribe succeeded after its auth window ended', async () => {
    const client = await clients.connect(relay);
    const gate = store.holdSubscribe();
    const authed = client.authenticate();
    await gate.entered;
    await sleep(PAST_THE_WINDOW_MS);
    gate.open();
    await authed;
    await sleep(PAST_THE_WINDOW_MS);
    await client.roundTrip();
  });
});
