/**
 * Attachment blobs over HTTP (docs/adr/0014-state-and-attachment-blobs.md):
 *
 *   PUT /v1/blobs/<id>   the encrypted attachment as the body (1 … MAX_BLOB_BYTES), with
 *                        `Authorization: Bearer <token>` from `blob.reserved`; one upload per token
 *   GET /v1/blobs/<id>   the blob as `application/octet-stream`; 404 for an id that is unknown,
 *                        expired or malformed alike
 *
 * The relay checks the reservation before it reads a body, and reads at most
 * MAX_CONCURRENT_BLOB_UPLOADS bodies at once, so a stranger without a token cannot make it buffer
 * anything. The id is a capability: whoever knows it may fetch the blob, which is ciphertext
 * under a key that only travels inside the conversation. Nothing here is logged per request.
 */
import { createHash } from 'node:crypto';
import express, { type ErrorRequestHandler, type Router } from 'express';
import { MAX_BLOB_BYTES } from '@passage/shared/protocol/limits';
import { StoreError, type Store } from '../store/store.js';

/** The path prefix of both endpoints. */
export const BLOBS_PATH = '/v1/blobs';

/**
 * Most upload bodies being read at once on one relay: each may hold MAX_BLOB_BYTES and its
 * base64url text (about 2.4 × 8 MiB) until the store has it, so 8 bound that to about 160 MiB.
 * A further upload is answered 503 `overloaded` before its body is read.
 */
export const MAX_CONCURRENT_BLOB_UPLOADS = 8;

/** Stable codes of the blob endpoints' refusals (docs/protocol.md). */
export const BlobErrorCode = {
  /** No reservation of this id for this token now (any reason), or no usable header. */
  NOT_RESERVED: 'blob_not_reserved',
  /** A body or Content-Length over MAX_BLOB_BYTES; not read. */
  TOO_LARGE: 'blob_too_large',
  /** An empty body; the reservation is kept. */
  EMPTY: 'blob_empty',
  /** GET of an id that is unknown, expired or malformed. */
  NO_BLOB: 'no_blob',
  /** A method other than GET (HEAD) and PUT. */
  METHOD_NOT_ALLOWED: 'method_not_allowed',
  /** The store is full or the upload slots are taken; retry later. */
  OVERLOADED: 'overloaded',
  /** The store cannot be reached; retry later. */
  UNAVAILABLE: 'unavailable',
} as const;

const BLOB_ID = /^[A-Za-z0-9_-]{22}$/;
const BEARER = /^Bearer ([A-Za-z0-9_-]{43})$/;

export interface BlobRouteOptions {
  readonly store: Store;
}

function storeFailure(res: express.Response, err: unknown): void {
  const code =
    err instanceof StoreError && err.code === 'overloaded' ? 'overloaded' : 'unavailable';
  res.status(503).json({ code });
}

/** The SHA-256 (base64url) of the bearer token in `header`, or undefined if there is none. */
function tokenHashOf(header: string | undefined): string | undefined {
  const m = header === undefined ? null : BEARER.exec(header);
  if (m === null) return undefined;
  const token = Buffer.from(m[1]!, 'base64url');
  // Canonical spelling only: 43 characters whose spare bits are not zero name no 32 bytes.
  if (token.length !== 32 || token.toString('base64url') !== m[1]) return undefined;
  return createHash('sha256').update(token).digest('base64url');
}

export function blobRoutes(options: BlobRouteOptions): Router {
  const router = express.Router();
  const { store } = options;
  let uploading = 0;

  router.get(`${BLOBS_PATH}/:id`, (req, res) => {
    const id = req.params['id'] ?? '';
    if (!BLOB_ID.test(id)) {
      res.status(404).json({ code: BlobErrorCode.NO_BLOB });
      return;
    }
    store.getBlob(id).then(
      (blob) => {
        if (blob === null) {
          res.status(404).json({ code: BlobErrorCode.NO_BLOB });
          return;
        }
        res.status(200).type('application/octet-stream').send(Buffer.from(blob, 'base64url'));
      },
      (err: unknown) => storeFailure(res, err),
    );
  });

  router.put(
    `${BLOBS_PATH}/:id`,
    (req, res, next) => {
      const id = req.params['id'] ?? '';
      const tokenHash = tokenHashOf(req.get('authorization'));
      if (!BLOB_ID.test(id) || tokenHash === undefined) {
        res.status(403).json({ code: BlobErrorCode.NOT_RESERVED });
        return;
      }
      const length = Number(req.get('content-length') ?? '0');
      if (length > MAX_BLOB_BYTES) {
        res.status(413).json({ code: BlobErrorCode.TOO_LARGE });
        return;
      }
      if (uploading >= MAX_CONCURRENT_BLOB_UPLOADS) {
        res.status(503).json({ code: BlobErrorCode.OVERLOADED });
        return;
      }
      uploading++;
      let released = false;
      const release = () => {
        if (!released) {
          released = true;
          uploading--;
        }
      };
      res.on('close', release);
      res.locals['tokenHash'] = tokenHash;
      // The reservation is checked before a byte of the body is read.
      store.blobReserved(id, tokenHash).then(
        (reserved) => {
          if (!reserved) res.status(403).json({ code: BlobErrorCode.NOT_RESERVED });
          else next();
        },
        (err: unknown) => storeFailure(res, err),
      );
    },
    // Any content type: the body is taken as bytes, up to the limit (413 past it).
    express.raw({ type: () => true, limit: MAX_BLOB_BYTES }),
    (req, res) => {
      const body: unknown = req.body;
      const bytes = Buffer.isBuffer(body) ? body : Buffer.alloc(0);
      if (bytes.length === 0) {
        res.status(400).json({ code: BlobErrorCode.EMPTY });
        return;
      }
      const id = req.params['id'];
      store.putBlob(id, res.locals['tokenHash'] as string, bytes.toString('base64url')).then(
        (result) => {
          if (result === 'stored') res.status(201).json({ status: 'stored' });
          else res.status(403).json({ code: BlobErrorCode.NOT_RESERVED });
        },
        (err: unknown) => storeFailure(res, err),
      );
    },
  );

  const notAllowed: express.RequestHandler = (_req, res) => {
    res.status(405).set('Allow', 'GET, HEAD, PUT').json({ code: BlobErrorCode.METHOD_NOT_ALLOWED });
  };
  router.all(`${BLOBS_PATH}/:id`, notAllowed);
  router.all(BLOBS_PATH, (_req, res) => {
    res.status(404).json({ code: BlobErrorCode.NO_BLOB });
  });

  // A body past the limit, or one that cannot be read: the blob's own code, as JSON.
  const onBodyError: ErrorRequestHandler = (err, _req, res, next) => {
    const status = (err as { status?: unknown }).status;
    if (status === 413) res.status(413).json({ code: BlobErrorCode.TOO_LARGE });
    else if (typeof status === 'number' && status < 500) {
      res.status(400).json({ code: BlobErrorCode.EMPTY });
    } else next(err);
  };
  router.use(BLOBS_PATH, onBodyError);
  return router;
}
