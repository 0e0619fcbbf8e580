/**
 * What an independent attack on the relay found at the connection level (issue 7 §4), one
 * regression each, against the real relay in-process with real sockets: unfinished fragmented
 * messages, ping floods, connection slots, and buffer amplification through one identity.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { Duplex } from 'node:stream';
import { toBase64url } from '@passage/shared/protocol/base64url';
import { CloseCode, ErrorCode } from '@passage/shared/protocol/errors';
import { MAX_MESSAGE_FRAGMENTS } from '@passage/shared/protocol/limits';
import { authChallengeMessage } from '@passage/shared/protocol/mailbox';
import { TestClient, envelope, identity, messageId } from '@passage/testing/test-client';
import { ClientPool } from '@passage/testing/client-pool';
import { startInProcessRelay, type InProcessRelay } from '@passage/testing/in-process';
import { until, within } from '@passage/testing/wait';

jest.setTimeout(60_000);

const clients = new ClientPool();
afterEach(() => clients.closeAll());

const NO_RATE_LIMITS = {
  CONN_FRAMES_PER_SECOND: '100000',
  CONN_FRAME_BURST: '100000',
  MAILBOX_SENDS_PER_SECOND: '100000',
  MAILBOX_SEND_BURST: '100000',
  CONN_BYTES_PER_SECOND: '1000000000',
  CONN_BYTE_BURST: '1000000000',
} as const;

let rid = 1000;

/** Sends one envelope and waits for its `stored`. */
async function sendStored(from: TestClient, to: string, env: string): Promise<void> {
  const r = ++rid;
  from.send({ v: 1, t: 'send', rid: r, to, id: messageId(), env });
  expect(await from.nextOf(['stored', 'error'])).toMatchObject({ t: 'stored', rid: r });
}

/** Resolves with 'pong' once the relay answers a WebSocket ping, or 'closed' if it closes. */
function pingOrClosed(client: TestClient): Promise<'pong' | 'closed'> {
  return new Promise((resolve) => {
    client.socket.once('pong', () => resolve('pong'));
    void client.closed.then(() => resolve('closed'));
    try {
      client.socket.ping();
    } catch {
      resolve('closed');
    }
  });
}

/** Sends `count` fragments of `bytes` each of one text message that never gets its FIN. */
function sendUnfinished(client: TestClient, count: number, bytes: number): void {
  for (let i = 0; i < count; i++) client.socket.send('x'.repeat(bytes), { fin: false });
}

describe('regression: unfinished fragmented messages exhaust the heap', () => {
  let relay: InProcessRelay;
  beforeAll(async () => {
    relay = await startInProcessRelay({
      env: { MAX_UNFINISHED_INPUT_BYTES: String(256 * 1024), MAX_INVALID_FRAMES: '1000' },
    });
  });
  afterAll(() => relay.stop());

  it(`accepts a message in ${MAX_MESSAGE_FRAGMENTS} fragments`, async () => {
    const client = await clients.connect(relay);
    const text = JSON.stringify({ v: 1, t: 'ping', rid: 5 }).padEnd(64, ' ');
    const step = text.length / MAX_MESSAGE_FRAGMENTS;
    for (let i = 0; i < MAX_MESSAGE_FRAGMENTS; i++) {
      const last = i === MAX_MESSAGE_FRAGMENTS - 1;
      client.socket.send(text.slice(i * step, (i + 1) * step), { fin: last });
    }
    expect(await client.next('pong')).toEqual({ v: 1, t: 'pong', rid: 5 });
  });

  it(`closes with 1008 a message in ${MAX_MESSAGE_FRAGMENTS + 1} fragments`, async () => {
    const client = await clients.connect(relay);
    sendUnfinished(client, MAX_MESSAGE_FRAGMENTS + 1, 4);
    expect((await within(15_000, client.closed)).code).toBe(CloseCode.POLICY_VIOLATION);
  });

  it('keeps what many connections hold in unfinished messages under the bound, dropping the largest holders, and stays up', async () => {
    const bound = relay.config.relay.maxUnfinishedInputBytes;
    const attackers: TestClient[] = [];
    const codes: number[] = [];
    // 40 connections × 32 KiB unfinished = 1.25 MiB against a bound of 256 KiB.
    for (let i = 0; i < 40; i++) {
      const c = await clients.connect(relay);
      attackers.push(c);
      void c.closed.then(({ code }) => codes.push(code));
      sendUnfinished(c, 4, 8 * 1024);
      await within(15_000, pingOrClosed(c));
    }
    // At most bound / 32 KiB of them fit; the largest holders past that were dropped (no close
    // frame: 1006 at the client).
    await until(() => codes.length >= 40 - Math.floor(bound / (32 * 1024)));
    expect(new Set(codes)).toEqual(new Set([1006]));
    expect(relay.server.relay.inputBudget.total).toBeLessThanOrEqual(bound);
    // Everyone else still gets through.
    const alice = await clients.online(relay);
    const bob = await clients.connect(relay);
    await sendStored(bob, alice.mailbox!, envelope());
    await alice.next('deliver');
  });
});

describe('regression: WebSocket pings bypass the frame rate limit', () => {
  let relay: InProcessRelay;
  beforeAll(async () => {
    relay = await startInProcessRelay({
      env: { CONN_FRAMES_PER_SECOND: '10', CONN_FRAME_BURST: '20', FLOOD_CLOSE_AFTER: '50' },
    });
  });
  afterAll(() => relay.stop());

  it('answers pings within the frame rate with a pong echoing the payload', async () => {
    const client = await clients.connect(relay);
    const pong = new Promise<Buffer>((resolve) => client.socket.once('pong', resolve));
    client.socket.ping(Buffer.from('hello'));
    expect((await pong).toString()).toBe('hello');
  });

  it('closes a ping flood with 4001 and answers no more pings than the rate allows', async () => {
    const client = await clients.connect(relay);
    let pongs = 0;
    client.socket.on('pong', () => pongs++);
    for (let i = 0; i < 500 && client.socket.readyState === client.socket.OPEN; i++) {
      client.socket.ping();
    }
    expect((await within(15_000, client.closed)).code).toBe(CloseCode.FLOODING);
    // The burst, plus what the rate refilled while the pings arrived.
    expect(pongs).toBeLessThan(100);
  });
});

describe('regression: one process holds the connection slots others need', () => {
  let relay: InProcessRelay;
  beforeAll(async () => {
    relay = await startInProcessRelay({
      env: {
        MAX_CONNECTIONS: '10',
        MAX_UNAUTHENTICATED_CONNECTIONS: '5',
        MAX_ANONYMOUS_CONNECTIONS: '1',
        AUTH_TIMEOUT_MS: '400',
      },
    });
  });
  afterAll(() => relay.stop());

  it('closes a connection that does not authenticate within AUTH_TIMEOUT_MS with 4004', async () => {
    const idle = await clients.connect(relay);
    expect((await within(15_000, idle.closed)).code).toBe(CloseCode.AUTH_TIMEOUT);
  });

  it('keeps a connection that authenticated in time past AUTH_TIMEOUT_MS', async () => {
    const client = await clients.online(relay);
    await new Promise((resolve) => setTimeout(resolve, 900));
    await client.roundTrip();
  });

  it('keeps one anonymous sender past the auth window, and displaces it with a newer one', async () => {
    const to = identity().mailbox;
    const first = await clients.connect(relay);
    await sendStored(first, to, envelope());
    await new Promise((resolve) => setTimeout(resolve, 900));
    await first.roundTrip();
    const second = await clients.connect(relay);
    await sendStored(second, to, envelope());
    expect((await within(15_000, first.closed)).code).toBe(CloseCode.AUTH_TIMEOUT);
    await second.roundTrip();
  });

  it('admits and authenticates newcomers while one process keeps opening unauthenticated connections', async () => {
    const attacker: TestClient[] = [];
    for (let i = 0; i < 10; i++) attacker.push(await TestClient.connect(relay.wsUrl));
    for (const c of attacker) clients.add(c);
    // Past MAX_UNAUTHENTICATED_CONNECTIONS each newcomer displaced the oldest.
    const codes = await Promise.all(attacker.slice(0, 5).map((c) => within(15_000, c.closed)));
    expect(codes.map((c) => c.code)).toEqual(Array(5).fill(CloseCode.AUTH_TIMEOUT));
    for (let i = 0; i < 3; i++) await clients.online(relay);
  });

  it('says 503 on /readyz while the relay holds MAX_CONNECTIONS, and 200 again below it', async () => {
    await until(() => relay.server.relay.connectionCount === 0);
    const held: TestClient[] = [];
    for (let i = 0; i < 10; i++) held.push(await clients.online(relay));
    expect((await fetch(`${relay.url}/readyz`)).status).toBe(503);
    await held[0]!.close();
    await until(() => relay.server.relay.connectionCount < 10);
    expect((await fetch(`${relay.url}/readyz`)).status).toBe(200);
  });
});

describe('regression: an unpaid send kept a connection as an anonymous sender', () => {
  let relay: InProcessRelay;
  beforeAll(async () => {
    relay = await startInProcessRelay({
      env: { POW_BITS: '4', MAX_ANONYMOUS_CONNECTIONS: '1', AUTH_TIMEOUT_MS: '400' },
    });
  });
  afterAll(() => relay.stop());

  it('closes a connection whose only send was refused pow_required when its auth window ends', async () => {
    const unpaid = await clients.connect(relay);
    const r = ++rid;
    unpaid.send({
      v: 1,
      t: 'send',
      rid: r,
      to: identity().mailbox,
      id: messageId(),
      env: envelope(),
    });
    expect(await unpaid.nextOf(['stored', 'error'])).toMatchObject({
      t: 'error',
      rid: r,
      code: ErrorCode.POW_REQUIRED,
    });
    expect((await within(15_000, unpaid.closed)).code).toBe(CloseCode.AUTH_TIMEOUT);
  });
});

describe('regression: one identity on many sockets that do not read', () => {
  let relay: InProcessRelay;
  beforeAll(async () => {
    relay = await startInProcessRelay({
      env: {
        MAX_CONNECTIONS_PER_MAILBOX: '2',
        PING_INTERVAL_MS: '600000',
        HEARTBEAT_TIMEOUT_MS: '600000',
        ...NO_RATE_LIMITS,
      },
    });
  });
  afterAll(() => relay.stop());

  it('closes the oldest connection of a mailbox past MAX_CONNECTIONS_PER_MAILBOX with 4005', async () => {
    const who = identity();
    const a = await clients.online(relay, who);
    const b = await clients.online(relay, who);
    const c = await clients.online(relay, who);
    expect((await within(15_000, a.closed)).code).toBe(CloseCode.SUPERSEDED);
    await b.roundTrip();
    await c.roundTrip();
    // Another mailbox is not affected.
    await (await clients.online(relay)).roundTrip();
  });
});

describe('regression: buffered output grows with the number of sockets', () => {
  const TOTAL = 512 * 1024;
  let relay: InProcessRelay;
  /** The server side of every upgraded socket, to measure what it holds independently. */
  const sockets: Duplex[] = [];
  beforeAll(async () => {
    relay = await startInProcessRelay({
      env: {
        MAX_CONNECTIONS_PER_MAILBOX: '8',
        MAX_BUFFERED_BYTES: String(256 * 1024),
        SLOW_CONSUMER_BYTES: String(64 * 1024 * 1024),
        MAX_TOTAL_BUFFERED_BYTES: String(TOTAL),
        PING_INTERVAL_MS: '600000',
        HEARTBEAT_TIMEOUT_MS: '600000',
        ...NO_RATE_LIMITS,
      },
    });
    relay.server.http.on('upgrade', (_req, socket: Duplex) => sockets.push(socket));
  });
  afterAll(() => relay.stop());

  it('holds at most MAX_TOTAL_BUFFERED_BYTES (plus one frame) for 8 sockets that do not read, and delivers everything once they read', async () => {
    const who = identity();
    const sender = await clients.connect(relay);
    const count = 60;
    for (let i = 0; i < count; i++) await sendStored(sender, who.mailbox, envelope(60_000));
    const readers: TestClient[] = [];
    for (let i = 0; i < 8; i++) {
      const c = await clients.connect(relay);
      readers.push(c);
      const nonce = await c.nonce();
      c.send({
        v: 1,
        t: 'auth',
        rid: 1,
        pk: toBase64url(who.publicKey),
        sig: toBase64url(who.sign(authChallengeMessage(nonce))),
      });
      c.pauseReading();
    }
    const held = () => sockets.reduce((sum, s) => sum + s.writableLength, 0);
    // Let the relay write all it will.
    let last = -1;
    await until(() => {
      const now = held();
      const settled = now === last;
      last = now;
      return settled && now > 0;
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(held()).toBeLessThanOrEqual(TOTAL + 100 * 1024);
    for (const c of readers) c.resumeReading();
    for (const c of readers) {
      expect(await c.next('authed')).toMatchObject({ mailbox: who.mailbox });
      for (let i = 0; i < count; i++) await c.next('deliver');
    }
  });
});
