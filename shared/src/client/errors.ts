/**
 * Stable error codes of the client core. A request to the relay fails either with the relay's
 * own code (`RelayError`, docs/protocol.md "Errors") or with one of these (`ClientError`):
 * what went wrong on the client's side of the wire. Applications branch on `code` and
 * `retryable`, never on the message.
 */
import type { ErrorCode } from '../protocol/errors.js';

export const ClientErrorCode = {
  /** The connection is not ready (connecting, backing off, closed). Retry once it is. */
  NOT_CONNECTED: 'not_connected',
  /** The connection ended before the answer came. Nothing is known of the request's fate. */
  CONNECTION_LOST: 'connection_lost',
  /** No answer within the request timeout. */
  TIMEOUT: 'timeout',
  /** The relay answered a request with a frame of the wrong type or wrong content. */
  UNEXPECTED_REPLY: 'unexpected_reply',
  /** The relay refused the device's authentication (`auth_failed`); the client stops. */
  AUTH_REFUSED: 'auth_refused',
  /** The client was closed by the application. */
  CLOSED: 'closed',
  /** The outbox holds `MAX_OUTBOX_MESSAGES` messages not yet stored. */
  OUTBOX_FULL: 'outbox_full',
  /** An envelope that the relay would refuse (empty or over `MAX_ENVELOPE_BYTES`). */
  BAD_ENVELOPE: 'bad_envelope',
  /** A recipient that is not a mailbox id. */
  BAD_RECIPIENT: 'bad_recipient',
  /** The relay's proof-of-work challenge could not be solved (bad, expired, too hard). */
  POW_UNSOLVED: 'pow_unsolved',
} as const;
export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

const RETRYABLE_CLIENT_CODES: ReadonlySet<ClientErrorCode> = new Set<ClientErrorCode>([
  ClientErrorCode.NOT_CONNECTED,
  ClientErrorCode.CONNECTION_LOST,
  ClientErrorCode.TIMEOUT,
  ClientErrorCode.UNEXPECTED_REPLY,
  ClientErrorCode.POW_UNSOLVED,
]);

/** A failure on the client's side; `retryable` says whether the same request may succeed later. */
export class ClientError extends Error {
  override readonly name = 'ClientError';
  readonly retryable: boolean;
  constructor(
    readonly code: ClientErrorCode,
    options?: { cause?: unknown },
  ) {
    super(`client: ${code}`, options);
    this.retryable = RETRYABLE_CLIENT_CODES.has(code);
  }
}

/** The relay's `error` frame for a request, as an exception. */
export class RelayError extends Error {
  override readonly name = 'RelayError';
  constructor(
    readonly code: ErrorCode,
    readonly retryable: boolean,
  ) {
    super(`relay: ${code}`);
  }
}

/** True for an error after which the same request may succeed unchanged later. */
export function isRetryable(error: unknown): boolean {
  return (error instanceof ClientError || error instanceof RelayError) && error.retryable;
}
