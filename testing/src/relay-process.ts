/**
 * Starts the real relay as a child process (`node server/dist/main.js`, built by `npm test`;
 * run `npx tsc -b` first when running tests by hand) on a free loopback port with the given
 * environment, and waits until it is ready. Everything it prints is collected, so a test can
 * assert on its logs (redaction). The relay benchmark starts its targets the same way, with
 * another entry point, extra `node` flags and a log file.
 *
 * ```ts
 * let relay: RelayProcess;
 * beforeAll(async () => { relay = await startRelay({ MAX_INFLIGHT: '8' }); });
 * afterAll(stopAllRelays);   // never leaves a process behind, even when a test failed
 * ```
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TEST_RELAY_DEFAULTS } from './defaults.js';
import { freePort } from './ports.js';
import { httpOk, isRunning, killOnExit, stopChild, waitUntil } from './process.js';

/** The relay entry point, relative to this file in both src/ and dist/. */
export const RELAY_MAIN = fileURLToPath(new URL('../../server/dist/main.js', import.meta.url));

/** The log line the relay writes once it is listening. */
export const LISTENING_LOG = '"msg":"listening"';

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
  /**
   * Sends `signal` (SIGTERM by default) and waits for the exit; with `graceMs`, a process still
   * running that much later is killed with SIGKILL.
   */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<RelayExit>;
}

/** Relays started by this process and not yet exited, for {@link stopAllRelays}. */
const running = new Set<ChildProcess>();

export interface StartRelayOptions {
  /** Fixed port (e.g. to restart a relay where it was); a free one by default. */
  readonly port?: number;
  readonly timeoutMs?: number;
  /** The script to run instead of the relay (another build's main.js, the raw forwarder). */
  readonly main?: string;
  /** `node` flags before the script (`--cpu-prof`, heap settings). */
  readonly nodeArgs?: readonly string[];
  /** Also append everything the process prints to this file (kept after the run). */
  readonly logFile?: string;
  /**
   * The log line that says the process is listening, after which `/readyz` must answer 200 at
   * once (the relay's `listening` line by default). `null` when the process logs no such line
   * (a quieter LOG_LEVEL, the raw forwarder): `/readyz` is then polled until it answers 200.
   */
  readonly readyLog?: string | null;
}

/**
 * Starts a relay with `env` on top of a minimal environment (PATH, PORT, HOST=127.0.0.1,
 * LOG_LEVEL=info, {@link TEST_RELAY_DEFAULTS}; nothing else is inherited, so a developer's REDIS_URL cannot leak in).
 */
export async function startRelay(
  env: Readonly<Record<string, string>> = {},
  options: StartRelayOptions = {},
): Promise<RelayProcess> {
  const main = options.main ?? RELAY_MAIN;
  if (!existsSync(main)) {
    throw new Error(`${main} is missing: build first (npx tsc -b)`);
  }
  const port = options.port ?? (await freePort());
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), main], {
    env: {
      PATH: process.env['PATH'] ?? '',
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      ...TEST_RELAY_DEFAULTS,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  killOnExit(child);
  running.add(child);
  let out = '';
  let err = '';
  const logWaiters: { text: string; resolve: () => void }[] = [];
  if (options.logFile !== undefined) {
    const log = createWriteStream(options.logFile, { flags: 'a' });
    child.stdout.pipe(log, { end: false });
    child.stderr.pipe(log, { end: false });
    child.once('exit', () => log.end());
  }
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
    async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs?: number) {
      if (graceMs !== undefined) await stopChild(child, signal, graceMs);
      else if (isRunning(child)) child.kill(signal);
      return exited;
    },
  };

  const timeoutMs = options.timeoutMs ?? RELAY_START_TIMEOUT_MS;
  const readyLog = options.readyLog === undefined ? LISTENING_LOG : options.readyLog;
  try {
    if (readyLog === null) {
      await waitUntil(
        `${relay.url}/readyz`,
        timeoutMs,
        () => httpOk(`${relay.url}/readyz`),
        () => !isRunning(child),
      );
    } else {
      await waitForLog(readyLog, timeoutMs);
      const ready = await fetch(`${relay.url}/readyz`);
      if (ready.status !== 200) throw new Error(`relay not ready: HTTP ${ready.status}`);
    }
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
          if (!isRunning(child)) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
}
