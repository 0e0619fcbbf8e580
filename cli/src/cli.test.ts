/**
 * The real `passage` CLI (cli/dist/main.js, built by `npx tsc -b`) run as a child process on
 * temporary directories: exit statuses, messages, file modes, and that a refused or failed
 * command leaves the files byte for byte as they were.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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
        stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const fd3 = child.stdio[3] as NodeJS.WritableStream;
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
});
