/**
 * The load generator: a child process (forked by relay-bench.ts) that runs one job against one
 * target and reports over IPC. It drives sender/recipient pairs with a fixed 1 KiB opaque
 * payload; a message counts once the recipient has received it and sent its `ack`.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { PROTOCOL_VERSION } from '@passage/shared/protocol/limits';
import {
  countError,
  openMany,
  openRecipient,
  openSender,
  type LeanConnection,
  type LeanFrame,
} from './lean-client.js';
import type {
  ClosedLoopJob,
  ClosedLoopResult,
  ErrorCounts,
  FromLoadgen,
  IdleJob,
  IdleResult,
  Job,
  OpenLoopJob,
  OpenLoopResult,
  ToLoadgen,
} from './loadgen-protocol.js';

/** The opaque payload: 1 KiB of random bytes, encoded once. */
const PAYLOAD_BYTES = 1024;
const ENVELOPE = randomBytes(PAYLOAD_BYTES).toString('base64url');

/** Connections opened at once while setting up pairs. */
const SETUP_CONCURRENCY = 128;
/** After a refused send (rate limit, overload), how long a closed-loop sender waits. */
const RETRY_AFTER_REFUSAL_MS = 5;
/** Granularity of the open-loop scheduler's timer. */
const OPEN_LOOP_TICK_MS = 1;

// Message ids: 10 random bytes for this process, then a 6-byte counter, so ids are unique
// across runs (a store remembers acknowledged ids) and cost no randomness per message.
const idBytes = Buffer.alloc(16);
randomBytes(10).copy(idBytes);
let idCounter = 0;
function nextMessageId(): string {
  idCounter++;
  idBytes.writeUIntBE(idCounter, 10, 6);
  return idBytes.toString('base64url');
}

function sendFrame(rid: number, to: string, id: string): string {
  return `{"v":${PROTOCOL_VERSION},"t":"send","rid":${rid},"to":"${to}","id":"${id}","env":"${ENVELOPE}"}`;
}

function ackFrame(id: string): string {
  return `{"v":${PROTOCOL_VERSION},"t":"ack","ids":["${id}"]}`;
}

function tell(message: FromLoadgen): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!process.send) {
      reject(new Error('loadgen must be forked with an IPC channel'));
      return;
    }
    process.send(message, undefined, {}, (err: Error | null) => (err ? reject(err) : resolve()));
  });
}

const continueWaiters: Array<() => void> = [];
function waitForContinue(): Promise<void> {
  return new Promise((resolve) => continueWaiters.push(resolve));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until `done()` or `timeoutMs`, checking every few milliseconds. */
async function waitUntil(done: () => boolean, timeoutMs: number): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!done() && performance.now() < end) await sleep(5);
}

interface Pair {
  readonly sender: LeanConnection;
  readonly recipient: LeanConnection;
  readonly mailbox: string;
  inflight: number;
  retryScheduled: boolean;
}

async function openPairs(job: ClosedLoopJob | OpenLoopJob, errors: ErrorCounts): Promise<Pair[]> {
  return openMany(job.pairs, SETUP_CONCURRENCY, async () => {
    const { conn: recipient, mailbox } = await openRecipient(job.url, job.target, errors);
    const sender = await openSender(job.url, errors);
    return { sender, recipient, mailbox, inflight: 0, retryScheduled: false };
  });
}

function closeAll(pairs: readonly Pair[]): void {
  for (const p of pairs) {
    p.sender.terminate();
    p.recipient.terminate();
  }
}

function cores(cpu: NodeJS.CpuUsage, wallMs: number): number {
  return (cpu.user + cpu.system) / 1000 / wallMs;
}

async function runClosedLoop(job: ClosedLoopJob): Promise<ClosedLoopResult> {
  const errors: ErrorCounts = {};
  await tell({ ev: 'stage', stage: 'opening pairs' });
  const pairs = await openPairs(job, errors);
  await tell({ ev: 'stage', stage: `${pairs.length} pairs open, sending` });
  const pending = new Map<string, Pair>();
  const ridToId = new Map<number, string>();
  let rid = 0;
  let stopping = false;
  let measuring = false;
  let delivered = 0;
  let duplicates = 0;

  const fill = (p: Pair): void => {
    while (!stopping && p.inflight < job.window) {
      const id = nextMessageId();
      rid = rid >= 0x7fffffff ? 1 : rid + 1;
      ridToId.set(rid, id);
      pending.set(id, p);
      p.inflight++;
      p.sender.ws.send(sendFrame(rid, p.mailbox, id));
    }
  };

  for (const p of pairs) {
    p.sender.handler = (f: LeanFrame) => {
      if (f.t === 'stored') {
        if (f.rid !== undefined) ridToId.delete(f.rid);
      } else if (f.t === 'error') {
        countError(errors, f.code ?? 'error');
        const id = f.rid === undefined ? undefined : ridToId.get(f.rid);
        if (f.rid !== undefined) ridToId.delete(f.rid);
        if (id !== undefined && pending.delete(id)) {
          p.inflight--;
          if (!p.retryScheduled) {
            p.retryScheduled = true;
            setTimeout(() => {
              p.retryScheduled = false;
              fill(p);
            }, RETRY_AFTER_REFUSAL_MS);
          }
        }
      }
    };
    p.recipient.handler = (f: LeanFrame) => {
      if (f.t !== 'deliver' || f.id === undefined) return;
      p.recipient.ws.send(ackFrame(f.id));
      const owner = pending.get(f.id);
      if (owner === undefined) {
        duplicates++;
        return;
      }
      pending.delete(f.id);
      owner.inflight--;
      if (measuring) delivered++;
      fill(owner);
    };
  }

  for (const p of pairs) fill(p);
  await sleep(job.warmupMs);
  await tell({ ev: 'measure-start' });
  measuring = true;
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  await sleep(job.durationMs);
  measuring = false;
  const measuredMs = performance.now() - start;
  const cpu = process.cpuUsage(cpuStart);
  await tell({ ev: 'measure-end' });
  stopping = true;
  await tell({ ev: 'stage', stage: `draining ${pending.size} undelivered` });
  await waitUntil(() => pending.size === 0, job.drainMs);
  await tell({ ev: 'stage', stage: `drained, ${pending.size} undelivered` });
  const undrained = pending.size;
  closeAll(pairs);
  return {
    kind: 'closed',
    delivered,
    measuredMs,
    deliveredPerSec: (delivered * 1000) / measuredMs,
    errors,
    duplicates,
    undrained,
    loadgenCores: cores(cpu, measuredMs),
  };
}

/** The q-quantile (0..1) of ascending `sorted`, nearest-rank. */
function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

async function runOpenLoop(job: OpenLoopJob): Promise<OpenLoopResult> {
  const errors: ErrorCounts = {};
  const pairs = await openPairs(job, errors);
  const intervalMs = 1000 / job.ratePerSec;
  const total = Math.ceil(((job.warmupMs + job.durationMs) * job.ratePerSec) / 1000);
  const firstMeasured = Math.ceil((job.warmupMs * job.ratePerSec) / 1000);
  // Per scheduled send j: 0 pending, 1 delivered, 2 refused; latency of delivered ones.
  const state = new Uint8Array(total);
  const latencyMs = new Float64Array(total);
  const idToIndex = new Map<string, number>();
  let outstanding = 0;
  let duplicates = 0;

  let t0 = 0;
  for (const p of pairs) {
    // rid = index + 1, so a refusal names the scheduled send it refuses.
    p.sender.handler = (f: LeanFrame) => {
      if (f.t !== 'error') return;
      countError(errors, f.code ?? 'error');
      const j = f.rid === undefined ? -1 : f.rid - 1;
      if (j >= 0 && j < total && state[j] === 0) {
        state[j] = 2;
        outstanding--;
      }
    };
    p.recipient.handler = (f: LeanFrame) => {
      if (f.t !== 'deliver' || f.id === undefined) return;
      p.recipient.ws.send(ackFrame(f.id));
      const now = performance.now();
      const j = idToIndex.get(f.id);
      if (j === undefined) {
        duplicates++;
        return;
      }
      idToIndex.delete(f.id);
      if (state[j] !== 0) return;
      state[j] = 1;
      outstanding--;
      latencyMs[j] = now - (t0 + j * intervalMs);
    };
  }

  const cpuStart = process.cpuUsage();
  let measureStartCpu = cpuStart;
  let next = 0;
  t0 = performance.now() + 20;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now();
      // Every send whose time has come goes out now, however late: a stall in the target
      // shows up as latency of the sends scheduled during it.
      while (next < total && t0 + next * intervalMs <= now) {
        if (next === firstMeasured) {
          measureStartCpu = process.cpuUsage();
          void tell({ ev: 'measure-start' });
        }
        const p = pairs[next % pairs.length]!;
        const id = nextMessageId();
        idToIndex.set(id, next);
        outstanding++;
        p.sender.ws.send(sendFrame(next + 1, p.mailbox, id));
        next++;
      }
      if (next < total) setTimeout(tick, OPEN_LOOP_TICK_MS);
      else resolve();
    };
    tick();
  });
  const cpu = process.cpuUsage(measureStartCpu);
  await tell({ ev: 'measure-end' });
  await waitUntil(() => outstanding === 0, job.drainMs);
  closeAll(pairs);

  const scheduled = total - firstMeasured;
  const samples: number[] = [];
  let lost = 0;
  for (let j = firstMeasured; j < total; j++) {
    if (state[j] === 1) samples.push(latencyMs[j]!);
    else if (state[j] === 0) lost++;
  }
  const sorted = Float64Array.from(samples).sort();
  return {
    kind: 'open',
    scheduled,
    delivered: samples.length,
    lost,
    achievedPerSec: (samples.length * 1000) / job.durationMs,
    p50Ms: quantile(sorted, 0.5),
    p99Ms: quantile(sorted, 0.99),
    p999Ms: quantile(sorted, 0.999),
    maxMs: sorted.length > 0 ? sorted[sorted.length - 1]! : Number.NaN,
    errors: duplicates > 0 ? { ...errors, 'duplicate-deliveries': duplicates } : errors,
    loadgenCores: cores(cpu, job.durationMs),
  };
}

async function runIdle(job: IdleJob): Promise<IdleResult> {
  const errors: ErrorCounts = {};
  const conns: LeanConnection[] = [];
  for (const checkpoint of job.checkpoints) {
    const more = await openMany(checkpoint - conns.length, job.connectConcurrency, async () => {
      const { conn } = await openRecipient(job.url, job.target, errors);
      return conn;
    });
    conns.push(...more);
    await tell({ ev: 'checkpoint', connections: conns.length });
    await waitForContinue();
  }
  for (const c of conns) c.terminate();
  return { kind: 'idle', connections: conns.length, errors };
}

function run(job: Job): Promise<ClosedLoopResult | OpenLoopResult | IdleResult> {
  switch (job.kind) {
    case 'closed':
      return runClosedLoop(job);
    case 'open':
      return runOpenLoop(job);
    case 'idle':
      return runIdle(job);
  }
}

process.on('message', (message: ToLoadgen) => {
  if (message.cmd === 'continue') {
    continueWaiters.shift()?.();
    return;
  }
  void (async () => {
    try {
      const result = await run(message.job);
      await tell({ ev: 'result', result });
      process.exit(0);
    } catch (err) {
      await tell({ ev: 'failed', message: err instanceof Error ? err.message : String(err) });
      process.exit(1);
    }
  })();
});
