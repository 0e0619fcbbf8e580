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
  RequestFrame,
  Signer,
} from './connection.js';
export {
  AttachmentError,
  AttachmentErrorCode,
  MAX_ATTACHMENT_FILE_BYTES,
  MIN_ATTACHMENT_PADDED_BYTES,
  largestAttachmentFile,
  openAttachment,
  sealAttachment,
  sealedAttachmentBytes,
  type AttachmentReference,
  type SealedAttachment,
} from './attachments.js';
export {
  BLOB_RETRY_INITIAL_MS,
  BLOB_RETRY_MAX_MS,
  BLOB_STALL_TIMEOUT_MS,
  BLOB_UPLOAD_TIMEOUT_MS,
  MAX_BLOB_TRANSFER_ATTEMPTS,
  blobRefusalCode,
  fetchBlobTransport,
  type BlobProgress,
  type BlobProgressListener,
  type BlobTransport,
  type FetchBlobOptions,
  type FetchLike,
} from './blob-transport.js';
export { EnrolmentFailed, sendEnrolment, type SentEnrolment } from './enrolment.js';
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
export {
  askedFields,
  intakeIssues,
  intakeUrgency,
  type IntakeIssue,
  type IntakeIssueCode,
  type Questionnaire,
} from './conversation/intake.js';
export type { AttachmentMessage, ContactStatus, IntakeAnswer } from './conversation/messages.js';
export {
  CONTACT_STATE_BLOB_BYTES,
  ContactStateError,
  ContactStateErrorCode,
  MAX_STATE_OUTBOX,
  MAX_TRANSCRIPT_ENTRIES,
  type SavedConversation,
  type ContactState,
  type TranscriptEntry,
  type TranscriptMessage,
  type TranscriptReceipt,
} from './contact-state.js';
export {
  ContactStateStore,
  MAX_STATE_SAVE_ATTEMPTS,
  type ContactStateOptions,
  type StateBlobPort,
} from './contact-state-store.js';
export {
  CaseTranscripts,
  HandoffError,
  HandoffErrorCode,
  HandoffReceiver,
  MAX_OPEN_HANDOFF_REQUESTS,
  MAX_TRANSCRIPT_ITEMS_PER_CASE,
  buildHandoff,
  caseStateEvents,
  type BuildHandoffOptions,
  type Handoff,
  type HandoffOutcome,
  type HandoffSource,
  type TranscriptItem,
} from './handoff.js';
export {
  ContactConversation,
  MAX_SEEN_MESSAGE_IDS,
  PROFILE_MAX_AGE_MS,
  RECEIPT_DELAY_MS,
  RECEIPT_FALLBACK_DELAY_MS,
  TeamDevice,
  type AttachmentFile,
  type ContactOptions,
  type ContactStateSetup,
  type ConversationEvents,
  type ConversationStatus,
  type EndpointOptions,
  type ReceivedMessage,
  type RelayOptions,
  type SentMessage,
  type TeamOptions,
} from './conversation-client.js';
export { MAX_TRACKED_MESSAGES, type DeliveryStatus, type MessageState } from './delivery-ledger.js';
export type { ProfileChange, ProfileFetcher } from './org-trust.js';
export {
  DEFAULT_PREKEY_POLICY,
  type PrekeyPolicy,
  type PublishingStore,
} from './prekey-publisher.js';
export { RoutingDropCode, type Role } from './routing.js';
export { MAX_PARALLEL_BUNDLE_FETCHES, type UnreachableReason } from './sessions.js';
