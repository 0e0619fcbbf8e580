/**
 * Starts the real relay as a child process (`node server/dist/main.js`, built by `npm test`;
 * run `npx tsc -b` first when running tests by hand) on a free loopback port with the given
 * environment, and waits until it is ready. Everything it prints is collected, so a test can
 * assert on its logs (redaction).
 *
 * ```ts
 * let relay: RelayProcess;
 * beforeAll(async () => { relay = await startRelay({ MAX_INFLIGHT: '8' }); });
 * afterAll(stopAllRelays);   // never leaves a process behind, even when a test failed
 * ```
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.js';

/** The relay entry point, relative to this file in both src/ and dist/. */
export const RELAY_MAIN = fileURLToPath(new URL('../../../server/dist/main.js', import.meta.url));

/** How long a relay may take to start on a loaded machine, in ms. */
export const RELAY_START_TIMEOUT_MS = 30_000;

export interface RelayExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface RelayProcess {
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** `ws://127.0.0.1:<port>/v1/ws` */
  readonly wsUrl: string;
  readonly child: ChildProcess;
  /** Everything the process wrote to stdout so far (its JSON log lines). */
  stdout(): string;
  /** Everything it wrote to stderr so far. */
  stderr(): string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<RelayExit>;
  /** Resolves once a stdout line containing `text` has appeared. */
  waitForLog(text: string, timeoutMs?: number): Promise<void>;
  /** Sends `signal` (SIGTERM by default) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<RelayExit>;
}

const running = new Set<ChildProcess>();

// Jest workers exit without running afterAll when a test file crashes: kill children then too.
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export interface StartRelayOptions {
  /** Fixed port (e.g. to restart a relay where it was); a free one by default. */
  readonly port?: number;
  readonly timeoutMs?: number;
}

/**
 * Starts a relay with `env` on top of a minimal environment (PATH, PORT, HOST=127.0.0.1,
 * LOG_LEVEL=info; nothing else is inherited, so a developer's REDIS_URL cannot leak in).
 */
export async function startRelay(
  env: Readonly<Record<string, string>> = {},
  options: StartRelayOptions = {},
): Promise<RelayProcess> {
  if (!existsSync(RELAY_MAIN)) {
    throw new Error(`${RELAY_MAIN} is missing: build first (npx tsc -b)`);
  }
  const port = options.port ?? (await freePort());
  const child = spawn(process.execPath, [RELAY_MAIN], {
    env: {
      PATH: process.env['PATH'] ?? '',
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let out = '';
  let err = '';
  const logWaiters: { text: string; resolve: () => void }[] = [];
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    out += chunk;
    for (let i = logWaiters.length - 1; i >= 0; i--) {
      if (out.includes(logWaiters[i]!.text)) logWaiters.splice(i, 1)[0]!.resolve();
    }
  });
  child.stderr.on('data', (chunk: string) => {
    err += chunk;
  });
  const exited = new Promise<RelayExit>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
  });

  const waitForLog = (text: string, timeoutMs = RELAY_START_TIMEOUT_MS): Promise<void> => {
    if (out.includes(text)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`relay did not log "${text}" in ${timeoutMs} ms; stderr: ${err}`));
      }, timeoutMs);
      logWaiters.push({
        text,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`relay exited before logging "${text}"; stderr: ${err}`));
      });
    });
  };

  const relay: RelayProcess = {
    port,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/v1/ws`,
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitForLog,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };

  try {
    await waitForLog('"msg":"listening"', options.timeoutMs ?? RELAY_START_TIMEOUT_MS);
    const ready = await fetch(`${relay.url}/readyz`);
    if (ready.status !== 200) throw new Error(`relay not ready: HTTP ${ready.status}`);
  } catch (e) {
    child.kill('SIGKILL');
    await exited;
    throw e;
  }
  return relay;
}

/** Kills every relay this process started that is still running; for `afterAll`. */
export async function stopAllRelays(): Promise<void> {
  const children = [...running];
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
}
