/**
 * `npm start`'s entry point (cli/dist/start.js) as a process, on a free port, as a newcomer runs
 * it: with no organization configured it makes the demo organization (the profile the relay
 * serves verifies against the key it prints and says DEMO; the printed enrol command enrols a
 * device that the demo approves by itself into a newer published roster; SIGTERM stops both
 * processes with status 0), and with ORG_PUBLIC_KEY set it is the plain relay and makes none.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { asEd25519PublicKey } from '@passage/shared/crypto/keys';
import { verifyOrgProfile, type OrgProfile } from '@passage/shared/crypto/org-profile';
import type { Primitives } from '@passage/shared/crypto/primitives';
import { loadSodiumBackend } from '@passage/shared/crypto/sodium';
import { fromBase64url, toBase64url } from '@passage/shared/protocol/base64url';
import { freePort } from '@passage/testing/ports';
import { killOnExit } from '@passage/testing/process';

jest.setTimeout(120_000);

const START = fileURLToPath(new URL('../../cli/dist/start.js', import.meta.url));
const REPO = fileURLToPath(new URL('../../', import.meta.url));
/** How long the demo may take to print its banner or approve an enrolment on a loaded machine. */
const WAIT_MS = 60_000;

interface Started {
  readonly child: ChildProcess;
  readonly port: number;
  stdout(): string;
  stderr(): string;
  waitFor(pattern: RegExp): Promise<RegExpExecArray>;
  readonly exited: Promise<number | null>;
}

async function start(env: Readonly<Record<string, string>> = {}): Promise<Started> {
  const port = await freePort();
  const child = spawn(process.execPath, [START], {
    cwd: REPO,
    env: { PATH: process.env['PATH'] ?? '', PORT: String(port), HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  killOnExit(child);
  let out = '';
  let err = '';
  const waiters: { pattern: RegExp; resolve: (m: RegExpExecArray) => void }[] = [];
  const check = () => {
    for (let i = waiters.length - 1; i >= 0; i--) {
      const m = waiters[i]!.pattern.exec(out);
      if (m !== null) waiters.splice(i, 1)[0]!.resolve(m);
    }
  };
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    check();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return {
    child,
    port,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor: (pattern) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no ${String(pattern)} in ${WAIT_MS} ms:\n${out}\n${err}`)),
          WAIT_MS,
        );
        void exited.then(() => reject(new Error(`exited before ${String(pattern)}:\n${err}`)));
        waiters.push({
          pattern,
          resolve: (m) => {
            clearTimeout(timer);
            resolve(m);
          },
        });
        check();
      }),
  };
}

function run(command: string, args: readonly string[]) {
  return new Promise<{ status: number | null; stdout: string; stderr: string }>(
    (resolve, reject) => {
      const child = spawn(command, args, {
        cwd: REPO,
        env: { PATH: process.env['PATH'] ?? '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('close', (status) => resolve({ status, stdout, stderr }));
    },
  );
}

let p: Primitives;
beforeAll(async () => {
  p = await loadSodiumBackend();
});

const running: Started[] = [];
afterAll(() => {
  for (const s of running) s.child.kill('SIGKILL');
});

async function profileAt(port: number): Promise<Response> {
  return fetch(`http://127.0.0.1:${port}/v1/org/profile`);
}

describe('npm start', () => {
  it('makes a DEMO organization, auto-approves an enrolment with the printed invite, and stops on SIGTERM', async () => {
    // First-contact proof-of-work at the relay's default difficulty: the printed command pays it.
    const demo = await start();
    running.push(demo);
    const command = await demo.waitFor(/^ {2}node (\S+) device enrol (.+)$/m);
    const out = demo.stdout();
    expect(out).toContain('==== DEMO — Passage test organization ====');
    expect(out).toContain(`DEMO contact page:          http://127.0.0.1:${demo.port}/`);
    const key = /DEMO organization key: +ORG_PUBLIC_KEY=([A-Za-z0-9_-]{43})$/m.exec(out)![1]!;
    const organizationKey = asEd25519PublicKey(fromBase64url(key)!);

    const served = await profileAt(demo.port);
    expect(served.status).toBe(200);
    const first = verifyOrgProfile(p, new Uint8Array(await served.arrayBuffer()), {
      organizationKey,
      nowSeconds: Math.floor(Date.now() / 1000),
    });
    expect(first.content.displayName).toMatch(/^DEMO/);
    expect([...first.content.languages].sort()).toEqual(['en', 'ru']);
    expect(new Set(first.content.questionnaire.fields.map((f) => f.kind))).toEqual(
      new Set(['text', 'single', 'multiple']),
    );

    // The command exactly as printed (its arguments split as a shell would split them here).
    const args = command[2]!.match(/"[^"]*"|\S+/g)!.map((a) => a.replace(/^"|"$/g, ''));
    const enrol = await run(process.execPath, [command[1]!, 'device', 'enrol', ...args]);
    expect(enrol.stderr).toBe('');
    expect(enrol.status).toBe(0);
    const deviceId = /device id: +([0-9a-f]{64})/.exec(enrol.stdout)![1]!;
    expect(enrol.stdout).toContain(
      /DEMO fingerprint \(digits\): +([\d ]+)$/m.exec(out)![1]!.trim(),
    );

    await demo.waitFor(new RegExp(`DEMO approved device ${deviceId.slice(0, 16)}`));
    let next: OrgProfile | undefined;
    for (let i = 0; i < 100 && next === undefined; i++) {
      const candidate = verifyOrgProfile(
        p,
        new Uint8Array(await (await profileAt(demo.port)).arrayBuffer()),
        { organizationKey, nowSeconds: Math.floor(Date.now() / 1000), lastAccepted: first },
      );
      if (candidate.version > first.version) next = candidate;
      else await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(next).toBeDefined();
    expect(next!.roster.serial).toBeGreaterThan(first.roster.serial);
    expect(next!.roster.devices.map((d) => d.id)).toContain(deviceId);
    expect(demo.stdout()).toMatch(/DEMO next invite: passage-invite:/);

    demo.child.kill('SIGTERM');
    expect(await demo.exited).toBe(0);
    // The relay child went with it: nothing listens on the port any more.
    await expect(profileAt(demo.port)).rejects.toThrow();
  });

  it('with ORG_PUBLIC_KEY set is the plain relay: no demo, no profile until the organization publishes one', async () => {
    const key = toBase64url(p.ed25519KeyPairFromSeed(p.random.bytes(32)).publicKey);
    const plain = await start({ ORG_PUBLIC_KEY: key });
    running.push(plain);
    await plain.waitFor(/"msg":"listening"/);
    expect((await fetch(`http://127.0.0.1:${plain.port}/readyz`)).status).toBe(200);
    expect((await profileAt(plain.port)).status).toBe(404);
    expect(plain.stderr()).toContain('no demo organization: an organization is configured');
    plain.child.kill('SIGINT');
    expect(await plain.exited).toBe(0);
    expect(plain.stdout()).not.toContain('DEMO');
  });
});
