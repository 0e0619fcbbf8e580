/**
 * The proof-of-work Web Worker in real Chromium, served by the real relay with its real headers:
 * the worker is a same-origin file (no Blob URL, no CSP change), a solve reports progress and the
 * relay admits its solution, a cancel stops the worker, and a malformed message is answered with
 * an error rather than killing it. Also measures the solve time at the default difficulty.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { fromBase64url } from '@passage/shared/protocol/base64url';
import {
  POW_NONCE_BYTES,
  createPowChallenge,
  encodePowChallenge,
  verifyPow,
  type PowChallengeWire,
} from '@passage/shared/pow/pow';
import { loadConfig } from '@passage/server/config';
import { expectedPageCsp } from '@passage/testing/page-csp';
import { startRelay, stopAllRelays, type RelayProcess } from '@passage/testing/relay-process';
import { identity } from '@passage/testing/test-client';

jest.setTimeout(120_000);

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/** Hashes per progress event (SLICE_ATTEMPTS in client/src/pow/pow-worker.ts). */
const SLICE_ATTEMPTS = 16_384;
const DEFAULTS = loadConfig({}).relay;
/** Solves measured at the default difficulty. */
const MEASURED_SOLVES = 20;

const nodeSha256 = (data: Uint8Array): Uint8Array => createHash('sha256').update(data).digest();

/** The built files: the proof-of-work module (solveInWorker) and the worker it starts. */
function builtFiles(): { module: string; worker: string } {
  const manifest = JSON.parse(
    readFileSync(new URL('../../client/dist/.vite/manifest.json', import.meta.url), 'utf8'),
  ) as Record<string, { file: string; assets?: string[]; imports?: string[] }>;
  const entry = manifest['src/pow/solve-in-worker.ts'];
  // The worker file is an asset of the entry or of a chunk it imports (the page shares it).
  const chunks = [entry, ...(entry?.imports ?? []).map((i) => manifest[i])];
  const worker = chunks.flatMap((c) => c?.assets ?? []).find((f) => f.includes('pow-worker'));
  if (entry === undefined || worker === undefined)
    throw new Error('client not built with the worker');
  return { module: `/${entry.file}`, worker: `/${worker}` };
}

/** A challenge made here (as the relay makes them) for `bits`, with the relay's TTL. */
function challenge(bits: number, ttlMs = DEFAULTS.powChallengeTtlMs): PowChallengeWire {
  return encodePowChallenge(
    createPowChallenge({
      nonce: randomBytes(POW_NONCE_BYTES),
      bits,
      to: fromBase64url(identity().mailbox)!,
      nowMs: Date.now(),
      ttlMs,
    }),
  );
}

/** Verifies a solution as the relay does (verifyPow with Node's SHA-256). */
function relayAccepts(wire: PowChallengeWire, solution: string): boolean {
  try {
    verifyPow(
      {
        v: 1,
        nonce: fromBase64url(wire.nonce)!,
        bits: wire.bits,
        exp: wire.exp,
        to: fromBase64url(wire.to)!,
      },
      fromBase64url(solution)!,
      nodeSha256,
      Date.now(),
    );
    return true;
  } catch {
    return false;
  }
}

/** What the page-side module exports (only types cross into page.evaluate). */
interface PowModule {
  solveInWorker(
    challenge: PowChallengeWire,
    onProgress?: (attempts: number) => void,
    signal?: AbortSignal,
  ): Promise<{ solution: string; attempts: number; workerMs: number }>;
}

interface Watched {
  readonly violations: string[];
  readonly workerUrls: string[];
  readonly consoleErrors: string[];
}

let relay: RelayProcess;
let browser: Browser;
let files: { module: string; worker: string };
const watched: Watched[] = [];

beforeAll(async () => {
  files = builtFiles();
  relay = await startRelay({ POW_BITS: String(DEFAULTS.powBits) });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await stopAllRelays();
});

/** The relay's page, with CSP violations and every Worker URL recorded from the first script on. */
async function openPage(): Promise<{ page: Page; seen: () => Promise<Watched> }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  const consoleErrors: string[] = [];
  page.on('console', (msg) => {
    // The contact page asks for the organization's profile, which this relay has none of (404):
    // that answer is the page's to show, not an error of the worker.
    if (msg.type() === 'error' && !msg.location().url.endsWith('/v1/org/profile')) {
      consoleErrors.push(msg.text());
    }
  });
  await page.addInitScript(() => {
    const w = window as unknown as { __violations: string[]; __workers: string[] };
    w.__violations = [];
    w.__workers = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      w.__violations.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
    const Original = window.Worker;
    window.Worker = class extends Original {
      constructor(url: string | URL, options?: WorkerOptions) {
        w.__workers.push(String(url));
        super(url, options);
      }
    };
  });
  await page.goto(relay.url);
  return {
    page,
    seen: async () => {
      const inPage = await page.evaluate(() => {
        const w = window as unknown as { __violations: string[]; __workers: string[] };
        return { violations: w.__violations, workerUrls: w.__workers };
      });
      const all = { ...inPage, consoleErrors };
      watched.push(all);
      await context.close();
      return all;
    },
  };
}

describe('the proof-of-work worker in Chromium', () => {
  it('solves the relay’s challenge in the worker and the relay admits the solution', async () => {
    const { page, seen } = await openPage();
    const to = identity().mailbox;
    const run = await page.evaluate(
      async ({ module, to }) => {
        const pow = (await import(module)) as PowModule;
        const socket = new WebSocket(`ws://${location.host}/v1/ws`, 'passage.v1');
        const frames: Record<string, unknown>[] = [];
        const waiters: (() => void)[] = [];
        socket.onmessage = (e) => {
          frames.push(JSON.parse(String(e.data)) as Record<string, unknown>);
          for (const w of waiters.splice(0)) w();
        };
        const next = async (t: string) => {
          for (;;) {
            const i = frames.findIndex((f) => f['t'] === t || f['t'] === 'error');
            if (i >= 0) return frames.splice(i, 1)[0]!;
            await new Promise<void>((resolve) => waiters.push(resolve));
          }
        };
        await next('challenge');
        socket.send(JSON.stringify({ v: 1, t: 'pow.request', rid: 1, to }));
        const offered = await next('pow.challenge');
        const progress: number[] = [];
        const solved = await pow.solveInWorker(
          offered['challenge'] as PowChallengeWire,
          (attempts) => progress.push(attempts),
        );
        socket.send(
          JSON.stringify({
            v: 1,
            t: 'pow.solve',
            rid: 2,
            nonce: (offered['challenge'] as PowChallengeWire).nonce,
            solution: solved.solution,
          }),
        );
        const answer = await next('pow.admitted');
        socket.close();
        return { challenge: offered['challenge'] as PowChallengeWire, solved, progress, answer };
      },
      { module: files.module, to },
    );
    expect(run.answer).toMatchObject({ t: 'pow.admitted', rid: 2, to });
    expect(run.challenge.bits).toBe(DEFAULTS.powBits);
    expect(relayAccepts(run.challenge, run.solved.solution)).toBe(true);
    // One progress event per whole slice searched before the one that found it.
    expect(run.progress).toEqual(
      Array.from(
        { length: Math.floor((run.solved.attempts - 1) / SLICE_ATTEMPTS) },
        (_, i) => (i + 1) * SLICE_ATTEMPTS,
      ),
    );
    const { violations, consoleErrors } = await seen();
    expect(violations).toEqual([]);
    expect(consoleErrors).toEqual([]);
  });

  it('reports progress while solving a harder challenge, and the solution verifies with the relay’s verifier', async () => {
    const { page, seen } = await openPage();
    // 2^20 hashes on average: a solve inside the first slice (no progress) has a chance of
    // about 1.5 %; three tries make a run without progress practically impossible.
    let withProgress = false;
    for (let attempt = 0; attempt < 3 && !withProgress; attempt++) {
      const wire = challenge(20);
      const run = await page.evaluate(
        async ({ module, wire }) => {
          const pow = (await import(module)) as PowModule;
          const progress: number[] = [];
          const solved = await pow.solveInWorker(wire, (n) => progress.push(n));
          return { solved, progress };
        },
        { module: files.module, wire },
      );
      expect(relayAccepts(wire, run.solved.solution)).toBe(true);
      // Tampered: one bit off in the solution and the relay refuses it.
      const bytes = fromBase64url(run.solved.solution)!;
      bytes[7] = bytes[7]! ^ 1;
      expect(relayAccepts(wire, Buffer.from(bytes).toString('base64url'))).toBe(false);
      if (run.progress.length > 0) {
        withProgress = true;
        expect(run.progress.every((n, i) => n === (i + 1) * SLICE_ATTEMPTS)).toBe(true);
        expect(run.solved.attempts).toBeGreaterThan(run.progress.at(-1)!);
      }
    }
    expect(withProgress).toBe(true);
    expect((await seen()).violations).toEqual([]);
  });

  it('stops the worker on cancel: a cancelled answer, and no progress after it', async () => {
    const { page, seen } = await openPage();
    const wire = challenge(32);
    const run = await page.evaluate(
      async ({ worker, wire }) => {
        const w = new Worker(worker, { type: 'module' });
        const got: { t: string; id?: number; attempts?: number }[] = [];
        const waiters: (() => void)[] = [];
        w.onmessage = (e: MessageEvent<{ t: string }>) => {
          got.push(e.data);
          for (const f of waiters.splice(0)) f();
        };
        const until = async (pred: () => boolean) => {
          while (!pred()) await new Promise<void>((resolve) => waiters.push(resolve));
        };
        w.postMessage({ v: 1, t: 'solve', id: 5, challenge: wire });
        await until(() => got.some((m) => m.t === 'progress'));
        w.postMessage({ v: 1, t: 'cancel', id: 5 });
        await until(() => got.some((m) => m.t === 'cancelled'));
        const at = got.length;
        await new Promise((resolve) => setTimeout(resolve, 500));
        const after = got.slice(at);
        // The worker still answers: a new solve after the cancel runs.
        w.postMessage({ v: 1, t: 'solve', id: 6, challenge: { ...wire, bits: 4 } });
        await until(() => got.some((m) => m.id === 6 && m.t !== 'progress'));
        w.terminate();
        return { cancelled: got.find((m) => m.t === 'cancelled'), after, next: got.at(-1) };
      },
      { worker: files.worker, wire },
    );
    expect(run.cancelled).toEqual({ v: 1, t: 'cancelled', id: 5 });
    expect(run.after).toEqual([]);
    // The cancelled solve left nothing behind: the next one was answered.
    expect(run.next).toMatchObject({ t: 'solved', id: 6 });
    expect((await seen()).violations).toEqual([]);
  });

  it('rejects solveInWorker with pow_cancelled when its signal aborts', async () => {
    const { page, seen } = await openPage();
    const wire = challenge(32);
    const code = await page.evaluate(
      async ({ module, wire }) => {
        const pow = (await import(module)) as PowModule;
        const controller = new AbortController();
        try {
          await pow.solveInWorker(wire, () => controller.abort(), controller.signal);
          return 'solved';
        } catch (err) {
          return (err as { code?: string }).code;
        }
      },
      { module: files.module, wire },
    );
    expect(code).toBe('pow_cancelled');
    expect((await seen()).violations).toEqual([]);
  });

  it('answers every malformed message with a failed answer and keeps working', async () => {
    const { page, seen } = await openPage();
    const good = challenge(4);
    const expired = challenge(4, 1);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const cases: [label: string, message: unknown, code: string, id: number | null][] = [
      ['a string', 'solve', 'pow_worker_bad_message', null],
      ['a number', 42, 'pow_worker_bad_message', null],
      ['null', null, 'pow_worker_bad_message', null],
      ['an array', [1, 'solve'], 'pow_worker_bad_message', null],
      ['an empty object', {}, 'pow_worker_bad_message', null],
      [
        'another protocol version',
        { v: 2, t: 'solve', id: 1, challenge: good },
        'pow_worker_bad_message',
        1,
      ],
      ['an unknown type', { v: 1, t: 'mine', id: 2, challenge: good }, 'pow_worker_bad_message', 2],
      ['no challenge', { v: 1, t: 'solve', id: 3 }, 'pow_worker_bad_message', 3],
      [
        'a challenge that is a string',
        { v: 1, t: 'solve', id: 4, challenge: 'x' },
        'pow_worker_bad_message',
        4,
      ],
      [
        'an extra key',
        { v: 1, t: 'solve', id: 5, challenge: good, extra: 1 },
        'pow_worker_bad_message',
        5,
      ],
      [
        'a negative id',
        { v: 1, t: 'solve', id: -1, challenge: good },
        'pow_worker_bad_message',
        null,
      ],
      [
        'a fractional id',
        { v: 1, t: 'solve', id: 1.5, challenge: good },
        'pow_worker_bad_message',
        null,
      ],
      [
        'a cancel with an extra key',
        { v: 1, t: 'cancel', id: 6, x: 0 },
        'pow_worker_bad_message',
        6,
      ],
      [
        'a challenge with a short nonce',
        { v: 1, t: 'solve', id: 7, challenge: { ...good, nonce: 'AAAA' } },
        'pow_bad_challenge',
        7,
      ],
      [
        'a challenge with a key too many',
        { v: 1, t: 'solve', id: 8, challenge: { ...good, more: 1 } },
        'pow_bad_challenge',
        8,
      ],
      [
        'a challenge of 33 bits',
        { v: 1, t: 'solve', id: 9, challenge: { ...good, bits: 33 } },
        'pow_bad_challenge',
        9,
      ],
      [
        'a challenge of an unknown version',
        { v: 1, t: 'solve', id: 10, challenge: { ...good, v: 2 } },
        'pow_unsupported_version',
        10,
      ],
      ['an expired challenge', { v: 1, t: 'solve', id: 11, challenge: expired }, 'pow_expired', 11],
    ];
    const answers = await page.evaluate(
      async ({ worker, messages, good }) => {
        const w = new Worker(worker, { type: 'module' });
        const got: unknown[] = [];
        const waiters: (() => void)[] = [];
        let crashed = false;
        w.onerror = () => (crashed = true);
        w.onmessage = (e: MessageEvent<unknown>) => {
          got.push(e.data);
          for (const f of waiters.splice(0)) f();
        };
        const nextAnswer = async (n: number) => {
          while (got.length < n) await new Promise<void>((resolve) => waiters.push(resolve));
          return got[n - 1];
        };
        const out: unknown[] = [];
        for (let i = 0; i < messages.length; i++) {
          w.postMessage(messages[i]);
          out.push(await nextAnswer(i + 1));
        }
        // Then a real solve on the same worker, and a second solve while it is busy.
        w.postMessage({ v: 1, t: 'solve', id: 100, challenge: good });
        let final: unknown;
        for (let n = messages.length + 1; ; n++) {
          final = await nextAnswer(n);
          if ((final as { t: string }).t !== 'progress') break;
        }
        w.terminate();
        return { out, final, crashed };
      },
      { worker: files.worker, messages: cases.map((c) => c[1]), good },
    );
    expect(answers.crashed).toBe(false);
    cases.forEach(([label, , code, id], i) => {
      expect({ label, answer: answers.out[i] }).toEqual({
        label,
        answer: { v: 1, t: 'failed', id, code },
      });
    });
    expect(answers.final).toMatchObject({ v: 1, t: 'solved', id: 100 });
    expect((await seen()).violations).toEqual([]);
  });

  it('refuses a second solve while one is running (busy) and finishes the first', async () => {
    const { page, seen } = await openPage();
    const slow = challenge(32);
    const run = await page.evaluate(
      async ({ worker, slow }) => {
        const w = new Worker(worker, { type: 'module' });
        const got: { t: string; id: number | null; code?: string }[] = [];
        const waiters: (() => void)[] = [];
        w.onmessage = (e: MessageEvent<{ t: string; id: number | null }>) => {
          got.push(e.data);
          for (const f of waiters.splice(0)) f();
        };
        const until = async (pred: () => boolean) => {
          while (!pred()) await new Promise<void>((resolve) => waiters.push(resolve));
        };
        w.postMessage({ v: 1, t: 'solve', id: 1, challenge: slow });
        w.postMessage({ v: 1, t: 'solve', id: 2, challenge: slow });
        await until(() => got.some((m) => m.id === 2));
        w.postMessage({ v: 1, t: 'cancel', id: 1 });
        await until(() => got.some((m) => m.t === 'cancelled'));
        w.terminate();
        return got.filter((m) => m.t !== 'progress');
      },
      { worker: files.worker, slow },
    );
    expect(run).toEqual([
      { v: 1, t: 'failed', id: 2, code: 'pow_worker_busy' },
      { v: 1, t: 'cancelled', id: 1 },
    ]);
    expect((await seen()).violations).toEqual([]);
  });

  it(`measures ${MEASURED_SOLVES} solves at the default difficulty (${DEFAULTS.powBits} bits) and a few at the most (${DEFAULTS.powMaxBits})`, async () => {
    const { page, seen } = await openPage();
    const measure = async (bits: number, n: number) => {
      const wires = Array.from({ length: n }, () => challenge(bits));
      const runs = await page.evaluate(
        async ({ module, wires }) => {
          const pow = (await import(module)) as PowModule;
          const out: { totalMs: number; workerMs: number; attempts: number; solution: string }[] =
            [];
          for (const wire of wires) {
            const started = performance.now();
            const solved = await pow.solveInWorker(wire);
            out.push({ totalMs: performance.now() - started, ...solved });
          }
          return out;
        },
        { module: files.module, wires },
      );
      runs.forEach((r, i) => expect(relayAccepts(wires[i]!, r.solution)).toBe(true));
      const median = (xs: number[]) => {
        const s = [...xs].sort((a, b) => a - b);
        return s[Math.floor(s.length / 2)]!;
      };
      const hashes = runs.reduce((a, r) => a + r.attempts, 0);
      const workerSeconds = runs.reduce((a, r) => a + r.workerMs, 0) / 1000;
      process.stdout.write(
        `pow in Chromium, ${bits} bits, ${n} solves: median ${median(runs.map((r) => r.totalMs)).toFixed(1)} ms ` +
          `per solveInWorker (worker start included), median ${median(runs.map((r) => r.workerMs)).toFixed(1)} ms ` +
          `solving, ${Math.round(hashes / workerSeconds).toLocaleString('en')} hashes/s\n`,
      );
    };
    await measure(DEFAULTS.powBits, MEASURED_SOLVES);
    await measure(DEFAULTS.powMaxBits, 5);
    expect((await seen()).violations).toEqual([]);
  });
});

describe('the CSP with the worker', () => {
  it('is exactly the relay’s CSP on the page, the module and the worker file: no blob: and no unsafe-eval', async () => {
    for (const path of ['/', files.module, files.worker]) {
      const response = await fetch(`${relay.url}${path}`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-security-policy')).toBe(expectedPageCsp());
    }
    expect(expectedPageCsp()).not.toContain('blob:');
    expect(expectedPageCsp()).not.toContain("'unsafe-eval'");
    expect(expectedPageCsp()).not.toMatch(/worker-src|child-src/);
  });

  it('blocks a Blob-URL worker on the page (why the worker is a file of its own)', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(relay.url);
      const outcome = await page.evaluate(async () => {
        const violation = new Promise<string>((resolve) =>
          document.addEventListener('securitypolicyviolation', (e) => resolve(e.violatedDirective)),
        );
        const url = URL.createObjectURL(
          new Blob(['postMessage("ran")'], { type: 'text/javascript' }),
        );
        const ran = new Promise<string>((resolve) => {
          try {
            const w = new Worker(url);
            w.onmessage = () => resolve('ran');
            w.onerror = () => resolve('error');
          } catch {
            resolve('threw');
          }
        });
        return { violated: await violation, ran: await ran };
      });
      expect(outcome.violated).toMatch(/^(worker-src|script-src)/);
      expect(outcome.ran).not.toBe('ran');
    } finally {
      await context.close();
    }
  });

  it('started every worker from a same-origin file, and saw no CSP violation and no console error', () => {
    expect(watched.length).toBeGreaterThan(0);
    const urls = watched.flatMap((w) => w.workerUrls);
    expect(urls.length).toBeGreaterThan(0);
    for (const url of urls)
      expect(url).toMatch(new RegExp(`^(${relay.url}|)/assets/pow-worker-[\\w-]+\\.js$`));
    expect(watched.flatMap((w) => w.violations)).toEqual([]);
    expect(watched.flatMap((w) => w.consoleErrors)).toEqual([]);
  });
});
