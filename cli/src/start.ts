#!/usr/bin/env node
/**
 * `npm start`: the relay, and on a first run the demo organization beside it (ADR 0020).
 *
 * - An organization is configured (ORG_PUBLIC_KEY set), or a shared store is (REDIS_URL,
 *   REDIS_CLUSTER_NODES), or PASSAGE_DEMO=0: the plain relay, nothing else.
 * - Otherwise: a demo organization in this process's memory (demo.ts), the relay started with
 *   its ORG_PUBLIC_KEY, the signed profile published, the enrolment mailbox read and every
 *   enrolment approved by itself, and a banner saying how to open the contact page and how to
 *   enrol a coordinator device.
 *
 * Either way the relay is a child process (`node server/dist/main.js`, the same environment,
 * so PORT, HOST and every other setting work as documented), which holds no org secret and
 * imports no decryption code; SIGTERM and SIGINT are passed on to it, and this process exits
 * with its exit status. The relay's own log lines pass through to stdout unchanged.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PassageClient } from '@passage/shared/client/index';
import { loadPrimitives } from '@passage/shared/crypto/backend';
import type { Primitives } from '@passage/shared/crypto/primitives';
import {
  fingerprintDigits,
  fingerprintWords,
  formatSafetyNumber,
} from '@passage/shared/crypto/safety-number';
import { toBase64url } from '@passage/shared/protocol/base64url';
import {
  autoApprove,
  createDemoOrganization,
  DEMO_DISPLAY_NAME,
  plainRelayReason,
  type DemoOrganization,
} from './demo.js';
import { CliError } from './errors.js';
import { enrolmentMailbox, SHORT_ID_CHARS } from './organization.js';
import { openMailbox, relayAddress, type RelayAddress } from './relay.js';

/** The relay's entry point, beside this workspace. */
export const RELAY_MAIN = fileURLToPath(new URL('../../server/dist/main.js', import.meta.url));
/** The CLI's entry point, for the enrol command the banner prints. */
const CLI_MAIN = fileURLToPath(new URL('./main.js', import.meta.url));
/** How long the relay may take from its `listening` line to `/readyz` answering 200, in ms. */
export const RELAY_READY_TIMEOUT_MS = 30_000;
const READY_POLL_MS = 100;

const isSet = (value: string | undefined) => value !== undefined && value.trim() !== '';

function say(line: string): void {
  process.stdout.write(line + '\n');
}

/** Starts the relay; `onLine` sees each stdout line (they are passed through as well). */
function startRelay(env: NodeJS.ProcessEnv, onLine?: (line: string) => void): ChildProcess {
  const child = spawn(process.execPath, [RELAY_MAIN], {
    env,
    stdio: ['ignore', onLine === undefined ? 'inherit' : 'pipe', 'inherit'],
  });
  if (onLine !== undefined) {
    let partial = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      process.stdout.write(chunk);
      partial += chunk;
      let end;
      while ((end = partial.indexOf('\n')) >= 0) {
        onLine(partial.slice(0, end));
        partial = partial.slice(end + 1);
      }
    });
  }
  return child;
}

/** Passes SIGTERM and SIGINT on; resolves with the exit status to end with. */
function supervise(child: ChildProcess, onStop: () => void): Promise<number> {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      onStop();
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    });
  }
  return new Promise((resolve) => {
    child.once('error', () => resolve(1));
    child.once('exit', (code, signal) => {
      onStop();
      // A relay killed by a signal: the shell's convention, 128 + the signal's number.
      resolve(code ?? (signal === null ? 1 : 128 + constants.signals[signal]));
    });
  });
}

/** The address the demo itself uses to reach the relay (a wildcard HOST means loopback). */
function localAddress(host: string | undefined, port: number): RelayAddress {
  let h = isSet(host) ? host!.trim() : '127.0.0.1';
  if (h === '0.0.0.0') h = '127.0.0.1';
  else if (h === '::' || h === '[::]') h = '[::1]';
  else if (h.includes(':') && !h.startsWith('[')) h = `[${h}]`;
  return relayAddress(`http://${h}:${port}`);
}

async function waitReady(relay: RelayAddress, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + RELAY_READY_TIMEOUT_MS;
  while (Date.now() < deadline && child.exitCode === null) {
    try {
      const res = await fetch(`${relay.origin}/readyz`);
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
  }
  throw new Error('the relay did not become ready');
}

async function publish(relay: RelayAddress, profile: Uint8Array): Promise<void> {
  const res = await fetch(`${relay.origin}/v1/org/profile`, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/octet-stream' },
    body: profile,
  });
  const body = (await res.json().catch(() => ({}))) as { code?: unknown };
  if (!res.ok) {
    throw new Error(
      `the relay refused the profile (${typeof body.code === 'string' ? body.code : res.status})`,
    );
  }
}

function banner(p: Primitives, demo: DemoOrganization, relay: RelayAddress): string {
  const key = demo.secrets.publicKey;
  const cli = relative(process.cwd(), CLI_MAIN) || CLI_MAIN;
  return [
    '',
    `==== ${DEMO_DISPLAY_NAME} ====`,
    'DEMO: this organization lives in this process only and is gone when it stops. It is for',
    'DEMO: trying Passage out, never for real conversations: set ORG_PUBLIC_KEY for your own',
    'DEMO: organization (README, "Organization set-up").',
    `DEMO contact page:          ${relay.origin}/`,
    `DEMO signed profile:        ${relay.origin}/v1/org/profile (version ${demo.profileVersion})`,
    `DEMO organization key:      ORG_PUBLIC_KEY=${toBase64url(key)}`,
    `DEMO fingerprint (digits):  ${formatSafetyNumber(fingerprintDigits(p, key))}`,
    `DEMO fingerprint (words):   ${fingerprintWords(p, key).join(' ')}`,
    'DEMO: enrol a coordinator device; the demo approves it by itself and publishes the new roster',
    'DEMO: (the code inline is a demo shortcut: it shows in ps and the shell history; a real',
    'DEMO: device reads it with --invite-file <file>, or with --invite - from stdin):',
    `  node ${cli} device enrol --relay ${relay.origin} --label "my laptop" --invite ${demo.invite}`,
    '',
  ].join('\n');
}

/** Reads the enrolment mailbox for as long as the demo runs, approving what comes. */
async function serveEnrolments(
  p: Primitives,
  relay: RelayAddress,
  start: DemoOrganization,
): Promise<PassageClient> {
  let demo = start;
  return openMailbox(p, relay, enrolmentMailbox(p, demo.state), async (envelope) => {
    let outcome;
    try {
      outcome = autoApprove(p, demo, envelope, Math.floor(Date.now() / 1000));
    } catch (error) {
      if (error instanceof CliError) {
        say(`DEMO: ${error.message} (${error.code})`);
        return { kind: 'unreadable', reason: error.code };
      }
      throw error;
    }
    if (outcome.kind === 'repeat') return { kind: 'accepted' };
    demo = outcome.demo;
    try {
      await publish(relay, demo.profile);
    } catch (error) {
      // The next approval publishes a newer version with everything in it.
      say(`DEMO: could not publish: ${error instanceof Error ? error.message : 'unknown'}`);
    }
    say(
      `DEMO approved device ${outcome.deviceId.slice(0, SHORT_ID_CHARS)} (${outcome.label || 'no label'}): ` +
        `profile version ${demo.profileVersion}, roster version ${outcome.rosterSerial}, published`,
    );
    say(`DEMO next invite: ${demo.invite}`);
    return { kind: 'accepted' };
  });
}

async function runDemo(): Promise<number> {
  const p = await loadPrimitives();
  const demo = createDemoOrganization(p, Math.floor(Date.now() / 1000));
  let port: number | undefined;
  let listening: () => void = () => {};
  const heard = new Promise<void>((resolve) => (listening = resolve));
  const child = startRelay(
    { ...process.env, ORG_PUBLIC_KEY: toBase64url(demo.secrets.publicKey) },
    (line) => {
      if (port !== undefined || !line.includes('"msg":"listening"')) return;
      const match = /"port":(\d+)/.exec(line);
      if (match !== null) {
        port = Number(match[1]);
        listening();
      }
    },
  );
  let mailbox: PassageClient | undefined;
  let stopped = false;
  const exited = supervise(child, () => {
    stopped = true;
    mailbox?.close();
  });
  const setUp = (async () => {
    await Promise.race([heard, exited]);
    if (port === undefined || stopped) return;
    const relay = localAddress(process.env['HOST'], port);
    await waitReady(relay, child);
    await publish(relay, demo.profile);
    mailbox = await serveEnrolments(p, relay, demo);
    if (stopped) mailbox.close();
    else say(banner(p, demo, relay));
  })();
  try {
    await setUp;
  } catch (error) {
    if (!stopped) {
      process.stderr.write(
        `passage demo: ${error instanceof Error ? error.message : 'set-up failed'}; stopping\n`,
      );
      child.kill('SIGTERM');
      await exited;
      return 1;
    }
  }
  return exited;
}

async function main(): Promise<number> {
  const reason = plainRelayReason(process.env);
  if (reason !== undefined) {
    process.stderr.write(`passage: no demo organization: ${reason}\n`);
    return supervise(startRelay(process.env), () => {});
  }
  return runDemo();
}

// process.exit rather than exitCode: a reconnect timer of the mailbox client must not keep a
// process whose relay has exited alive.
process.exit(await main());
