/**
 * The connection state machine against a fake transport and a fake clock: the test plays the
 * relay. Authentication, rid matching (out of order, unknown, wrong type), timeouts,
 * heartbeats, jittered backoff, and every kind of malformed or unexpected frame from the relay.
 */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { toBase64url } from '@passage/shared/protocol/base64url';
import {
  encodeAuthedFrame,
  encodeChallengeFrame,
  encodeDeliverFrame,
  encodeErrorFrame,
  encodePongFrame,
  encodeStoredFrame,
} from '@passage/shared/protocol/encode';
import { ErrorCode } from '@passage/shared/protocol/errors';
import { WS_SUBPROTOCOL } from '@passage/shared/protocol/limits';
import { authChallengeMessage } from '@passage/shared/protocol/mailbox';
import { FakeClock, FakeTransport, flush, type FakeSocket } from '@passage/testing/client-fakes';
import { identity, messageId } from '@passage/testing/test-client';
import {
  Connection,
  DEFAULT_TIMING,
  type ConnectionState,
  type ConnectionTiming,
} from './connection.js';
import { ClientError, ClientErrorCode, RelayError } from './errors.js';

const sha256 = (data: Uint8Array): Uint8Array => createHash('sha256').update(data).digest();
const MAILBOX = toBase64url(randomBytes(32));

function setup(
  options: { anonymous?: boolean; random?: () => number; timing?: Partial<ConnectionTiming> } = {},
) {
  const who = identity();
  const transport = new FakeTransport();
  const clock = new FakeClock();
  const states: ConnectionState[] = [];
  const connection = new Connection({
    url: 'ws://relay.test/v1/ws',
    transport,
    clock,
    sha256,
    random: options.random ?? (() => 0.5),
    ...(options.anonymous === true
      ? {}
      : { signer: { signingKey: who.publicKey, sign: (m: Uint8Array) => who.sign(m) } }),
    ...(options.timing === undefined ? {} : { timing: options.timing }),
  });
  connection.events.on('state', (s) => states.push(s.state));
  return { who, transport, clock, connection, states };
}

function challenge(socket: FakeSocket): Uint8Array {
  const nonce = randomBytes(32);
  socket.open();
  socket.receive(encodeChallengeFrame(toBase64url(nonce)));
  return nonce;
}

/** Connects, answers the auth, and returns the ready socket. */
async function ready(s: ReturnType<typeof setup>): Promise<FakeSocket> {
  if (s.connection.state === 'idle') s.connection.connect();
  const socket = s.transport.current;
  challenge(socket);
  const auth = socket.last('auth');
  if (auth !== undefined) socket.receive(encodeAuthedFrame(auth['rid'] as number, s.who.mailbox));
  await flush();
  expect(s.connection.state).toBe('ready');
  return socket;
}

describe('connecting and authenticating', () => {
  it('signs the challenge with the device key and is ready on authed for its mailbox', async () => {
    const s = setup();
    s.connection.connect();
    const socket = s.transport.current;
    expect(socket.protocol).toBe(WS_SUBPROTOCOL);
    const nonce = challenge(socket);
    expect(s.connection.state).toBe('authenticating');
    const auth = socket.last('auth')!;
    expect(auth['pk']).toBe(toBase64url(s.who.publicKey));
    expect(auth['sig']).toBe(toBase64url(s.who.sign(authChallengeMessage(nonce))));
    socket.receive(encodeAuthedFrame(auth['rid'] as number, s.who.mailbox));
    await flush();
    expect(s.connection.status).toMatchObject({ state: 'ready', mailbox: s.who.mailbox });
    expect(s.connection.authenticated).toBe(true);
    expect(s.states).toEqual(['connecting', 'authenticating', 'ready']);
  });

  it('a deliver read right after authed, in the same turn, is passed on', () => {
    // The relay writes its queue right behind `authed`; one socket read may hold both.
    const s = setup();
    s.connection.connect();
    const socket = s.transport.current;
    challenge(socket);
    const delivered: string[] = [];
    s.connection.events.on('deliver', (d) => delivered.push(d.id));
    const id = messageId();
    socket.receive(encodeAuthedFrame(socket.last('auth')!['rid'] as number, s.who.mailbox));
    socket.receive(encodeDeliverFrame(id, 'AAAA'));
    expect(delivered).toEqual([id]);
    expect(s.connection.protocolErrors.size).toBe(0);
  });

  it('an anonymous connection is ready on the challenge and sends no auth', async () => {
    const s = setup({ anonymous: true });
    s.connection.connect();
    challenge(s.transport.current);
    await flush();
    expect(s.connection.state).toBe('ready');
    expect(s.connection.authenticated).toBe(false);
    expect(s.transport.current.last('auth')).toBeUndefined();
  });

  it('refuses an authed frame for another mailbox and reconnects', async () => {
    const s = setup();
    s.connection.connect();
    const socket = s.transport.current;
    challenge(socket);
    socket.receive(encodeAuthedFrame(socket.last('auth')!['rid'] as number, MAILBOX));
    await flush();
    expect(s.connection.status).toMatchObject({
      state: 'waiting',
      lastLoss: { kind: 'wrong_mailbox' },
    });
    expect(s.connection.protocolErrors.get('wrong_mailbox')).toBe(1);
    expect(socket.closedByClient).toBeDefined();
  });

  it('auth_failed is final: state failed, no reconnect', async () => {
    const s = setup();
    s.connection.connect();
    const socket = s.transport.current;
    challenge(socket);
    socket.receive(encodeErrorFrame(ErrorCode.AUTH_FAILED, socket.last('auth')!['rid'] as number));
    await flush();
    expect(s.connection.status).toMatchObject({ state: 'failed', failure: 'auth_refused' });
    await s.clock.advance(10 * 60_000);
    expect(s.transport.sockets).toHaveLength(1);
  });

  it('auth answered unavailable: the same auth frame again after authRetryMs', async () => {
    const s = setup();
    s.connection.connect();
    const socket = s.transport.current;
    challenge(socket);
    const first = socket.last('auth')!;
    socket.receive(encodeErrorFrame(ErrorCode.UNAVAILABLE, first['rid'] as number));
    await flush();
    expect(socket.frames().filter((f) => f['t'] === 'auth')).toHaveLength(1);
    await s.clock.advance(DEFAULT_TIMING.authRetryMs);
    const second = socket.last('auth')!;
    expect(second['sig']).toBe(first['sig']);
    expect(second['rid']).not.toBe(first['rid']);
    socket.receive(encodeAuthedFrame(second['rid'] as number, s.who.mailbox));
    await flush();
    expect(s.connection.state).toBe('ready');
  });

  it('no challenge within openTimeoutMs: the socket is given up and another opened', async () => {
    const s = setup();
    s.connection.connect();
    await s.clock.advance(DEFAULT_TIMING.openTimeoutMs - 1);
    expect(s.connection.state).toBe('connecting');
    await s.clock.advance(1);
    expect(s.connection.status.lastLoss).toEqual({ kind: 'open_timeout' });
    expect(s.transport.sockets[0]!.closedByClient).toBeDefined();
    await s.clock.advance(DEFAULT_TIMING.backoffInitialMs);
    expect(s.transport.sockets).toHaveLength(2);
  });

  it('no answer to auth within the request timeout: reconnects', async () => {
    const s = setup();
    s.connection.connect();
    challenge(s.transport.current);
    await s.clock.advance(DEFAULT_TIMING.requestTimeoutMs);
    expect(s.connection.state).toBe('waiting');
  });

  it('a transport whose open throws counts as a lost connection, and is retried', async () => {
    const s = setup();
    s.transport.failOpen = new Error('bad url');
    s.connection.connect();
    expect(s.connection.status).toMatchObject({
      state: 'waiting',
      lastLoss: { kind: 'transport_error' },
    });
    s.transport.failOpen = undefined;
    await s.clock.advance(DEFAULT_TIMING.backoffInitialMs);
    expect(s.transport.sockets).toHaveLength(1);
  });

  it('asks a url function before every attempt', async () => {
    const s = setup();
    const urls = ['ws://a/v1/ws', 'ws://b/v1/ws'];
    let n = 0;
    const connection = new Connection({
      url: () => urls[n++ % 2]!,
      transport: s.transport,
      clock: s.clock,
      sha256,
      random: () => 0,
    });
    connection.connect();
    s.transport.current.serverClose();
    await s.clock.advance(DEFAULT_TIMING.backoffInitialMs);
    expect(s.transport.sockets.map((x) => x.url)).toEqual(urls);
    connection.close();
  });
});

describe('reconnect with jittered exponential backoff', () => {
  it('doubles the base per failed attempt, up to the maximum, with the delay in [base/2, base)', async () => {
    for (const r of [0, 0.999]) {
      const s = setup({ random: () => r });
      s.connection.connect();
      const delays: number[] = [];
      for (let i = 0; i < 9; i++) {
        s.transport.current.serverClose(1006);
        const at = s.connection.status.retryAt!;
        delays.push(at - s.clock.now());
        await s.clock.advance(at - s.clock.now());
      }
      const bases = [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000];
      expect(delays).toEqual(bases.map((b) => Math.floor(b / 2 + r * (b / 2))));
      s.connection.close();
    }
  });

  it('resets the attempts once a connection stayed ready for stableAfterMs, not before', async () => {
    const s = setup({ random: () => 0 });
    s.connection.connect();
    s.transport.current.serverClose();
    await s.clock.advance(250);
    s.transport.current.serverClose();
    expect(s.connection.status.attempt).toBe(2);
    await s.clock.advance(500);
    await ready(s);
    await s.clock.advance(DEFAULT_TIMING.stableAfterMs - 1);
    s.transport.current.serverClose();
    expect(s.connection.status.attempt).toBe(3); // flapping: not reset
    await s.clock.advance(1000);
    await ready(s);
    // Heartbeats keep it alive meanwhile.
    for (let t = 0; t < DEFAULT_TIMING.stableAfterMs; t += DEFAULT_TIMING.heartbeatIntervalMs) {
      await s.clock.advance(DEFAULT_TIMING.heartbeatIntervalMs);
      const ping = s.transport.current.last('ping')!;
      s.transport.current.receive(encodePongFrame(ping['rid'] as number));
    }
    s.transport.current.serverClose();
    expect(s.connection.status.attempt).toBe(1);
    expect(s.connection.status.retryAt! - s.clock.now()).toBe(250);
  });

  it('every close code leads to a reconnect (normal, going away, heartbeat, flooding, auth timeout, superseded, abnormal)', async () => {
    for (const code of [1000, 1001, 1006, 1008, 1009, 4000, 4001, 4002, 4003, 4004, 4005]) {
      const s = setup();
      const socket = await ready(s);
      socket.serverClose(code);
      expect(s.connection.status).toMatchObject({
        state: 'waiting',
        lastLoss: { kind: 'closed', code },
      });
      await s.clock.advance(DEFAULT_TIMING.backoffInitialMs);
      expect(s.transport.sockets).toHaveLength(2);
      await ready(s); // re-auth on the new socket
      expect(s.transport.current.last('auth')).toBeDefined();
      s.connection.close();
    }
  });

  it('ignores every event of a socket it has given up', async () => {
    const s = setup();
    const old = await ready(s);
    await s.clock.advance(DEFAULT_TIMING.heartbeatIntervalMs + DEFAULT_TIMING.heartbeatTimeoutMs);
    expect(s.connection.state).toBe('waiting');
    const ping = old.last('ping')!;
    old.receive(encodePongFrame(ping['rid'] as number));
    old.receive(encodeDeliverFrame(messageId(), 'AAAA'));
    old.serverClose(1000);
    await flush();
    expect(s.connection.status.attempt).toBe(1);
    expect(s.connection.protocolErrors.size).toBe(0);
  });

  it('close stops for good: no reconnect, open requests fail with closed', async () => {
    const s = setup();
    const socket = await ready(s);
    const pending = s.connection.request({ v: 1, t: 'ping' }, 'pong');
    s.connection.close();
    await expect(pending).rejects.toMatchObject({ code: ClientErrorCode.CLOSED });
    expect(socket.closedByClient).toEqual({ code: 1000 });
    socket.serverClose(1000);
    await s.clock.advance(120_000);
    expect(s.transport.sockets).toHaveLength(1);
    expect(s.connection.state).toBe('closed');
    s.connection.connect();
    expect(s.transport.sockets).toHaveLength(1);
  });
});

describe('requests by rid', () => {
  it('matches answers that come out of order', async () => {
    const s = setup();
    const socket = await ready(s);
    const ids = [messageId(), messageId(), messageId()];
    const results = ids.map((id) =>
      s.connection.request({ v: 1, t: 'send', to: MAILBOX, id, env: 'AAAA' }, 'stored'),
    );
    const rids = socket
      .frames()
      .filter((f) => f['t'] === 'send')
      .map((f) => f['rid'] as number);
    expect(new Set(rids).size).toBe(3);
    for (const i of [2, 0, 1]) socket.receive(encodeStoredFrame(rids[i]!, ids[i]!));
    const answers = await Promise.all(results);
    expect(answers.map((a) => a.id)).toEqual(ids);
  });

  it('an error frame with the rid rejects that request with the relay code', async () => {
    const s = setup();
    const socket = await ready(s);
    const p = s.connection.request({ v: 1, t: 'pow.request', to: MAILBOX }, 'pow.challenge');
    socket.receive(
      encodeErrorFrame(ErrorCode.RATE_LIMITED, socket.last('pow.request')!['rid'] as number),
    );
    const error = await p.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RelayError);
    expect(error).toMatchObject({ code: 'rate_limited', retryable: true });
  });

  it('an answer of the wrong type rejects with unexpected_reply and is counted', async () => {
    const s = setup();
    const socket = await ready(s);
    const p = s.connection.request(
      { v: 1, t: 'send', to: MAILBOX, id: messageId(), env: 'AAAA' },
      'stored',
    );
    socket.receive(encodePongFrame(socket.last('send')!['rid'] as number));
    await expect(p).rejects.toMatchObject({ code: ClientErrorCode.UNEXPECTED_REPLY });
    expect(s.connection.protocolErrors.get('wrong_reply')).toBe(1);
  });

  it('an answer for no open request is counted and dropped', async () => {
    const s = setup();
    const socket = await ready(s);
    socket.receive(encodeStoredFrame(12345, messageId()));
    await flush();
    expect(s.connection.protocolErrors.get('unmatched_rid')).toBe(1);
    expect(s.connection.state).toBe('ready');
  });

  it('an answer after its timeout is an unmatched rid, and the request has failed with timeout', async () => {
    const s = setup();
    const socket = await ready(s);
    const p = s.connection.request({ v: 1, t: 'prekeys.status' }, 'prekeys.count', 1000);
    const rid = socket.last('prekeys.status')!['rid'] as number;
    await s.clock.advance(1000);
    await expect(p).rejects.toMatchObject({ code: ClientErrorCode.TIMEOUT });
    socket.receive({ v: 1, t: 'prekeys.count', rid, remaining: 3 });
    expect(s.connection.protocolErrors.get('unmatched_rid')).toBe(1);
  });

  it('a request while not ready fails at once with not_connected and sends nothing', async () => {
    const s = setup();
    await expect(s.connection.request({ v: 1, t: 'ping' }, 'pong')).rejects.toBeInstanceOf(
      ClientError,
    );
    s.connection.connect();
    await expect(s.connection.request({ v: 1, t: 'ping' }, 'pong')).rejects.toMatchObject({
      code: ClientErrorCode.NOT_CONNECTED,
    });
    expect(s.transport.current.sent).toEqual([]);
    expect(s.connection.post({ v: 1, t: 'ack', ids: [messageId()] })).toBe(false);
  });

  it('a lost connection fails every open request with connection_lost', async () => {
    const s = setup();
    const socket = await ready(s);
    const a = s.connection.request({ v: 1, t: 'ping' }, 'pong');
    const b = s.connection.request({ v: 1, t: 'prekeys.status' }, 'prekeys.count');
    socket.serverClose(1006);
    await expect(a).rejects.toMatchObject({ code: ClientErrorCode.CONNECTION_LOST });
    await expect(b).rejects.toMatchObject({ code: ClientErrorCode.CONNECTION_LOST });
    expect(s.connection.pendingRequests).toBe(0);
  });

  it('shutting_down for a request fails it and starts over on a new socket at once', async () => {
    const s = setup();
    const socket = await ready(s);
    const a = s.connection.request({ v: 1, t: 'ping' }, 'pong');
    const b = s.connection.request({ v: 1, t: 'prekeys.status' }, 'prekeys.count');
    socket.receive(
      encodeErrorFrame(ErrorCode.SHUTTING_DOWN, socket.last('ping')!['rid'] as number),
    );
    await expect(a).rejects.toMatchObject({ code: 'shutting_down', retryable: true });
    await expect(b).rejects.toMatchObject({ code: ClientErrorCode.CONNECTION_LOST });
    expect(s.connection.status.lastLoss).toEqual({ kind: 'shutting_down' });
  });

  it('writes frames in schema key order with the rid after t', async () => {
    const s = setup();
    const socket = await ready(s);
    const id = messageId();
    void s.connection.request({ v: 1, t: 'send', to: MAILBOX, id, env: 'AAAA' }, 'stored');
    const rid = socket.last('send')!['rid'] as number;
    expect(socket.sent.at(-1)).toBe(
      `{"v":1,"t":"send","rid":${rid},"to":"${MAILBOX}","id":"${id}","env":"AAAA"}`,
    );
  });
});

describe('heartbeats', () => {
  it('pings every heartbeatIntervalMs while the pongs come', async () => {
    const s = setup();
    const socket = await ready(s);
    for (let i = 1; i <= 3; i++) {
      await s.clock.advance(DEFAULT_TIMING.heartbeatIntervalMs);
      const pings = socket.frames().filter((f) => f['t'] === 'ping');
      expect(pings).toHaveLength(i);
      socket.receive(encodePongFrame(pings.at(-1)!['rid'] as number));
    }
    expect(s.connection.state).toBe('ready');
  });

  it('a missed pong closes the socket and reconnects', async () => {
    const s = setup();
    const socket = await ready(s);
    await s.clock.advance(
      DEFAULT_TIMING.heartbeatIntervalMs + DEFAULT_TIMING.heartbeatTimeoutMs - 1,
    );
    expect(s.connection.state).toBe('ready');
    await s.clock.advance(1);
    expect(s.connection.status).toMatchObject({
      state: 'waiting',
      lastLoss: { kind: 'heartbeat' },
    });
    expect(socket.closedByClient).toBeDefined();
  });
});

describe('what the relay sends that it should not', () => {
  const garbage: [string, string | Uint8Array, string][] = [
    ['not JSON', '{"v":1,', 'bad_frame'],
    ['JSON but not an object', '[1,2]', 'bad_frame'],
    ['no version', '{"t":"pong","rid":1}', 'bad_frame'],
    ['another version', '{"v":2,"t":"pong","rid":1}', 'unsupported_version'],
    ['an unknown type', '{"v":1,"t":"surprise","rid":1}', 'unknown_type'],
    ['an unknown key', '{"v":1,"t":"pong","rid":1,"x":1}', 'bad_frame'],
    ['a client frame type', '{"v":1,"t":"ping","rid":1}', 'unknown_type'],
    ['a deliver with a bad id', '{"v":1,"t":"deliver","id":"!!","env":"AAAA"}', 'bad_frame'],
    [
      'an error with an unknown code',
      '{"v":1,"t":"error","code":"nope","retryable":true,"message":""}',
      'bad_frame',
    ],
    ['a binary message', new Uint8Array([1, 2, 3]), 'binary'],
    ['a second challenge', encodeChallengeFrame(toBase64url(randomBytes(32))), 'second_challenge'],
    ['a huge rid', '{"v":1,"t":"pong","rid":1e12}', 'bad_frame'],
  ];
  it.each(garbage)(
    '%s is counted and dropped; the connection stays ready',
    async (_name, frame, reason) => {
      const s = setup();
      const socket = await ready(s);
      if (typeof frame === 'string') socket.receive(frame);
      else socket.receiveBinary(frame);
      await flush();
      expect(s.connection.protocolErrors.get(reason as never)).toBe(1);
      expect(s.connection.state).toBe('ready');
    },
  );

  it('a deliver on an anonymous connection is counted and not passed on', () => {
    const s = setup({ anonymous: true });
    s.connection.connect();
    challenge(s.transport.current);
    const delivered: string[] = [];
    s.connection.events.on('deliver', (d) => delivered.push(d.id));
    s.transport.current.receive(encodeDeliverFrame(messageId(), 'AAAA'));
    expect(delivered).toEqual([]);
    expect(s.connection.protocolErrors.get('unexpected_deliver')).toBe(1);
  });

  it('a deliver before authed is counted and not passed on', () => {
    const s = setup();
    s.connection.connect();
    challenge(s.transport.current);
    const delivered: string[] = [];
    s.connection.events.on('deliver', (d) => delivered.push(d.id));
    s.transport.current.receive(encodeDeliverFrame(messageId(), 'AAAA'));
    expect(delivered).toEqual([]);
    expect(s.connection.protocolErrors.get('unexpected_deliver')).toBe(1);
  });

  it('an authed with no auth outstanding is an unmatched rid', () => {
    const s = setup({ anonymous: true });
    s.connection.connect();
    challenge(s.transport.current);
    s.transport.current.receive(encodeAuthedFrame(1, MAILBOX));
    expect(s.connection.protocolErrors.get('unmatched_rid')).toBe(1);
    expect(s.connection.authenticated).toBe(false);
  });

  it('an error without rid is announced; shutting_down without rid reconnects', async () => {
    const s = setup();
    const socket = await ready(s);
    const codes: string[] = [];
    s.connection.events.on('relay-error', (e) => codes.push(e.code));
    socket.receive(encodeErrorFrame(ErrorCode.RATE_LIMITED));
    expect(s.connection.state).toBe('ready');
    socket.receive(encodeErrorFrame(ErrorCode.SHUTTING_DOWN));
    expect(codes).toEqual(['rate_limited', 'shutting_down']);
    expect(s.connection.status.lastLoss).toEqual({ kind: 'shutting_down' });
  });

  it('past maxProtocolErrors on one socket the socket is dropped', async () => {
    const s = setup({ timing: { maxProtocolErrors: 3 } });
    const socket = await ready(s);
    for (let i = 0; i < 3; i++) socket.receive('garbage');
    expect(s.connection.state).toBe('ready');
    socket.receive('garbage');
    expect(s.connection.status.lastLoss).toEqual({ kind: 'protocol_errors' });
  });

  it('a listener that throws does not break the connection', async () => {
    const s = setup();
    s.connection.events.on('state', () => {
      throw new Error('a UI bug');
    });
    await ready(s);
    expect(s.connection.events.listenerErrors).toBeGreaterThan(0);
  });
});
