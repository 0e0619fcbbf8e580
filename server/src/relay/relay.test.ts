/**
 * The relay in-process: a real HTTP server on a free port, the MemoryStore, real WebSocket
 * clients. The MemoryStore answers within the same turn of the event loop, which makes one
 * thing exact here: everything the relay sends in answer to a frame is queued at the client
 * before the answer to a later `ping` (TestClient.roundTrip). Tests use that as a barrier
 * instead of sleeping.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { createPublicKey, randomBytes, verify } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { toBase64url } from '@passage/shared/protocol/base64url';
import { CloseCode, ErrorCode } from '@passage/shared/protocol/errors';
import { MAX_ENVELOPE_BYTES, MAX_FRAME_BYTES } from '@passage/shared/protocol/limits';
import { authChallengeMessage } from '@passage/shared/protocol/mailbox';
import { BAD_FRAMES } from '@passage/testing/bad-frames';
import {
  TestClient,
  envelope,
  identity,
  messageId,
  type TestIdentity,
} from '@passage/testing/test-client';
import { ClientPool } from '@passage/testing/client-pool';
import { startInProcessRelay, type InProcessRelay } from '@passage/testing/in-process';
import { until, within } from '@passage/testing/wait';

// Real sockets on a loaded 2-core machine: generous, and above the harness's own waits.
jest.setTimeout(60_000);

const clients = new ClientPool();
const connect = (relay: InProcessRelay, autoPong = true) => clients.connect(relay, { autoPong });
const online = (relay: InProcessRelay, who?: TestIdentity) => clients.online(relay, who);

let rid = 100;

/** Sends and waits for the `stored` answer of this very frame. */
async function sendStored(from: TestClient, to: string, id = messageId(), env = envelope()) {
  const r = ++rid;
  from.send({ v: 1, t: 'send', rid: r, to, id, env });
  const answer = await from.nextOf(['stored', 'error']);
  expect(answer).toEqual({ v: 1, t: 'stored', rid: r, id });
  return { id, env };
}

function ack(client: TestClient, ids: readonly string[]): void {
  client.send({ v: 1, t: 'ack', ids });
}

/** Everything of `type` queued at `client` right now. */
function drain(client: TestClient, type: string) {
  return client.pending.filter((f) => f.t === type);
}

afterEach(() => clients.closeAll());

/** Settings that keep the frame and send rate limits out of the way of a flow-control test. */
const NO_RATE_LIMITS = {
  CONN_FRAMES_PER_SECOND: '100000',
  CONN_FRAME_BURST: '100000',
  CONN_BYTES_PER_SECOND: '1000000000',
  CONN_BYTE_BURST: '1000000000',
  MAILBOX_SENDS_PER_SECOND: '100000',
  MAILBOX_SEND_BURST: '100000',
} as const;

describe('authentication', () => {
  let relay: InProcessRelay;
  beforeAll(async () => {
    relay = await startInProcessRelay({ env: { MAX_INVALID_FRAMES: '1000' } });
  });
  afterAll(() => relay.stop());

  async function authWith(client: TestClient, pk: Uint8Array, sig: Uint8Array, r = 1) {
    client.send({ v: 1, t: 'auth', rid: r, pk: toBase64url(pk), sig: toBase64url(sig) });
    return client.nextOf(['authed', 'error']);
  }

  it('sends a fresh 32-byte challenge on every connection', async () => {
    const a = await connect(relay);
    const b = await connect(relay);
    const [na, nb] = [await a.nonce(), await b.nonce()];
    expect(na).toHaveLength(32);
    expect(Buffer.from(na).equals(Buffer.from(nb))).toBe(false);
  });

  it('binds the mailbox of a client that signs the challenge', async () => {
    const who = identity();
    const client = await connect(relay);
    const answer = await authWith(
      client,
      who.publicKey,
      who.sign(authChallengeMessage(await client.nonce())),
      42,
    );
    expect(answer).toEqual({ v: 1, t: 'authed', rid: 42, mailbox: who.mailbox });
  });

  it('refuses a signature by another key', async () => {
    const [who, other] = [identity(), identity()];
    const client = await connect(relay);
    const sig = other.sign(authChallengeMessage(await client.nonce()));
    expect(await authWith(client, who.publicKey, sig, 3)).toMatchObject({
      t: 'error',
      code: ErrorCode.AUTH_FAILED,
      rid: 3,
      retryable: false,
    });
  });

  it('refuses a signature over another nonce', async () => {
    const who = identity();
    const client = await connect(relay);
    await client.nonce();
    const sig = who.sign(authChallengeMessage(randomBytes(32)));
    expect(await authWith(client, who.publicKey, sig)).toMatchObject({
      code: ErrorCode.AUTH_FAILED,
    });
  });

  it('refuses a signature over the bare nonce without the domain label', async () => {
    const who = identity();
    const client = await connect(relay);
    const sig = who.sign(await client.nonce());
    expect(await authWith(client, who.publicKey, sig)).toMatchObject({
      code: ErrorCode.AUTH_FAILED,
    });
  });

  it('refuses a signature replayed from another connection', async () => {
    const who = identity();
    const first = await connect(relay);
    const second = await connect(relay);
    const sig = who.sign(authChallengeMessage(await first.nonce()));
    await second.nonce();
    expect(await authWith(second, who.publicKey, sig)).toMatchObject({
      code: ErrorCode.AUTH_FAILED,
    });
  });

  it('spends the nonce on a failed attempt, so a correct signature afterwards fails too', async () => {
    const who = identity();
    const client = await connect(relay);
    const message = authChallengeMessage(await client.nonce());
    expect(await authWith(client, who.publicKey, identity().sign(message))).toMatchObject({
      code: ErrorCode.AUTH_FAILED,
    });
    expect(await authWith(client, who.publicKey, who.sign(message))).toMatchObject({
      code: ErrorCode.AUTH_FAILED,
    });
  });

  it('refuses the identity point as a key even with a signature that verifies under it', async () => {
    const pk = new Uint8Array(32);
    pk[0] = 1; // the neutral element
    const sig = new Uint8Array(64);
    sig.set(pk, 0); // R = neutral element, S = 0: valid for every message under this key
    const client = await connect(relay);
    const message = authChallengeMessage(await client.nonce());
    const key = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: toBase64url(pk) },
      format: 'jwk',
    });
    // The premise: the plain signature check accepts it; only the small-order check can refuse.
    expect(verify(null, message, key, sig)).toBe(true);
    expect(await authWith(client, pk, sig)).toMatchObject({ code: ErrorCode.AUTH_FAILED });
  });

  it.each([
    'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
    '0000000000000000000000000000000000000000000000000000000000000000',
    '0000000000000000000000000000000000000000000000000000000000000080',
    'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
    'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
    '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
    '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
  ])('refuses the small-order key %s', async (hex) => {
    const pk = Buffer.from(hex, 'hex');
    expect(ed25519.Point.fromBytes(pk).isSmallOrder()).toBe(true);
    const sig = new Uint8Array(64);
    sig[0] = 1;
    const client = await connect(relay);
    await client.nonce();
    expect(await authWith(client, pk, sig)).toMatchObject({ code: ErrorCode.AUTH_FAILED });
  });

  it('refuses a key that is not a curve point', async () => {
    const pk = Buffer.alloc(32, 0xff);
    const client = await connect(relay);
    await client.nonce();
    expect(await authWith(client, pk, new Uint8Array(64))).toMatchObject({
      code: ErrorCode.AUTH_FAILED,
    });
  });

  it('refuses a second auth on an authenticated connection', async () => {
    const client = await online(relay);
    const who = identity();
    expect(await authWith(client, who.publicKey, new Uint8Array(64), 9)).toMatchObject({
      code: ErrorCode.ALREADY_AUTHENTICATED,
      rid: 9,
    });
    await client.roundTrip();
  });

  it('keeps a connection that failed to authenticate usable for sending', async () => {
    const recipient = await online(relay);
    const client = await connect(relay);
    await client.nonce();
    await authWith(client, identity().publicKey, new Uint8Array(64));
    const { id } = await sendStored(client, recipient.mailbox!);
    expect(await recipient.next('deliver')).toMatchObject({ id });
  });
});

describe('send, deliver, ack', () => {
  let relay: InProcessRelay;
  beforeAll(async () => {
    relay = await startInProcessRelay();
  });
  afterAll(() => relay.stop());

  it('delivers to a connected recipient after answering the sender stored', async () => {
    const alice = await online(relay);
    const bob = await connect(relay);
    const { id, env } = await sendStored(bob, alice.mailbox!);
    expect(await alice.next('deliver')).toEqual({ v: 1, t: 'deliver', id, env });
  });

  it('does not tell the sender anything about the recipient beyond stored', async () => {
    const bob = await connect(relay);
    // An id nobody ever authenticated as: the answer is the same.
    const { id } = await sendStored(bob, toBase64url(randomBytes(32)));
    expect(id).toHaveLength(22);
  });

  it('queues for an offline recipient and delivers when it authenticates', async () => {
    const who = identity();
    const bob = await connect(relay);
    const sent = [await sendStored(bob, who.mailbox), await sendStored(bob, who.mailbox)];
    const alice = await online(relay, who);
    expect(await alice.next('deliver')).toMatchObject(sent[0]!);
    expect(await alice.next('deliver')).toMatchObject(sent[1]!);
  });

  it('answers stored for a resend with the same id and delivers it once', async () => {
    const alice = await online(relay);
    const bob = await connect(relay);
    const first = await sendStored(bob, alice.mailbox!);
    await sendStored(bob, alice.mailbox!, first.id, first.env);
    const sentinel = await sendStored(bob, alice.mailbox!);
    expect(await alice.next('deliver')).toMatchObject({ id: first.id });
    expect(await alice.next('deliver')).toMatchObject({ id: sentinel.id });
  });

  it('redelivers what was not acknowledged after a reconnect, and never what was', async () => {
    const who = identity();
    const bob = await connect(relay);
    const sent = [
      await sendStored(bob, who.mailbox),
      await sendStored(bob, who.mailbox),
      await sendStored(bob, who.mailbox),
    ];
    const first = await online(relay, who);
    for (const m of sent) expect(await first.next('deliver')).toMatchObject({ id: m.id });
    ack(first, [sent[1]!.id]);
    await first.roundTrip();
    await first.close();

    const second = await online(relay, who);
    expect(await second.next('deliver')).toMatchObject({ id: sent[0]!.id });
    expect(await second.next('deliver')).toMatchObject({ id: sent[2]!.id });
    ack(second, [sent[0]!.id, sent[2]!.id]);
    await second.roundTrip();
    await second.close();

    const third = await online(relay, who);
    const sentinel = await sendStored(bob, who.mailbox);
    expect(await third.next('deliver')).toMatchObject({ id: sentinel.id });
  });

  it('applies every one of many ack frames sent back to back (coalesced into one batch)', async () => {
    const who = identity();
    const bob = await connect(relay);
    const sent = [];
    for (let i = 0; i < 10; i++) sent.push(await sendStored(bob, who.mailbox));
    const first = await online(relay, who);
    for (const m of sent) expect(await first.next('deliver')).toMatchObject({ id: m.id });
    for (const m of sent) ack(first, [m.id]);
    ack(first, [sent[0]!.id]); // acknowledging twice is harmless
    await first.roundTrip();
    await first.close();
    const second = await online(relay, who);
    const sentinel = await sendStored(bob, who.mailbox);
    expect(await second.next('deliver')).toMatchObject({ id: sentinel.id });
  });

  it('does not store a resend of an acknowledged message again', async () => {
    const alice = await online(relay);
    const bob = await connect(relay);
    const m = await sendStored(bob, alice.mailbox!);
    await alice.next('deliver');
    ack(alice, [m.id]);
    await alice.roundTrip();
    await sendStored(bob, alice.mailbox!, m.id, m.env);
    const sentinel = await sendStored(bob, alice.mailbox!);
    expect(await alice.next('deliver')).toMatchObject({ id: sentinel.id });
  });

  it('delivers in the order sent, live and queued', async () => {
    const who = identity();
    const bob = await connect(relay);
    const queued = [];
    for (let i = 0; i < 20; i++) queued.push((await sendStored(bob, who.mailbox)).id);
    const alice = await online(relay, who);
    const live = [];
    for (let i = 0; i < 20; i++) live.push((await sendStored(bob, who.mailbox)).id);
    const got = [];
    for (let i = 0; i < 40; i++) got.push((await alice.next('deliver')).id);
    expect(got).toEqual([...queued, ...live]);
  });

  it('delivers a live message to every connection of the mailbox', async () => {
    const who = identity();
    const a = await online(relay, who);
    const b = await online(relay, who);
    const bob = await connect(relay);
    const { id } = await sendStored(bob, who.mailbox);
    expect(await a.next('deliver')).toMatchObject({ id });
    expect(await b.next('deliver')).toMatchObject({ id });
  });

  it('keeps delivering to the other connection of a mailbox when one leaves', async () => {
    const who = identity();
    const a = await online(relay, who);
    const b = await online(relay, who);
    await a.close();
    const bob = await connect(relay);
    const { id } = await sendStored(bob, who.mailbox);
    expect(await b.next('deliver')).toMatchObject({ id });
  });

  it('accepts an envelope of exactly MAX_ENVELOPE_BYTES and delivers it intact', async () => {
    const alice = await online(relay);
    const bob = await connect(relay);
    const env = envelope(MAX_ENVELOPE_BYTES);
    const { id } = await sendStored(bob, alice.mailbox!, messageId(), env);
    expect(await alice.next('deliver')).toEqual({ v: 1, t: 'deliver', id, env });
  });

  it('lets a client send to its own mailbox', async () => {
    const alice = await online(relay);
    const { id } = await sendStored(alice, alice.mailbox!);
    expect(await alice.next('deliver')).toMatchObject({ id });
  });
});

describe('in-flight bound and refill', () => {
  const MAX_INFLIGHT = 8;
  let relay: InProcessRelay;
  beforeAll(async () => {
    relay = await startInProcessRelay({ env: { MAX_INFLIGHT: String(MAX_INFLIGHT) } });
  });
  afterAll(() => relay.stop());

  it('sends at most MAX_INFLIGHT unacknowledged messages at once', async () => {
    const who = identity();
    const bob = await connect(relay);
    for (let i = 0; i < 2 * MAX_INFLIGHT; i++) await sendStored(bob, who.mailbox);
    const alice = await online(relay, who);
    await alice.roundTrip();
    expect(drain(alice, 'deliver')).toHaveLength(MAX_INFLIGHT);
    // Live ones wait too.
    await sendStored(bob, who.mailbox);
    await alice.roundTrip();
    expect(drain(alice, 'deliver')).toHaveLength(MAX_INFLIGHT);
  });

  it('delivers 3×MAX_INFLIGHT queued messages, plus live ones arriving meanwhile, each exactly once and in order', async () => {
    const who = identity();
    const bob = await connect(relay);
    const expected: string[] = [];
    for (let i = 0; i < 3 * MAX_INFLIGHT; i++)
      expected.push((await sendStored(bob, who.mailbox)).id);
    const alice = await online(relay, who);
    const got: string[] = [];
    let batch: string[] = [];
    let live = 0;
    while (got.length < expected.length) {
      const { id } = await alice.next('deliver');
      got.push(id);
      batch.push(id);
      if (batch.length === 3) {
        ack(alice, batch);
        batch = [];
        if (live < 5) {
          // A live message while the relay is refilling or holding back.
          expected.push((await sendStored(bob, who.mailbox)).id);
          live++;
        }
      }
    }
    ack(alice, batch);
    expect(got).toEqual(expected);
    expect(new Set(got).size).toBe(got.length);
    const sentinel = await sendStored(bob, who.mailbox);
    expect(await alice.next('deliver')).toMatchObject({ id: sentinel.id });
  });

  it('frees no in-flight slot for an ack of ids that were never delivered', async () => {
    const who = identity();
    const bob = await connect(relay);
    for (let i = 0; i < MAX_INFLIGHT + 2; i++) await sendStored(bob, who.mailbox);
    const alice = await online(relay, who);
    await alice.roundTrip();
    expect(drain(alice, 'deliver')).toHaveLength(MAX_INFLIGHT);
    ack(alice, [messageId(), messageId()]);
    await alice.roundTrip();
    expect(drain(alice, 'deliver')).toHaveLength(MAX_INFLIGHT);
  });
});

describe('invalid frames', () => {
  let relay: InProcessRelay;
  let witness: TestClient;
  beforeAll(async () => {
    relay = await startInProcessRelay({ env: { MAX_INVALID_FRAMES: '1000' } });
  });
  afterAll(() => relay.stop());

  it.each(BAD_FRAMES.map((c) => [c.name, c] as const))(
    'answers %s with its error code and keeps the connection',
    async (_name, bad) => {
      witness = await online(relay);
      const client = await connect(relay);
      await client.nonce();
      client.sendRaw(bad.data);
      const error = await client.next('error');
      expect(error.code).toBe(bad.code);
      if (bad.rid === undefined) expect(error).not.toHaveProperty('rid');
      else expect(error.rid).toBe(bad.rid);
      // The connection survives and still works; another connection noticed nothing.
      const { id } = await sendStored(client, witness.mailbox!);
      expect(await witness.next('deliver')).toMatchObject({ id });
      expect(drain(witness, 'error')).toHaveLength(0);
    },
  );

  it('closes a message over MAX_FRAME_BYTES with 1009 and others continue', async () => {
    witness = await online(relay);
    const client = await connect(relay);
    client.sendRaw('x'.repeat(MAX_FRAME_BYTES + 1));
    expect((await client.closed).code).toBe(CloseCode.MESSAGE_TOO_BIG);
    await witness.roundTrip();
  });

  it('accepts a message of exactly MAX_FRAME_BYTES (and answers it as a frame)', async () => {
    const client = await connect(relay);
    const text = JSON.stringify({ v: 1, t: 'ping', rid: 5, pad: '' });
    client.sendRaw(
      text.replace('"pad":""', `"pad":"${'x'.repeat(MAX_FRAME_BYTES - text.length)}"`),
    );
    expect(await client.next('error')).toMatchObject({ code: ErrorCode.BAD_FRAME, rid: 5 });
  });

  it('closes a connection after invalid UTF-8 with 1007 and others continue', async () => {
    witness = await online(relay);
    const client = await connect(relay);
    // A text frame with bytes that are not UTF-8: ws refuses it.
    client.socket.send(Buffer.from([0xc3, 0x28]), { binary: false });
    expect((await client.closed).code).toBe(CloseCode.INVALID_PAYLOAD);
    await witness.roundTrip();
  });

  /** Writes raw WebSocket frame bytes past the client's framing (its `_socket`). */
  function writeWire(client: TestClient, bytes: Buffer): void {
    (client.socket as unknown as { _socket: { write(b: Buffer): void } })._socket.write(bytes);
  }

  /** One masked client frame (mask key 0, so the payload goes as it is). */
  function maskedFrame(firstByte: number, payload: Buffer): Buffer {
    expect(payload.length).toBeLessThan(126);
    return Buffer.concat([Buffer.from([firstByte, 0x80 | payload.length, 0, 0, 0, 0]), payload]);
  }

  it('closes a connection that breaks the WebSocket framing with 1002 and others continue', async () => {
    witness = await online(relay);
    const client = await connect(relay);
    await client.nonce();
    writeWire(client, maskedFrame(0x83, Buffer.alloc(0))); // FIN + reserved opcode 3
    expect((await client.closed).code).toBe(CloseCode.PROTOCOL_ERROR);
    await witness.roundTrip();
  });

  it('closes a message sent in more fragments than ws keeps with 1008 and others continue', async () => {
    witness = await online(relay);
    const client = await connect(relay);
    await client.nonce();
    // A text message that never ends: a first fragment, then continuation frames without FIN,
    // past ws's bound of 16,384 fragments per message.
    const frames = [maskedFrame(0x01, Buffer.from('{'))];
    for (let i = 0; i < 16_500; i++) frames.push(maskedFrame(0x00, Buffer.from(' ')));
    writeWire(client, Buffer.concat(frames));
    expect((await client.closed).code).toBe(CloseCode.POLICY_VIOLATION);
    await witness.roundTrip();
  });
});

describe('abuse limits', () => {
  let relay: InProcessRelay;
  beforeAll(async () => {
    relay = await startInProcessRelay({
      env: {
        MAX_INVALID_FRAMES: '5',
        CONN_FRAMES_PER_SECOND: '1',
        CONN_FRAME_BURST: '3',
        FLOOD_CLOSE_AFTER: '10',
        MAILBOX_SENDS_PER_SECOND: '1',
        MAILBOX_SEND_BURST: '2',
        // One share: the mailbox's total is what the test below reaches (fair shares: next block).
        MAILBOX_SENDER_SHARES: '1',
      },
    });
  });
  afterAll(() => relay.stop());

  it('closes a connection after MAX_INVALID_FRAMES invalid frames with 4003', async () => {
    const client = await connect(relay);
    for (let i = 0; i < 5; i++) client.sendRaw('nonsense');
    expect(await client.closed).toMatchObject({ code: CloseCode.TOO_MANY_ERRORS });
    expect(client.pending.filter((f) => f.t === 'error')).toHaveLength(5);
  });

  it('answers rate_limited, with the rid, beyond the per-connection rate', async () => {
    const client = await connect(relay);
    for (let i = 0; i < 6; i++) client.send({ v: 1, t: 'ping', rid: i });
    const error = await client.next('error');
    expect(error).toMatchObject({ code: ErrorCode.RATE_LIMITED, retryable: true });
    expect(error.rid).toBeGreaterThanOrEqual(3);
    expect(await client.next('pong')).toMatchObject({ rid: 0 });
  });

  it('answers a frame over the rate rate_limited with its rid before parsing it', async () => {
    const client = await connect(relay);
    for (let i = 0; i < 3; i++) client.send({ v: 1, t: 'ping', rid: i });
    for (let i = 0; i < 3; i++) expect(await client.next('pong')).toMatchObject({ rid: i });
    // Over the rate: not parsed, so an unknown type is not what it is refused for.
    client.sendRaw('{"v":1,"t":"no-such-type","rid":9}');
    expect(await client.next('error')).toMatchObject({ rid: 9, code: ErrorCode.RATE_LIMITED });
    // Without a readable rid it is parsed as before (and refused for what it is).
    client.sendRaw('{"v":1,"t":"no-such-type","rid" : 10}');
    expect(await client.next('error')).toMatchObject({ rid: 10, code: ErrorCode.UNKNOWN_TYPE });
  });

  it('closes a connection that keeps flooding with 4001, and others continue', async () => {
    const other = await connect(relay);
    const client = await connect(relay);
    for (let i = 0; i < 40; i++) client.send({ v: 1, t: 'ping', rid: i });
    expect(await client.closed).toMatchObject({ code: CloseCode.FLOODING });
    other.send({ v: 1, t: 'ping', rid: 1 });
    expect(await other.next('pong')).toMatchObject({ rid: 1 });
  });

  it('limits sends to one mailbox across connections but not to another mailbox', async () => {
    const target = identity().mailbox;
    const a = await connect(relay);
    const b = await connect(relay);
    const send = (c: TestClient, r: number, to = target) =>
      c.send({ v: 1, t: 'send', rid: r, to, id: messageId(), env: envelope() });
    send(a, 1);
    send(a, 2);
    send(b, 3);
    const answers = [await a.nextOf(['stored', 'error']), await a.nextOf(['stored', 'error'])];
    answers.push(await b.nextOf(['stored', 'error']));
    expect(answers.filter((f) => f.t === 'error')).toEqual([
      expect.objectContaining({ code: ErrorCode.RATE_LIMITED, rid: 3 }),
    ]);
    send(b, 4, identity().mailbox);
    expect(await b.nextOf(['stored', 'error'])).toMatchObject({ t: 'stored', rid: 4 });
  });
});

describe('regression: one flooder spent the send rate of everyone writing to that mailbox', () => {
  // 20 a second and 20 at once per mailbox, four shares of 5 a second and 5 at once; a share is
  // settled after 0.5 s. Connection limits out of the way: the mailbox's rate is under test.
  let relay: InProcessRelay;
  beforeAll(async () => {
    relay = await startInProcessRelay({
      env: {
        ...NO_RATE_LIMITS,
        FLOOD_CLOSE_AFTER: '100000',
        MAILBOX_SENDS_PER_SECOND: '20',
        MAILBOX_SEND_BURST: '20',
        MAILBOX_SENDER_SHARES: '4',
      },
    });
  });
  afterAll(() => relay.stop());

  /** Sends `n` envelopes to `to` at once and returns the answers (stored or error codes). */
  async function blast(from: TestClient, to: string, n: number): Promise<string[]> {
    for (let i = 0; i < n; i++) {
      from.send({ v: 1, t: 'send', rid: ++rid, to, id: messageId(), env: envelope() });
    }
    // Refusals are answered at once, stored sends once the store has them: any order.
    const answers: string[] = [];
    for (let i = 0; i < n; i++) {
      const answer = await from.nextOf(['stored', 'error']);
      answers.push(answer.t === 'stored' ? 'stored' : String(answer['code']));
    }
    return answers.sort();
  }

  const count = (answers: string[], what: string) => answers.filter((a) => a === what).length;

  it('refuses a flooding connection past its share and stores every send of another sender', async () => {
    const target = identity().mailbox;
    const flooder = await connect(relay);
    const contact = await connect(relay);
    const flood = await blast(flooder, target, 40);
    // Before shares, the flooder took the whole burst of 20 and the contact got rate_limited.
    expect(count(flood, 'stored')).toBeLessThan(10);
    expect(count(flood, ErrorCode.RATE_LIMITED)).toBeGreaterThan(30);
    expect(await blast(contact, target, 5)).toEqual(Array(5).fill('stored'));
  });

  it('stores a settled sender’s sends while several flooding connections have spent the mailbox’s rate', async () => {
    const target = identity().mailbox;
    const contact = await connect(relay);
    expect(await blast(contact, target, 1)).toEqual(['stored']);
    await new Promise((resolve) => setTimeout(resolve, 600)); // the contact's share settles
    const flooders = await Promise.all(Array.from({ length: 5 }, () => connect(relay)));
    const floods = await Promise.all(flooders.map((f) => blast(f, target, 20)));
    const flood = floods.flat();
    // Five connections, at most one share each: the total (20, a few more by refill) is spent.
    expect(count(flood, 'stored')).toBeLessThanOrEqual(25 + 5);
    expect(count(flood, ErrorCode.RATE_LIMITED)).toBeGreaterThanOrEqual(100 - 30);
    // Up to half its share (5) at once: it sends well below its share, so it borrows.
    expect(await blast(contact, target, 3)).toEqual(Array(3).fill('stored'));
  });
});

describe('acknowledgements under a tight frame rate', () => {
  let relay: InProcessRelay;
  beforeAll(async () => {
    relay = await startInProcessRelay({
      env: { CONN_FRAMES_PER_SECOND: '1', CONN_FRAME_BURST: '2', FLOOD_CLOSE_AFTER: '1000' },
    });
  });
  afterAll(() => relay.stop());

  it('never rate-limits acks of delivered messages, but does limit acks of anything else', async () => {
    const who = identity();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const sender = await connect(relay);
      ids.push(
        (await sendStored(sender, who.mailbox)).id,
        (await sendStored(sender, who.mailbox)).id,
      );
    }
    const alice = await online(relay, who); // spends one of the two tokens
    for (const id of ids) expect(await alice.next('deliver')).toMatchObject({ id });
    for (const id of ids) ack(alice, [id]); // ten frames, one token left: all must count
    await alice.roundTrip(); // the last token
    expect(drain(alice, 'error')).toEqual([]);
    // Not in flight (acknowledged already, or never delivered): each costs a token, and at one
    // per second some must be refused.
    for (let i = 0; i < 5; i++) ack(alice, [ids[0]!]);
    expect(await alice.next('error')).toMatchObject({ code: ErrorCode.RATE_LIMITED });
    for (let i = 0; i < 5; i++) ack(alice, [messageId()]);
    expect(await alice.next('error')).toMatchObject({ code: ErrorCode.RATE_LIMITED });
    await alice.close();

    const again = await online(relay, who);
    const sender = await connect(relay);
    const sentinel = await sendStored(sender, who.mailbox);
    expect(await again.next('deliver')).toMatchObject({ id: sentinel.id });
  });
});

describe('heartbeats', () => {
  let relay: InProcessRelay;
  beforeAll(async () => {
    relay = await startInProcessRelay({
      env: {
        // Slack for a loaded machine: a live client must not look dead after an event-loop stall.
        PING_INTERVAL_MS: '250',
        HEARTBEAT_TIMEOUT_MS: '2000',
        MAX_BUFFERED_BYTES: '65536',
        SLOW_CONSUMER_BYTES: '67108864',
        ...NO_RATE_LIMITS,
      },
    });
  });
  afterAll(() => relay.stop());

  it('drops a peer that does not answer pings and keeps one that does', async () => {
    const alive = await connect(relay);
    const dead = await connect(relay, false);
    expect((await dead.closed).code).toBe(CloseCode.HEARTBEAT_TIMEOUT);
    await alive.roundTrip();
  });

  it('drops a peer that reads nothing at all, not even the close frame', async () => {
    const dead = await connect(relay);
    dead.pauseReading();
    await relay.waitForLog(`"closeCode":${CloseCode.HEARTBEAT_TIMEOUT}`);
    // The relay terminates the socket on a later tick; the paused client notices once it reads.
    await relay.waitForLog('"msg":"connection dropped"');
    dead.resumeReading();
    expect([CloseCode.HEARTBEAT_TIMEOUT, 1006]).toContain((await dead.closed).code);
  });
});

describe('a client that reads slowly', () => {
  let relay: InProcessRelay;
  beforeAll(async () => {
    relay = await startInProcessRelay({
      env: {
        // No tick during the test: only the socket's drain can resume deliveries. In-flight
        // room for everything, so that acks are not what resumes them either.
        MAX_INFLIGHT: '1000',
        PING_INTERVAL_MS: '600000',
        HEARTBEAT_TIMEOUT_MS: '600000',
        MAX_BUFFERED_BYTES: '65536',
        ...NO_RATE_LIMITS,
      },
    });
  });
  afterAll(() => relay.stop());

  it('gets what was held back once its socket drains, without acking anything', async () => {
    const alice = await online(relay);
    alice.pauseReading();
    const bob = await connect(relay);
    const env = envelope(MAX_ENVELOPE_BYTES);
    const ids: string[] = [];
    for (let i = 0; i < 200; i++)
      ids.push((await sendStored(bob, alice.mailbox!, messageId(), env)).id);
    await relay.waitForLog('deliveries wait in the store');
    alice.resumeReading();
    const got: string[] = [];
    for (let i = 0; i < ids.length; i++) got.push((await alice.next('deliver')).id);
    expect(got).toEqual(ids);
  }, 60_000);
});

describe('a client that stops reading', () => {
  let relay: InProcessRelay;
  beforeAll(async () => {
    relay = await startInProcessRelay({
      env: {
        PING_INTERVAL_MS: '100',
        HEARTBEAT_TIMEOUT_MS: '600000',
        MAX_BUFFERED_BYTES: '65536',
        SLOW_CONSUMER_BYTES: '67108864',
        ...NO_RATE_LIMITS,
      },
    });
  });
  afterAll(() => relay.stop());

  it('is closed with 4002 while others continue', async () => {
    const alice = await online(relay);
    alice.pauseReading();
    const bob = await connect(relay);
    const env = envelope(MAX_ENVELOPE_BYTES);
    // Enough to fill the loopback socket buffers and then the relay's own bound.
    for (let i = 0; i < 256; i++) await sendStored(bob, alice.mailbox!, messageId(), env);
    await relay.waitForLog(`"closeCode":${CloseCode.SLOW_CONSUMER}`);
    alice.resumeReading();
    expect((await alice.closed).code).toBe(CloseCode.SLOW_CONSUMER);
    await bob.roundTrip();
  }, 60_000);
});

// Regressions from the security review of the relay, each named after the defect it pins.
describe('regression: heartbeat', () => {
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

describe('regression: connection bound', () => {
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

describe('regression: CPU cost of hostile JSON before any rate check', () => {
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
