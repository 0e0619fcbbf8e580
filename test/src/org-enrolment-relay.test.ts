/**
 * Enrolment over the relay, with real parts: the `passage` CLI as a child process (`org init`,
 * `org invite`, `device enrol`, `org enrolments --relay`, `org approve`, `org publish`), a relay
 * process with first-contact proof-of-work on, and raw WebSocket senders (@passage/testing's
 * TestClient) for what a real device would never send: a request made without the invite's
 * secret, garbage, a replayed envelope. Every refusal is a clear message and a non-zero exit,
 * leaves the state file byte for byte as it was, and is acknowledged (the mailbox is empty
 * afterwards, so one bad envelope never blocks the ones behind it).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import {
  createEnrolmentEnvelope,
  decodeInvite,
  enrolmentMailboxId,
} from '@passage/shared/crypto/enrolment';
import { DeviceIdentity } from '@passage/shared/crypto/identity';
import { asEd25519PublicKey } from '@passage/shared/crypto/keys';
import { verifyOrgProfile } from '@passage/shared/crypto/org-profile';
import type { Primitives } from '@passage/shared/crypto/primitives';
import { loadSodiumBackend } from '@passage/shared/crypto/sodium';
import { PROTOCOL_VERSION } from '@passage/shared/protocol/limits';
import { fromBase64url, toBase64url } from '@passage/shared/protocol/base64url';
import { freePort } from '@passage/testing/ports';
import { startRelay, stopAllRelays, type RelayProcess } from '@passage/testing/relay-process';
import { messageId, TestClient } from '@passage/testing/test-client';
import { WebSocket, WebSocketServer, type RawData } from 'ws';

// Every CLI run that opens the key file derives a 64 MiB Argon2id key (a second or two on a
// loaded machine), and a mailbox read waits 2 s for quiet.
jest.setTimeout(240_000);

const CLI = fileURLToPath(new URL('../../cli/dist/main.js', import.meta.url));
const PASSPHRASE = 'an organization passphrase';

interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function cli(args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: {
        PATH: process.env['PATH'] ?? '',
        PASSAGE_PASSPHRASE: PASSPHRASE,
        NODE_ENV: 'test',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

let p: Primitives;
let root: string;
let relay: RelayProcess;
let orgKey: string;
let firstOrg: Org;
let dirs = 0;

beforeAll(async () => {
  p = await loadSodiumBackend();
  root = mkdtempSync(join(tmpdir(), 'passage-enrol-'));
  // One relay for every organization below: each has its own enrolment mailbox. The key is the
  // first organization's; the others only read mailboxes, which needs no ORG_PUBLIC_KEY.
  const first = await newOrg();
  orgKey = first.key;
  relay = await startRelay({ ORG_PUBLIC_KEY: orgKey, POW_BITS: '8' });
  firstOrg = first;
});

afterAll(async () => {
  await stopAllRelays();
  rmSync(root, { recursive: true, force: true });
});

interface Org {
  readonly dir: string;
  readonly key: string;
  /** Runs `passage org <args> --dir <dir>`. */
  run(args: readonly string[], env?: Readonly<Record<string, string>>): Promise<Run>;
}

async function newOrg(): Promise<Org> {
  dirs += 1;
  const dir = join(root, `org-${dirs}`);
  const run = (args: readonly string[], env?: Readonly<Record<string, string>>) =>
    cli(['org', ...args, '--dir', dir], env);
  const init = await run(['init', '--name', 'Rainbow Shelter']);
  expect(init.status).toBe(0);
  return { dir, key: /ORG_PUBLIC_KEY=([A-Za-z0-9_-]{43})/.exec(init.stdout)![1]!, run };
}

async function invite(org: Org, coordinator = 'anna', hours?: number): Promise<string> {
  const r = await org.run([
    'invite',
    '--coordinator',
    coordinator,
    ...(hours === undefined ? [] : ['--valid-hours', String(hours)]),
  ]);
  expect(r.status).toBe(0);
  return r.stdout.split('\n').find((l) => l.startsWith('passage-invite:'))!;
}

const readMailbox = (org: Org, env?: Readonly<Record<string, string>>) =>
  org.run(['enrolments', '--relay', relay.url], env);

const snapshot = (dir: string) =>
  Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f)).toString('hex')]));

/** Sends raw envelope bytes to a mailbox as an anonymous stranger (paying the proof-of-work). */
async function sendRaw(to: string, envelope: Uint8Array): Promise<void> {
  const client = await TestClient.connect(relay.wsUrl);
  try {
    await client.nonce();
    await client.admit(to);
    client.send({
      v: PROTOCOL_VERSION,
      t: 'send',
      rid: 3,
      to,
      id: messageId(),
      env: toBase64url(envelope),
    });
    const answer = await client.next();
    expect(answer).toMatchObject({ t: 'stored', rid: 3 });
  } finally {
    await client.close();
  }
}

/** An enrolment envelope made as a device makes it (optionally with another secret). */
function deviceEnvelope(code: string, over: { secret?: Uint8Array } = {}) {
  const decoded = decodeInvite(p, code);
  const device = DeviceIdentity.generate(p);
  const sealed = createEnrolmentEnvelope(p, {
    invite: over.secret === undefined ? decoded : { ...decoded, secret: over.secret },
    device,
    label: 'phone',
    nowSeconds: Math.floor(Date.now() / 1000),
  });
  return { device, ...sealed };
}

/** A WebSocket proxy in front of the relay (see startWsProxy). */
interface WsProxy {
  /** `http://127.0.0.1:<port>`, for `--relay`. */
  readonly url: string;
  /** Resolves once a client has connected. */
  readonly connected: Promise<void>;
  /** Lets held connections reach the relay. */
  release(): void;
  close(): Promise<void>;
}

/**
 * Forwards WebSocket messages between its clients and the real relay. With `hold`, a client's
 * connection is accepted but reaches the relay only after `release()` (the client waits for the
 * relay's challenge meanwhile); `drop` names relay-to-client messages that are lost on the way
 * (an answer the relay sent that never arrives).
 */
async function startWsProxy(
  options: { hold?: boolean; drop?: (text: string) => boolean } = {},
): Promise<WsProxy> {
  let onConnected!: () => void;
  const connected = new Promise<void>((resolve) => (onConnected = resolve));
  let onReleased!: () => void;
  const released = new Promise<void>((resolve) => (onReleased = resolve));
  if (options.hold !== true) onReleased();
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  const sockets = new Set<WebSocket>();
  server.on('connection', (client) => {
    sockets.add(client);
    onConnected();
    const early: { data: RawData; binary: boolean }[] = [];
    let upstream: WebSocket | undefined;
    client.on('message', (data, binary) => {
      if (upstream?.readyState === WebSocket.OPEN) upstream.send(data, { binary });
      else early.push({ data, binary });
    });
    client.on('close', () => upstream?.close());
    void released.then(() => {
      if (client.readyState !== WebSocket.OPEN) return;
      // The subprotocol the client asked for (the proxy's server picked it) goes on upstream.
      const up = new WebSocket(relay.wsUrl, client.protocol === '' ? [] : [client.protocol]);
      upstream = up;
      sockets.add(up);
      up.on('open', () => {
        for (const m of early.splice(0)) up.send(m.data, { binary: m.binary });
      });
      up.on('message', (data, binary) => {
        // A Buffer: the socket's binaryType is the default, 'nodebuffer'.
        const text = Buffer.isBuffer(data) ? data.toString('utf8') : '';
        if (options.drop?.(text) === true) return;
        client.send(data, { binary });
      });
      up.on('close', () => client.close());
      up.on('error', () => client.close());
    });
  });
  await new Promise<void>((resolve) => server.once('listening', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    url: `http://127.0.0.1:${address.port}`,
    connected,
    release: onReleased,
    close: async () => {
      for (const s of sockets) s.terminate();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('enrolment over the relay', () => {
  it('device enrol → org enrolments --relay → approve → publish: the device is in the served roster', async () => {
    const org = firstOrg;
    const code = await invite(org);
    const out = join(root, 'anna-laptop.json');
    const enrol = await cli([
      'device',
      'enrol',
      '--relay',
      relay.url,
      '--label',
      "Anna's laptop",
      '--invite',
      code,
      '--out',
      out,
    ]);
    expect(enrol.stderr).toBe('');
    expect(enrol.status).toBe(0);
    const deviceId = /device id: +([0-9a-f]{64})/.exec(enrol.stdout)![1]!;
    const fingerprint = /device fingerprint: ((\d{5} ){5}\d{5})/.exec(enrol.stdout)![1]!;
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const kept = JSON.parse(readFileSync(out, 'utf8')) as { identity: string };
    expect(DeviceIdentity.decodeSecret(p, fromBase64url(kept.identity)!).publicIdentity.id).toBe(
      deviceId,
    );

    const read = await readMailbox(org);
    expect(read.stderr).toBe('');
    expect(read.status).toBe(0);
    expect(read.stdout).toContain('enrolment received for anna');
    expect(read.stdout).toContain(': 1 new, 0 refused');
    expect(read.stdout).toContain(`${deviceId.slice(0, 16)}  anna  Anna's laptop`);
    expect(read.stdout).toContain(`device fingerprint: ${fingerprint}`);

    // Acknowledged: a second read finds nothing new, and the enrolment is listed once.
    const again = await readMailbox(org);
    expect(again.status).toBe(0);
    expect(again.stdout).toContain(': 0 new, 0 refused');
    expect(again.stdout.split(deviceId.slice(0, 16)).length).toBe(2);

    expect((await org.run(['approve', deviceId.slice(0, 12)])).status).toBe(0);
    expect((await org.run(['publish', '--relay', relay.url])).status).toBe(0);
    const served = new Uint8Array(await (await fetch(`${relay.url}/v1/org/profile`)).arrayBuffer());
    const profile = verifyOrgProfile(p, served, {
      organizationKey: asEd25519PublicKey(fromBase64url(org.key)!),
      nowSeconds: Math.floor(Date.now() / 1000),
    });
    expect(profile.roster.devices.map((d) => d.id)).toEqual([deviceId]);
  });

  it('enrols the documented way, the code never on a command line: org invite --out, device enrol --invite-file', async () => {
    const org = await newOrg();
    const code = join(root, 'erik-code.txt');
    const made = await org.run(['invite', '--coordinator', 'erik', '--out', code]);
    expect(made.status).toBe(0);
    expect(made.stdout).not.toContain('passage-invite:');
    const enrol = await cli(['device', 'enrol', '--relay', relay.url, '--invite-file', code]);
    expect(enrol.stderr).toBe('');
    expect(enrol.status).toBe(0);
    const deviceId = /device id: +([0-9a-f]{64})/.exec(enrol.stdout)![1]!;
    const read = await readMailbox(org);
    expect(read.status).toBe(0);
    expect(read.stdout).toContain(`${deviceId.slice(0, 16)}  erik`);
  });

  it('refuses a request made without the invite secret (exit 6, enrolment_bad_mac), changing nothing, and acks it', async () => {
    const org = await newOrg();
    const code = await invite(org);
    const before = snapshot(org.dir);
    const forged = deviceEnvelope(code, { secret: p.random.bytes(32) });
    await sendRaw(forged.to, forged.envelope);
    const read = await readMailbox(org);
    expect(read.status).toBe(6);
    expect(read.stderr).toContain(
      'enrolment refused: The enrolment request is not authenticated by its invite. (enrolment_bad_mac)',
    );
    expect(read.stdout).toContain(': 0 new, 1 refused');
    expect(snapshot(org.dir)).toEqual(before);
    const again = await readMailbox(org);
    expect(again.status).toBe(0);
    expect(again.stdout).toContain(': 0 new, 0 refused');
  });

  it('refuses garbage in the mailbox (exit 6, enrolment_envelope_unreadable) and still takes in the request behind it', async () => {
    const org = await newOrg();
    const code = await invite(org);
    const to = enrolmentMailboxId(p, decodeInvite(p, code));
    const garbage = p.random.bytes(2048);
    garbage[0] = 1;
    await sendRaw(to, garbage);
    const good = deviceEnvelope(code);
    await sendRaw(good.to, good.envelope);
    const read = await readMailbox(org);
    expect(read.status).toBe(6);
    expect(read.stderr).toContain('(enrolment_envelope_unreadable)');
    expect(read.stdout).toContain(': 1 new, 1 refused');
    expect(read.stdout).toContain(good.device.publicIdentity.id.slice(0, 16));
  });

  it('refuses a second device on a used code (exit 6, invite_used), keeping the first', async () => {
    const org = await newOrg();
    const code = await invite(org);
    const first = deviceEnvelope(code);
    const second = deviceEnvelope(code);
    await sendRaw(first.to, first.envelope);
    await sendRaw(second.to, second.envelope);
    const read = await readMailbox(org);
    expect(read.status).toBe(6);
    expect(read.stderr).toContain('The invite has been used already. (invite_used)');
    expect(read.stdout).toContain(first.device.publicIdentity.id.slice(0, 16));
    expect(read.stdout).not.toContain(second.device.publicIdentity.id.slice(0, 16));
  });

  it('refuses a request that reaches the tool after its invite expired (exit 6, invite_expired), changing nothing', async () => {
    const org = await newOrg();
    const code = await invite(org, 'boris', 1);
    const late = deviceEnvelope(code);
    await sendRaw(late.to, late.envelope);
    const before = snapshot(org.dir);
    const read = await readMailbox(org, {
      PASSAGE_DANGEROUS_TEST_ONLY_NOW: String(Math.floor(Date.now() / 1000) + 3601),
    });
    expect(read.status).toBe(6);
    expect(read.stderr).toContain('The invite has expired. (invite_expired)');
    expect(snapshot(org.dir)).toEqual(before);
  });

  it('says a replayed request is a repeat while its device is pending, and refuses it (invite_used) once the enrolment was removed', async () => {
    const org = await newOrg();
    const code = await invite(org);
    const sent = deviceEnvelope(code);
    await sendRaw(sent.to, sent.envelope);
    expect((await readMailbox(org)).status).toBe(0);

    // The same envelope again, under a new message id (the relay's dedup does not catch it).
    await sendRaw(sent.to, sent.envelope);
    const before = snapshot(org.dir);
    const replay = await readMailbox(org);
    expect(replay.status).toBe(0);
    expect(replay.stderr).toContain('a repeat of an enrolment already received; ignored');
    expect(replay.stdout).toContain(': 0 new, 0 refused');
    expect(snapshot(org.dir)).toEqual(before);

    const id = sent.device.publicIdentity.id.slice(0, 12);
    expect((await org.run(['remove', id])).status).toBe(0);
    await sendRaw(sent.to, sent.envelope);
    const after = await readMailbox(org);
    expect(after.status).toBe(6);
    expect(after.stderr).toContain('(invite_used)');
    expect(after.stdout).toContain('no enrolment waiting');
  });

  it('says a request redelivered after its invite expired is a repeat (exit 0), not invite_expired, while its device is pending', async () => {
    const org = await newOrg();
    const code = await invite(org, 'anna', 1);
    const sent = deviceEnvelope(code);
    await sendRaw(sent.to, sent.envelope);
    expect((await readMailbox(org)).status).toBe(0);
    await sendRaw(sent.to, sent.envelope);
    const before = snapshot(org.dir);
    const late = await readMailbox(org, {
      PASSAGE_DANGEROUS_TEST_ONLY_NOW: String(Math.floor(Date.now() / 1000) + 3601),
    });
    expect(late.stderr).toContain('a repeat of an enrolment already received; ignored');
    expect(late.stderr).not.toContain('invite_expired');
    expect(late.status).toBe(0);
    expect(late.stdout).toContain(': 0 new, 0 refused');
    expect(snapshot(org.dir)).toEqual(before);
  });

  it('device enrol refuses a malformed invite code (exit 6) and an unreachable relay (exit 9), leaving no identity file', async () => {
    const out = join(root, 'never.json');
    const bad = await cli([
      'device',
      'enrol',
      '--relay',
      relay.url,
      '--invite',
      'passage-invite:AQAA',
      '--out',
      out,
    ]);
    expect(bad.status).toBe(6);
    expect(bad.stderr).toContain('invite_malformed');
    const code = await invite(firstOrg, 'carla');
    const port = await freePort();
    const down = await cli(
      ['device', 'enrol', '--relay', `http://127.0.0.1:${port}`, '--invite', code, '--out', out],
      {},
    );
    expect(down.status).toBe(9);
    expect(down.stderr).toContain('relay_failed');
    expect(existsSync(out)).toBe(false);
  });

  it('device enrol keeps the identity file when the relay stored the request but its answer was lost (exit 9, enrolment_outcome_unknown)', async () => {
    const org = await newOrg();
    const code = await invite(org, 'dana');
    const out = join(root, 'dana-laptop.json');
    // The relay's `stored` answers never reach the device; everything else does.
    const proxy = await startWsProxy({ drop: (text) => text.includes('"t":"stored"') });
    let enrol: Run;
    try {
      enrol = await cli(['device', 'enrol', '--relay', proxy.url, '--invite', code, '--out', out], {
        PASSAGE_DANGEROUS_TEST_ONLY_ENROLMENT_SEND_TIMEOUT_MS: '3000',
      });
    } finally {
      await proxy.close();
    }
    expect(enrol.status).toBe(9);
    expect(enrol.stderr).toContain('did not say whether it stored the envelope');
    expect(enrol.stderr).toContain(`the device identity in ${out} is kept`);
    expect(enrol.stderr).toContain('(enrolment_outcome_unknown)');
    const shown = /device id: +([0-9a-f]{64})/.exec(enrol.stdout)![1]!;
    expect(existsSync(out)).toBe(true);
    const kept = JSON.parse(readFileSync(out, 'utf8')) as { identity: string };
    const deviceId = DeviceIdentity.decodeSecret(p, fromBase64url(kept.identity)!).publicIdentity
      .id;
    expect(deviceId).toBe(shown);
    // It was stored: the admin receives the enrolment of the very device whose key was kept.
    const read = await readMailbox(org);
    expect(read.status).toBe(0);
    expect(read.stdout).toContain(`${deviceId.slice(0, 16)}  dana`);
  });

  it('org enrolments says relay_failed (exit 9) for an unreachable relay, changing nothing', async () => {
    const org = await newOrg();
    const before = snapshot(org.dir);
    const port = await freePort();
    const r = await org.run(['enrolments', '--relay', `http://127.0.0.1:${port}`]);
    expect(r.status).toBe(9);
    expect(r.stderr).toContain('cannot reach the relay');
    expect(snapshot(org.dir)).toEqual(before);
  });

  it('a remove while org enrolments --relay runs is refused (state_locked), so the read cannot undo it; run again afterwards, it sticks', async () => {
    const org = await newOrg();
    // Two devices in the roster (a roster lists at least one, so anna can be removed).
    const anna = deviceEnvelope(await invite(org, 'anna'));
    const carla = deviceEnvelope(await invite(org, 'carla'));
    await sendRaw(anna.to, anna.envelope);
    await sendRaw(carla.to, carla.envelope);
    expect((await readMailbox(org)).status).toBe(0);
    const annaId = anna.device.publicIdentity.id;
    expect((await org.run(['approve', annaId.slice(0, 12)])).status).toBe(0);
    const carlaId = carla.device.publicIdentity.id;
    expect((await org.run(['approve', carlaId.slice(0, 12)])).status).toBe(0);
    const boris = deviceEnvelope(await invite(org, 'boris'));
    await sendRaw(boris.to, boris.envelope);

    // The read has opened the state (and, fixed, holds its lock) and waits for the relay.
    const proxy = await startWsProxy({ hold: true });
    try {
      const reading = org.run(['enrolments', '--relay', proxy.url]);
      await proxy.connected;
      const removing = await org.run(['remove', 'anna']);
      expect(removing.stderr).toContain('another passage command');
      expect(removing.stderr).toContain('(state_locked)');
      expect(removing.status).toBe(10);
      proxy.release();
      const read = await reading;
      expect(read.stderr).toBe('');
      expect(read.status).toBe(0);
      expect(read.stdout).toContain('enrolment received for boris');
    } finally {
      await proxy.close();
    }
    expect((await org.run(['remove', 'anna'])).status).toBe(0);
    const show = await org.run(['show']);
    expect(show.stdout).not.toContain(annaId.slice(0, 16));
    expect(show.stdout).toContain(carlaId.slice(0, 16));
    expect(show.stdout).toContain('enrolments waiting: 1');
    expect(readdirSync(org.dir).sort()).toEqual(['org-key', 'org-state']);
  });

  it('a read whose lock was removed by hand writes nothing over a change made meanwhile (state_locked), and leaves its envelope on the relay', async () => {
    const org = await newOrg();
    const boris = deviceEnvelope(await invite(org, 'boris'));
    await sendRaw(boris.to, boris.envelope);
    const proxy = await startWsProxy({ hold: true });
    let changed: Record<string, string>;
    try {
      const reading = org.run(['enrolments', '--relay', proxy.url]);
      await proxy.connected;
      rmSync(join(org.dir, 'org-state.lock'));
      expect((await org.run(['invite', '--coordinator', 'dana'])).status).toBe(0);
      changed = snapshot(org.dir);
      proxy.release();
      const read = await reading;
      expect(read.status).toBe(10);
      expect(read.stderr).toContain('the state file was changed by another command');
      expect(read.stderr).toContain('(state_locked)');
    } finally {
      await proxy.close();
    }
    // dana's invite is kept; boris's request was not acknowledged and is read now.
    expect(snapshot(org.dir)).toEqual(changed);
    const again = await readMailbox(org);
    expect(again.status).toBe(0);
    expect(again.stdout).toContain('enrolment received for boris');
    expect((await org.run(['show'])).stdout).toContain('invites: 1 open');
  });
});
