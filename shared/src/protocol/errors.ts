/**
 * Stable error codes of wire protocol v1. A code never changes meaning once released; clients
 * branch on `code` and `retryable`, never on the message text. Messages are generic and never
 * say whether a mailbox, message or prekey exists.
 */
export const ErrorCode = {
  /** The frame is not JSON, not an object, or does not match its schema (wrong type, unknown
   * key, bad base64url, a length outside its limit). The connection stays open. */
  BAD_FRAME: 'bad_frame',
  /** The frame's `v` is an integer other than a version this relay speaks. */
  UNSUPPORTED_VERSION: 'unsupported_version',
  /** The frame's `t` names no frame type of this version. */
  UNKNOWN_TYPE: 'unknown_type',
  /** A binary WebSocket message; v1 frames are JSON text. */
  BINARY_NOT_SUPPORTED: 'binary_not_supported',
  /** An envelope larger than `MAX_ENVELOPE_BYTES`. */
  ENVELOPE_TOO_LARGE: 'envelope_too_large',
  /** The frame needs an authenticated mailbox (`ack`, `prekeys.publish`, `prekeys.status`,
   * `firstcontact.status`, the `state.*` frames, `blob.reserve`). */
  NOT_AUTHENTICATED: 'not_authenticated',
  /** A second `auth` on a connection that already holds a mailbox. */
  ALREADY_AUTHENTICATED: 'already_authenticated',
  /** The signature over the challenge does not verify, or the key is unusable. */
  AUTH_FAILED: 'auth_failed',
  /** Too many frames from this connection, or too many messages to one mailbox. Retry later. */
  RATE_LIMITED: 'rate_limited',
  /** The recipient's queue is at its bound. Retry later; nothing was stored. */
  MAILBOX_FULL: 'mailbox_full',
  /** The directory already holds the most one-time prekeys it keeps for this mailbox. */
  PREKEYS_FULL: 'prekeys_full',
  /** The store cannot be reached (e.g. Redis is down). Nothing was stored. Retry later. */
  UNAVAILABLE: 'unavailable',
  /**
   * The store is full (its memory bound), or far more work waits for it than the relay's hard
   * bound; a store that is merely behind pauses reading instead (backpressure). Never sent for
   * an `ack`. Nothing was stored. Retry later.
   */
  OVERLOADED: 'overloaded',
  /** The relay is shutting down; reconnect (possibly to another relay) and retry. */
  SHUTTING_DOWN: 'shutting_down',
  /** A bug on the relay. Nothing is known to have been stored; retrying is safe. */
  INTERNAL: 'internal',
  /** A `send` to a mailbox this connection has not been admitted to (first contact), or whose
   * admission's share of sends is spent: solve a challenge (`pow.request`, `pow.solve`) first.
   * Also a `state.put` that would create a state (`ifGeneration` 0) and a `blob.reserve`, on a
   * connection that has solved no challenge yet (any mailbox's). Says nothing about the mailbox
   * or the state: the answer depends on this connection alone. Nothing was stored. */
  POW_REQUIRED: 'pow_required',
  /** A `pow.solve` that does not answer an open challenge of this connection: unknown, already
   * answered or expired nonce, or a solution short of the difficulty. Request a new challenge. */
  POW_FAILED: 'pow_failed',
  /** A `state.put` whose blob is larger than `MAX_STATE_BLOB_BYTES`. Nothing was stored. */
  STATE_TOO_LARGE: 'state_too_large',
  /** A `state.put` whose `ifGeneration` is not the generation held now (another tab or device
   * wrote in between, or deleted it): nothing was stored. Read it again (`state.get`), merge,
   * and put with the generation read. */
  STATE_CONFLICT: 'state_conflict',
  /** The connection may not reserve more attachment uploads (`blob.reserve`):
   * MAX_BLOB_RESERVATIONS_PER_CONNECTION were taken on it. Open a new connection. */
  BLOB_RESERVATIONS_SPENT: 'blob_reservations_spent',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Codes after which the same request may succeed unchanged later. */
export const RETRYABLE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  ErrorCode.RATE_LIMITED,
  ErrorCode.MAILBOX_FULL,
  ErrorCode.UNAVAILABLE,
  ErrorCode.OVERLOADED,
  ErrorCode.SHUTTING_DOWN,
  ErrorCode.INTERNAL,
]);

/** The generic, user-safe message sent with each code. */
export const ERROR_MESSAGES: Readonly<Record<ErrorCode, string>> = {
  bad_frame: 'The frame is malformed.',
  unsupported_version: 'This protocol version is not supported.',
  unknown_type: 'Unknown frame type.',
  binary_not_supported: 'Frames are JSON text.',
  envelope_too_large: 'The envelope is too large.',
  not_authenticated: 'Authenticate first.',
  already_authenticated: 'Already authenticated.',
  auth_failed: 'Authentication failed.',
  rate_limited: 'Too many requests; retry later.',
  mailbox_full: 'The recipient cannot take more messages now; retry later.',
  prekeys_full: 'No room for more one-time prekeys.',
  unavailable: 'Temporarily unavailable; retry later.',
  overloaded: 'Busy; retry later.',
  shutting_down: 'The relay is restarting; reconnect.',
  internal: 'Something went wrong; retry later.',
  pow_required: 'Solve a proof-of-work challenge first.',
  pow_failed: 'The proof-of-work is not valid; request a new challenge.',
  state_too_large: 'The state is too large.',
  state_conflict: 'The state changed; read it again.',
  blob_reservations_spent: 'No more uploads on this connection.',
};

/**
 * WebSocket close codes the relay closes with. 1000–1015 are the standard ones (RFC 6455
 * §7.4.1); 4000–4999 are ours. Besides these, the relay answers a client's own close with the
 * client's code, and drops the TCP connection without a close frame when a peer that missed
 * its heartbeat does not finish the closing handshake, when shutdown's grace period ends, when
 * the relay's bound on unfinished input of all connections is reached (the connection holding
 * the most is dropped), and when a closed connection does not finish the handshake in time.
 */
export const CloseCode = {
  /** The answer to a client's own close with 1000 (another code is answered with that code). */
  NORMAL_CLOSURE: 1000,
  /** The relay is shutting down (SIGTERM); reconnect, possibly elsewhere. */
  GOING_AWAY: 1001,
  /** A WebSocket protocol violation: a reserved opcode or bit, an unmasked client frame, a bad
   * control frame or close code (closed by `ws` itself). */
  PROTOCOL_ERROR: 1002,
  /** A text message (or close reason) that is not valid UTF-8 (closed by `ws` itself). */
  INVALID_PAYLOAD: 1007,
  /** A message in more than `MAX_MESSAGE_FRAGMENTS` fragments, or arriving in more separate
   * reads than the relay buffers at once (`MAX_RECEIVE_CHUNKS`) (closed by `ws` itself). */
  POLICY_VIOLATION: 1008,
  /** A message larger than `MAX_FRAME_BYTES` (closed by `ws` itself). */
  MESSAGE_TOO_BIG: 1009,
  /** No heartbeat answer within the timeout. */
  HEARTBEAT_TIMEOUT: 4000,
  /** The client kept sending frames far past its rate limit. */
  FLOODING: 4001,
  /** The client does not read: its unsent backlog passed the bound. */
  SLOW_CONSUMER: 4002,
  /** The client kept sending invalid frames. */
  TOO_MANY_ERRORS: 4003,
  /** Not authenticated within AUTH_TIMEOUT_MS (and not kept as an anonymous sender), or
   * displaced as the oldest unauthenticated connection when all such slots were taken. */
  AUTH_TIMEOUT: 4004,
  /** A newer connection of the same mailbox took this one's place (at most
   * MAX_CONNECTIONS_PER_MAILBOX per mailbox on one relay). */
  SUPERSEDED: 4005,
} as const;

export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];
