/**
 * `npm run bench:page`: the contact page on a cheap phone over a slow connection (issue
 * "Bundle"). It builds nothing itself (the script runs `npm run build` first), measures the
 * bundle against its budget (testing/src/bundle-budget.ts, the module the budget test uses),
 * starts `npm start`'s own process (`cli/dist/start.js`: the relay with the demo organization)
 * on a free loopback port behind a gzip front (gzip-front.ts: the relay serves its files
 * uncompressed, a deployment's TLS front compresses them), and drives real Chromium
 * (/usr/bin/chromium), one fresh browser per run, with the cache disabled and, over the DevTools
 * protocol, `Emulation.setCPUThrottlingRate {rate: 4}` and `Network.emulateNetworkConditions`
 * (400 kbit/s down and up, 400 ms latency). Measured, from navigation start
 * (`performance.timeOrigin`) in the page's own clock:
 *
 * - `quickExitMs`: the frame is on screen with its quick-exit button (the shell, no crypto);
 * - `firstScreenMs`: the welcome screen's "start" button is rendered, with the quick exit. The
 *   welcome screen shows the organization and its fingerprint, so it waits for the crypto
 *   backend and the verified profile (client/src/contact/load.ts);
 * - `readyToSendMs`: "start" is clicked as soon as it is there, and the first screen of the
 *   first message (the intake form, or the message form when the organization asks nothing) is
 *   rendered with its submit button enabled and the crypto backend loaded (`data-backend` on
 *   `<html>`, set by load.ts). Sending needs nothing else fetched: the codename and
 *   proof-of-work workers start on send;
 * - `readyToSendNoWasmMs`: the same with `WebAssembly` undefined in the page, as in Tor Browser
 *   at "Safer", so that the page takes the pure-JS (noble) path; a run whose page reports
 *   another backend fails the bench. Chromium 156 ignores `--js-flags=--noexpose_wasm` (Blink
 *   installs `WebAssembly` anyway), so the global is deleted by a script that runs before the
 *   page's own (only the page: ready to send starts no worker);
 * - `readyToSendNoWasmJitlessMs`: the same with `--js-flags=--jitless --noexpose_wasm`, which
 *   does take `WebAssembly` away (in workers too) and also the JIT, as Tor Browser at "Safer"
 *   does;
 * - `codenameDeriveNoWasmJitlessMs`: one codename stretched by the page's codename worker
 *   (Argon2id, t = 3, m = 32 MiB, ADR 0007) with `--js-flags=--jitless --noexpose_wasm`, as the
 *   worker times it (`Derived.ms`); the page imports the built `deriveInWorker` module, as the
 *   browser test of the worker does. No CPU or network throttling (the figure is the KDF's own
 *   time on this machine's cores; DevTools CPU throttling does not reach a worker).
 *
 * Each figure is the median and the maximum of `--runs` runs (5 by default). Every run has a
 * hard timeout; the whole bench has one too. Writes bench-results/page.json and prints a table
 * against the targets.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { loadPrimitives } from '@passage/shared/crypto/backend';
import { generateCodename } from '@passage/shared/crypto/codename';
import {
  BUDGETS,
  MANIFEST_PATH,
  measureBundle,
  parseManifest,
} from '@passage/testing/bundle-budget';
import { freePort } from '@passage/testing/ports';
import { httpOk, isRunning, waitUntil } from '@passage/testing/process';
import { startGzipFront } from './gzip-front.js';

const CLIENT_DIST = fileURLToPath(new URL('../../client/dist', import.meta.url));
const START_MAIN = fileURLToPath(new URL('../../cli/dist/start.js', import.meta.url));
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-quic',
];
/**
 * V8 without its JIT; Chromium then has no `WebAssembly` in the page or in its workers.
 * (`--js-flags=--noexpose_wasm` alone leaves `WebAssembly` defined in Chromium 156: Blink
 * installs it whatever V8's flag says.)
 */
const JITLESS_NO_WASM_FLAGS = '--js-flags=--jitless --noexpose_wasm';

/** How a run takes WebAssembly away, if it does. */
type WasmMode = 'wasm' | 'no-wasm' | 'jitless';

/** DevTools CPU throttling: 4× slower than this machine. */
export const CPU_THROTTLING_RATE = 4;
/** 400 kbit/s, in bytes per second, both ways. */
export const THROUGHPUT_BYTES_PER_SECOND = (400 * 1000) / 8;
/** Added round-trip latency. */
export const LATENCY_MS = 400;

export const TARGETS = {
  shellGzipBytes: BUDGETS.shellGzipBytes,
  totalGzipBytes: BUDGETS.pageGzipBytes,
  firstScreenMs: 3_000,
  readyToSendMs: 8_000,
  readyToSendNoWasmMs: 8_000,
} as const;

/** One page run, from navigation to ready to send. */
const PAGE_RUN_TIMEOUT_MS = 90_000;
/** One jitless derivation (about 30 s on a 2-core machine without throttling). */
const DERIVE_RUN_TIMEOUT_MS = 240_000;
/** The demo relay coming up and publishing its profile. */
const DEMO_START_TIMEOUT_MS = 60_000;
/** The whole bench. */
const BENCH_TIMEOUT_MS = 30 * 60_000;

function option(name: string): string | undefined {
  const prefix = `--${name}=`;
  return process.argv.find((a) => a.startsWith(prefix))?.slice(prefix.length);
}

const RUNS = Number(option('runs') ?? 5);
if (!Number.isSafeInteger(RUNS) || RUNS < 1 || RUNS > 50) {
  throw new Error('--runs must be an integer from 1 to 50');
}

function say(line: string): void {
  process.stdout.write(line + '\n');
}

async function within<T>(what: string, ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// The demo relay (npm start's process) and the gzip front

interface Demo {
  readonly child: ChildProcess;
  readonly relayUrl: string;
}

/** `node cli/dist/start.js` in a process group of its own, so that its relay stops with it. */
async function startDemo(): Promise<Demo> {
  const port = await freePort();
  const child = spawn(process.execPath, [START_MAIN], {
    env: {
      PATH: process.env['PATH'] ?? '',
      PORT: String(port),
      HOST: '127.0.0.1',
      // start.js finds the relay's port in its `listening` line, an info line.
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  let err = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => (err = (err + chunk).slice(-4_000)));
  process.once('exit', () => killGroup(child, 'SIGKILL'));
  const relayUrl = `http://127.0.0.1:${port}`;
  try {
    await waitUntil(
      'the demo organization',
      DEMO_START_TIMEOUT_MS,
      () => httpOk(`${relayUrl}/v1/org/profile`),
      () => !isRunning(child),
    );
  } catch (error) {
    killGroup(child, 'SIGKILL');
    throw new Error(`${error instanceof Error ? error.message : 'demo failed'}\n${err}`, {
      cause: error,
    });
  }
  return { child, relayUrl };
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || !isRunning(child)) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

async function stopDemo(demo: Demo): Promise<void> {
  if (!isRunning(demo.child)) return;
  const exited = new Promise<void>((resolve) => demo.child.once('exit', () => resolve()));
  killGroup(demo.child, 'SIGTERM');
  const timer = setTimeout(() => killGroup(demo.child, 'SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

// ---------------------------------------------------------------------------------------------
// One run in Chromium

interface PageMarks {
  quickExitMs?: number;
  firstScreenMs?: number;
  readyToSendMs?: number;
  backend?: string;
  wasm?: string;
}

interface PageRun {
  readonly quickExitMs: number;
  readonly firstScreenMs: number;
  readonly readyToSendMs: number;
  readonly backend: string;
}

/**
 * Installed before the page's own scripts: watches the DOM and notes, in the page's clock
 * (ms since navigation start), the frame after each condition first holds.
 */
function watchPage(): void {
  const marks: PageMarks = { wasm: typeof (globalThis as { WebAssembly?: unknown }).WebAssembly };
  (window as unknown as { __pageMarks: PageMarks }).__pageMarks = marks;
  const afterFrame = (set: (ms: number) => void) =>
    requestAnimationFrame(() => setTimeout(() => set(performance.now()), 0));
  let exit = false;
  let start = false;
  let ready = false;
  const check = () => {
    const exitButton = document.querySelector('button.exit');
    if (!exit && exitButton !== null) {
      exit = true;
      afterFrame((ms) => (marks.quickExitMs = ms));
    }
    const startButton = document.querySelector('[data-action="start"]');
    if (!start && exitButton !== null && startButton !== null) {
      if (startButton.getClientRects().length > 0) {
        start = true;
        afterFrame((ms) => (marks.firstScreenMs = ms));
      }
    }
    const main = document.querySelector('main[data-screen]');
    const screen = main?.getAttribute('data-screen');
    const backend = document.documentElement.dataset['backend'];
    const submit = main?.querySelector('form button[type="submit"]');
    if (
      !ready &&
      (screen === 'intake' || screen === 'message') &&
      backend !== undefined &&
      submit instanceof HTMLButtonElement &&
      !submit.disabled
    ) {
      ready = true;
      marks.backend = backend;
      afterFrame((ms) => (marks.readyToSendMs = ms));
    }
  };
  new MutationObserver(check).observe(document, {
    subtree: true,
    childList: true,
    attributes: true,
  });
}

async function launch(jsFlags?: string): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: jsFlags === undefined ? CHROMIUM_ARGS : [...CHROMIUM_ARGS, jsFlags],
  });
}

/** One throttled page load, start clicked as soon as it is there. */
async function pageRun(url: string, mode: WasmMode): Promise<PageRun> {
  const browser = await launch(mode === 'jitless' ? JITLESS_NO_WASM_FLAGS : undefined);
  const want = mode === 'wasm' ? 'libsodium' : 'noble';
  try {
    return await within(
      'page run',
      PAGE_RUN_TIMEOUT_MS,
      (async () => {
        const context = await browser.newContext();
        const page = await context.newPage();
        const cdp = await context.newCDPSession(page);
        await cdp.send('Network.enable');
        await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
        await cdp.send('Network.emulateNetworkConditions', {
          offline: false,
          latency: LATENCY_MS,
          downloadThroughput: THROUGHPUT_BYTES_PER_SECOND,
          uploadThroughput: THROUGHPUT_BYTES_PER_SECOND,
        });
        await cdp.send('Emulation.setCPUThrottlingRate', { rate: CPU_THROTTLING_RATE });
        if (mode === 'no-wasm') {
          await page.addInitScript(() => {
            delete (globalThis as { WebAssembly?: unknown }).WebAssembly;
          });
        }
        await page.addInitScript(watchPage);
        await page.goto(url, { waitUntil: 'commit' });
        await page.click('[data-action="start"]', { timeout: PAGE_RUN_TIMEOUT_MS });
        await page.waitForFunction(
          () =>
            (window as unknown as { __pageMarks: PageMarks }).__pageMarks.readyToSendMs !==
            undefined,
          undefined,
          { timeout: PAGE_RUN_TIMEOUT_MS, polling: 100 },
        );
        const marks = await page.evaluate(
          () => (window as unknown as { __pageMarks: PageMarks }).__pageMarks,
        );
        const { quickExitMs, firstScreenMs, readyToSendMs, backend } = marks;
        if (
          quickExitMs === undefined ||
          firstScreenMs === undefined ||
          readyToSendMs === undefined ||
          backend === undefined
        ) {
          throw new Error(`a mark is missing: ${JSON.stringify(marks)}`);
        }
        if (backend !== want) {
          throw new Error(
            `the page took the ${backend} path (WebAssembly: ${marks.wasm}), not ${want}`,
          );
        }
        return { quickExitMs, firstScreenMs, readyToSendMs, backend };
      })(),
    );
  } finally {
    await browser.close();
  }
}

interface DeriveRun {
  /** Argon2id and the key split inside the worker, as the worker times it. */
  readonly workerMs: number;
  /** From `deriveInWorker()` called to its answer (the worker's start included). */
  readonly wallMs: number;
  readonly backend: string;
}

/** The built module that exports `deriveInWorker` (the `codename` entry, client/vite.config.ts). */
function codenameModule(): string {
  const manifest = parseManifest(readFileSync(`${CLIENT_DIST}/${MANIFEST_PATH}`, 'utf8'));
  const entry = manifest['src/codename/derive-in-worker.ts'];
  if (entry === undefined) throw new Error('the client was built without the codename entry');
  return `/${entry.file}`;
}

async function deriveRun(url: string, codename: string): Promise<DeriveRun> {
  const browser = await launch(JITLESS_NO_WASM_FLAGS);
  try {
    return await within(
      'jitless derivation',
      DERIVE_RUN_TIMEOUT_MS,
      (async () => {
        const page = await (await browser.newContext()).newPage();
        await page.goto(url);
        // The page settles first (welcome shown), so that it does not compete for the cores.
        await page.waitForSelector('[data-action="start"]', { timeout: DERIVE_RUN_TIMEOUT_MS });
        const run = await page.evaluate(
          async ({ module, codename }) => {
            const m = (await import(module)) as {
              deriveInWorker(c: string): Promise<{ backend: string; ms: number }>;
            };
            const started = performance.now();
            const d = await m.deriveInWorker(codename);
            return {
              workerMs: d.ms,
              wallMs: performance.now() - started,
              backend: d.backend,
              wasm: typeof (globalThis as { WebAssembly?: unknown }).WebAssembly,
            };
          },
          { module: codenameModule(), codename },
        );
        if (run.backend !== 'noble' || run.wasm !== 'undefined') {
          throw new Error(`the worker ran on ${run.backend} (WebAssembly: ${run.wasm})`);
        }
        return { workerMs: run.workerMs, wallMs: run.wallMs, backend: run.backend };
      })(),
    );
  } finally {
    await browser.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Figures

interface Figure {
  readonly median: number;
  readonly max: number;
  readonly runs: readonly number[];
}

function figure(values: readonly number[]): Figure {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  const round = (n: number) => Math.round(n);
  return { median: round(median), max: round(sorted.at(-1)!), runs: values.map(round) };
}

function row(name: string, value: string, target: string, ok: boolean | undefined): string {
  const mark = ok === undefined ? ' ' : ok ? '✓' : '✗';
  return `${name.padEnd(32)} ${value.padStart(22)}   ${target.padEnd(10)} ${mark}`;
}

async function main(): Promise<void> {
  const hardStop = setTimeout(() => {
    process.stderr.write(`bench:page: over ${BENCH_TIMEOUT_MS / 60_000} min; stopping\n`);
    process.exit(2);
  }, BENCH_TIMEOUT_MS);
  hardStop.unref();

  const loadBefore = loadavg();
  const bundle = measureBundle(CLIENT_DIST);
  const p = await loadPrimitives();
  const demo = await startDemo();
  const front = await startGzipFront(Number(new URL(demo.relayUrl).port));
  let chromiumVersion: string;
  const wasm: PageRun[] = [];
  const noWasm: PageRun[] = [];
  const jitless: PageRun[] = [];
  const derive: DeriveRun[] = [];
  try {
    const probe = await launch();
    chromiumVersion = probe.version();
    await probe.close();
    for (let i = 0; i < RUNS; i++) {
      wasm.push(await pageRun(front.url, 'wasm'));
      say(`run ${i + 1}/${RUNS} WebAssembly: ${JSON.stringify(wasm.at(-1))}`);
      noWasm.push(await pageRun(front.url, 'no-wasm'));
      say(`run ${i + 1}/${RUNS} no WebAssembly: ${JSON.stringify(noWasm.at(-1))}`);
      jitless.push(await pageRun(front.url, 'jitless'));
      say(`run ${i + 1}/${RUNS} jitless, no WebAssembly: ${JSON.stringify(jitless.at(-1))}`);
    }
    for (let i = 0; i < RUNS; i++) {
      derive.push(await deriveRun(front.url, generateCodename(p)));
      say(`run ${i + 1}/${RUNS} jitless derivation: ${JSON.stringify(derive.at(-1))}`);
    }
  } finally {
    await front.close();
    await stopDemo(demo);
  }

  const figures = {
    quickExitMs: figure(wasm.map((r) => r.quickExitMs)),
    firstScreenMs: figure(wasm.map((r) => r.firstScreenMs)),
    readyToSendMs: figure(wasm.map((r) => r.readyToSendMs)),
    quickExitNoWasmMs: figure(noWasm.map((r) => r.quickExitMs)),
    firstScreenNoWasmMs: figure(noWasm.map((r) => r.firstScreenMs)),
    readyToSendNoWasmMs: figure(noWasm.map((r) => r.readyToSendMs)),
    firstScreenNoWasmJitlessMs: figure(jitless.map((r) => r.firstScreenMs)),
    readyToSendNoWasmJitlessMs: figure(jitless.map((r) => r.readyToSendMs)),
    codenameDeriveNoWasmJitlessMs: figure(derive.map((r) => r.workerMs)),
    codenameDeriveNoWasmJitlessWallMs: figure(derive.map((r) => r.wallMs)),
  };
  const results = {
    shellGzipBytes: bundle.shellGzipBytes,
    totalGzipBytes: bundle.totalGzipBytes,
    firstScreenMs: figures.firstScreenMs.median,
    readyToSendMs: figures.readyToSendMs.median,
    readyToSendNoWasmMs: figures.readyToSendNoWasmMs.median,
    codenameDeriveNoWasmJitlessMs: figures.codenameDeriveNoWasmJitlessMs.median,
    pageGzipBytes: bundle.pageGzipBytes,
    overBudget: bundle.overBudget,
    figures,
    targets: TARGETS,
    files: {
      shell: bundle.shell,
      libsodium: bundle.page.libsodium,
      noble: bundle.page.noble,
    },
    environment: {
      chromium: chromiumVersion,
      cpuThrottlingRate: CPU_THROTTLING_RATE,
      network: {
        downloadBytesPerSecond: THROUGHPUT_BYTES_PER_SECOND,
        uploadBytesPerSecond: THROUGHPUT_BYTES_PER_SECOND,
        latencyMs: LATENCY_MS,
        cacheDisabled: true,
        servedGzipped: true,
      },
      noWasm: 'WebAssembly deleted from the page by an init script (JIT on)',
      noWasmJitless: JITLESS_NO_WASM_FLAGS,
      jitlessDerivationThrottled: false,
      runs: RUNS,
      cores: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      loadAverageBefore: loadBefore,
      loadAverageAfter: loadavg(),
      node: process.version,
      date: new Date().toISOString(),
    },
  };
  mkdirSync('bench-results', { recursive: true });
  writeFileSync('bench-results/page.json', JSON.stringify(results, null, 2) + '\n');

  const kb = (n: number) => `${(n / 1000).toFixed(1)} KB`;
  const ms = (f: Figure) => `${f.median} (max ${f.max}) ms`;
  say('');
  say(
    `contact page — Chromium ${chromiumVersion}, CPU ×${CPU_THROTTLING_RATE}, ` +
      `${(THROUGHPUT_BYTES_PER_SECOND * 8) / 1000} kbit/s, ${LATENCY_MS} ms RTT, cache off, ` +
      `served gzipped; ${RUNS} runs; ${cpus().length} cores, load ${loadBefore.map((l) => l.toFixed(2)).join(' ')}`,
  );
  say(row('figure', 'median (max)', 'target', undefined));
  say(
    row(
      'shellGzipBytes',
      kb(bundle.shellGzipBytes),
      `≤ ${kb(TARGETS.shellGzipBytes)}`,
      bundle.shellGzipBytes <= TARGETS.shellGzipBytes,
    ),
  );
  say(
    row(
      'totalGzipBytes (libsodium path)',
      kb(bundle.pageGzipBytes.libsodium),
      `≤ ${kb(TARGETS.totalGzipBytes)}`,
      bundle.pageGzipBytes.libsodium <= TARGETS.totalGzipBytes,
    ),
  );
  say(
    row(
      'totalGzipBytes (noble path)',
      kb(bundle.pageGzipBytes.noble),
      `≤ ${kb(TARGETS.totalGzipBytes)}`,
      bundle.pageGzipBytes.noble <= TARGETS.totalGzipBytes,
    ),
  );
  say(row('quickExitMs', ms(figures.quickExitMs), '', undefined));
  say(
    row(
      'firstScreenMs',
      ms(figures.firstScreenMs),
      `≤ ${TARGETS.firstScreenMs} ms`,
      figures.firstScreenMs.median <= TARGETS.firstScreenMs,
    ),
  );
  say(
    row(
      'readyToSendMs',
      ms(figures.readyToSendMs),
      `≤ ${TARGETS.readyToSendMs} ms`,
      figures.readyToSendMs.median <= TARGETS.readyToSendMs,
    ),
  );
  say(row('quickExitNoWasmMs', ms(figures.quickExitNoWasmMs), '', undefined));
  say(
    row(
      'firstScreenNoWasmMs',
      ms(figures.firstScreenNoWasmMs),
      `≤ ${TARGETS.firstScreenMs} ms`,
      figures.firstScreenNoWasmMs.median <= TARGETS.firstScreenMs,
    ),
  );
  say(
    row(
      'readyToSendNoWasmMs',
      ms(figures.readyToSendNoWasmMs),
      `≤ ${TARGETS.readyToSendNoWasmMs} ms`,
      figures.readyToSendNoWasmMs.median <= TARGETS.readyToSendNoWasmMs,
    ),
  );
  say(
    row(
      'readyToSendNoWasmJitlessMs',
      ms(figures.readyToSendNoWasmJitlessMs),
      `≤ ${TARGETS.readyToSendNoWasmMs} ms`,
      figures.readyToSendNoWasmJitlessMs.median <= TARGETS.readyToSendNoWasmMs,
    ),
  );
  say(
    row('codenameDeriveNoWasmJitlessMs', ms(figures.codenameDeriveNoWasmJitlessMs), '', undefined),
  );
  say('');
  say(
    `load average after: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  say('wrote bench-results/page.json');
  clearTimeout(hardStop);
}

await main();
