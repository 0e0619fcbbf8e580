/**
 * The load generator: a child process (forked by relay-bench.ts) that runs one job against one
 * target and reports over IPC. It drives pairs of clients (both authenticated and sending to
 * each other, or an anonymous sender and a recipient) with fixed-size opaque envelopes; a
 * message counts once its recipient has received it. Recipients acknowledge in batches, one
 * `ack` frame per connection per turn of the event loop, as the client core does.
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

/** Envelopes by size, each random bytes encoded once (base64url, as the relay keeps them). */
const envelopes = new Map<number, string>();
function envelopeOf(bytes: number): string {
  let env = envelopes.get(bytes);
  if (env === undefined) {
    env = randomBytes(bytes).toString('base64url');
    envelopes.set(bytes, env);
  }
  return env;
}

/** A delivery later than this after its send counts as late, in ms. */
export const LATE_DELIVERY_MS = 1_000;
/** Most ids in one batched `ack` frame (the protocol's bound). */
const MAX_ACK_IDS = 256;

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

function sendFrame(rid: number, to: string, id: string, env: string): string {
  return `{"v":${PROTOCOL_VERSION},"t":"send","rid":${rid},"to":"${to}","id":"${id}","env":"${env}"}`;
}

/**
 * Acknowledges as a client that batches: every id delivered to a connection in one turn of the
 * event loop goes out in one `ack` frame (at most MAX_ACK_IDS ids), as the client core does.
 */
class AckBatcher {
  #ids: string[] = [];
  #scheduled = false;
  constructor(private readonly conn: LeanConnection) {}

  add(id: string): void {
    this.#ids.push(id);
    if (this.#ids.length >= MAX_ACK_IDS) {
      this.#flush();
      return;
    }
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    if (this.#ids.length === 0) return;
    const ids = this.#ids;
    this.#ids = [];
    this.conn.ws.send(`{"v":${PROTOCOL_VERSION},"t":"ack","ids":["${ids.join('","')}"]}`);
  };
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

/**
 * One direction of traffic: `sender` sends to `mailbox`, which `recipient` holds. A one-way pair
 * is one flow (an unauthenticated sender); a both-ways pair is two flows over two authenticated
 * connections, each the sender of one flow and the recipient of the other.
 */
interface Flow {
  readonly sender: LeanConnection;
  readonly recipient: LeanConnection;
  readonly mailbox: string;
  inflight: number;
  retryScheduled: boolean;
}

interface Opened {
  readonly flows: Flow[];
  readonly connections: LeanConnection[];
  /** The ack batcher of each connection that receives. */
  readonly acks: Map<LeanConnection, AckBatcher>;
}

async function openFlows(job: ClosedLoopJob | OpenLoopJob, errors: ErrorCounts): Promise<Opened> {
  const pairs = await openMany(job.pairs, SETUP_CONCURRENCY, async () => {
    const a = await openRecipient(job.url, job.target, errors);
    if (job.bothWays) {
      const b = await openRecipient(job.url, job.target, errors);
      return [
        { sender: a.conn, recipient: b.conn, mailbox: b.mailbox },
        { sender: b.conn, recipient: a.conn, mailbox: a.mailbox },
      ];
    }
    const sender = await openSender(job.url, errors);
    return [{ sender, recipient: a.conn, mailbox: a.mailbox }];
  });
  const flows: Flow[] = pairs.flat().map((f) => ({ ...f, inflight: 0, retryScheduled: false }));
  const connections = [...new Set(flows.flatMap((f) => [f.sender, f.recipient]))];
  const acks = new Map<LeanConnection, AckBatcher>();
  for (const f of flows) acks.set(f.recipient, new AckBatcher(f.recipient));
  return { flows, connections, acks };
}

function closeAll(connections: readonly LeanConnection[]): void {
  for (const c of connections) c.terminate();
}

/**
 * Sets each connection's handler: server frames for the flow it sends go to `onAnswer`,
 * deliveries to `onDeliver` (after the id is queued for the batched ack).
 */
function route(
  opened: Opened,
  onAnswer: (flow: Flow, frame: LeanFrame) => void,
  onDeliver: (id: string) => void,
): void {
  const sending = new Map<LeanConnection, Flow>();
  for (const f of opened.flows) sending.set(f.sender, f);
  for (const conn of opened.connections) {
    const flow = sending.get(conn);
    const batcher = opened.acks.get(conn);
    conn.handler = (f: LeanFrame) => {
      if (f.t === 'deliver') {
        if (batcher === undefined || f.id === undefined) return;
        batcher.add(f.id);
        onDeliver(f.id);
      } else if (flow !== undefined) {
        onAnswer(flow, f);
      }
    };
  }
}

function cores(cpu: NodeJS.CpuUsage, wallMs: number): number {
  return (cpu.user + cpu.system) / 1000 / wallMs;
}

async function runClosedLoop(job: ClosedLoopJob): Promise<ClosedLoopResult> {
  const errors: ErrorCounts = {};
  const env = envelopeOf(job.envelopeBytes);
  await tell({ ev: 'stage', stage: 'opening pairs' });
  const opened = await openFlows(job, errors);
  await tell({ ev: 'stage', stage: `${opened.flows.length} flows open, sending` });
  /** Undelivered ids → their flow and send time. */
  const pending = new Map<string, { flow: Flow; sentMs: number }>();
  const ridToId = new Map<number, string>();
  let rid = 0;
  let stopping = false;
  let measuring = false;
  let delivered = 0;
  let duplicates = 0;
  let late = 0;
  let maxLatencyMs = 0;

  const fill = (p: Flow): void => {
    const now = performance.now();
    while (!stopping && p.inflight < job.window) {
      const id = nextMessageId();
      rid = rid >= 0x7fffffff ? 1 : rid + 1;
      ridToId.set(rid, id);
      pending.set(id, { flow: p, sentMs: now });
      p.inflight++;
      p.sender.ws.send(sendFrame(rid, p.mailbox, id, env));
    }
  };

  route(
    opened,
    (p, f) => {
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
    },
    (id) => {
      const sent = pending.get(id);
      if (sent === undefined) {
        duplicates++;
        return;
      }
      pending.delete(id);
      sent.flow.inflight--;
      if (measuring) {
        delivered++;
        const latency = performance.now() - sent.sentMs;
        if (latency > LATE_DELIVERY_MS) late++;
        if (latency > maxLatencyMs) maxLatencyMs = latency;
      }
      fill(sent.flow);
    },
  );

  for (const p of opened.flows) fill(p);
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
  closeAll(opened.connections);
  return {
    kind: 'closed',
    delivered,
    measuredMs,
    deliveredPerSec: (delivered * 1000) / measuredMs,
    errors,
    duplicates,
    late,
    maxLatencyMs,
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
  const env = envelopeOf(job.envelopeBytes);
  const opened = await openFlows(job, errors);
  const flows = opened.flows;
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
  // rid = index + 1, so a refusal names the scheduled send it refuses.
  route(
    opened,
    (_flow, f) => {
      if (f.t !== 'error') return;
      countError(errors, f.code ?? 'error');
      const j = f.rid === undefined ? -1 : f.rid - 1;
      if (j >= 0 && j < total && state[j] === 0) {
        state[j] = 2;
        outstanding--;
      }
    },
    (id) => {
      const now = performance.now();
      const j = idToIndex.get(id);
      if (j === undefined) {
        duplicates++;
        return;
      }
      idToIndex.delete(id);
      if (state[j] !== 0) return;
      state[j] = 1;
      outstanding--;
      latencyMs[j] = now - (t0 + j * intervalMs);
    },
  );

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
        const p = flows[next % flows.length]!;
        const id = nextMessageId();
        idToIndex.set(id, next);
        outstanding++;
        p.sender.ws.send(sendFrame(next + 1, p.mailbox, id, env));
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
  closeAll(opened.connections);

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
