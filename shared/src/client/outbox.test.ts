/**
 * The outbox against a fake relay: ids before sending, resends with the same id until
 * `stored`, across reconnects; per-message states; retryable and final refusals; the send
 * window and the socket's unsent bytes; first contact on `pow_required`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { toBase64url } from '@passage/shared/protocol/base64url';
import {
  encodeAuthedFrame,
  encodeChallengeFrame,
  encodeErrorFrame,
  encodePowAdmittedFrame,
  encodePowChallengeFrame,
  encodeStoredFrame,
} from '@passage/shared/protocol/encode';
import { ErrorCode } from '@passage/shared/protocol/errors';
import { MAX_ENVELOPE_BYTES } from '@passage/shared/protocol/limits';
import { FakeClock, FakeTransport, flush, type FakeSocket } from '@passage/testing/client-fakes';
import { identity, messageId } from '@passage/testing/test-client';
import { Connection } from './connection.js';
import { ClientErrorCode } from './errors.js';
import { inlinePowSolver, type PowSolver } from './first-contact.js';
import { MemoryOutboxStorage, Outbox, type OutboxLimits, type OutgoingState } from './outbox.js';

const sha256 = (data: Uint8Array): Uint8Array => createHash('sha256').update(data).digest();
const TO = toBase64url(randomBytes(32));
const ENV = new Uint8Array([1, 2, 3, 4]);

function setup(options: { solvePow?: PowSolver | 'inline'; limits?: Partial<OutboxLimits> } = {}) {
  const who = identity();
  const transport = new FakeTransport();
  const clock = new FakeClock();
  const connection = new Connection({
    url: 'ws://relay.test/v1/ws',
    transport,
    clock,
    sha256,
    random: () => 0,
    // Heartbeats are the connection's tests; here they would only add pings to answer.
    timing: { heartbeatIntervalMs: 3_600_000 },
    signer: { signingKey: who.publicKey, sign: (m: Uint8Array) => who.sign(m) },
  });
  const storage = new MemoryOutboxStorage();
  const outbox = new Outbox({
    connection,
    clock,
    randomBytes: (n) => new Uint8Array(randomBytes(n)),
    random: () => 0,
    storage,
    ...(options.solvePow === undefined
      ? {}
      : {
          solvePow:
            options.solvePow === 'inline'
              ? inlinePowSolver({
                  sha256,
                  clock,
                  randomBytes: (n) => new Uint8Array(randomBytes(n)),
                })
              : options.solvePow,
        }),
    ...(options.limits === undefined ? {} : { limits: options.limits }),
  });
  const states: [string, OutgoingState, string?][] = [];
  outbox.events.on('message-state', (e) =>
    states.push(e.failure === undefined ? [e.id, e.state] : [e.id, e.state, e.failure]),
  );
  const online = async (): Promise<FakeSocket> => {
    if (connection.state === 'idle') connection.connect();
    else await clock.advance(connection.status.retryAt! - clock.now());
    const socket = transport.current;
    socket.open();
    socket.receive(encodeChallengeFrame(toBase64url(randomBytes(32))));
    socket.receive(encodeAuthedFrame(socket.last('auth')!['rid'] as number, who.mailbox));
    await flush();
    return socket;
  };
  return { connection, transport, clock, storage, outbox, states, online };
}

const sends = (socket: FakeSocket) => socket.frames().filter((f) => f['t'] === 'send');

function store(socket: FakeSocket, frame: Record<string, unknown>): void {
  socket.receive(encodeStoredFrame(frame['rid'] as number, frame['id'] as string));
}

describe('ids, storage and resends', () => {
  it('stores the message with its id before sending it, and settles it on stored', async () => {
    const s = setup();
    await s.outbox.start();
    const socket = await s.online();
    const id = await s.outbox.enqueue(TO, ENV);
    expect(s.storage.records.get(id)).toMatchObject({ id, to: TO, state: 'queued' });
    const [frame] = sends(socket);
    expect(frame).toMatchObject({ to: TO, id, env: toBase64url(ENV) });
    store(socket, frame!);
    await flush();
    expect(s.outbox.get(id)?.state).toBe('sent');
    expect(s.storage.records.get(id)?.env).toBeUndefined(); // the bytes are not kept
    expect(s.states).toEqual([
      [id, 'queued'],
      [id, 'sent'],
    ]);
  });

  it('queued while offline, sent once ready', async () => {
    const s = setup();
    await s.outbox.start();
    const id = await s.outbox.enqueue(TO, ENV);
    s.connection.connect();
    expect(s.transport.current.sent).toEqual([]);
    const socket = await s.online();
    expect(sends(socket).map((f) => f['id'])).toEqual([id]);
  });

  it('resends with the same id after a reconnect until stored, and only then', async () => {
    const s = setup();
    await s.outbox.start();
    const first = await s.online();
    const id = await s.outbox.enqueue(TO, ENV);
    first.serverClose(1006);
    const second = await s.online();
    second.serverClose(1001);
    const third = await s.online();
    const resent = sends(third);
    expect([...sends(first), ...sends(second), ...resent].map((f) => f['id'])).toEqual([
      id,
      id,
      id,
    ]);
    store(third, resent[0]!);
    await flush();
    third.serverClose(1006);
    const fourth = await s.online();
    expect(sends(fourth)).toEqual([]);
    expect(s.outbox.get(id)?.state).toBe('sent');
  });

  it('a new outbox on the same storage sends what was not stored (a restart)', async () => {
    const s = setup();
    await s.outbox.start();
    const id = await s.outbox.enqueue(TO, ENV);
    s.outbox.stop();
    const t = setup();
    for (const r of s.storage.records.values()) await t.storage.put(r);
    await t.outbox.start();
    const socket = await t.online();
    expect(sends(socket).map((f) => f['id'])).toEqual([id]);
  });

  it('a stored answer naming another id does not settle the message', async () => {
    const s = setup();
    await s.outbox.start();
    const socket = await s.online();
    const id = await s.outbox.enqueue(TO, ENV);
    socket.receive(encodeStoredFrame(sends(socket)[0]!['rid'] as number, messageId()));
    await flush();
    expect(s.outbox.get(id)?.state).toBe('queued');
    await s.clock.advance(1_000);
    expect(sends(socket).map((f) => f['id'])).toEqual([id, id]);
  });

  it('refuses a bad recipient, an empty and an oversized envelope, and stores nothing', async () => {
    const s = setup();
    await s.outbox.start();
    await expect(s.outbox.enqueue('not-a-mailbox', ENV)).rejects.toMatchObject({
      code: ClientErrorCode.BAD_RECIPIENT,
    });
    await expect(s.outbox.enqueue(TO + 'A', ENV)).rejects.toMatchObject({
      code: ClientErrorCode.BAD_RECIPIENT,
    });
    await expect(s.outbox.enqueue(TO, new Uint8Array(0))).rejects.toMatchObject({
      code: ClientErrorCode.BAD_ENVELOPE,
    });
    await expect(
      s.outbox.enqueue(TO, new Uint8Array(MAX_ENVELOPE_BYTES + 1)),
    ).rejects.toMatchObject({ code: ClientErrorCode.BAD_ENVELOPE });
    expect(s.storage.records.size).toBe(0);
    await expect(s.outbox.enqueue(TO, new Uint8Array(MAX_ENVELOPE_BYTES))).resolves.toEqual(
      expect.any(String),
    );
  });

  it('outbox_full when every held message is still queued; a settled one makes room', async () => {
    const s = setup({ limits: { maxMessages: 2 } });
    await s.outbox.start();
    const socket = await s.online();
    const a = await s.outbox.enqueue(TO, ENV);
    await s.outbox.enqueue(TO, ENV);
    await expect(s.outbox.enqueue(TO, ENV)).rejects.toMatchObject({
      code: ClientErrorCode.OUTBOX_FULL,
    });
    store(socket, sends(socket)[0]!);
    await flush();
    await s.outbox.enqueue(TO, ENV);
    expect(s.outbox.get(a)).toBeUndefined();
  });

  it('a storage that fails to write: enqueue rejects and nothing is sent', async () => {
    const s = setup();
    s.storage.put = () => Promise.reject(new Error('disk full'));
    await s.outbox.start();
    const socket = await s.online();
    await expect(s.outbox.enqueue(TO, ENV)).rejects.toThrow('disk full');
    expect(sends(socket)).toEqual([]);
  });
});

describe('states', () => {
  it('queued → sent → delivered → read, read forgets the message', async () => {
    const s = setup();
    await s.outbox.start();
    const socket = await s.online();
    const id = await s.outbox.enqueue(TO, ENV);
    store(socket, sends(socket)[0]!);
    await flush();
    expect(await s.outbox.markDelivered(id)).toBe(true);
    expect(s.storage.records.get(id)?.state).toBe('delivered');
    expect(await s.outbox.markRead(id)).toBe(true);
    expect(s.outbox.get(id)).toBeUndefined();
    expect(s.storage.records.has(id)).toBe(false);
    expect(s.states.map((x) => x[1])).toEqual(['queued', 'sent', 'delivered', 'read']);
  });

  it('never moves back, and ignores unknown ids', async () => {
    const s = setup();
    await s.outbox.start();
    const socket = await s.online();
    const id = await s.outbox.enqueue(TO, ENV);
    store(socket, sends(socket)[0]!);
    await flush();
    await s.outbox.markDelivered(id);
    expect(await s.outbox.markDelivered(id)).toBe(false);
    expect(await s.outbox.markDelivered(messageId())).toBe(false);
    expect(await s.outbox.markRead(messageId())).toBe(false);
    expect(s.outbox.get(id)?.state).toBe('delivered');
  });

  it('a receipt for a message still queued stops its resends (the relay had it)', async () => {
    const s = setup();
    await s.outbox.start();
    const socket = await s.online();
    const id = await s.outbox.enqueue(TO, ENV);
    await s.outbox.markDelivered(id);
    socket.serverClose(1006);
    const next = await s.online();
    expect(sends(next)).toEqual([]);
    expect(s.outbox.get(id)?.state).toBe('delivered');
  });

  it('a failed message stays failed', async () => {
    const s = setup();
    await s.outbox.start();
    const socket = await s.online();
    const id = await s.outbox.enqueue(TO, ENV);
    socket.receive(
      encodeErrorFrame(ErrorCode.ENVELOPE_TOO_LARGE, sends(socket)[0]!['rid'] as number),
    );
    await flush();
    expect(await s.outbox.markDelivered(id)).toBe(false);
    expect(s.outbox.get(id)).toMatchObject({ state: 'failed', failure: 'envelope_too_large' });
  });
});

describe('refusals and backpressure', () => {
  it.each(['rate_limited', 'mailbox_full', 'unavailable', 'overloaded', 'internal'] as const)(
    '%s: sent again with the same id after a backoff that doubles',
    async (code) => {
      const s = setup();
      await s.outbox.start();
      const socket = await s.online();
      const id = await s.outbox.enqueue(TO, ENV);
      for (const delay of [500, 1_000, 2_000]) {
        const before = sends(socket).length;
        socket.receive(encodeErrorFrame(code, sends(socket).at(-1)!['rid'] as number));
        await s.clock.advance(delay - 1);
        expect(sends(socket).length).toBe(before);
        await s.clock.advance(1);
        expect(sends(socket).length).toBe(before + 1);
      }
      expect(sends(socket).every((f) => f['id'] === id)).toBe(true);
      expect(s.outbox.get(id)?.state).toBe('queued');
    },
  );

  it('rate_limited holds back every send, not only the refused one', async () => {
    const s = setup();
    await s.outbox.start();
    const socket = await s.online();
    await s.outbox.enqueue(TO, ENV);
    socket.receive(encodeErrorFrame(ErrorCode.RATE_LIMITED, sends(socket)[0]!['rid'] as number));
    await flush();
    await s.outbox.enqueue(TO, ENV);
    expect(sends(socket)).toHaveLength(1);
    await s.clock.advance(500);
    expect(sends(socket)).toHaveLength(3);
  });

  it.each(['bad_frame', 'envelope_too_large'] as const)(
    '%s: failed, never sent again',
    async (code) => {
      const s = setup();
      await s.outbox.start();
      const socket = await s.online();
      const id = await s.outbox.enqueue(TO, ENV);
      socket.receive(encodeErrorFrame(code, sends(socket)[0]!['rid'] as number));
      await s.clock.advance(120_000);
      expect(sends(socket)).toHaveLength(1);
      expect(s.states.at(-1)).toEqual([id, 'failed', code]);
    },
  );

  it('a timeout is retried after a backoff', async () => {
    const s = setup();
    await s.outbox.start();
    const socket = await s.online();
    await s.outbox.enqueue(TO, ENV);
    await s.clock.advance(30_000); // the request timeout
    expect(sends(socket)).toHaveLength(1);
    await s.clock.advance(500);
    expect(sends(socket)).toHaveLength(2);
  });

  it('keeps at most `window` sends awaiting their answer', async () => {
    const s = setup({ limits: { window: 3 } });
    await s.outbox.start();
    const socket = await s.online();
    for (let i = 0; i < 5; i++) await s.outbox.enqueue(TO, ENV);
    expect(sends(socket)).toHaveLength(3);
    store(socket, sends(socket)[1]!);
    await flush();
    expect(sends(socket)).toHaveLength(4);
    expect(s.outbox.inFlight).toBe(3);
  });

  it('writes nothing while the socket holds more than maxBufferedBytes unsent', async () => {
    const s = setup({ limits: { maxBufferedBytes: 1000 } });
    await s.outbox.start();
    const socket = await s.online();
    socket.bufferedAmount = 1001;
    await s.outbox.enqueue(TO, ENV);
    await s.clock.advance(500);
    expect(sends(socket)).toHaveLength(0);
    socket.bufferedAmount = 1000;
    await s.clock.advance(50);
    expect(sends(socket)).toHaveLength(1);
  });
});

describe('first contact', () => {
  function relayChallenge(socket: FakeSocket, bits = 1, to = TO): string {
    const nonce = toBase64url(randomBytes(16));
    const req = socket.last('pow.request')!;
    socket.receive(
      encodePowChallengeFrame(req['rid'] as number, {
        v: 1,
        nonce,
        bits,
        exp: 1_800_000_000_000 + 60_000,
        to,
      }),
    );
    return nonce;
  }

  it('pow_required: asks a challenge, solves it, answers, and sends again with the same id', async () => {
    const s = setup({ solvePow: 'inline' });
    await s.outbox.start();
    const socket = await s.online();
    const progress: number[] = [];
    s.outbox.events.on('pow-progress', (p) => progress.push(p.bits));
    const id = await s.outbox.enqueue(TO, ENV);
    socket.receive(encodeErrorFrame(ErrorCode.POW_REQUIRED, sends(socket)[0]!['rid'] as number));
    await flush();
    expect(socket.last('pow.request')).toMatchObject({ to: TO });
    const nonce = relayChallenge(socket);
    await s.clock.advance(0);
    const solve = socket.last('pow.solve')!;
    expect(solve['nonce']).toBe(nonce);
    expect(progress.length).toBeGreaterThan(0);
    socket.receive(encodePowAdmittedFrame(solve['rid'] as number, TO, 100));
    await flush();
    expect(sends(socket).map((f) => f['id'])).toEqual([id, id]);
  });

  it('messages to one mailbox wait for one admission, not one each', async () => {
    const solved: string[] = [];
    const solver: PowSolver = (c) => {
      solved.push(c.nonce);
      return Promise.resolve({ solution: 'AAAAAAAAAAA' });
    };
    const s = setup({ solvePow: solver });
    await s.outbox.start();
    const socket = await s.online();
    await s.outbox.enqueue(TO, ENV);
    await s.outbox.enqueue(TO, ENV);
    for (const f of sends(socket))
      socket.receive(encodeErrorFrame(ErrorCode.POW_REQUIRED, f['rid'] as number));
    await flush();
    expect(socket.frames().filter((f) => f['t'] === 'pow.request')).toHaveLength(1);
    relayChallenge(socket);
    await flush();
    socket.receive(encodePowAdmittedFrame(socket.last('pow.solve')!['rid'] as number, TO, 100));
    await flush();
    expect(sends(socket)).toHaveLength(4);
    expect(solved).toHaveLength(1);
  });

  it('without a solver, pow_required fails the message', async () => {
    const s = setup();
    await s.outbox.start();
    const socket = await s.online();
    const id = await s.outbox.enqueue(TO, ENV);
    socket.receive(encodeErrorFrame(ErrorCode.POW_REQUIRED, sends(socket)[0]!['rid'] as number));
    await flush();
    expect(s.outbox.get(id)).toMatchObject({ state: 'failed', failure: 'pow_required' });
  });

  const badChallenges: [string, (socket: FakeSocket) => void][] = [
    [
      'a challenge for another mailbox',
      (socket) => relayChallenge(socket, 1, toBase64url(randomBytes(32))),
    ],
    [
      'an expired challenge',
      (socket) =>
        socket.receive(
          encodePowChallengeFrame(socket.last('pow.request')!['rid'] as number, {
            v: 1,
            nonce: toBase64url(randomBytes(16)),
            bits: 1,
            exp: 1_000,
            to: TO,
          }),
        ),
    ],
    [
      'a challenge expiring too far ahead',
      (socket) =>
        socket.receive(
          encodePowChallengeFrame(socket.last('pow.request')!['rid'] as number, {
            v: 1,
            nonce: toBase64url(randomBytes(16)),
            bits: 1,
            exp: 1_800_000_000_000 + 11 * 60_000,
            to: TO,
          }),
        ),
    ],
    [
      'pow.request refused',
      (socket) =>
        socket.receive(
          encodeErrorFrame(ErrorCode.RATE_LIMITED, socket.last('pow.request')!['rid'] as number),
        ),
    ],
  ];
  it.each(badChallenges)(
    '%s: no solve is sent, the message waits a backoff and stays queued',
    async (_n, answer) => {
      const s = setup({ solvePow: 'inline' });
      await s.outbox.start();
      const socket = await s.online();
      const id = await s.outbox.enqueue(TO, ENV);
      socket.receive(encodeErrorFrame(ErrorCode.POW_REQUIRED, sends(socket)[0]!['rid'] as number));
      await flush();
      answer(socket);
      await s.clock.advance(0);
      expect(socket.last('pow.solve')).toBeUndefined();
      expect(s.outbox.get(id)?.state).toBe('queued');
      await s.clock.advance(500);
      expect(sends(socket)).toHaveLength(2);
    },
  );

  it('pow_failed asks for a fresh challenge', async () => {
    const s = setup({ solvePow: () => Promise.resolve({ solution: 'AAAAAAAAAAA' }) });
    await s.outbox.start();
    const socket = await s.online();
    await s.outbox.enqueue(TO, ENV);
    socket.receive(encodeErrorFrame(ErrorCode.POW_REQUIRED, sends(socket)[0]!['rid'] as number));
    await flush();
    relayChallenge(socket);
    await flush();
    socket.receive(
      encodeErrorFrame(ErrorCode.POW_FAILED, socket.last('pow.solve')!['rid'] as number),
    );
    await flush();
    expect(socket.frames().filter((f) => f['t'] === 'pow.request')).toHaveLength(2);
  });

  it('an admission does not outlive its socket: after a reconnect the next send pays again', async () => {
    const s = setup({ solvePow: () => Promise.resolve({ solution: 'AAAAAAAAAAA' }) });
    await s.outbox.start();
    const socket = await s.online();
    await s.outbox.enqueue(TO, ENV);
    socket.receive(encodeErrorFrame(ErrorCode.POW_REQUIRED, sends(socket)[0]!['rid'] as number));
    await flush();
    socket.serverClose(1006); // before the challenge came
    const next = await s.online();
    expect(sends(next)).toHaveLength(1);
    expect(next.last('pow.request')).toBeUndefined();
  });
});

describe('pacing under the relay’s frame rate', () => {
  const TOS = Array.from({ length: 8 }, () => toBase64url(randomBytes(32)));

  it('writes at most sendBurst at once, then sendsPerSecond', async () => {
    const s = setup({ limits: { sendsPerSecond: 10, sendBurst: 5, window: 1_000 } });
    await s.outbox.start();
    const socket = await s.online();
    for (let i = 0; i < 20; i++) await s.outbox.enqueue(TO, ENV);
    await flush();
    expect(sends(socket)).toHaveLength(5);
    await s.clock.advance(1_000);
    await flush();
    expect(sends(socket)).toHaveLength(15);
  });

  it('does not hold back a send while the bucket has a token', async () => {
    const s = setup({ limits: { sendsPerSecond: 10, sendBurst: 5 } });
    await s.outbox.start();
    const socket = await s.online();
    for (let i = 0; i < 5; i++) await s.outbox.enqueue(TO, ENV);
    await flush();
    expect(sends(socket)).toHaveLength(5);
  });

  it('at most two admissions at once on one connection; the others wait their turn', async () => {
    const s = setup({ solvePow: () => new Promise(() => undefined) });
    await s.outbox.start();
    const socket = await s.online();
    for (const to of TOS) await s.outbox.enqueue(to, ENV);
    await flush();
    for (const f of sends(socket)) {
      socket.receive(encodeErrorFrame(ErrorCode.POW_REQUIRED, f['rid'] as number));
    }
    await flush();
    const requests = socket.frames().filter((f) => f['t'] === 'pow.request');
    // The relay keeps four challenges open per connection and forgets the oldest past them.
    expect(requests).toHaveLength(2);
  });
});
