/**
 * The page's side of the proof-of-work worker: `solveInWorker` starts pow-worker.ts (a file of
 * its own on the page's origin, never a Blob URL, which the CSP blocks), hands it the challenge
 * the relay sent in `pow.challenge`, reports progress, and resolves with the solution for the
 * `pow.solve` frame. One worker per solve, terminated when the solve ends however it ends.
 */
import type { PowChallengeWire } from '@passage/shared/pow/pow';
import {
  POW_WORKER_PROTOCOL,
  PowWorkerErrorCode,
  parseWorkerMessage,
  type PowFailureCode,
} from './messages.js';

export { PowWorkerErrorCode, type PowFailureCode } from './messages.js';

/** A solve that did not end with a solution; `code` is stable (messages.ts, pow.ts). */
export class PowWorkerError extends Error {
  override readonly name = 'PowWorkerError';
  constructor(readonly code: PowFailureCode) {
    super(`proof-of-work not solved: ${code}`);
  }
}

/** What a solve found. */
export interface PowSolved {
  /** base64url, as the `pow.solve` frame carries it. */
  readonly solution: string;
  /** Hashes tried. */
  readonly attempts: number;
  /** Time spent solving inside the worker, in ms (without starting it). */
  readonly workerMs: number;
}

/** Starts the worker; its URL is resolved by the bundler to the emitted file. */
function startWorker(): Worker {
  return new Worker(new URL('./pow-worker.ts', import.meta.url), {
    type: 'module',
    name: 'passage-pow',
  });
}

/**
 * Solves `challenge` (the relay's `pow.challenge` payload, unparsed: the worker parses it) in a
 * Web Worker. `onProgress` gets the hashes tried so far, about every 16,000; aborting `signal`
 * stops the worker and rejects with PowWorkerError('pow_cancelled').
 *
 * @throws PowWorkerError with the solver's code ('pow_bad_challenge', 'pow_expired', …) or the
 *   worker's ('pow_worker_crashed', 'pow_cancelled', …).
 */
export function solveInWorker(
  challenge: PowChallengeWire,
  onProgress?: (attempts: number) => void,
  signal?: AbortSignal,
): Promise<PowSolved> {
  return new Promise<PowSolved>((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(new PowWorkerError(PowWorkerErrorCode.CANCELLED));
      return;
    }
    let worker: Worker;
    try {
      worker = startWorker();
    } catch {
      reject(new PowWorkerError(PowWorkerErrorCode.CRASHED));
      return;
    }
    const id = 1;
    const finish = (outcome: () => void) => {
      signal?.removeEventListener('abort', onAbort);
      worker.terminate();
      outcome();
    };
    const onAbort = () => {
      // Ask the worker to stop, and do not wait for it: terminate stops it in any case.
      worker.postMessage({ v: POW_WORKER_PROTOCOL, t: 'cancel', id });
      finish(() => reject(new PowWorkerError(PowWorkerErrorCode.CANCELLED)));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    worker.onerror = (event) => {
      event.preventDefault();
      finish(() => reject(new PowWorkerError(PowWorkerErrorCode.CRASHED)));
    };
    worker.onmessageerror = () =>
      finish(() => reject(new PowWorkerError(PowWorkerErrorCode.BAD_ANSWER)));
    worker.onmessage = (event: MessageEvent<unknown>) => {
      const message = parseWorkerMessage(event.data);
      if (message === undefined || message.id !== id) {
        finish(() => reject(new PowWorkerError(PowWorkerErrorCode.BAD_ANSWER)));
        return;
      }
      switch (message.t) {
        case 'progress':
          onProgress?.(message.attempts);
          return;
        case 'solved':
          finish(() =>
            resolve({
              solution: message.solution,
              attempts: message.attempts,
              workerMs: message.ms,
            }),
          );
          return;
        case 'cancelled':
          finish(() => reject(new PowWorkerError(PowWorkerErrorCode.CANCELLED)));
          return;
        case 'failed':
          finish(() => reject(new PowWorkerError(message.code)));
          return;
      }
    };
    worker.postMessage({ v: POW_WORKER_PROTOCOL, t: 'solve', id, challenge });
  });
}
