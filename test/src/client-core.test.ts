/**
 * The client core (`PassageClient`) against the real relay over real WebSockets, with the raw
 * `TestClient` as the independent oracle of what goes over the wire: connect, authenticate,
 * send, receive and ack on the embedded store; first contact paying proof-of-work at the lowest
 * difficulty; and relay processes on one redis-server restarted (gracefully and killed) in the
 * middle of a stream, with nothing lost and nothing shown twice.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { loadPrimitives } from '@passage/shared/crypto/backend';
import type { Primitives } from '@passage/shared/crypto/primitives';
import {
  PassageClient,
  inlinePowSolver,
  systemClock,
  type InboxOutcome,
} from '@passage/shared/client/index';
import { fromBase64url, toBase64url } from '@passage/shared/protocol/base64url';
import { PROTOCOL_VERSION } from '@passage/shared/protocol/limits';
import { startInProcessRelay, type InProcessRelay } from '@passage/testing/in-process';
import { startRedis, type RedisServer } from '@passage/testing/redis';
import { startRelay, stopAllRelays, type RelayProcess } from '@passage/testing/relay-process';
import { TestClient, identity, messageId, type TestIdentity } from '@passage/testing/test-client';
import { until } from '@passage/testing/wait';
import { wsTransport } from '@passage/testing/ws-transport';

let p: Primitives;
const clients: PassageClient[] = [];
const oracles: TestClient[] = [];

beforeAll(async () => {
  p = await loadPrimitives();
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(oracles.splice(0).map((o) => o.close()));
});

/** A client for `who` (anonymous without), recording every envelope shown to the application. */
function client(
  url: string | (() => string),
  who?: TestIdentity,
  handler?: (bytes: Uint8Array, id: string) => InboxOutcome,
) {
  const shown: { id: string; bytes: Uint8Array }[] = [];
  const c = new PassageClient({
    url,
    transport: wsTransport(),
    primitives: p,
    // Short backoff and heartbeats: the tests wait on reconnects.
    timing: { backoffInitialMs: 50, backoffMaxMs: 500, heartbeatIntervalMs: 2_000 },
    solvePow: inlinePowSolver({
      sha256: (d) => p.sha256(d),
      clock: systemClock(),
      randomBytes: (n) => p.random.bytes(n),
    }),
    ...(who === undefined
      ? {}
      : {
          identity: { signingKey: who.publicKey, sign: (m: Uint8Array) => who.sign(m) },
          onEnvelope: (bytes: Uint8Array, id: string) => {
            shown.push({ id, bytes });
            return handler?.(bytes, id) ?? { kind: 'accepted' };
          },
        }),
  });
  clients.push(c);
  return { c, shown };
}

async function oracle(url: string, who: TestIdentity = identity()): Promise<TestClient> {
  const o = await TestClient.connect(url);
  oracles.push(o);
  await o.authenticate(who);
  return o;
}

const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill);

describe('on the embedded store', () => {
  let relay: InProcessRelay;
  beforeAll(async () => {
    relay = await startInProcessRelay();
  });
  afterAll(() => relay.stop());

  it('connects, authenticates as its mailbox and sends: the oracle receives the same id and bytes', async () => {
    const who = identity();
    const { c } = client(relay.wsUrl, who);
    const states: string[] = [];
    c.on('state', (s) => states.push(s.state));
    await c.connect();
    await c.ready();
    expect(c.status.connection).toMatchObject({ state: 'ready', mailbox: who.mailbox });
    expect(states).toEqual(['connecting', 'authenticating', 'ready']);

    const bob = await oracle(relay.wsUrl);
    const sent: string[] = [];
    c.on('message-state', (e) => {
      if (e.state === 'sent') sent.push(e.id);
    });
    const id = await c.send(bob.mailbox!, bytes(300, 7));
    const deliver = await bob.next('deliver');
    expect(deliver.id).toBe(id);
    expect(fromBase64url(deliver.env)).toEqual(bytes(300, 7));
    await until(() => sent.includes(id));
    expect(c.message(id)?.state).toBe('sent');
    await c.markDelivered(id);
    await c.markRead(id);
    expect(c.message(id)).toBeUndefined();
  });

  it('receives what the oracle sends, acks it after the handler, and it is not delivered again', async () => {
    const who = identity();
    const { c, shown } = client(relay.wsUrl, who);
    await c.connect();
    await c.ready();
    const sender = await TestClient.connect(relay.wsUrl);
    oracles.push(sender);
    const ids = [messageId(), messageId(), messageId()];
    for (const [i, id] of ids.entries()) {
      sender.send({
        v: PROTOCOL_VERSION,
        t: 'send',
        rid: i + 1,
        to: who.mailbox,
        id,
        env: toBase64url(bytes(64, i)),
      });
      await sender.next('stored');
    }
    await until(() => shown.length === 3);
    await c.idle();
    expect(shown.map((s) => s.id)).toEqual(ids);
    expect(shown.map((s) => s.bytes)).toEqual([0, 1, 2].map((i) => bytes(64, i)));
    c.close();
    // The oracle takes the mailbox over: nothing acknowledged comes again; a new one does.
    const same = await oracle(relay.wsUrl, who);
    const fresh = messageId();
    sender.send({
      v: PROTOCOL_VERSION,
      t: 'send',
      rid: 9,
      to: who.mailbox,
      id: fresh,
      env: 'AAAA',
    });
    expect((await same.next('deliver')).id).toBe(fresh);
  });

  it('an envelope the handler cannot read is acked and counted; one it defers comes again after a reconnect', async () => {
    const who = identity();
    const deferred = messageId();
    const garbage = messageId();
    let deferOnce = true;
    const { c, shown } = client(relay.wsUrl, who, (_b, id) => {
      if (id === garbage) return { kind: 'unreadable', reason: 'decrypt_failed' };
      if (id === deferred && deferOnce) {
        deferOnce = false;
        return { kind: 'later', reason: 'limit_exceeded' };
      }
      return { kind: 'accepted' };
    });
    const unreadable: string[] = [];
    c.on('unreadable', (e) => unreadable.push(e.reason));
    await c.connect();
    await c.ready();
    const sender = await TestClient.connect(relay.wsUrl);
    oracles.push(sender);
    for (const [i, id] of [garbage, deferred].entries()) {
      sender.send({ v: PROTOCOL_VERSION, t: 'send', rid: i + 1, to: who.mailbox, id, env: 'AAAA' });
      await sender.next('stored');
    }
    await until(() => shown.length === 2);
    await c.idle();
    expect(unreadable).toEqual(['decrypt_failed']);
    expect(c.status.inbox).toMatchObject({
      unreadable: { decrypt_failed: 1 },
      later: { limit_exceeded: 1 },
    });
    // The relay hands an unacknowledged delivery out again when a connection of the mailbox
    // authenticates after the one that held it has gone.
    const open = relay.server.relay.connectionCount;
    c.close();
    await until(() => relay.server.relay.connectionCount === open - 1);
    const { c: again, shown: shownAgain } = client(relay.wsUrl, who);
    await again.connect();
    await until(() => shownAgain.length === 1);
    expect(shownAgain[0]!.id).toBe(deferred);
  });
});

describe('first contact with proof-of-work at the lowest difficulty', () => {
  let relay: InProcessRelay;
  beforeAll(async () => {
    relay = await startInProcessRelay({ env: { POW_BITS: '1' } });
  });
  afterAll(() => relay.stop());

  it('an anonymous client pays for its first send and the message is delivered with its id', async () => {
    const bob = await oracle(relay.wsUrl);
    const { c } = client(relay.wsUrl);
    const progress: number[] = [];
    c.on('pow-progress', (e) => progress.push(e.bits));
    await c.connect();
    await c.ready();
    expect(c.status.connection.mailbox).toBeUndefined();
    const first = await c.send(bob.mailbox!, bytes(32, 1));
    const second = await c.send(bob.mailbox!, bytes(32, 2));
    const got = [(await bob.next('deliver')).id, (await bob.next('deliver')).id];
    expect(got.sort()).toEqual([first, second].sort());
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.every((b) => b === 1)).toBe(true);
  });

  it('without paying, the relay refuses: the raw oracle sees pow_required for the same send', async () => {
    const bob = await oracle(relay.wsUrl);
    const raw = await TestClient.connect(relay.wsUrl);
    oracles.push(raw);
    raw.send({
      v: PROTOCOL_VERSION,
      t: 'send',
      rid: 1,
      to: bob.mailbox,
      id: messageId(),
      env: 'AAAA',
    });
    expect(await raw.nextError()).toMatchObject({ code: 'pow_required' });
  });
});

describe('relay restarts mid-stream on Redis', () => {
  let redis: RedisServer;
  let relay: RelayProcess;
  let port: number;
  beforeAll(async () => {
    redis = await startRedis();
    relay = await startRelay({ REDIS_URL: redis.url });
    port = relay.port;
  }, 60_000);
  afterAll(async () => {
    await stopAllRelays();
    await redis?.stop();
  });

  it('200 messages, the relay stopped gracefully and then killed while they flow: 0 lost, 0 shown twice', async () => {
    const url = `ws://127.0.0.1:${port}/v1/ws`;
    const who = identity();
    const { c: receiver, shown } = client(url, who);
    const { c: sender } = client(url);
    await Promise.all([receiver.connect(), sender.connect()]);
    await Promise.all([receiver.ready(), sender.ready()]);
    const stored = new Set<string>();
    sender.on('message-state', (e) => {
      if (e.state === 'sent') stored.add(e.id);
    });
    const ids: string[] = [];
    const N = 200;
    for (let i = 0; i < N; i++) {
      ids.push(await sender.send(who.mailbox, bytes(100, i % 256)));
      if (i === 60) {
        // Mid-stream: some stored and shown, the rest in flight or queued.
        await until(() => stored.size >= 30 && shown.length >= 10);
        await relay.stop('SIGTERM');
        relay = await startRelay({ REDIS_URL: redis.url }, { port });
      }
      if (i === 130) {
        await until(() => stored.size >= 100 && shown.length >= 80);
        await relay.stop('SIGKILL');
        relay = await startRelay({ REDIS_URL: redis.url }, { port });
      }
    }
    await until(() => stored.size === N, 60_000);
    await until(() => new Set(shown.map((s) => s.id)).size === N, 60_000);
    await receiver.idle();
    const counts = new Map<string, number>();
    for (const s of shown) counts.set(s.id, (counts.get(s.id) ?? 0) + 1);
    expect([...counts.values()].filter((n) => n > 1)).toEqual([]);
    expect(new Set(shown.map((s) => s.id))).toEqual(new Set(ids));
    expect(sender.status.outbox).toMatchObject({ queued: 0, sent: N, failed: 0 });
    expect(receiver.status.protocolErrors).toEqual({});
  }, 120_000);
});
