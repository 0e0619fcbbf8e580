/**
 * The public API of the client core: what the contact page, the coordinator workspace and the
 * CLI import. Everything else in shared/src/client is internal (docs/client.md).
 */
export {
  PassageClient,
  type PassageClientEvents,
  type PassageClientOptions,
  type PassageClientStatus,
} from './client.js';
export type {
  ConnectionState,
  ConnectionStatus,
  ConnectionTiming,
  LossReason,
  Signer,
} from './connection.js';
export { ClientError, ClientErrorCode, RelayError, isRetryable } from './errors.js';
export {
  inlinePowSolver,
  type PowProgress,
  type PowSolution,
  type PowSolver,
} from './first-contact.js';
export type { EnvelopeHandler, InboxLimits, InboxOutcome, InboxStats } from './inbox.js';
export {
  MemoryOutboxStorage,
  type OutboxLimits,
  type OutboxStorage,
  type OutgoingRecord,
  type OutgoingState,
} from './outbox.js';
export {
  systemClock,
  webSocketTransport,
  type Clock,
  type Socket,
  type SocketHandlers,
  type TimerHandle,
  type Transport,
  type WebSocketConstructorLike,
  type WebSocketLike,
} from './transport.js';
