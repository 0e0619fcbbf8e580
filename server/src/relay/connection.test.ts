/**
 * One connection's life around the relay's own pauses and store failures, on the real relay
 * in-process with real sockets: the auth window (AUTH_TIMEOUT_MS) while backpressure has
 * stopped reading, and after an auth whose store subscription failed; the input budget and the
 * relay's own pause. Where a store operation
 * must hang or fail, a MemoryStore is wrapped (ProbeStore) rather than mocked.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect as tcpConnect, type Socket } from 'node:net';
import { CloseCode, ErrorCode } from '@passage/shared/protocol/errors';
import { WS_SUBPROTOCOL } from '@passage/shared/protocol/limits';
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

/**
 * A client WebSocket on a bare TCP socket, so that a test decides exactly which bytes go out in
 * one write (a complete frame and the start of the next). Frames are masked with a zero key (the
 * mask bit is set, as RFC 6455 requires of clients; the key is the client's choice).
 */
class RawClient {
  received = '';
  closed = false;
  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => (this.received += chunk.toString('latin1')));
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => {});
  }

  static async connect(port: number): Promise<RawClient> {
    const socket = tcpConnect({ port, host: '127.0.0.1' });
    await once(socket, 'connect');
    const client = new RawClient(socket);
    socket.write(
      'GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n` +
        `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ${WS_SUBPROTOCOL}\r\n\r\n`,
    );
    await until(() => client.received.includes('"t":"challenge"'));
    return client;
  }

  /** The header of a masked, final text frame whose payload is `length` bytes. */
  static header(length: number): Buffer {
    const mask = Buffer.alloc(4);
    if (length < 126) return Buffer.concat([Buffer.from([0x81, 0x80 | length]), mask]);
    if (length < 65_536) {
      const h = Buffer.from([0x81, 0x80 | 126, 0, 0]);
      h.writeUInt16BE(length, 2);
      return Buffer.concat([h, mask]);
    }
    const h = Buffer.alloc(10);
    h[0] = 0x81;
    h[1] = 0x80 | 127;
    h.writeBigUInt64BE(BigInt(length), 2);
    return Buffer.concat([h, mask]);
  }
}

/** A `ping` frame's text padded with JSON whitespace to `bytes` bytes. */
function paddedPing(rid: number, bytes: number): Buffer {
  const text = JSON.stringify({ v: 1, t: 'ping', rid });
  return Buffer.from(text + ' '.repeat(bytes - text.length));
}

describe("regression: the input budget dropped a connection for the unread input of the relay's own pause", () => {
  let relay: InProcessRelay;
  let store: ProbeStore;
  beforeAll(async () => {
    ({ relay, store } = await startProbed({
      MAX_UNFINISHED_INPUT_BYTES: String(256 * 1024),
      STORE_PAUSE_PENDING_OPS: '1',
      STORE_RESUME_PENDING_OPS: '0',
    }));
  });
  afterAll(() => relay.stop());

  it('keeps a paused connection holding the most unfinished input, drops the largest unpaused holder instead, and finishes the paused message after the pause', async () => {
    const inner = relay.server.relay;
    const gate = store.holdEnqueues();
    const other = await clients.connect(relay);
    sendSomething(other, 1);
    await gate.entered;

    // In one write: a complete frame (read while the gate is shut: the relay pauses the socket)
    // and the first 62 KiB of a 90,000-byte frame, which stay in ws's buffers while paused.
    const paused = await RawClient.connect(relay.port);
    const big = paddedPing(8, 90_000);
    const first = 62 * 1024;
    const small = paddedPing(7, 40);
    paused.socket.write(
      Buffer.concat([
        RawClient.header(small.length),
        small,
        RawClient.header(big.length),
        big.subarray(0, first),
      ]),
    );
    await until(() => paused.received.includes('"rid":7'));
    await until(() => inner.backpressure.pausedCount === 1 && inner.inputBudget.total >= first);

    // Four unpaused holders of 50 KiB each take the total past 256 KiB: the largest holder is
    // the paused connection, whose message cannot complete while the relay does not read it.
    const holders: TestClient[] = [];
    const codes: number[] = [];
    for (let i = 0; i < 4; i++) {
      const c = await clients.connect(relay);
      holders.push(c);
      void c.closed.then(({ code }) => codes.push(code));
      for (let f = 0; f < 5; f++) c.socket.send('x'.repeat(10 * 1024), { fin: false });
      await new Promise<void>((resolve) => {
        c.socket.once('pong', () => resolve());
        void c.closed.then(() => resolve());
        c.socket.ping();
      });
    }
    await until(() => codes.length === 1 || paused.closed);
    expect(codes).toEqual([1006]);
    expect(paused.closed).toBe(false);

    // Reading resumes: the rest of the paused message arrives and is answered.
    gate.open();
    await until(() => !inner.backpressure.engaged);
    paused.socket.write(big.subarray(first));
    await until(() => paused.received.includes('"rid":8'));
    expect(paused.closed).toBe(false);
    paused.socket.destroy();
  });
});

describe('regression: a flooder made the relay read and refuse every frame its socket carried', () => {
  let relay: InProcessRelay;
  beforeAll(async () => {
    relay = await startInProcessRelay({
      env: { CONN_FRAMES_PER_SECOND: '1', CONN_FRAME_BURST: '2', FLOOD_CLOSE_AFTER: '1000000' },
    });
  });
  afterAll(() => relay.stop());

  it('reads nothing more from a connection past its frame rate until its hold ends', async () => {
    const client = await clients.connect(relay);
    let answers = 0;
    let rid = 0;
    let sending = true;
    // One frame in flight at a time, the next as soon as the last is answered: without the
    // hold the relay refuses one per round trip (thousands in the 600 ms below); with it, one
    // per MAX_RATE_HOLD_MS (250 ms) once the burst of two is spent.
    const loop = (async () => {
      while (sending) {
        client.send({ v: 1, t: 'ping', rid: ++rid });
        await client.nextOf(['pong', 'error']);
        answers++;
      }
    })();
    await sleep(600);
    sending = false;
    expect(answers).toBeLessThanOrEqual(20);
    expect(answers).toBeGreaterThanOrEqual(3); // the burst, then a refusal
    await client.close();
    await loop.catch(() => undefined);
  });
});
