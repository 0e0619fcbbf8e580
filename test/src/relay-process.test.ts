/**
 * The relay as it runs: `node server/dist/main.js` in a child process on the embedded store,
 * spoken to over real WebSockets and HTTP. Covers the exchange end to end, every invalid frame,
 * the HTTP headers, SIGTERM, a bad configuration, and that the process's log output holds no
 * mailbox id, message id, envelope, key or IP address after real traffic.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { toBase64url } from '@passage/shared/protocol/base64url';
import { CloseCode, ErrorCode } from '@passage/shared/protocol/errors';
import { MAX_ENVELOPE_BYTES, MAX_FRAME_BYTES } from '@passage/shared/protocol/limits';
import { authChallengeMessage } from '@passage/shared/protocol/mailbox';
import { ClientPool } from '@passage/testing/client-pool';
import { BAD_FRAMES } from '@passage/testing/bad-frames';
import { expectedPageCsp } from '@passage/testing/page-csp';
import {
  TestClient,
  envelope,
  identity,
  messageId,
  type TestIdentity,
} from '@passage/testing/test-client';
import {
  RELAY_MAIN,
  startRelay,
  stopAllRelays,
  type RelayProcess,
} from '@passage/testing/relay-process';

// Real sockets on a loaded 2-core machine: generous, and above the harness's own waits.
jest.setTimeout(60_000);

const clients = new ClientPool();
const connect = (relay: RelayProcess) => clients.connect(relay);
const online = (relay: RelayProcess, who?: TestIdentity) => clients.online(relay, who);

let nextRid = 1;
async function sendStored(from: TestClient, to: string, id = messageId(), env = envelope()) {
  const rid = nextRid++;
  from.send({ v: 1, t: 'send', rid, to, id, env });
  expect(await from.nextOf(['stored', 'error'])).toEqual({ v: 1, t: 'stored', rid, id });
  return { id, env };
}

afterEach(() => clients.closeAll());
afterAll(stopAllRelays);

describe('the relay process', () => {
  let relay: RelayProcess;
  beforeAll(async () => {
    relay = await startRelay({ MAX_INVALID_FRAMES: '1000' });
  });

  it('relays from an anonymous sender to an authenticated recipient, live and queued, until ack', async () => {
    const who = identity();
    const bob = await connect(relay);
    const queued = await sendStored(bob, who.mailbox);
    const alice = await online(relay, who);
    expect(await alice.next('deliver')).toEqual({ v: 1, t: 'deliver', ...queued });
    const live = await sendStored(bob, who.mailbox);
    expect(await alice.next('deliver')).toEqual({ v: 1, t: 'deliver', ...live });
    alice.send({ v: 1, t: 'ack', ids: [queued.id] });
    await alice.roundTrip();
    await alice.close();

    const again = await online(relay, who);
    expect(await again.next('deliver')).toMatchObject({ id: live.id });
    again.send({ v: 1, t: 'ack', ids: [live.id] });
    await again.roundTrip();
    const sentinel = await sendStored(bob, who.mailbox);
    expect(await again.next('deliver')).toMatchObject({ id: sentinel.id });
  });

  it('refuses an auth signed by another key', async () => {
    const client = await connect(relay);
    const nonce = await client.nonce();
    client.send({
      v: 1,
      t: 'auth',
      rid: 3,
      pk: toBase64url(identity().publicKey),
      sig: toBase64url(identity().sign(authChallengeMessage(nonce))),
    });
    expect(await client.next('error')).toMatchObject({ rid: 3, code: ErrorCode.AUTH_FAILED });
  });

  it('accepts an envelope of MAX_ENVELOPE_BYTES', async () => {
    const alice = await online(relay);
    const bob = await connect(relay);
    const m = await sendStored(bob, alice.mailbox!, messageId(), envelope(MAX_ENVELOPE_BYTES));
    expect(await alice.next('deliver')).toMatchObject(m);
  });

  it.each(BAD_FRAMES.map((c) => [c.name, c] as const))(
    'answers %s with its error code, and the connection and others carry on',
    async (_name, bad) => {
      const witness = await online(relay);
      const client = await connect(relay);
      await client.nonce();
      client.sendRaw(bad.data);
      const error = await client.next('error');
      expect(error.code).toBe(bad.code);
      if (bad.rid === undefined) expect(error).not.toHaveProperty('rid');
      else expect(error.rid).toBe(bad.rid);
      const { id } = await sendStored(client, witness.mailbox!);
      expect(await witness.next('deliver')).toMatchObject({ id });
    },
  );

  it('closes a message over MAX_FRAME_BYTES with 1009 and stays up', async () => {
    const client = await connect(relay);
    client.sendRaw('{"v":1,"t":"ping","rid":1,"x":"' + 'a'.repeat(MAX_FRAME_BYTES) + '"}');
    expect((await client.closed).code).toBe(CloseCode.MESSAGE_TOO_BIG);
    const other = await connect(relay);
    await other.roundTrip();
  });

  it('sends the strict headers', async () => {
    const res = await fetch(`${relay.url}/`);
    await res.arrayBuffer();
    // The base policy, and the built page's import map allowed by its hash (the one inline
    // script); nothing else.
    const csp = res.headers.get('content-security-policy');
    expect(csp).toBe(expectedPageCsp());
    expect(csp).toMatch(
      /^default-src 'none';script-src 'self' 'wasm-unsafe-eval' 'sha256-[A-Za-z0-9+/]{43}=';/,
    );
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('set-cookie')).toBeNull();
    expect(res.headers.get('x-powered-by')).toBeNull();
  });
});

describe('the relay process under tight limits', () => {
  let relay: RelayProcess;
  beforeAll(async () => {
    relay = await startRelay({
      MAX_INFLIGHT: '8',
      MAILBOX_SENDS_PER_SECOND: '1',
      MAILBOX_SEND_BURST: '40',
      // One sender fills a mailbox below: let it take the whole burst.
      MAILBOX_SENDER_SHARES: '1',
    });
  });

  it('refuses a small-order key whose forged signature verifies for any message', async () => {
    const client = await connect(relay);
    await client.nonce();
    const pk = new Uint8Array(32);
    pk[0] = 1; // the neutral element
    const sig = new Uint8Array(64);
    sig[0] = 1; // R = neutral element, S = 0
    client.send({ v: 1, t: 'auth', rid: 4, pk: toBase64url(pk), sig: toBase64url(sig) });
    expect(await client.next('error')).toMatchObject({ rid: 4, code: ErrorCode.AUTH_FAILED });
  });

  it('delivers 3×MAX_INFLIGHT queued messages in order, at most MAX_INFLIGHT at a time, each once', async () => {
    const who = identity();
    const bob = await connect(relay);
    const expected: string[] = [];
    for (let i = 0; i < 24; i++) expected.push((await sendStored(bob, who.mailbox)).id);
    const alice = await online(relay, who);
    const got: string[] = [];
    while (got.length < expected.length) {
      const batch = [];
      for (let i = 0; i < 8; i++) batch.push((await alice.next('deliver')).id);
      // Nothing beyond the bound arrives before these are acknowledged.
      await alice.roundTrip();
      expect(alice.pending.filter((f) => f.t === 'deliver')).toEqual([]);
      got.push(...batch);
      alice.send({ v: 1, t: 'ack', ids: batch });
    }
    expect(got).toEqual(expected);
  });

  it('answers rate_limited past the per-mailbox burst', async () => {
    const to = identity().mailbox;
    const bob = await connect(relay);
    for (let rid = 1; rid <= 45; rid++) {
      bob.send({ v: 1, t: 'send', rid, to, id: messageId(), env: envelope() });
    }
    expect(await bob.next('error')).toMatchObject({
      code: ErrorCode.RATE_LIMITED,
      retryable: true,
    });
  });
});

describe('heartbeats of the relay process', () => {
  it('drops a connection that does not answer pings and keeps one that does', async () => {
    // The timeout leaves the test process (busy with other suites) well over a second of slack
    // to answer pings before the live connection would be dropped too.
    const relay = await startRelay({ PING_INTERVAL_MS: '250', HEARTBEAT_TIMEOUT_MS: '2000' });
    const dead = await TestClient.connect(relay.wsUrl, { autoPong: false });
    clients.add(dead);
    const alive = await connect(relay);
    expect((await dead.closed).code).toBe(CloseCode.HEARTBEAT_TIMEOUT);
    await alive.roundTrip();
  });
});

describe('SIGTERM', () => {
  it('answers every send it received, closes clients with 1001 and exits 0', async () => {
    const relay = await startRelay();
    const alice = await online(relay);
    const bob = await connect(relay);
    const rids = Array.from({ length: 50 }, (_, i) => 1000 + i);
    for (const rid of rids) {
      bob.send({ v: 1, t: 'send', rid, to: alice.mailbox, id: messageId(), env: envelope(512) });
    }
    relay.child.kill('SIGTERM');
    const closed = await bob.closed;
    expect(closed).toEqual({ code: CloseCode.GOING_AWAY, reason: 'going away' });
    expect((await alice.closed).code).toBe(CloseCode.GOING_AWAY);
    // Every send got its answer before the close: stored, or refused as shutting down.
    const answers = bob.pending.filter((f) => f.t === 'stored' || f.t === 'error');
    expect(answers.map((f) => f.rid).sort()).toEqual(rids);
    for (const f of answers) {
      if (f.t === 'error') expect(f.code).toBe(ErrorCode.SHUTTING_DOWN);
    }
    expect(await relay.exited).toEqual({ code: 0, signal: null });
    expect(relay.stdout()).toContain('"msg":"stopped"');
  });
});

describe('configuration', () => {
  it('refuses to start on an invalid variable, naming it, with exit code 1', async () => {
    const child = spawn(process.execPath, [RELAY_MAIN], {
      env: { PATH: process.env['PATH'] ?? '', PORT: 'eighty', MAX_INFLIGHT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => (stderr += chunk));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(1);
    expect(stderr).toContain('PORT');
    expect(stderr).toContain('MAX_INFLIGHT');
    expect(stderr).not.toContain('eighty');
  });
});

describe('log redaction over a real run', () => {
  it('writes no mailbox id, message id, envelope, key, signature, nonce or IP address', async () => {
    const relay = await startRelay({
      LOG_LEVEL: 'trace',
      MAX_INVALID_FRAMES: '3',
      CONN_FRAMES_PER_SECOND: '1',
      CONN_FRAME_BURST: '20',
      FLOOD_CLOSE_AFTER: '3',
    });
    const secrets: string[] = [];
    const who = identity();
    secrets.push(who.mailbox, toBase64url(who.publicKey));
    const alice = await connect(relay);
    secrets.push(toBase64url(await alice.nonce()));
    await alice.authenticate(who);
    const bob = await connect(relay);
    for (let i = 0; i < 5; i++) {
      const m = await sendStored(bob, who.mailbox);
      secrets.push(m.id, m.env);
      await alice.next('deliver');
      alice.send({ v: 1, t: 'ack', ids: [m.id] });
    }
    // Prekeys, a failed auth, invalid frames until a 4003 close, a flood until a 4001 close.
    const prekey = toBase64url(randomBytes(32));
    const identityPart = toBase64url(randomBytes(64));
    secrets.push(prekey, identityPart);
    alice.send({
      v: 1,
      t: 'prekeys.publish',
      rid: 1,
      identity: identityPart,
      signedPrekey: identityPart,
      oneTime: [{ id: 1, key: prekey }],
    });
    await alice.next('prekeys.count');
    bob.send({ v: 1, t: 'prekeys.fetch', rid: 2, mailbox: who.mailbox });
    await bob.next('prekeys.bundle');
    const mallory = await connect(relay);
    const badSig = toBase64url(identity().sign(authChallengeMessage(await mallory.nonce())));
    secrets.push(badSig);
    mallory.send({ v: 1, t: 'auth', rid: 1, pk: toBase64url(who.publicKey), sig: badSig });
    await mallory.next('error');
    for (let i = 0; i < 3; i++) mallory.sendRaw(`{"v":1,"t":"send","to":"${who.mailbox}"}`);
    expect((await mallory.closed).code).toBe(CloseCode.TOO_MANY_ERRORS);
    const flooder = await connect(relay);
    for (let i = 0; i < 40; i++) flooder.send({ v: 1, t: 'ping', rid: i });
    expect((await flooder.closed).code).toBe(CloseCode.FLOODING);
    // ws reports an oversized message as an error (logged at debug) before closing with 1009.
    const big = await connect(relay);
    big.sendRaw(`{"v":1,"t":"send","to":"${who.mailbox}","env":"${'A'.repeat(MAX_FRAME_BYTES)}"}`);
    expect((await big.closed).code).toBe(CloseCode.MESSAGE_TOO_BIG);
    await relay.waitForLog('websocket error');
    await relay.stop();

    const out = relay.stdout() + relay.stderr();
    expect(out).toContain('"msg":"listening"');
    expect(out).toContain('"closeCode":4003');
    for (const secret of secrets) expect(out).not.toContain(secret);
    expect(out).not.toContain('127.0.0.1');
    expect(out).not.toMatch(/::1|::ffff:/);
    expect(out).not.toMatch(/"(?:mailbox|to|id|ids|env|pk|sig|nonce|ip|remoteAddress|headers)"/);
    for (const line of out.trim().split('\n'))
      expect(() => JSON.parse(line) as unknown).not.toThrow();
  });
});
