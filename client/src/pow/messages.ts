/**
 * The messages between a page and the proof-of-work Web Worker (pow-worker.ts), and their
 * parsers. A worker's `message` event carries whatever was posted to it, so each side parses what
 * it receives (`unknown` until parsed, exact keys, no extra ones) and answers or drops what does
 * not parse; nothing is cast.
 *
 * Page → worker: `solve` (a challenge as the relay sent it), `cancel`.
 * Worker → page: `progress` (hashes tried so far), `solved` (the solution, base64url as the
 * `pow.solve` frame carries it), `cancelled`, `failed` (a stable code).
 */
import type { PowChallengeWire, PowErrorCode } from '@passage/shared/pow/pow';

/** Version of this message protocol; a message of another version is refused. */
export const POW_WORKER_PROTOCOL = 1;

/** Stable codes of a failed solve, besides the solver's own {@link PowErrorCode}s. */
export const PowWorkerErrorCode = {
  /** The worker got a message that is not one of {@link PageToWorker}. */
  BAD_MESSAGE: 'pow_worker_bad_message',
  /** A `solve` arrived while another was running (one at a time per worker). */
  BUSY: 'pow_worker_busy',
  /** The worker could not be started or died (script error, blocked by the CSP). */
  CRASHED: 'pow_worker_crashed',
  /** The caller's AbortSignal cancelled the solve. */
  CANCELLED: 'pow_cancelled',
  /** The worker answered with something that is not one of {@link WorkerToPage}. */
  BAD_ANSWER: 'pow_worker_bad_answer',
} as const;
export type PowWorkerErrorCode = (typeof PowWorkerErrorCode)[keyof typeof PowWorkerErrorCode];

/** Every code a `failed` message may carry. */
export type PowFailureCode = PowErrorCode | PowWorkerErrorCode;

/** A solve request: `id` is the caller's, echoed in every answer. */
export interface SolveMessage {
  readonly v: typeof POW_WORKER_PROTOCOL;
  readonly t: 'solve';
  readonly id: number;
  readonly challenge: PowChallengeWire;
}

export interface CancelMessage {
  readonly v: typeof POW_WORKER_PROTOCOL;
  readonly t: 'cancel';
  readonly id: number;
}

export type PageToWorker = SolveMessage | CancelMessage;

export type WorkerToPage =
  | {
      readonly v: typeof POW_WORKER_PROTOCOL;
      readonly t: 'progress';
      readonly id: number;
      readonly attempts: number;
    }
  | {
      readonly v: typeof POW_WORKER_PROTOCOL;
      readonly t: 'solved';
      readonly id: number;
      /** base64url, `POW_SOLUTION_BYTES` bytes. */
      readonly solution: string;
      readonly attempts: number;
      /** Time spent solving in the worker, in ms. */
      readonly ms: number;
    }
  | { readonly v: typeof POW_WORKER_PROTOCOL; readonly t: 'cancelled'; readonly id: number }
  | {
      readonly v: typeof POW_WORKER_PROTOCOL;
      readonly t: 'failed';
      /** The request's id; null when the message that failed had none that parses. */
      readonly id: number | null;
      readonly code: PowFailureCode;
    };

type Record_ = Record<string, unknown>;

function record(input: unknown): Record_ | undefined {
  return typeof input === 'object' && input !== null && !Array.isArray(input)
    ? (input as Record_)
    : undefined;
}

function hasExactly(r: Record_, keys: readonly string[]): boolean {
  const own = Object.keys(r);
  return own.length === keys.length && keys.every((k) => Object.hasOwn(r, k));
}

function isId(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

/**
 * The request id of a message, if it has one that parses (so that a malformed request with a
 * good id can be answered under that id).
 */
export function idOf(input: unknown): number | null {
  const r = record(input);
  return r !== undefined && isId(r['id']) ? r['id'] : null;
}

/**
 * Parses what the page posted. The challenge is only checked to be an object here; the solver
 * parses it (`parsePowChallenge`) and answers its own codes.
 */
export function parsePageMessage(input: unknown): PageToWorker | undefined {
  const r = record(input);
  if (r === undefined || r['v'] !== POW_WORKER_PROTOCOL || !isId(r['id'])) return undefined;
  if (r['t'] === 'solve' && hasExactly(r, ['v', 't', 'id', 'challenge'])) {
    const challenge = record(r['challenge']);
    if (challenge === undefined) return undefined;
    return {
      v: POW_WORKER_PROTOCOL,
      t: 'solve',
      id: r['id'],
      challenge: challenge as unknown as PowChallengeWire,
    };
  }
  if (r['t'] === 'cancel' && hasExactly(r, ['v', 't', 'id'])) {
    return { v: POW_WORKER_PROTOCOL, t: 'cancel', id: r['id'] };
  }
  return undefined;
}

const FAILURE_CODE = /^pow_[a-z_]{1,40}$/;

/** Parses what the worker posted. */
export function parseWorkerMessage(input: unknown): WorkerToPage | undefined {
  const r = record(input);
  if (r === undefined || r['v'] !== POW_WORKER_PROTOCOL) return undefined;
  const v = POW_WORKER_PROTOCOL;
  switch (r['t']) {
    case 'progress':
      if (!hasExactly(r, ['v', 't', 'id', 'attempts']) || !isId(r['id']) || !isId(r['attempts'])) {
        return undefined;
      }
      return { v, t: 'progress', id: r['id'], attempts: r['attempts'] };
    case 'solved': {
      const { id, solution, attempts, ms } = r;
      if (
        !hasExactly(r, ['v', 't', 'id', 'solution', 'attempts', 'ms']) ||
        !isId(id) ||
        typeof solution !== 'string' ||
        !isId(attempts) ||
        typeof ms !== 'number' ||
        !(ms >= 0)
      ) {
        return undefined;
      }
      return { v, t: 'solved', id, solution, attempts, ms };
    }
    case 'cancelled':
      if (!hasExactly(r, ['v', 't', 'id']) || !isId(r['id'])) return undefined;
      return { v, t: 'cancelled', id: r['id'] };
    case 'failed': {
      const { id, code } = r;
      if (
        !hasExactly(r, ['v', 't', 'id', 'code']) ||
        !(id === null || isId(id)) ||
        typeof code !== 'string' ||
        !FAILURE_CODE.test(code)
      ) {
        return undefined;
      }
      return { v, t: 'failed', id, code: code as PowFailureCode };
    }
    default:
      return undefined;
  }
}
