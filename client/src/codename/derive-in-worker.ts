/**
 * The page's side of the codename worker: `deriveInWorker` starts derive-worker.ts, hands it
 * what the person typed, and resolves with the codename's keys. One worker per derivation,
 * terminated when it ends however it ends. Argon2id reports no progress of its own, so the page
 * shows the time spent against the time the last derivation on this backend took.
 */
import { MAX_CODENAME_INPUT_LENGTH, type CodenameKeys } from '@passage/shared/crypto/codename';
import { asEd25519Seed, asX25519SecretKey } from '@passage/shared/crypto/keys';
import { CODENAME_WORKER_PROTOCOL, CodenameWorkerErrorCode, parseAnswer } from './messages.js';
// Built into the page's own bundle, so that it shares libsodium with the page (vite.config.ts).
import workerUrl from './derive-worker.ts?page-worker';

export { CodenameWorkerErrorCode } from './messages.js';

export class CodenameWorkerError extends Error {
  override readonly name = 'CodenameWorkerError';
  constructor(readonly code: CodenameWorkerErrorCode) {
    super(`codename not derived: ${code}`);
  }
}

export interface Derived {
  readonly keys: CodenameKeys;
  readonly backend: string;
  readonly ms: number;
}

function startWorker(): Worker {
  return new Worker(workerUrl, {
    type: 'module',
    name: 'passage-codename',
  });
}

/** @throws CodenameWorkerError ('invalid_codename', 'codename_worker_crashed', …). */
export function deriveInWorker(codename: string): Promise<Derived> {
  return new Promise<Derived>((resolve, reject) => {
    if (codename.length > MAX_CODENAME_INPUT_LENGTH) {
      reject(new CodenameWorkerError(CodenameWorkerErrorCode.INVALID));
      return;
    }
    let worker: Worker;
    try {
      worker = startWorker();
    } catch {
      reject(new CodenameWorkerError(CodenameWorkerErrorCode.CRASHED));
      return;
    }
    const id = 1;
    const finish = (outcome: () => void): void => {
      worker.terminate();
      outcome();
    };
    worker.onerror = (event) => {
      event.preventDefault();
      finish(() => reject(new CodenameWorkerError(CodenameWorkerErrorCode.CRASHED)));
    };
    worker.onmessageerror = () =>
      finish(() => reject(new CodenameWorkerError(CodenameWorkerErrorCode.BAD_ANSWER)));
    worker.onmessage = (event: MessageEvent<unknown>) => {
      const answer = parseAnswer(event.data);
      if (answer === undefined || answer.id !== id) {
        finish(() => reject(new CodenameWorkerError(CodenameWorkerErrorCode.BAD_ANSWER)));
        return;
      }
      if (answer.t === 'failed') {
        finish(() => reject(new CodenameWorkerError(answer.code)));
        return;
      }
      const keys: CodenameKeys = {
        signingSeed: asEd25519Seed(answer.signingSeed),
        x25519Secret: asX25519SecretKey(answer.x25519Secret),
        mailboxKey: answer.mailboxKey,
      };
      finish(() => resolve({ keys, backend: answer.backend, ms: answer.ms }));
    };
    worker.postMessage({ v: CODENAME_WORKER_PROTOCOL, t: 'derive', id, codename });
  });
}
