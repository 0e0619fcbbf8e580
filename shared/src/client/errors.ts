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

  // The session layer (sessions.ts, org-trust.ts, routing.ts, conversation-client.ts).
  /** No verified organization profile is held: it could not be fetched, or none was accepted
   * yet. (A profile that was fetched and refused throws its own `OrgError` instead.) */
  NO_PROFILE: 'no_profile',
  /** This coordinator device is not on the roster it holds (it was removed): it sends nothing. */
  NOT_IN_ROSTER: 'not_in_roster',
  /** A team device was asked to write to a case whose contact it has never heard from. */
  UNKNOWN_CASE: 'unknown_case',
  /** None of a message's recipient devices can be reached (no session and no published
   * prekeys); nothing was sent. */
  NO_RECIPIENTS: 'no_recipients',
  /** The relay's prekey bundle for a device is not that device's, or does not verify. */
  BAD_BUNDLE: 'bad_bundle',
  /** A message type this side may not send (a contact's case event, a team device's intake):
   * a bug of the caller. */
  WRONG_ROLE: 'wrong_role',
  /** A contact's conversation without a state (`ContactOptions.state`) was asked to delete it. */
  NO_STATE: 'no_state',
  /** A contact's state could not be saved: the envelope is left for a later delivery. */
  STATE_NOT_SAVED: 'state_not_saved',
  /** A restoring contact's state is not back yet: the envelope is left for later. */
  STATE_NOT_READY: 'state_not_ready',
} as const;
export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

const RETRYABLE_CLIENT_CODES: ReadonlySet<ClientErrorCode> = new Set<ClientErrorCode>([
  ClientErrorCode.NOT_CONNECTED,
  ClientErrorCode.CONNECTION_LOST,
  ClientErrorCode.TIMEOUT,
  ClientErrorCode.UNEXPECTED_REPLY,
  ClientErrorCode.POW_UNSOLVED,
  ClientErrorCode.NO_PROFILE,
  ClientErrorCode.NO_RECIPIENTS,
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
