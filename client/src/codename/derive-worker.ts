/**
 * The codename Web Worker: stretches a codename with Argon2id (ADR 0007; 32 MiB, about 0.1 s on
 * libsodium and seconds on the pure-JS backend of a slow phone) off the page's thread, so the
 * page stays responsive and can show progress. The same worker and path serve a new codename, a
 * returning one and a duress one, so none of them can be told apart by timing on the page.
 *
 * A file of its own on the page's origin (a Blob-URL worker is blocked by the CSP). One derive
 * per worker: the page terminates it after the answer, which drops the worker's memory.
 */
/// <reference lib="webworker" />
import { loadPrimitives } from '@passage/shared/crypto/backend';
import {
  ENGLISH_CODENAME_LIST,
  InvalidCodenameError,
  deriveCodenameKeys,
  readCodename,
} from '@passage/shared/crypto/codename';
import { RUSSIAN_CODENAME_LIST } from '@passage/shared/crypto/codename-ru';
import {
  CODENAME_WORKER_PROTOCOL,
  CodenameWorkerErrorCode,
  idOf,
  parseDerive,
  type WorkerAnswer,
} from './messages.js';

declare const self: DedicatedWorkerGlobalScope;

const primitives = loadPrimitives();

function post(answer: WorkerAnswer): void {
  self.postMessage(answer);
}

self.onmessage = (event: MessageEvent<unknown>) => {
  const message = parseDerive(event.data);
  if (message === undefined) {
    post({
      v: CODENAME_WORKER_PROTOCOL,
      t: 'failed',
      id: idOf(event.data),
      code: CodenameWorkerErrorCode.BAD_MESSAGE,
    });
    return;
  }
  const { id } = message;
  primitives.then(
    (p) => {
      const started = performance.now();
      try {
        // Russian and English codenames both; each list has its own parameters and salt.
        const parsed = readCodename(message.codename, [
          RUSSIAN_CODENAME_LIST,
          ENGLISH_CODENAME_LIST,
        ]);
        const keys = deriveCodenameKeys(p, parsed);
        post({
          v: CODENAME_WORKER_PROTOCOL,
          t: 'derived',
          id,
          signingSeed: keys.signingSeed,
          x25519Secret: keys.x25519Secret,
          mailboxKey: keys.mailboxKey,
          backend: p.backend,
          ms: performance.now() - started,
        });
      } catch (error) {
        const code =
          error instanceof InvalidCodenameError
            ? CodenameWorkerErrorCode.INVALID
            : CodenameWorkerErrorCode.CRASHED;
        post({ v: CODENAME_WORKER_PROTOCOL, t: 'failed', id, code });
      }
    },
    () =>
      post({ v: CODENAME_WORKER_PROTOCOL, t: 'failed', id, code: CodenameWorkerErrorCode.CRASHED }),
  );
};
