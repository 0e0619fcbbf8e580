/**
 * The messages the benchmark harness (relay-bench.ts) and its load-generator child process
 * (loadgen.ts) exchange over the `child_process` IPC channel. The load generator runs in its own
 * process so that the target's CPU and memory can be measured apart from the load's.
 */

/** What is being driven: the relay (challenge/auth) or the raw forwarder (register). */
export type TargetKind = 'relay' | 'raw';

interface JobBase {
  /** `ws://host:port/v1/ws`. */
  readonly url: string;
  readonly target: TargetKind;
}

/** How the pairs of a load job talk. */
interface Traffic {
  /**
   * True: both clients of a pair are authenticated and each sends to the other (two flows per
   * pair). False: an unauthenticated sender sends to an authenticated recipient (one flow).
   */
  readonly bothWays: boolean;
  /** Bytes of each opaque envelope before base64url (2,048: what a 1 KiB message becomes). */
  readonly envelopeBytes: number;
}

/** Closed loop: each of `pairs` senders keeps `window` messages outstanding (not yet delivered). */
export interface ClosedLoopJob extends JobBase, Traffic {
  readonly kind: 'closed';
  readonly pairs: number;
  /** Messages outstanding per flow (per direction of a pair). */
  readonly window: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** After the window closes, how long to wait for outstanding messages to arrive. */
  readonly drainMs: number;
}

/**
 * Open loop: sends are scheduled at fixed intervals regardless of answers, so a stall shows up
 * as latency instead of silently lowering the offered load (no coordinated omission).
 */
export interface OpenLoopJob extends JobBase, Traffic {
  readonly kind: 'open';
  readonly pairs: number;
  readonly ratePerSec: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly drainMs: number;
}

/** Opens authenticated (or registered) idle connections, pausing at each checkpoint count. */
export interface IdleJob extends JobBase {
  readonly kind: 'idle';
  /** Ascending connection counts; at each, the harness is told and measures the target. */
  readonly checkpoints: readonly number[];
  /** Connections being opened at once. */
  readonly connectConcurrency: number;
}

export type Job = ClosedLoopJob | OpenLoopJob | IdleJob;

/** Counts by error code (and `close:<code>` for connections the target closed). */
export type ErrorCounts = Record<string, number>;

export interface ClosedLoopResult {
  readonly kind: 'closed';
  readonly delivered: number;
  readonly measuredMs: number;
  readonly deliveredPerSec: number;
  readonly errors: ErrorCounts;
  readonly duplicates: number;
  /** Deliveries (in the measured window) later than LATE_DELIVERY_MS after their send. */
  readonly late: number;
  /** The slowest delivery in the measured window, send to delivery, in ms. */
  readonly maxLatencyMs: number;
  /** Messages still outstanding after the drain period (a store that lost them shows here). */
  readonly undrained: number;
  /** The load generator's own CPU during the measured window, in cores (1 = one core busy). */
  readonly loadgenCores: number;
}

export interface OpenLoopResult {
  readonly kind: 'open';
  /** Sends scheduled inside the measured window. */
  readonly scheduled: number;
  /** Of those, delivered (and acked). */
  readonly delivered: number;
  /** Of those, neither delivered nor refused by the end of the drain. */
  readonly lost: number;
  readonly achievedPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
  readonly errors: ErrorCounts;
  readonly loadgenCores: number;
}

export interface IdleResult {
  readonly kind: 'idle';
  readonly connections: number;
  readonly errors: ErrorCounts;
}

export type JobResult = ClosedLoopResult | OpenLoopResult | IdleResult;

/** Harness → load generator. */
export type ToLoadgen = { readonly cmd: 'run'; readonly job: Job } | { readonly cmd: 'continue' };

/** Load generator → harness. */
export type FromLoadgen =
  /** How far the job got; a phase that times out reports the last one. */
  | { readonly ev: 'stage'; readonly stage: string }
  | { readonly ev: 'measure-start' }
  | { readonly ev: 'measure-end' }
  | { readonly ev: 'checkpoint'; readonly connections: number }
  | { readonly ev: 'result'; readonly result: JobResult }
  | { readonly ev: 'failed'; readonly message: string };
