/**
 * The client core's port to the relay's attachment blobs (`PUT` / `GET /v1/blobs/<id>`,
 * docs/protocol.md "Attachment blobs (HTTP)"), injected like the WebSocket transport: a page may
 * pass its own (an XMLHttpRequest one, for upload progress), Node and tests use
 * `fetchBlobTransport` over the global `fetch`. Every refusal and network failure becomes an
 * `AttachmentError` with a stable code; `uploadBlob` and `downloadBlob` retry the retryable ones
 * a bounded number of times with back-off, an upload with a new reservation when its token was
 * spent or expired.
 *
 * The client layer imports no DOM and no Node module: `fetch`, its response, and
 * `AbortController` are typed structurally here and looked up only when the adapter is made.
 */
import { utf8Decode } from '../org/utf8.js';
import { BLOB_RESERVATION_TTL_MS, MAX_BLOB_BYTES } from '../protocol/limits.js';
import { AttachmentError, AttachmentErrorCode } from './attachments.js';
import { isRetryable } from './errors.js';
import { systemClock, type Clock, type TimerHandle } from './transport.js';

/** How far a transfer has come: bytes so far, and the whole when known. */
export interface BlobProgress {
  readonly bytes: number;
  readonly total: number | undefined;
}

export type BlobProgressListener = (progress: BlobProgress) => void;

/** Uploads and downloads of encrypted attachment blobs. */
export interface BlobTransport {
  /**
   * Uploads `bytes` as blob `id` with its reservation's `token`; resolves once the relay has
   * stored it. Progress may be coarse (start and end only).
   *
   * @throws AttachmentError (`blob_not_reserved`, `blob_too_large`, `blob_empty`, `overloaded`,
   *   `unavailable`, `blob_network`, `blob_timeout`, `blob_bad_reply`)
   */
  put(
    id: string,
    token: string,
    bytes: Uint8Array,
    onProgress?: BlobProgressListener,
  ): Promise<void>;
  /**
   * Downloads blob `id`, reading at most `maxBytes` (MAX_BLOB_BYTES by default): a longer body
   * is cancelled and refused with `blob_too_large`.
   *
   * @throws AttachmentError (`no_blob`, `blob_too_large`, `overloaded`, `unavailable`,
   *   `blob_network`, `blob_timeout`, `blob_bad_reply`)
   */
  get(id: string, onProgress?: BlobProgressListener, maxBytes?: number): Promise<Uint8Array>;
}

// ---------------------------------------------------------------------------------------------
// The fetch adapter

/** The part of a WHATWG body stream reader this adapter uses. */
interface ReaderLike {
  read(): Promise<{ readonly done: boolean; readonly value?: Uint8Array | undefined }>;
  cancel(): Promise<void>;
}

/** The part of a WHATWG `Response` this adapter uses. */
export interface FetchResponseLike {
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  readonly body: { getReader(): ReaderLike } | null;
  arrayBuffer(): Promise<ArrayBuffer>;
}

export interface FetchInitLike {
  readonly method: 'GET' | 'PUT';
  readonly headers: Record<string, string>;
  readonly body?: Uint8Array;
  readonly signal?: unknown;
  /** No cookie, no HTTP cache: the blob id is a capability, and nothing is kept. */
  readonly credentials: 'omit';
  readonly cache: 'no-store';
}

export type FetchLike = (url: string, init: FetchInitLike) => Promise<FetchResponseLike>;

interface AbortControllerLike {
  readonly signal: unknown;
  abort(): void;
}
type AbortControllerConstructorLike = new () => AbortControllerLike;

/** A download with no byte for this long is aborted (`blob_timeout`), in ms. */
export const BLOB_STALL_TIMEOUT_MS = 60_000;

/**
 * An upload not answered within this is aborted (`blob_timeout`), in ms: the reservation's own
 * lifetime (a fetch upload reports no progress, so no stall can be told from a slow link).
 */
export const BLOB_UPLOAD_TIMEOUT_MS = BLOB_RESERVATION_TTL_MS;

/** Most bytes of an error answer read (its `{"code": …}`). */
const MAX_ERROR_BODY_BYTES = 1_024;

export interface FetchBlobOptions {
  /** The relay's HTTP origin (`https://relay.example`), without a path. */
  readonly baseUrl: string;
  /** The global `fetch` by default. */
  readonly fetch?: FetchLike;
  /** The real clock by default (timeouts). */
  readonly clock?: Clock;
  readonly stallTimeoutMs?: number;
  readonly uploadTimeoutMs?: number;
}

/**
 * The relay's refusal as a code, by HTTP status and, for 400 and 503, the body's `code`
 * (docs/protocol.md "Attachment blobs (HTTP)"); a 429 or a 5xx the relay does not send (a proxy's)
 * is taken as its nearest retryable code, anything else is `blob_bad_reply`.
 */
export function blobRefusalCode(status: number, code: unknown): AttachmentErrorCode {
  switch (status) {
    case 403:
      return AttachmentErrorCode.BLOB_NOT_RESERVED;
    case 413:
      return AttachmentErrorCode.BLOB_TOO_LARGE;
    case 404:
      return AttachmentErrorCode.NO_BLOB;
    case 400:
      return code === 'blob_empty' ? AttachmentErrorCode.BLOB_EMPTY : AttachmentErrorCode.BAD_REPLY;
    case 429:
      return AttachmentErrorCode.OVERLOADED;
    case 503:
      return code === 'overloaded'
        ? AttachmentErrorCode.OVERLOADED
        : AttachmentErrorCode.UNAVAILABLE;
    default:
      // A proxy's 502 or 504, or the relay's 500: the relay cannot be reached now.
      return status >= 500 && status <= 599
        ? AttachmentErrorCode.UNAVAILABLE
        : AttachmentErrorCode.BAD_REPLY;
  }
}

/**
 * A blob transport over `fetch`: download progress from the body stream, upload progress at
 * start and end only.
 */
export function fetchBlobTransport(options: FetchBlobOptions): BlobTransport {
  const fetchImpl = options.fetch ?? (globalThis as { fetch?: FetchLike }).fetch?.bind(globalThis);
  if (typeof fetchImpl !== 'function') throw new TypeError('no fetch implementation');
  const Abort = (globalThis as { AbortController?: AbortControllerConstructorLike })
    .AbortController;
  const clock = options.clock ?? systemClock();
  const stallMs = options.stallTimeoutMs ?? BLOB_STALL_TIMEOUT_MS;
  const uploadMs = options.uploadTimeoutMs ?? BLOB_UPLOAD_TIMEOUT_MS;
  const base = options.baseUrl.replace(/\/+$/, '');
  const urlOf = (id: string) => `${base}/v1/blobs/${encodeURIComponent(id)}`;

  /** An abort timer that can be pushed back; `expired` once it fired. */
  function deadline(ms: number) {
    const controller = Abort === undefined ? undefined : new Abort();
    let timer: TimerHandle | undefined;
    const state = { expired: false };
    const arm = () => {
      if (timer !== undefined) clock.clearTimeout(timer);
      timer = clock.setTimeout(() => {
        state.expired = true;
        controller?.abort();
      }, ms);
    };
    arm();
    return {
      signal: controller?.signal,
      state,
      push: arm,
      stop: () => {
        if (timer !== undefined) clock.clearTimeout(timer);
        timer = undefined;
      },
    };
  }

  type Deadline = ReturnType<typeof deadline>;

  const networkError = (d: Deadline, cause: unknown) =>
    cause instanceof AttachmentError
      ? cause
      : new AttachmentError(
          d.state.expired ? AttachmentErrorCode.TIMEOUT : AttachmentErrorCode.NETWORK,
          { cause },
        );

  /** Reads at most `max` bytes of a body, else cancels it and throws `blob_too_large`. */
  async function readBody(
    res: FetchResponseLike,
    max: number,
    d: Deadline,
    onProgress?: BlobProgressListener,
  ): Promise<Uint8Array> {
    const declared = Number(res.headers.get('content-length') ?? Number.NaN);
    const total = Number.isSafeInteger(declared) && declared >= 0 ? declared : undefined;
    if (total !== undefined && total > max) {
      await res.body
        ?.getReader()
        .cancel()
        .catch(() => undefined);
      throw new AttachmentError(AttachmentErrorCode.BLOB_TOO_LARGE);
    }
    if (res.body === null) {
      const whole = new Uint8Array(await res.arrayBuffer());
      if (whole.length > max) throw new AttachmentError(AttachmentErrorCode.BLOB_TOO_LARGE);
      onProgress?.({ bytes: whole.length, total: whole.length });
      return whole;
    }
    const reader = res.body.getReader();
    const chunks: Uint8Array[] = [];
    let length = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (value === undefined || value.length === 0) continue;
      d.push();
      length += value.length;
      if (length > max) {
        await reader.cancel().catch(() => undefined);
        throw new AttachmentError(AttachmentErrorCode.BLOB_TOO_LARGE);
      }
      chunks.push(value);
      onProgress?.({ bytes: length, total });
    }
    const out = new Uint8Array(length);
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }

  /** The `code` of an error answer, if it has a small JSON one. */
  async function codeOf(res: FetchResponseLike, d: Deadline): Promise<unknown> {
    try {
      const body = await readBody(res, MAX_ERROR_BODY_BYTES, d);
      const json: unknown = JSON.parse(utf8Decode(body));
      return typeof json === 'object' && json !== null
        ? (json as { code?: unknown }).code
        : undefined;
    } catch {
      return undefined;
    }
  }

  return {
    async put(id, token, bytes, onProgress) {
      const d = deadline(uploadMs);
      try {
        onProgress?.({ bytes: 0, total: bytes.length });
        let res: FetchResponseLike;
        try {
          res = await fetchImpl(urlOf(id), {
            method: 'PUT',
            headers: {
              authorization: `Bearer ${token}`,
              'content-type': 'application/octet-stream',
            },
            body: bytes,
            credentials: 'omit',
            cache: 'no-store',
            ...(d.signal === undefined ? {} : { signal: d.signal }),
          });
        } catch (cause) {
          throw networkError(d, cause);
        }
        if (res.status !== 201)
          throw new AttachmentError(blobRefusalCode(res.status, await codeOf(res, d)));
        // The answer's body (`{"status":"stored"}`) is read so that the connection is reusable.
        await readBody(res, MAX_ERROR_BODY_BYTES, d).catch(() => undefined);
        onProgress?.({ bytes: bytes.length, total: bytes.length });
      } finally {
        d.stop();
      }
    },

    async get(id, onProgress, maxBytes = MAX_BLOB_BYTES) {
      const d = deadline(stallMs);
      try {
        let res: FetchResponseLike;
        try {
          res = await fetchImpl(urlOf(id), {
            method: 'GET',
            headers: { accept: 'application/octet-stream' },
            credentials: 'omit',
            cache: 'no-store',
            ...(d.signal === undefined ? {} : { signal: d.signal }),
          });
        } catch (cause) {
          throw networkError(d, cause);
        }
        if (res.status !== 200)
          throw new AttachmentError(blobRefusalCode(res.status, await codeOf(res, d)));
        try {
          return await readBody(res, maxBytes, d, onProgress);
        } catch (cause) {
          throw networkError(d, cause);
        }
      } finally {
        d.stop();
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Retries

/** Tries of one upload or download, the first included. */
export const MAX_BLOB_TRANSFER_ATTEMPTS = 4;

/** The back-off before the second try, doubled before each further one, in ms. */
export const BLOB_RETRY_INITIAL_MS = 500;

/** The longest back-off between two tries, in ms. */
export const BLOB_RETRY_MAX_MS = 8_000;

/** An upload reservation (`blob.reserved`). */
export interface BlobReservation {
  readonly id: string;
  readonly token: string;
  readonly exp: number;
}

export interface TransferRetry {
  readonly clock: Clock;
  /** A uniform number in [0, 1), for the back-off's jitter. */
  readonly random: () => number;
  /** `MAX_BLOB_TRANSFER_ATTEMPTS` by default. */
  readonly maxAttempts?: number;
  /** `BLOB_RETRY_INITIAL_MS` by default. */
  readonly initialDelayMs?: number;
}

function retryable(error: unknown): boolean {
  return error instanceof AttachmentError ? error.retryable : isRetryable(error);
}

/** Half to all of the attempt's exponential delay ("equal jitter"). */
function backoff(retry: TransferRetry, attempt: number): Promise<void> {
  const base = Math.min(
    BLOB_RETRY_MAX_MS,
    (retry.initialDelayMs ?? BLOB_RETRY_INITIAL_MS) * 2 ** (attempt - 1),
  );
  const ms = base / 2 + (base / 2) * retry.random();
  return new Promise((resolve) => retry.clock.setTimeout(resolve, ms));
}

/**
 * Reserves and uploads `blob`, retrying what is retryable (the relay overloaded or unreachable,
 * the network, a lost connection while reserving) up to `maxAttempts` tries with back-off; a
 * token the relay no longer knows (`blob_not_reserved`: spent by an upload whose answer was lost,
 * or expired) is replaced by a new reservation. The token's `exp` is not compared with this
 * device's clock (the two may disagree): the relay checks it before it reads a byte of the body,
 * so an expired token costs one refused request. Resolves with the blob id.
 *
 * @throws the last failure: an `AttachmentError`, or the relay's or the connection's error of
 *   the reservation (`RelayError('blob_reservations_spent')`, …)
 */
export async function uploadBlob(options: {
  readonly reserve: () => Promise<BlobReservation>;
  readonly transport: BlobTransport;
  readonly blob: Uint8Array;
  readonly retry: TransferRetry;
  readonly onProgress?: BlobProgressListener;
}): Promise<string> {
  const { retry } = options;
  const attempts = options.retry.maxAttempts ?? MAX_BLOB_TRANSFER_ATTEMPTS;
  let held: BlobReservation | undefined;
  for (let attempt = 1; ; attempt++) {
    try {
      held ??= await options.reserve();
      const { id, token } = held;
      await options.transport.put(id, token, options.blob, options.onProgress);
      return id;
    } catch (error) {
      if (
        error instanceof AttachmentError &&
        error.code === AttachmentErrorCode.BLOB_NOT_RESERVED
      ) {
        held = undefined;
      }
      if (!retryable(error) || attempt >= attempts) throw error;
      await backoff(retry, attempt);
    }
  }
}

/**
 * Downloads blob `id` (at most `maxBytes`), retrying what is retryable up to `maxAttempts`
 * tries with back-off.
 *
 * @throws the last `AttachmentError`
 */
export async function downloadBlob(options: {
  readonly transport: BlobTransport;
  readonly id: string;
  readonly maxBytes: number;
  readonly retry: TransferRetry;
  readonly onProgress?: BlobProgressListener;
}): Promise<Uint8Array> {
  const attempts = options.retry.maxAttempts ?? MAX_BLOB_TRANSFER_ATTEMPTS;
  for (let attempt = 1; ; attempt++) {
    try {
      return await options.transport.get(options.id, options.onProgress, options.maxBytes);
    } catch (error) {
      if (!retryable(error) || attempt >= attempts) throw error;
      await backoff(options.retry, attempt);
    }
  }
}
