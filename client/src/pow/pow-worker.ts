/**
 * The proof-of-work solver's Web Worker (first contact, ADR 0011): solves a relay's challenge off
 * the page's thread with the pure-JS SHA-256 (noble), reporting progress and stopping on cancel.
 *
 * Built as a file of its own, served from the page's origin: a Blob-URL worker is blocked by the
 * CSP (`script-src 'self'`, which workers fall back to) in Chromium and in Firefox, the engine of
 * Tor Browser. The page starts it through solve-in-worker.ts; messages are in messages.ts.
 *
 * The search runs in slices of SLICE_ATTEMPTS hashes; between slices the worker yields to its
 * event loop (through a MessageChannel, which is not clamped like setTimeout), so a `cancel` is
 * seen within one slice and progress goes out once per slice.
 */
/// <reference lib="webworker" />
import { sha256 } from '@passage/shared/crypto/noble';
import { toBase64url } from '@passage/shared/protocol/base64url';
import {
  PowError,
  POW_DEFAULT_MAX_ATTEMPTS,
  POW_SOLUTION_BYTES,
  PowErrorCode,
  parsePowChallenge,
  solvePow,
  type PowChallenge,
} from '@passage/shared/pow/pow';
import {
  POW_WORKER_PROTOCOL,
  PowWorkerErrorCode,
  idOf,
  parsePageMessage,
  type PowFailureCode,
  type WorkerToPage,
} from './messages.js';

declare const self: DedicatedWorkerGlobalScope;

/** Hashes per slice: tens of ms at most with the JIT, so a cancel is seen quickly. */
export const SLICE_ATTEMPTS = 16_384;

interface Job {
  readonly id: number;
  readonly challenge: PowChallenge;
  /** The next candidate, as the two u32 halves of the 8-byte solution. */
  high: number;
  low: number;
  attempts: number;
  readonly startedMs: number;
  cancelled: boolean;
}

let job: Job | undefined;
const yielder = new MessageChannel();

function post(message: WorkerToPage): void {
  self.postMessage(message);
}

function fail(id: number | null, code: PowFailureCode): void {
  post({ v: POW_WORKER_PROTOCOL, t: 'failed', id, code });
}

function startBytes(high: number, low: number): Uint8Array {
  const bytes = new Uint8Array(POW_SOLUTION_BYTES);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, high);
  view.setUint32(4, low);
  return bytes;
}

function step(): void {
  const current = job;
  if (current === undefined) return;
  if (current.cancelled) {
    job = undefined;
    post({ v: POW_WORKER_PROTOCOL, t: 'cancelled', id: current.id });
    return;
  }
  const budget = Math.min(SLICE_ATTEMPTS, POW_DEFAULT_MAX_ATTEMPTS - current.attempts);
  try {
    const solution = solvePow(current.challenge, sha256, {
      nowMs: Date.now(),
      start: startBytes(current.high, current.low),
      maxAttempts: budget,
    });
    job = undefined;
    post({
      v: POW_WORKER_PROTOCOL,
      t: 'solved',
      id: current.id,
      solution: toBase64url(solution),
      // The slice's hashes up to and including the solution's.
      attempts: current.attempts + solutionOffset(current, solution) + 1,
      ms: performance.now() - current.startedMs,
    });
    return;
  } catch (err) {
    if (!(err instanceof PowError) || err.code !== PowErrorCode.EXHAUSTED) {
      job = undefined;
      fail(current.id, err instanceof PowError ? err.code : PowWorkerErrorCode.CRASHED);
      return;
    }
  }
  current.attempts += budget;
  if (current.attempts >= POW_DEFAULT_MAX_ATTEMPTS) {
    job = undefined;
    fail(current.id, PowErrorCode.EXHAUSTED);
    return;
  }
  // Advance the 64-bit counter by the slice, carrying into the high half.
  const low = current.low + budget;
  current.low = low >>> 0;
  if (low > 0xffff_ffff) current.high = (current.high + 1) >>> 0;
  post({ v: POW_WORKER_PROTOCOL, t: 'progress', id: current.id, attempts: current.attempts });
  yielder.port2.postMessage(null);
}

/** How many candidates after the slice's start `solution` is (within one slice: < 2^32). */
function solutionOffset(current: Job, solution: Uint8Array): number {
  const low = new DataView(solution.buffer, solution.byteOffset).getUint32(4);
  return (low - current.low) >>> 0;
}

yielder.port1.onmessage = step;

self.onmessage = (event: MessageEvent<unknown>) => {
  const message = parsePageMessage(event.data);
  if (message === undefined) {
    fail(idOf(event.data), PowWorkerErrorCode.BAD_MESSAGE);
    return;
  }
  if (message.t === 'cancel') {
    if (job !== undefined && job.id === message.id) job.cancelled = true;
    return;
  }
  if (job !== undefined) {
    fail(message.id, PowWorkerErrorCode.BUSY);
    return;
  }
  let challenge: PowChallenge;
  try {
    challenge = parsePowChallenge(message.challenge);
  } catch (err) {
    fail(message.id, err instanceof PowError ? err.code : PowErrorCode.BAD_CHALLENGE);
    return;
  }
  // A random starting point (not a secret: it only keeps two solvers of one challenge apart).
  const start = self.crypto.getRandomValues(new Uint32Array(2));
  job = {
    id: message.id,
    challenge,
    high: start[0]!,
    low: start[1]!,
    attempts: 0,
    startedMs: performance.now(),
    cancelled: false,
  };
  yielder.port2.postMessage(null);
};
