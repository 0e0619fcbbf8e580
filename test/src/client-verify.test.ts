/**
 * `passage client verify <url>` against real relay processes: a relay that serves the page the
 * organization signed (and that a build here reproduces) passes; a relay that serves one file
 * changed, a profile that lists no page files, the wrong organization key, or a local build that
 * differs each fail with `client_mismatch` (exit 11), naming the file.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPrimitives } from '@passage/shared/crypto/backend';
import type { Primitives } from '@passage/shared/crypto/primitives';
import { toBase64url } from '@passage/shared/protocol/base64url';
import { runCli } from '@passage/testing/cli-process';
import { deviceIdentities, organizationKey } from '@passage/testing/crypto-fixtures';
import { sampleProfileContent, signedProfile } from '@passage/testing/org-fixtures';
import { startRelay, stopAllRelays, type RelayProcess } from '@passage/testing/relay-process';

const DIST = new URL('../../client/dist', import.meta.url).pathname;

let p: Primitives;
let key: string;
let seed: ReturnType<typeof organizationKey>['seed'];
let honest: RelayProcess;
let tampered: RelayProcess;
let unsigned: RelayProcess;
let changedDir: string;
let changedFile: string;

/** The build's digests as `passage client digests` prints them (what org publish signs). */
async function digestsOf(dir: string): Promise<Record<string, string>> {
  const run = await runCli(['client', 'digests', dir], {});
  expect(run.status).toBe(0);
  const lines = run.stdout.trim().split('\n');
  return Object.fromEntries(lines.map((l) => l.split(' ').reverse() as [string, string]));
}

async function publish(relay: RelayProcess, client: boolean): Promise<void> {
  const now = Math.floor(Date.now() / 1000);
  const content = {
    ...sampleProfileContent(),
    ...(client ? { client: { files: await digestsOf(DIST) } } : {}),
  };
  const put = await fetch(`${relay.url}/v1/org/profile`, {
    method: 'PUT',
    body: Buffer.from(signedProfile(p, seed, deviceIdentities(p, 1), now, { content })),
  });
  expect(put.status).toBe(200);
}

beforeAll(async () => {
  p = await loadPrimitives();
  const org = organizationKey(p);
  seed = org.seed;
  key = toBase64url(org.publicKey);
  // A copy of the build with one lazily loaded module changed (one comment appended).
  changedDir = mkdtempSync(join(tmpdir(), 'passage-changed-'));
  cpSync(DIST, changedDir, { recursive: true });
  changedFile = readdirSync(join(changedDir, 'assets')).find((f) => /^load-.*\.js$/.test(f))!;
  const path = join(changedDir, 'assets', changedFile);
  writeFileSync(path, `${readFileSync(path, 'utf8')}\n// sent elsewhere`);
  [honest, tampered, unsigned] = await Promise.all([
    startRelay({ ORG_PUBLIC_KEY: key }),
    startRelay({ ORG_PUBLIC_KEY: key, STATIC_DIR: changedDir }),
    startRelay({ ORG_PUBLIC_KEY: key }),
  ]);
  await Promise.all([publish(honest, true), publish(tampered, true), publish(unsigned, false)]);
}, 60_000);

afterAll(async () => {
  await stopAllRelays();
  rmSync(changedDir, { recursive: true, force: true });
});

const verify = (...args: string[]) => runCli(['client', 'verify', ...args], {});

describe('passage client verify', () => {
  it('lists every served file of the build, index.html included, and no dot file', async () => {
    const files = await digestsOf(DIST);
    expect(files['/index.html']).toMatch(/^sha384-[A-Za-z0-9+/]{64}$/);
    expect(Object.keys(files).some((f) => f.startsWith('/assets/') && f.endsWith('.js'))).toBe(
      true,
    );
    expect(Object.keys(files).filter((f) => f.includes('/.'))).toEqual([]);
  });

  it('passes for the signed page, reproduced by a build here', async () => {
    const run = await verify(honest.url, '--key', key, '--dist', DIST);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('profile version 1: signed by the organization key');
    expect(run.stdout).toMatch(/verified: all \d+ files match the signed and the local build/);
    expect(run.stdout).not.toContain('FAIL');
  });

  it('is also `passage verify <url>`, and works with the signed list alone', async () => {
    const run = await runCli(['verify', honest.url, '--key', key], {});
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/verified: all \d+ files match the signed\n/);
  });

  it('fails on a relay that serves one file changed, and names it', async () => {
    const run = await verify(tampered.url, '--key', key, '--dist', DIST);
    expect(run.status).toBe(11);
    expect(run.stdout).toContain(
      `FAIL /assets/${changedFile}: differs from the signed, differs from the local build`,
    );
    expect(run.stderr).toContain('(client_mismatch)');
  });

  it('fails on the changed file with the local build alone too', async () => {
    const run = await verify(tampered.url, '--dist', DIST);
    expect(run.status).toBe(11);
    expect(run.stdout).toContain(`FAIL /assets/${changedFile}: differs from the local build`);
  });

  it('fails when the local build differs from what the relay serves', async () => {
    const run = await verify(honest.url, '--dist', changedDir);
    expect(run.status).toBe(11);
    expect(run.stdout).toContain(`FAIL /assets/${changedFile}`);
  });

  it('fails for a signed profile that lists no page files', async () => {
    const run = await verify(unsigned.url, '--key', key);
    expect(run.status).toBe(11);
    expect(run.stderr).toContain('lists no page files');
  });

  it('fails under another organization key', async () => {
    const other = toBase64url(organizationKey(p).publicKey);
    const run = await verify(honest.url, '--key', other);
    expect(run.status).toBe(11);
    expect(run.stderr).toContain('does not verify under this key');
  });

  it('refuses to run without a list to compare with, or without a URL', async () => {
    expect((await verify(honest.url)).status).toBe(2);
    expect((await verify('not a url', '--dist', DIST)).status).toBe(2);
    expect((await verify(honest.url, '--key', 'short')).status).toBe(2);
  });

  it('says the relay cannot be reached, with its own code', async () => {
    const run = await verify('http://127.0.0.1:9/', '--dist', DIST);
    expect(run.status).toBe(9);
    expect(run.stderr).toContain('(client_unreachable)');
  });
});
