/**
 * The real `passage` CLI (cli/dist/main.js, built by `npx tsc -b`) run as a child process on
 * temporary directories: exit statuses, messages, file modes, and that a refused or failed
 * command leaves the files byte for byte as they were.
 */
import { spawn } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { createEnrolmentRequest, decodeInvite } from '@passage/shared/crypto/enrolment';
import { DeviceIdentity } from '@passage/shared/crypto/identity';
import { asEd25519PublicKey } from '@passage/shared/crypto/keys';
import { verifyOrgProfile } from '@passage/shared/crypto/org-profile';
import type { Primitives } from '@passage/shared/crypto/primitives';
import { loadSodiumBackend } from '@passage/shared/crypto/sodium';
import { fromBase64url, toBase64url } from '@passage/shared/protocol/base64url';
import { freePort } from '@passage/testing/ports';
import { sampleProfileContent } from '@passage/testing/org-fixtures';

// Each run derives a 64 MiB Argon2id key; on a loaded 2-core machine that is a second or two.
jest.setTimeout(120_000);

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const PASSPHRASE = 'a long enough passphrase';

interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

interface RunOptions {
  readonly env?: Readonly<Record<string, string>>;
  /** Sent on descriptor 3 with --passphrase-fd 3 (instead of PASSAGE_PASSPHRASE). */
  readonly fd3?: string;
  /** Sent on stdin (else stdin is closed). */
  readonly stdin?: string | Buffer;
}

function run(args: readonly string[], options: RunOptions = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string> = { PATH: process.env['PATH'] ?? '', NODE_ENV: 'test' };
    if (options.fd3 === undefined) env['PASSAGE_PASSPHRASE'] = PASSPHRASE;
    const child = spawn(
      process.execPath,
      [MAIN, ...args, ...(options.fd3 === undefined ? [] : ['--passphrase-fd', '3'])],
      {
        env: { ...env, ...options.env },
        stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const fd3 = child.stdio[3] as NodeJS.WritableStream;
    if (options.stdin !== undefined) child.stdin!.end(options.stdin);
    if (options.fd3 !== undefined) fd3.end(options.fd3 + '\n');
    else fd3.end();
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

let p: Primitives;
let root: string;
beforeAll(async () => {
  p = await loadSodiumBackend();
  root = mkdtempSync(join(tmpdir(), 'passage-cli-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

let dirs = 0;
/** A fresh organization directory under the test's root. */
function freshDir(): string {
  dirs += 1;
  return join(root, `org-${dirs}`);
}

async function initOrg(): Promise<{ dir: string; args: string[] }> {
  const dir = freshDir();
  const init = await run(['org', 'init', '--name', 'Rainbow Shelter', '--dir', dir]);
  expect(init.status).toBe(0);
  return { dir, args: ['--dir', dir] };
}

const snapshot = (dir: string) =>
  Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f)).toString('hex')]));

/** Makes an enrolment request from an invite code as the new device will, into a file. */
function requestFile(code: string, label = 'laptop', now = Math.floor(Date.now() / 1000)) {
  const device = DeviceIdentity.generate(p);
  const request = createEnrolmentRequest(p, {
    invite: decodeInvite(p, code),
    device,
    label,
    nowSeconds: now,
  });
  const file = join(root, `request-${toBase64url(p.random.bytes(6))}`);
  writeFileSync(file, toBase64url(request) + '\n');
  return { device, file };
}

/** A lock file as the tool writes it, naming `pid` on this host. */
const lockNaming = (pid: number) => `${pid} ${hostname()} ${'ab'.repeat(16)}\n`;

/** The pid of a process that has exited (a child that ran `true`). */
function deadPid(): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', () => resolve(child.pid!));
  });
}

const inviteCode = (out: string) => out.split('\n').find((l) => l.startsWith('passage-invite:'))!;

describe('passage org (child process)', () => {
  it('init creates a 0700 directory with 0600 files and prints the fingerprint as digits and words', async () => {
    const dir = freshDir();
    const r = await run(['org', 'init', '--name', 'Rainbow Shelter', '--dir', dir]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/fingerprint \(digits\): (\d{5} ){5}\d{5}\n/);
    expect(r.stdout).toMatch(/fingerprint \(words\): {2}([a-z-]+ ){6}[a-z-]+\n/);
    expect(r.stdout).toMatch(/ORG_PUBLIC_KEY=[A-Za-z0-9_-]{43}\n/);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    for (const f of readdirSync(dir)) expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir).sort()).toEqual(['org-key', 'org-state']);
  });

  it('refuses a second init and changes nothing', async () => {
    const { dir } = await initOrg();
    const before = snapshot(dir);
    const r = await run(['org', 'init', '--name', 'Other', '--dir', dir]);
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('already_initialised');
    expect(snapshot(dir)).toEqual(before);
  });

  it('refuses a short passphrase at init, writing nothing', async () => {
    const dir = freshDir();
    const r = await run(['org', 'init', '--name', 'X', '--dir', dir], {
      env: { PASSAGE_PASSPHRASE: 'short' },
    });
    expect(r.status).toBe(4);
    expect(() => readdirSync(dir)).toThrow();
  });

  it('reads the passphrase from a descriptor', async () => {
    const dir = freshDir();
    expect(
      (await run(['org', 'init', '--name', 'X', '--dir', dir], { fd3: PASSPHRASE })).status,
    ).toBe(0);
    const show = await run(['org', 'show', '--dir', dir], { fd3: PASSPHRASE });
    expect(show.status).toBe(0);
    expect(show.stdout).toContain('organization: X');
  });

  it('says wrong passphrase (exit 4) and changes nothing', async () => {
    const { dir, args } = await initOrg();
    const before = snapshot(dir);
    const r = await run(['org', 'invite', '--coordinator', 'anna', ...args], {
      env: { PASSAGE_PASSPHRASE: 'not the passphrase at all' },
    });
    expect(r.status).toBe(4);
    expect(r.stderr).toContain('wrong passphrase (wrong_passphrase)');
    expect(snapshot(dir)).toEqual(before);
  });

  it('says no passphrase (exit 4) without a terminal, a descriptor or the variable', async () => {
    const { args } = await initOrg();
    const r = await run(['org', 'show', ...args], { env: { PASSAGE_PASSPHRASE: '' } });
    expect(r.status).toBe(4);
    expect(r.stderr).toContain('passphrase_unavailable');
  });

  it('says damaged key file (exit 5) for a changed byte, apart from a wrong passphrase', async () => {
    const { dir, args } = await initOrg();
    const key = readFileSync(join(dir, 'org-key'));
    key[60]! ^= 1;
    writeFileSync(join(dir, 'org-key'), key);
    const r = await run(['org', 'show', ...args]);
    expect(r.status).toBe(5);
    expect(r.stderr).toContain('key_file_damaged');
    expect(r.stderr).not.toContain('wrong_passphrase');
  });

  it('says no organization (exit 3) in an empty directory', async () => {
    const r = await run(['org', 'show', '--dir', freshDir()]);
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('not_initialised');
  });

  it('says usage (exit 2) for an unknown command or option', async () => {
    expect((await run(['org', 'frobnicate'])).status).toBe(2);
    expect((await run(['org', 'show', '--colour', 'red'])).status).toBe(2);
  });

  it('invites, takes an enrolment in, approves it and publishes a profile that verifies', async () => {
    const { dir, args } = await initOrg();
    const invite = await run(['org', 'invite', '--coordinator', 'anna', ...args]);
    expect(invite.status).toBe(0);
    const { device, file } = requestFile(inviteCode(invite.stdout), "Anna's laptop");
    const received = await run(['org', 'enrolments', '--import', file, ...args]);
    expect(received.status).toBe(0);
    const id = device.publicIdentity.id.slice(0, 16);
    expect(received.stdout).toContain(`${id}  anna  Anna's laptop`);
    expect(received.stdout).toMatch(/device fingerprint: (\d{5} ){5}\d{5}/);
    const approve = await run(['org', 'approve', id, ...args]);
    expect(approve.status).toBe(0);
    expect(approve.stdout).toContain('roster version 1');
    const settings = join(root, 'profile.json');
    writeFileSync(settings, JSON.stringify(sampleProfileContent()));
    const out = join(dir, 'profile.bin');
    const publish = await run(['org', 'publish', '--profile', settings, '--out', out, ...args]);
    expect(publish.status).toBe(0);
    const key = /ORG_PUBLIC_KEY=([A-Za-z0-9_-]{43})/.exec(
      (await run(['org', 'show', ...args])).stdout,
    )![1]!;
    const profile = verifyOrgProfile(p, new Uint8Array(readFileSync(out)), {
      organizationKey: asEd25519PublicKey(fromBase64url(key)!),
      nowSeconds: Math.floor(Date.now() / 1000),
    });
    expect(profile.version).toBe(1);
    expect(profile.roster.devices.map((d) => d.id)).toEqual([device.publicIdentity.id]);
    expect(profile.content).toEqual(sampleProfileContent());
  });

  it('refuses a reused invite (exit 6) and an expired one (exit 6), changing nothing', async () => {
    const { dir, args } = await initOrg();
    const code = inviteCode(
      (await run(['org', 'invite', '--coordinator', 'anna', ...args])).stdout,
    );
    const first = requestFile(code);
    expect((await run(['org', 'enrolments', '--import', first.file, ...args])).status).toBe(0);
    const before = snapshot(dir);
    const again = await run(['org', 'enrolments', '--import', requestFile(code).file, ...args]);
    expect(again.status).toBe(6);
    expect(again.stderr).toContain('invite_used');
    expect(snapshot(dir)).toEqual(before);

    const code2 = inviteCode(
      (await run(['org', 'invite', '--coordinator', 'boris', '--valid-hours', '1', ...args]))
        .stdout,
    );
    const later = String(Math.floor(Date.now() / 1000) + 3601);
    const expired = await run(['org', 'enrolments', '--import', requestFile(code2).file, ...args], {
      env: { PASSAGE_DANGEROUS_TEST_ONLY_NOW: later },
    });
    expect(expired.status).toBe(6);
    expect(expired.stderr).toContain('invite_expired');
  });

  it('refuses an unknown device (exit 7) for approve and remove', async () => {
    const { args } = await initOrg();
    const approve = await run(['org', 'approve', 'abcdef0123456789', ...args]);
    expect(approve.status).toBe(7);
    expect(approve.stderr).toContain('unknown_device');
    const remove = await run(['org', 'remove', 'nobody', ...args]);
    expect(remove.status).toBe(7);
  });

  it('removes a device: the next published roster does not list it', async () => {
    const { dir, args } = await initOrg();
    const devices: DeviceIdentity[] = [];
    for (const who of ['anna', 'boris']) {
      const code = inviteCode((await run(['org', 'invite', '--coordinator', who, ...args])).stdout);
      const { device, file } = requestFile(code);
      expect((await run(['org', 'enrolments', '--import', file, ...args])).status).toBe(0);
      expect(
        (await run(['org', 'approve', device.publicIdentity.id.slice(0, 10), ...args])).status,
      ).toBe(0);
      devices.push(device);
    }
    const removed = await run(['org', 'remove', 'anna', ...args]);
    expect(removed.status).toBe(0);
    expect(removed.stdout).toContain('removed 1 device(s); roster version 3');
    const out = join(dir, 'p.bin');
    expect((await run(['org', 'publish', '--out', out, ...args])).status).toBe(0);
    const show = await run(['org', 'show', ...args]);
    const key = /ORG_PUBLIC_KEY=([A-Za-z0-9_-]{43})/.exec(show.stdout)![1]!;
    const profile = verifyOrgProfile(p, new Uint8Array(readFileSync(out)), {
      organizationKey: asEd25519PublicKey(fromBase64url(key)!),
      nowSeconds: Math.floor(Date.now() / 1000),
    });
    expect(profile.roster.serial).toBe(4);
    expect(profile.roster.devices.map((d) => d.id)).toEqual([devices[1]!.publicIdentity.id]);
  });

  it('leaves nothing half-written when a write fails before its rename', async () => {
    const { dir, args } = await initOrg();
    const before = snapshot(dir);
    const r = await run(['org', 'invite', '--coordinator', 'anna', ...args], {
      env: { PASSAGE_DANGEROUS_TEST_ONLY_FAIL_RENAME: '1' },
    });
    expect(r.status).toBe(1);
    expect(snapshot(dir)).toEqual(before);
    expect(readdirSync(dir).sort()).toEqual(['org-key', 'org-state']);
  });

  it('spends the profile version when the relay cannot be reached (exit 9), so a retry signs the next', async () => {
    const { args } = await initOrg();
    const code = inviteCode(
      (await run(['org', 'invite', '--coordinator', 'anna', ...args])).stdout,
    );
    const { device, file } = requestFile(code);
    await run(['org', 'enrolments', '--import', file, ...args]);
    await run(['org', 'approve', device.publicIdentity.id.slice(0, 10), ...args]);
    const port = await freePort();
    const r = await run(['org', 'publish', '--relay', `http://127.0.0.1:${port}`, ...args]);
    expect(r.status).toBe(9);
    expect(r.stderr).toContain('publish_failed');
    expect((await run(['org', 'show', ...args])).stdout).toContain('published: version 1');
  });

  it('refuses to change the organization while another command holds its lock (exit 10, state_locked), changing nothing', async () => {
    const { dir, args } = await initOrg();
    const lock = join(dir, 'org-state.lock');
    // This test's own process: a holder that is running.
    writeFileSync(lock, lockNaming(process.pid), { mode: 0o600 });
    const before = snapshot(dir);
    for (const command of [
      ['invite', '--coordinator', 'anna'],
      ['remove', 'anna'],
      ['approve', 'abcdef0123456789'],
      ['publish', '--out', join(dir, 'p.bin')],
      ['enrolments', '--relay', 'http://127.0.0.1:9'],
    ]) {
      const r = await run(['org', ...command, ...args]);
      expect(r.status).toBe(10);
      expect(r.stderr).toContain(
        `another passage command (process ${process.pid}) is changing this organization`,
      );
      expect(r.stderr).toContain('(state_locked)');
    }
    // Left as it was: the lock is not the refused command's to remove.
    expect(snapshot(dir)).toEqual(before);
  });

  it('still shows the organization while its lock is held (show writes nothing)', async () => {
    const { dir, args } = await initOrg();
    writeFileSync(join(dir, 'org-state.lock'), lockNaming(process.pid));
    const r = await run(['org', 'show', ...args]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('organization: Rainbow Shelter');
  });

  it('reports a lock left by a process that no longer runs (exit 10, state_lock_stale) with the file to remove, and never removes it', async () => {
    const { dir, args } = await initOrg();
    const lock = join(dir, 'org-state.lock');
    const pid = await deadPid();
    writeFileSync(lock, lockNaming(pid));
    const before = snapshot(dir);
    const r = await run(['org', 'invite', '--coordinator', 'anna', ...args]);
    expect(r.status).toBe(10);
    expect(r.stderr).toContain(`locked by process ${pid}, which is no longer running`);
    expect(r.stderr).toContain(`remove ${lock} and run this one again`);
    expect(r.stderr).toContain('(state_lock_stale)');
    expect(snapshot(dir)).toEqual(before);
    // Once the admin has removed it, the command runs.
    rmSync(lock);
    expect((await run(['org', 'invite', '--coordinator', 'anna', ...args])).status).toBe(0);
  });

  it('reports a lock file that names no process as stale (exit 10), and one of another host as held', async () => {
    const { dir, args } = await initOrg();
    const lock = join(dir, 'org-state.lock');
    writeFileSync(lock, '');
    const empty = await run(['org', 'remove', 'anna', ...args]);
    expect(empty.status).toBe(10);
    expect(empty.stderr).toContain('a lock file that names no process');
    expect(empty.stderr).toContain('(state_lock_stale)');
    writeFileSync(lock, `1 elsewhere.example ${'cd'.repeat(16)}\n`);
    const remote = await run(['org', 'remove', 'anna', ...args]);
    expect(remote.status).toBe(10);
    expect(remote.stderr).toContain('(process 1 on elsewhere.example)');
    expect(remote.stderr).toContain('(state_locked)');
    expect(readFileSync(lock, 'utf8')).toBe(`1 elsewhere.example ${'cd'.repeat(16)}\n`);
  });

  it('refuses a second init while the first holds the lock, writing nothing', async () => {
    const dir = freshDir();
    mkdirSync(dir, { mode: 0o700 });
    writeFileSync(join(dir, 'org-state.lock'), lockNaming(process.pid));
    const r = await run(['org', 'init', '--name', 'X', '--dir', dir]);
    expect(r.status).toBe(10);
    expect(readdirSync(dir)).toEqual(['org-state.lock']);
  });

  it('releases the lock after a command that succeeded and after one that was refused', async () => {
    const { dir, args } = await initOrg();
    expect((await run(['org', 'invite', '--coordinator', 'anna', ...args])).status).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(['org-key', 'org-state']);
    expect((await run(['org', 'remove', 'nobody', ...args])).status).toBe(7);
    expect(readdirSync(dir).sort()).toEqual(['org-key', 'org-state']);
    const wrong = await run(['org', 'remove', 'nobody', ...args], {
      env: { PASSAGE_PASSPHRASE: 'not the passphrase at all' },
    });
    expect(wrong.status).toBe(4);
    expect(readdirSync(dir).sort()).toEqual(['org-key', 'org-state']);
  });

  it('org invite --out writes the code to a new 0600 file and prints no code', async () => {
    const { dir, args } = await initOrg();
    const out = join(root, `code-${dirs}.txt`);
    const r = await run(['org', 'invite', '--coordinator', 'anna', '--out', out, ...args]);
    expect(r.status).toBe(0);
    expect(r.stdout).not.toContain('passage-invite:');
    expect(r.stdout).toContain(`written to ${out}`);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const code = readFileSync(out, 'utf8');
    expect(code).toMatch(/^passage-invite:[A-Za-z0-9_-]+\n$/);
    // The code in the file is the invite the organization keeps: it enrols.
    const { file } = requestFile(code.trim());
    expect((await run(['org', 'enrolments', '--import', file, ...args])).status).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(['org-key', 'org-state']);
  });

  it('org invite --out refuses an existing file (exit 2), changing nothing', async () => {
    const { dir, args } = await initOrg();
    const out = join(root, `taken-${dirs}.txt`);
    writeFileSync(out, 'something else\n');
    const before = snapshot(dir);
    const r = await run(['org', 'invite', '--coordinator', 'anna', '--out', out, ...args]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('exists already');
    expect(readFileSync(out, 'utf8')).toBe('something else\n');
    expect(snapshot(dir)).toEqual(before);
  });

  it('device enrol --invite - reads the code from stdin (then tries the relay: exit 9 when it is down)', async () => {
    const { args } = await initOrg();
    const out = join(root, `code-${dirs}.txt`);
    await run(['org', 'invite', '--coordinator', 'anna', '--out', out, ...args]);
    const port = await freePort();
    const r = await run(
      ['device', 'enrol', '--relay', `http://127.0.0.1:${port}`, '--invite', '-'],
      { stdin: readFileSync(out) },
    );
    expect(r.stderr).toContain('relay_failed');
    expect(r.status).toBe(9);
  });

  it('device enrol refuses what is not an invite code on stdin or in --invite-file (exit 6), and both options at once (exit 2)', async () => {
    const port = await freePort();
    const relay = ['--relay', `http://127.0.0.1:${port}`];
    const garbage = await run(['device', 'enrol', ...relay, '--invite', '-'], {
      stdin: 'not a code\n',
    });
    expect(garbage.status).toBe(6);
    expect(garbage.stderr).toContain('invite_malformed');
    const empty = await run(['device', 'enrol', ...relay, '--invite', '-'], { stdin: '' });
    expect(empty.status).toBe(6);
    expect(empty.stderr).toContain('invite_malformed');
    const huge = await run(['device', 'enrol', ...relay, '--invite', '-'], {
      stdin: 'passage-invite:' + 'A'.repeat(5000),
    });
    expect(huge.status).toBe(6);
    expect(huge.stderr).toContain('too long (invite_malformed)');
    const file = join(root, 'not-a-code.txt');
    writeFileSync(file, 'passage-invite:AQAA\n');
    const fromFile = await run(['device', 'enrol', ...relay, '--invite-file', file]);
    expect(fromFile.status).toBe(6);
    const missing = await run([
      'device',
      'enrol',
      ...relay,
      '--invite-file',
      join(root, 'no-such-file'),
    ]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('cannot read');
    const both = await run(['device', 'enrol', ...relay, '--invite', '-', '--invite-file', file]);
    expect(both.status).toBe(2);
  });
});
