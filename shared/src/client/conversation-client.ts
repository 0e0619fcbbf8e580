/**
 * Conversations over the relay: what the contact page and the coordinator workspace use
 * (docs/client.md "Conversations"). It joins, one concern each:
 *
 * - the transport core (client.ts: connection, outbox, inbox, first contact),
 * - the organization as verified against the pinned key (org-trust.ts),
 * - routing by the verified roster (routing.ts),
 * - the sessions and their store (sessions.ts), prekey upkeep (prekey-publisher.ts, team
 *   devices only), and
 * - the conversation messages (conversation/messages.ts), the shared case state
 *   (conversation/case-replica.ts) and the receipts' bookkeeping (delivery-ledger.ts).
 *
 * Sending: one message at a time (in call order): route, encode, seal for every recipient in
 * one committed transaction, then queue each envelope in the outbox. Receiving: the inbox hands
 * over one envelope at a time; it is opened and committed, decoded, checked against the roster
 * (`checkIncoming`), applied, announced, and only then acked. Whatever a peer sends, the client
 * does not throw: a message that cannot be read is acked and counted by its code.
 */
import type { DeviceIdentity, PublicIdentity } from '../crypto/identity.js';
import type { Ed25519PublicKey } from '../crypto/keys.js';
import { MemoryDeviceStore } from '../crypto/memory-store.js';
import type { OrgProfile } from '../crypto/org-profile.js';
import type { Roster } from '../crypto/roster.js';
import type { Primitives } from '../crypto/primitives.js';
import type { DeviceStore } from '../crypto/store.js';
import { OrgError } from '../org/errors.js';
import { MAX_BLOB_BYTES } from '../protocol/limits.js';
import {
  AttachmentError,
  AttachmentErrorCode,
  openAttachment,
  sealAttachment,
} from './attachments.js';
import {
  downloadBlob,
  uploadBlob,
  type BlobProgressListener,
  type BlobTransport,
  type TransferRetry,
} from './blob-transport.js';
import { PassageClient, type PassageClientOptions, type PassageClientStatus } from './client.js';
import type { FrameOf, ServerFrameType } from '../protocol/frames.js';
import type { ConnectionStatus, RequestFrame } from './connection.js';
import type { CaseReplica } from './conversation/case-replica.js';
import type { CaseState } from './conversation/case-state.js';
import { ConversationErrorCode } from './conversation/errors.js';
import {
  checkIntake,
  intakeUrgency,
  type IntakeIssue,
  intakeIssues,
} from './conversation/intake.js';
import {
  ATTACHMENT_DIGEST_BYTES,
  ATTACHMENT_KEY_BYTES,
  CONVERSATION_ID_BYTES,
  CONVERSATION_VERSION,
  MAX_CASES_PER_REPLICA,
  MAX_RECEIPT_IDS,
} from './conversation/limits.js';
import {
  decodeConversationMessage,
  encodeConversationMessage,
  newConversationId,
  type AttachmentMessage,
  type CaseOp,
  type ContactStatus,
  type ConversationMessage,
  type IntakeAnswer,
  type Origin,
} from './conversation/messages.js';
import {
  DeliveryLedger,
  type DeliveryStatus,
  type MessageState,
  type TrackedRecipient,
} from './delivery-ledger.js';
import {
  ContactStateStore,
  type ContactStateOptions,
  type StateBlobPort,
} from './contact-state-store.js';
import { ClientError, ClientErrorCode } from './errors.js';
import { Emitter, type Listener } from './events.js';
import type { PowProgress } from './first-contact.js';
import type { InboxOutcome } from './inbox.js';
import { OrgTrust, type ProfileChange, type ProfileFetcher } from './org-trust.js';
import { PrekeyPublisher, type PrekeyPolicy, type PublishingStore } from './prekey-publisher.js';
import { checkIncoming, isRosterDevice, recipientsOf, type Role } from './routing.js';
import {
  Sessions,
  mailboxOf,
  relayBundleSource,
  type OpenResult,
  type SealResult,
  type UnreachableReason,
} from './sessions.js';
import { systemClock, type Clock, type TimerHandle } from './transport.js';
import { toBase64url } from '../protocol/base64url.js';

/** How long a fetched profile is trusted before it is fetched again (and checked on a timer). */
export const PROFILE_MAX_AGE_MS = 5 * 60 * 1000;
/** Tries of one relay request (a bundle fetch, a state request) across lost connections. */
export const MAX_REQUEST_ATTEMPTS = 3;
/** Message ids remembered per device to show nothing twice (the oldest are forgotten first). */
export const MAX_SEEN_MESSAGE_IDS = 10_000;

/** How long delivered receipts are gathered (per case) before they are sent, in ms. */
export const RECEIPT_DELAY_MS = 250;

/** The same, on a team device that is not the message's designated answerer, in ms. */
export const RECEIPT_FALLBACK_DELAY_MS = 5_000;

/** A roster's device ids in order, computed once per roster (the receipt rule reads them). */
const SORTED_DEVICE_IDS = new WeakMap<Roster, readonly string[]>();

/** Delivered receipts waiting to be sent, by case, and the timer that sends them. */
interface ReceiptQueue {
  pending: Map<string, string[]>;
  timer: TimerHandle | undefined;
}

/** The relay connection's options (`PassageClientOptions` less what the conversation sets). */
export type RelayOptions = Omit<
  PassageClientOptions,
  'primitives' | 'identity' | 'onEnvelope' | 'clock'
>;

/** What every conversation endpoint is made with. */
export interface EndpointOptions {
  readonly p: Primitives;
  /** The organization key this device pins (the page's build, the enrolment). */
  readonly organizationKey: Ed25519PublicKey;
  /** Fetches the signed profile (a page: `GET /v1/org/profile`). */
  readonly fetchProfile: ProfileFetcher;
  /** A profile accepted before (a restored device): no older one is accepted. */
  readonly lastAcceptedProfile?: OrgProfile | null;
  /**
   * The lowest profile version to accept (`OrgTrust`'s `minVersion`): for a restored contact,
   * `ContactStateStore.conversation.profileVersion`. Keep it current with
   * `ContactStateStore.seeProfileVersion` on every `profile` event.
   */
  readonly minProfileVersion?: number;
  readonly relay: RelayOptions;
  /** The real clock by default. */
  readonly clock?: Clock;
  /** `PROFILE_MAX_AGE_MS` by default. */
  readonly profileMaxAgeMs?: number;
  /**
   * The relay's attachment blobs (`fetchBlobTransport({ baseUrl })`, or a page's own). Without
   * it, `sendAttachment` and `fetchAttachment` fail with `attachment_no_transport`.
   */
  readonly blobs?: BlobTransport;
}

/** A file to send: its bytes (metadata already stripped), its name and its media type. */
export interface AttachmentFile {
  readonly bytes: Uint8Array;
  /** The file name shown to the recipient (no path). */
  readonly name: string;
  /** `type/subtype`; empty (a browser's unknown type) is sent as `application/octet-stream`. */
  readonly type: string;
}

/** A message this device sent, as it left. */
export interface SentMessage {
  /** The conversation message id (what receipts name). */
  readonly id: string;
  readonly message: ConversationMessage;
  /** One envelope per device: its device id, mailbox and outbox id. */
  readonly envelopes: readonly {
    readonly device: string;
    readonly mailbox: string;
    readonly envelopeId: string;
  }[];
  /** Devices that got no envelope (no session and no published prekeys). */
  readonly unreachable: readonly { readonly device: string; readonly reason: UnreachableReason }[];
}

/** A message received and accepted. */
export interface ReceivedMessage {
  readonly message: ConversationMessage;
  /** The case it belongs to (on a contact's device, the contact's own id). */
  readonly case: string | undefined;
  readonly origin: Origin;
  /** The sending device's id (authenticated by its session). */
  readonly sender: string;
  /** For an intake checked against the profile it names: its urgency and rule breaks. */
  readonly intake?: { readonly urgency: number; readonly issues: readonly IntakeIssue[] };
}

export interface ConversationEvents extends Record<string, unknown> {
  /** A text, intake, attachment or status notice, accepted (and to be shown). */
  message: ReceivedMessage;
  /** A receipt from a device. */
  receipt: {
    readonly case: string | undefined;
    readonly origin: Origin;
    readonly sender: string;
    readonly kind: 'delivered' | 'read';
    readonly ids: readonly string[];
  };
  /** A case's shared state changed (team devices). */
  case: { readonly case: string; readonly state: CaseState };
  /** One of this device's messages was sealed and queued (also receipts it sent by itself). */
  sent: SentMessage;
  /** One of this device's messages changed state (delivery-ledger.ts). */
  'message-state': { readonly id: string; readonly state: MessageState };
  /** An envelope was acked without being shown, with its reason (a code). */
  unreadable: { readonly id: string; readonly reason: string };
  /** A newer verified profile was accepted. */
  profile: ProfileChange;
  /** A fetched profile was refused (the one held before stays): the `OrgError` code. */
  'profile-refused': { readonly code: string };
  /** The connection's state. */
  state: ConnectionStatus;
  'pow-progress': PowProgress;
}

/** Everything a UI or a health view shows. */
export interface ConversationStatus {
  readonly role: Role;
  readonly client: PassageClientStatus;
  /** The verified profile's version, if one is held. */
  readonly profileVersion: number | null;
  /** Team devices: whether this device is on the held roster. */
  readonly inRoster: boolean;
  /** Peer devices with a session. */
  readonly sessions: number;
  /** Messages dropped after decryption, by code (conversation and routing codes). */
  readonly drops: Readonly<Record<string, number>>;
  /** Messages that came again (by id) and were not shown twice. */
  readonly duplicates: number;
  /** Receipts this device could not send (it tries again with the next ones). */
  readonly receiptFailures: number;
  /** Hand-off messages received and not acted on (not built yet, docs/client.md). */
  readonly ignored: number;
}

/** An insertion-ordered set that forgets its oldest past a bound. */
class BoundedSet {
  readonly #items = new Set<string>();
  constructor(private readonly max: number) {}
  /** False when already held. */
  add(item: string): boolean {
    if (this.#items.has(item)) return false;
    this.#items.add(item);
    if (this.#items.size > this.max) this.#items.delete(this.#items.values().next().value!);
    return true;
  }
}

/**
 * What the contact's device and a coordinator's device share. Not constructed directly: see
 * `ContactConversation` and `TeamDevice`.
 */
abstract class ConversationEndpoint {
  protected readonly events = new Emitter<ConversationEvents>();
  protected readonly p: Primitives;
  protected readonly clock: Clock;
  protected readonly trust: OrgTrust;
  protected sessions: Sessions;
  protected readonly client: PassageClient;
  protected readonly ledger = new DeliveryLedger();
  readonly #drops = new Map<string, number>();
  readonly #seen = new BoundedSet(MAX_SEEN_MESSAGE_IDS);
  readonly #profileMaxAgeMs: number;
  #duplicates = 0;
  #receiptFailures = 0;
  #ignored = 0;
  #chain: Promise<unknown> = Promise.resolve();
  readonly #fastReceipts: ReceiptQueue = { pending: new Map(), timer: undefined };
  readonly #slowReceipts: ReceiptQueue = { pending: new Map(), timer: undefined };
  #profileTimer: TimerHandle | undefined;
  #closed = false;
  readonly #blobs: BlobTransport | undefined;

  protected constructor(
    readonly role: Role,
    options: EndpointOptions,
    store: DeviceStore,
  ) {
    this.p = options.p;
    this.clock = options.clock ?? systemClock();
    this.#profileMaxAgeMs = options.profileMaxAgeMs ?? PROFILE_MAX_AGE_MS;
    this.#blobs = options.blobs;
    this.trust = new OrgTrust({
      p: options.p,
      organizationKey: options.organizationKey,
      fetchProfile: options.fetchProfile,
      clock: this.clock,
      lastAccepted: options.lastAcceptedProfile ?? null,
      ...(options.minProfileVersion === undefined ? {} : { minVersion: options.minProfileVersion }),
    });
    const identity = store.identity;
    this.client = new PassageClient({
      ...options.relay,
      primitives: options.p,
      clock: this.clock,
      identity: { signingKey: identity.publicIdentity.signingKey, sign: (m) => identity.sign(m) },
      onEnvelope: (bytes, id) => this.#onEnvelope(bytes, id),
    });
    this.sessions = this.#sessionsOver(store);
    this.client.on('state', (s) => this.events.emit('state', s));
    this.client.on('pow-progress', (e) => this.events.emit('pow-progress', e));
    this.client.on('unreadable', (e) => this.events.emit('unreadable', e));
    this.client.on('message-state', (e) => {
      const change = this.ledger.onEnvelopeState(e.id, e.state);
      if (change !== null) this.events.emit('message-state', change);
    });
  }

  #sessionsOver(store: DeviceStore): Sessions {
    return new Sessions({
      p: this.p,
      store,
      clock: this.clock,
      bundles: relayBundleSource(this.p, (frame, expect) => this.requestWhenReady(frame, expect)),
    });
  }

  /** Goes on over another store of the same identity (a restored one), before anything is read. */
  protected useStore(store: DeviceStore): void {
    if (!store.identity.publicIdentity.equals(this.self)) {
      throw new TypeError('the store belongs to another identity');
    }
    this.sessions = this.#sessionsOver(store);
  }

  /**
   * A request to the relay once the connection is ready (waiting for it), asked again when the
   * connection went before the answer came, up to `MAX_REQUEST_ATTEMPTS` times.
   */
  protected requestWhenReady<T extends ServerFrameType>(
    frame: RequestFrame,
    expect: T,
  ): Promise<FrameOf<T>> {
    return this.whenConnected(() => this.client.request(frame, expect));
  }

  /**
   * Runs `task` (requests to the relay) once the connection is ready, and again, after the next
   * reconnect, when the connection went before it was answered, up to `MAX_REQUEST_ATTEMPTS`
   * times. Only for requests that may be asked twice (the relay may have acted on the first).
   */
  protected async whenConnected<T>(task: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      await this.client.ready();
      try {
        return await task();
      } catch (error) {
        const lost =
          error instanceof ClientError &&
          (error.code === ClientErrorCode.NOT_CONNECTED ||
            error.code === ClientErrorCode.CONNECTION_LOST);
        if (!lost || attempt >= MAX_REQUEST_ATTEMPTS) throw error;
      }
    }
  }

  /** This device's public identity. */
  get self(): PublicIdentity {
    return this.sessions.self;
  }

  /** The mailbox this device reads. */
  get mailbox(): string {
    return mailboxOf(this.p, this.self);
  }

  /** The verified profile held (the highest version accepted), if any. */
  get profile(): OrgProfile | null {
    return this.trust.current;
  }

  /** The device store (sessions, prekeys): what a state blob serializes. */
  get store(): DeviceStore {
    return this.sessions.store;
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof ConversationEvents>(
    type: K,
    listener: Listener<ConversationEvents[K]>,
  ): () => void {
    return this.events.on(type, listener);
  }

  /** The delivery of one of this device's messages, while it is followed. */
  delivery(id: string): DeliveryStatus | undefined {
    return this.ledger.status(id);
  }

  get status(): ConversationStatus {
    const profile = this.trust.current;
    return {
      role: this.role,
      client: this.client.status,
      profileVersion: profile?.version ?? null,
      inRoster: profile !== null && isRosterDevice(profile.roster, this.self),
      sessions: this.store.sessionCount,
      drops: Object.fromEntries(this.#drops),
      duplicates: this.#duplicates,
      receiptFailures: this.#receiptFailures,
      ignored: this.#ignored,
    };
  }

  /**
   * Fetches and verifies the profile now. Throws the `OrgError` of a refused profile (the one
   * held stays in use) or `ClientError('no_profile')` when it could not be fetched.
   */
  async refreshProfile(): Promise<OrgProfile> {
    const change = await this.trust.refresh();
    if (change !== null) this.#applyProfile(change);
    return this.trust.current!;
  }

  /**
   * Verifies the profile and starts the connection (which then reconnects by itself). Throws,
   * with nothing sent, when no profile can be verified: the `OrgError` of the check that
   * failed, or `ClientError('no_profile')`.
   */
  protected async startEndpoint(): Promise<void> {
    if (this.trust.current === null || this.#profileStale()) await this.refreshProfile();
    this.trust.usable();
    this.#scheduleProfileRefresh();
    await this.client.connect();
  }

  /** Resolves once the connection is ready. */
  ready(): Promise<void> {
    return this.client.ready();
  }

  /** Resolves once every envelope delivered so far has been handled and every send queued. */
  async idle(): Promise<void> {
    await this.client.idle();
    await this.#chain;
  }

  close(): void {
    this.#closed = true;
    if (this.#profileTimer !== undefined) this.clock.clearTimeout(this.#profileTimer);
    for (const queue of [this.#fastReceipts, this.#slowReceipts]) {
      if (queue.timer !== undefined) this.clock.clearTimeout(queue.timer);
      queue.timer = undefined;
      queue.pending.clear();
    }
    this.client.close();
  }

  // --- sending --------------------------------------------------------------------------------

  /** The common fields of a new message. */
  protected common(): { v: typeof CONVERSATION_VERSION; id: string; ts: number } {
    return {
      v: CONVERSATION_VERSION,
      id: newConversationId(this.p.random),
      ts: Math.max(0, Math.floor(this.clock.now())),
    };
  }

  /** Runs `task` after every send queued before it (sends leave in call order). */
  protected serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(task, task);
    this.#chain = run.catch(() => undefined);
    return run;
  }

  /** Sends one message now (inside `serial`); `contact` is the case's contact for a team device. */
  protected async sendNow(
    message: ConversationMessage,
    contact?: PublicIdentity,
  ): Promise<SentMessage> {
    if (this.#closed) throw new ClientError(ClientErrorCode.CLOSED);
    const profile = await this.#profileForSending();
    const route = recipientsOf({
      role: this.role,
      self: this.self,
      roster: profile.roster,
      message,
      ...(contact === undefined ? {} : { contact }),
    });
    if (!route.ok) throw new ClientError(route.code);
    // A team device reaches a contact only over the session the contact started (a contact
    // publishes no prekeys): without it, refuse rather than send to the team alone.
    if (contact !== undefined && route.recipients.includes(contact)) {
      if (!this.sessions.canSend(contact)) throw new ClientError(ClientErrorCode.UNKNOWN_CASE);
    }
    if (route.recipients.length === 0) {
      return { id: message.id, message, envelopes: [], unreachable: [] };
    }
    const plaintext = encodeConversationMessage(message);
    const prepared = await this.prepareRecipients(route.recipients);
    if (prepared.recipients.length === 0) throw new ClientError(ClientErrorCode.NO_RECIPIENTS);
    const sealed = await this.sessions.seal(prepared.recipients, plaintext);
    const unreachable = [...prepared.unreachable, ...sealed.unreachable];
    // Committed: what must be held first is held (a contact's state is saved), and only then
    // does every envelope go to the outbox, in order.
    await this.beforeEnvelopesLeave(message);
    const envelopes: { device: string; mailbox: string; envelopeId: string }[] = [];
    for (const s of sealed.sealed) {
      const envelopeId = await this.client.send(s.mailbox, s.envelope);
      envelopes.push({ device: s.recipient.id, mailbox: s.mailbox, envelopeId });
    }
    const recipients: TrackedRecipient[] = envelopes.map((e) => ({
      device: e.device,
      envelopeId: e.envelopeId,
      counterpart: this.role === 'contact' || e.device === contact?.id,
    }));
    this.ledger.track(message.id, recipients);
    // States the outbox reached before the ledger followed the message.
    for (const e of envelopes) {
      const state = this.client.message(e.envelopeId)?.state;
      if (state !== undefined && state !== 'queued') {
        const change = this.ledger.onEnvelopeState(e.envelopeId, state);
        if (change !== null) this.events.emit('message-state', change);
      }
    }
    const sent: SentMessage = {
      id: message.id,
      message,
      envelopes,
      unreachable: unreachable.map((u) => ({ device: u.device.id, reason: u.reason })),
    };
    this.events.emit('sent', sent);
    return sent;
  }

  /**
   * The devices to seal for (a restored contact first starts fresh sessions with them), and
   * those left out.
   */
  protected prepareRecipients(
    recipients: readonly PublicIdentity[],
  ): Promise<{ recipients: readonly PublicIdentity[]; unreachable: SealResult['unreachable'] }> {
    return Promise.resolve({ recipients, unreachable: [] });
  }

  /**
   * After a send's transaction is committed, before its envelopes go to the outbox: a throw
   * sends nothing (a contact whose state could not be saved).
   */
  protected beforeEnvelopesLeave(_message: ConversationMessage): Promise<void> {
    return Promise.resolve();
  }

  // --- attachments ----------------------------------------------------------------------------

  /**
   * The largest attachment blob this device sends, in bytes: the held profile's
   * `maxAttachmentBytes`, else the relay's `MAX_BLOB_BYTES` (`largestAttachmentFile` of it is the
   * largest file). Throws `ClientError('no_profile')` when no profile is held.
   */
  get maxAttachmentBytes(): number {
    const own = this.trust.usable().content.maxAttachmentBytes;
    return Math.min(own ?? MAX_BLOB_BYTES, MAX_BLOB_BYTES);
  }

  #blobTransport(): BlobTransport {
    if (this.#blobs === undefined) throw new AttachmentError(AttachmentErrorCode.NO_TRANSPORT);
    return this.#blobs;
  }

  #retry(): TransferRetry {
    return { clock: this.clock, random: () => this.p.random.uniform(2 ** 30) / 2 ** 30 };
  }

  /**
   * Seals and uploads a file (not inside `serial`: a long upload holds no other send back), and
   * returns what its `attachment` message carries. Checked before anything is uploaded: the
   * name and type (`ConversationError('msg_malformed')`), an empty file (`attachment_empty`), the
   * profile's and the relay's bound (`attachment_too_large`).
   */
  protected async uploadAttachment(
    file: AttachmentFile,
    caseId: string | undefined,
    onProgress: BlobProgressListener | undefined,
  ): Promise<Omit<AttachmentMessage, 'v' | 'type' | 'id' | 'ts' | 'case'>> {
    if (this.#closed) throw new ClientError(ClientErrorCode.CLOSED);
    const transport = this.#blobTransport();
    const limit = this.maxAttachmentBytes;
    const described = {
      mediaType: file.type === '' ? 'application/octet-stream' : file.type.toLowerCase(),
      fileName: file.name,
    };
    // The message as it will be, with stand-ins for what the upload gives: a name or type the
    // schema refuses fails here, before a byte is uploaded.
    encodeConversationMessage({
      ...this.common(),
      ...(caseId === undefined ? {} : { case: caseId }),
      type: 'attachment',
      blob: toBase64url(new Uint8Array(CONVERSATION_ID_BYTES)),
      key: toBase64url(new Uint8Array(ATTACHMENT_KEY_BYTES)),
      digest: toBase64url(new Uint8Array(ATTACHMENT_DIGEST_BYTES)),
      size: 1,
      ...described,
    });
    const sealed = sealAttachment(this.p, file.bytes, limit);
    const blob = await uploadBlob({
      reserve: async () => {
        await this.client.ready();
        return this.client.reserveBlob();
      },
      transport,
      blob: sealed.blob,
      retry: this.#retry(),
      ...(onProgress === undefined ? {} : { onProgress }),
    });
    return { blob, key: sealed.key, digest: sealed.digest, size: sealed.size, ...described };
  }

  /**
   * Downloads an attachment's blob and opens it (attachments.ts: its size and SHA-256 are checked
   * before it is decrypted); resolves with the file's bytes. Retryable transport failures are
   * tried again a few times.
   *
   * @throws AttachmentError: `no_blob` (expired or never uploaded), `attachment_size_mismatch`
   *   (a longer body is not read past the announced size), the other opening codes, or a
   *   transport code (`overloaded`, `unavailable`, `blob_network`, `blob_timeout`,
   *   `blob_bad_reply`, `attachment_no_transport`)
   */
  async fetchAttachment(
    message: AttachmentMessage,
    onProgress?: BlobProgressListener,
  ): Promise<Uint8Array> {
    const transport = this.#blobTransport();
    let blob: Uint8Array;
    try {
      blob = await downloadBlob({
        transport,
        id: message.blob,
        maxBytes: message.size,
        retry: this.#retry(),
        ...(onProgress === undefined ? {} : { onProgress }),
      });
    } catch (error) {
      if (error instanceof AttachmentError && error.code === AttachmentErrorCode.BLOB_TOO_LARGE) {
        throw new AttachmentError(AttachmentErrorCode.SIZE_MISMATCH, { cause: error });
      }
      throw error;
    }
    return openAttachment(this.p, message, blob);
  }

  /** The profile to route a send by, fetched again first when it is older than its max age. */
  async #profileForSending(): Promise<OrgProfile> {
    if (this.#profileStale()) {
      try {
        await this.refreshProfile();
      } catch (error) {
        // The held profile stays in use until it expires; a refusal is announced.
        if (error instanceof OrgError) this.events.emit('profile-refused', { code: error.code });
        else if (!(error instanceof ClientError)) throw error;
      }
    }
    return this.trust.usable();
  }

  #profileStale(): boolean {
    const at = this.trust.fetchedAtMs;
    return at === undefined || this.clock.now() - at >= this.#profileMaxAgeMs;
  }

  #scheduleProfileRefresh(): void {
    if (this.#closed) return;
    this.#profileTimer = this.clock.setTimeout(() => {
      this.refreshProfile().then(
        () => this.#scheduleProfileRefresh(),
        (error: unknown) => {
          if (error instanceof OrgError) this.events.emit('profile-refused', { code: error.code });
          this.#scheduleProfileRefresh();
        },
      );
    }, this.#profileMaxAgeMs);
  }

  #applyProfile(change: ProfileChange): void {
    this.onRoster(change);
    this.events.emit('profile', change);
  }

  /** A newer roster was accepted: drop what it no longer allows. */
  protected abstract onRoster(change: ProfileChange): void;

  /** Sends a receipt (inside `serial`); for a team device, `caseId` names the case. */
  protected abstract receiptFor(
    kind: 'delivered' | 'read',
    ids: readonly string[],
    caseId: string | undefined,
  ): Promise<SentMessage | null>;

  /**
   * Queues a `delivered` receipt for a message received from the other side. Receipts are
   * gathered per case and sent as one (up to `MAX_RECEIPT_IDS` ids) after a short delay, so that
   * a device draining a backlog sends one receipt per case, not one per message. On a team
   * device, one device of the roster (picked by the message id) answers after
   * `RECEIPT_DELAY_MS` and the others after `RECEIPT_FALLBACK_DELAY_MS`: the contact's message
   * is delivered as soon as one device has it, and every team device answering each message at
   * once would spend its connection's frame rate on receipts (each device would send one per
   * active conversation and message).
   */
  #queueDelivered(caseKey: string, id: string): void {
    const designated = this.role !== 'team' || this.#designatedFor(id);
    const queue = designated ? this.#fastReceipts : this.#slowReceipts;
    const ids = queue.pending.get(caseKey) ?? [];
    ids.push(id);
    queue.pending.set(caseKey, ids);
    if (queue.timer !== undefined) return;
    queue.timer = this.clock.setTimeout(
      () => {
        queue.timer = undefined;
        const pending = queue.pending;
        queue.pending = new Map();
        void this.serial(async () => {
          for (const [key, all] of pending) {
            for (let i = 0; i < all.length; i += MAX_RECEIPT_IDS) {
              try {
                await this.receiptFor(
                  'delivered',
                  all.slice(i, i + MAX_RECEIPT_IDS),
                  key || undefined,
                );
              } catch {
                this.#receiptFailures++;
              }
            }
          }
        });
      },
      designated ? RECEIPT_DELAY_MS : RECEIPT_FALLBACK_DELAY_MS,
    );
  }

  /** True when this device is the one of the roster that answers `id` first. */
  #designatedFor(id: string): boolean {
    const roster = this.trust.current?.roster;
    if (roster === undefined || roster.devices.length === 0) return true;
    let ids = SORTED_DEVICE_IDS.get(roster);
    if (ids === undefined) {
      ids = roster.devices.map((d) => d.id).sort();
      SORTED_DEVICE_IDS.set(roster, ids);
    }
    let h = 0;
    for (let i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) >>> 0;
    return ids[h % ids.length] === this.self.id;
  }

  // --- receiving ------------------------------------------------------------------------------

  #drop(code: string): InboxOutcome {
    this.#drops.set(code, (this.#drops.get(code) ?? 0) + 1);
    return { kind: 'unreadable', reason: code };
  }

  /** The inbox's handler: one envelope at a time; resolves once everything it changed is held. */
  async #onEnvelope(bytes: Uint8Array, _relayId: string): Promise<InboxOutcome> {
    const notYet = await this.beforeOpen();
    if (notYet !== null) return { kind: 'later', reason: notYet };
    const roster = this.trust.current?.roster;
    // Without a roster nothing can be classified: leave it for later (it comes again).
    if (roster === undefined) return { kind: 'later', reason: ClientErrorCode.NO_PROFILE };
    const opened = this.sessions.open(bytes);
    if (!opened.ok) {
      return opened.retry
        ? { kind: 'later', reason: opened.code }
        : { kind: 'unreadable', reason: opened.code };
    }
    this.afterOpen(opened.consumedOneTimePrekey, opened.rotatedPrekeys);
    const outcome = await this.#accept(opened);
    // Committed (and taken in): held before the ack (a contact's state is saved).
    const unsaved = await this.afterCommit();
    return unsaved === null ? outcome : { kind: 'later', reason: unsaved };
  }

  async #accept(opened: Extract<OpenResult, { ok: true }>): Promise<InboxOutcome> {
    const roster = this.trust.current!.roster;
    const decoded = decodeConversationMessage(opened.plaintext);
    if (!decoded.ok) return this.#drop(decoded.error.code);
    const message = decoded.message;
    const incoming = checkIncoming(this.role, this.self, roster, opened.sender, message);
    if (!incoming.ok) return this.#drop(incoming.code);
    const sender = opened.sender;
    if (!this.#seen.add(`${sender.id}:${message.id}`)) {
      this.#duplicates++;
      return { kind: 'accepted' };
    }
    const { origin, caseId } = incoming;
    const fromOtherSide = (origin.from === 'contact') !== (this.role === 'contact');
    switch (message.type) {
      case 'text':
      case 'attachment':
      case 'status_notice':
      case 'intake': {
        let intake: ReceivedMessage['intake'];
        if (message.type === 'intake') {
          const checked = this.checkIntake(message.profileVersion, message.answers);
          if (checked === 'invalid') return this.#drop(ConversationErrorCode.INTAKE_INVALID);
          intake = checked ?? undefined;
        }
        if (origin.from === 'contact') this.onContact(sender);
        this.onAccepted(message, sender);
        this.events.emit('message', {
          message,
          case: caseId,
          origin,
          sender: sender.id,
          ...(intake === undefined ? {} : { intake }),
        });
        if (fromOtherSide)
          this.#queueDelivered(this.role === 'team' ? (caseId ?? '') : '', message.id);
        return { kind: 'accepted' };
      }
      case 'receipt': {
        if (origin.from === 'contact') this.onContact(sender);
        const { marks, changes } = this.ledger.onReceipt(sender.id, message.kind, message.ids);
        for (const mark of marks) {
          if (mark.kind === 'read') await this.client.markRead(mark.envelopeId);
          else await this.client.markDelivered(mark.envelopeId);
        }
        for (const change of changes) this.events.emit('message-state', change);
        this.onAccepted(message, sender);
        this.events.emit('receipt', {
          case: caseId,
          origin,
          sender: sender.id,
          kind: message.kind,
          ids: message.ids,
        });
        return { kind: 'accepted' };
      }
      case 'case_event': {
        const outcome = this.onCaseEvent(message);
        if (outcome !== null) return this.#drop(outcome);
        return { kind: 'accepted' };
      }
      case 'sync_request':
      case 'sync_response':
        // The history hand-off is not built yet (docs/client.md): acked and counted.
        this.#ignored++;
        return { kind: 'accepted' };
    }
  }

  /** Before an envelope is opened: null to go on, or why it is left for a later delivery. */
  protected beforeOpen(): Promise<string | null> {
    return Promise.resolve(null);
  }

  /** After an opened envelope was handled: null when held, or why it must come again. */
  protected afterCommit(): Promise<string | null> {
    return Promise.resolve(null);
  }

  /** A text, attachment, notice, intake or receipt from a peer was accepted. */
  protected onAccepted(_message: ConversationMessage, _sender: PublicIdentity): void {}

  /** After a message was opened: prekey upkeep (team devices). */
  protected afterOpen(_consumedOneTime: boolean, _rotated: boolean): void {}

  /** A contact was heard from (team devices remember it for replies). */
  protected onContact(_contact: PublicIdentity): void {}

  /** An intake's check against the profile it names: null when that profile is not held. */
  protected checkIntake(
    _profileVersion: number,
    _answers: readonly IntakeAnswer[],
  ): ReceivedMessage['intake'] | 'invalid' | null {
    return null;
  }

  /** A team case event (already origin-checked); a drop code, or null when taken in. */
  protected onCaseEvent(
    _event: Extract<ConversationMessage, { type: 'case_event' }>,
  ): string | null {
    // checkIncoming never lets a case event reach a contact's device.
    return ConversationErrorCode.WRONG_ORIGIN;
  }
}

// -----------------------------------------------------------------------------------------------

/** How a contact's conversation keeps its state on the relay (ADR 0017, docs/client.md). */
export interface ContactStateSetup {
  /** The codename's storage key (`deriveCodenameKeys(…).mailboxKey`). */
  readonly mailboxKey: Uint8Array;
  /**
   * `new`: nothing saved yet (the first save, with the first send, creates the state);
   * `restore`: `start()` reads the saved state first, and throws
   * `ContactStateError('state_not_found')` (the same for a wrong codename) when none is held.
   */
  readonly mode: 'new' | 'restore';
}

export interface ContactOptions extends EndpointOptions {
  /** The contact's identity (from its codename). */
  readonly identity: DeviceIdentity;
  /**
   * The contact's sessions: a restored store (the state blob) or, by default, a new one that
   * publishes no prekeys (a contact only starts sessions). Not with `state`, which keeps its own.
   */
  readonly store?: DeviceStore;
  /**
   * Keeps the conversation (sessions, transcript, intake, outbox) as the contact's state blob
   * on the relay, saved before every envelope leaves and before every ack (commit = save).
   */
  readonly state?: ContactStateSetup;
}

/**
 * The contact's side: writes to every coordinator device on the verified roster, reads only
 * what roster devices send, and never holds a session with a device the roster dropped.
 *
 * With `state`, the conversation is its state blob's: a send is committed, added to the
 * transcript and the saved outbox, and saved before its envelopes go to the outbox (a failed
 * save sends nothing and throws its error); a delivered envelope is opened, committed, added
 * and saved before it is acked (a failed save leaves it for a later delivery); after a restore,
 * the first send to each peer starts a fresh session from its published bundle (the blob holds
 * no sending chain, and a stale copy must not write on a ratchet another copy moved on); the
 * saved profile version is the floor of the profiles accepted.
 */
export class ContactConversation extends ConversationEndpoint {
  readonly #setup: ContactStateSetup | undefined;
  readonly #identity: DeviceIdentity;
  #state: ContactStateStore | undefined;
  /** Settles once a restoring state is back (or could not be): the inbox waits for it. */
  #restored: Promise<boolean>;
  #settleRestore: (ok: boolean) => void = () => undefined;
  /** A save failed: what is in memory is not yet held. */
  #unsaved = false;

  constructor(options: ContactOptions) {
    if (options.state !== undefined && options.store !== undefined) {
      throw new TypeError('a contact with a state keeps its own store');
    }
    const store =
      options.store ?? MemoryDeviceStore.createInitiatorOnly(options.p, options.identity);
    if (!store.identity.publicIdentity.equals(options.identity.publicIdentity)) {
      throw new TypeError('the store belongs to another identity');
    }
    super('contact', options, store);
    this.#setup = options.state;
    this.#identity = options.identity;
    if (options.state?.mode === 'restore') {
      this.#restored = new Promise((resolve) => (this.#settleRestore = resolve));
    } else {
      this.#restored = Promise.resolve(true);
      if (options.state !== undefined) {
        this.#state = ContactStateStore.create(
          this.#stateOptions(options.state),
          store as MemoryDeviceStore,
        );
      }
    }
    this.on('profile', (change) => this.#state?.seeProfileVersion(change.profile.version));
    this.on('message-state', ({ id, state }) => this.#onMessageState(id, state));
  }

  /** The state kept on the relay (with `state`, once started), for the page to show. */
  get savedState(): ContactStateStore | undefined {
    return this.#state;
  }

  /**
   * Fetches and verifies the profile against the pinned key, then connects. Throws, with
   * nothing sent, the `OrgError` of a refused profile or `ClientError('no_profile')`; when
   * restoring, first `ContactStateError('state_not_found')` (a wrong codename too), a decode
   * code of a blob that does not open, or the relay's error (the conversation is then closed).
   */
  async start(): Promise<OrgProfile> {
    if (this.#setup?.mode !== 'restore' || this.#state !== undefined) {
      await this.startEndpoint();
      // A restored store may hold sessions with devices the roster no longer lists.
      this.sessions.retainRoster(this.trust.current!.roster);
      return this.trust.current!;
    }
    try {
      // Authentication only: nothing is sent, and nothing delivered is read before the state
      // is back and the profile verified (the inbox waits for both).
      void this.client.connect();
      const state = await ContactStateStore.restore(this.#stateOptions(this.#setup), {
        signingKey: this.#identity.publicIdentity.signingKey,
      });
      this.trust.raiseMinVersion(state.conversation.profileVersion);
      this.useStore(state.device);
      this.#state = state;
      await this.startEndpoint();
      this.sessions.retainRoster(this.trust.current!.roster);
      this.#settleRestore(true);
      return this.trust.current!;
    } catch (error) {
      this.#settleRestore(false);
      this.close();
      throw error;
    }
  }

  /**
   * "Delete my conversation": the relay deletes the state and what is queued for the
   * mailbox (`ContactStateStore.delete`), nothing is saved any more, and the conversation is
   * closed. Throws `ClientError('no_state')` without `state`, or the relay's error (call again).
   */
  async deleteConversation(): Promise<void> {
    const state = this.#state;
    if (state === undefined) throw new ClientError(ClientErrorCode.NO_STATE);
    await state.delete();
    this.close();
  }

  #stateOptions(setup: ContactStateSetup): ContactStateOptions {
    // Each request once the connection is ready, and again after a reconnect when the socket
    // went before the answer came (a save cut off mid-send must not fail the send: its message
    // would be lost). A put the relay had stored meets its own generation as a conflict, which
    // the store resolves by reading and merging (the same message, once).
    const port: StateBlobPort = {
      getState: () => this.whenConnected(() => this.client.getState()),
      putState: (blob, ifGeneration) =>
        this.whenConnected(() => this.client.putState(blob, ifGeneration)),
      deleteState: () => this.whenConnected(() => this.client.deleteState()),
    };
    return { primitives: this.p, mailboxKey: setup.mailboxKey, mailbox: this.mailbox, port };
  }

  /** Saves; false (and remembered) when it failed. */
  async #save(state: ContactStateStore): Promise<boolean> {
    try {
      await state.save();
      this.#unsaved = false;
      return true;
    } catch {
      this.#unsaved = true;
      return false;
    }
  }

  protected override async beforeOpen(): Promise<string | null> {
    if (!(await this.#restored)) return ClientErrorCode.STATE_NOT_READY;
    // What a failed save left in memory is held first (a redelivery cannot be opened again).
    if (this.#unsaved && this.#state !== undefined && !(await this.#save(this.#state))) {
      return ClientErrorCode.STATE_NOT_SAVED;
    }
    return null;
  }

  protected override async afterCommit(): Promise<string | null> {
    const state = this.#state;
    if (state === undefined) return null;
    return (await this.#save(state)) ? null : ClientErrorCode.STATE_NOT_SAVED;
  }

  protected override onAccepted(message: ConversationMessage, sender: PublicIdentity): void {
    const state = this.#state;
    if (state === undefined) return;
    switch (message.type) {
      case 'text':
      case 'attachment':
      case 'status_notice':
        state.addEntry({ from: sender.id, message, receipt: 'none' });
        break;
      case 'receipt':
        for (const id of message.ids) state.setReceipt(id, message.kind);
        break;
      default:
        break;
    }
  }

  protected override async prepareRecipients(
    recipients: readonly PublicIdentity[],
  ): Promise<{ recipients: readonly PublicIdentity[]; unreachable: SealResult['unreachable'] }> {
    const state = this.#state;
    const fenced = state === undefined ? [] : recipients.filter((d) => state.needsFreshSession(d));
    if (state === undefined || fenced.length === 0) return { recipients, unreachable: [] };
    // A restored session may have a sending chain again (a reply was read on it), on a ratchet
    // another copy may have moved on: a fresh handshake, or nothing, for each such peer.
    const { bundles, unreachable } = await this.sessions.fetchBundles(fenced);
    state.startFreshSessions([...bundles.values()]);
    return {
      recipients: recipients.filter((d) => !state.needsFreshSession(d)),
      unreachable,
    };
  }

  protected override async beforeEnvelopesLeave(message: ConversationMessage): Promise<void> {
    const state = this.#state;
    if (state === undefined) return;
    const own = message.type === 'text' || message.type === 'attachment';
    if (own) state.addEntry({ from: 'contact', message, receipt: 'none' });
    if (message.type === 'intake') state.setIntake(message);
    if (message.type === 'receipt')
      for (const id of message.ids) state.setReceipt(id, message.kind);
    try {
      if (own || message.type === 'intake') state.addToOutbox(message.id);
      await state.save();
      this.#unsaved = false;
    } catch (error) {
      // Nothing leaves: the message is taken back (the sessions' change is kept, and saved
      // with the next save: the blob holds no sending chain, so none is reused).
      state.discard(message.id);
      this.#unsaved = true;
      throw error;
    }
  }

  #onMessageState(id: string, messageState: MessageState): void {
    const state = this.#state;
    if (state === undefined || messageState === 'queued' || messageState === 'failed') return;
    if (!state.conversation.outbox.includes(id)) return;
    state.removeFromOutbox(id);
    void this.#save(state);
  }

  /** A text to the organization. */
  sendText(body: string): Promise<SentMessage> {
    return this.serial(() => this.sendNow({ ...this.common(), type: 'text', body }));
  }

  /** The intake answers, for the questionnaire of the profile held. */
  sendIntake(answers: readonly IntakeAnswer[]): Promise<SentMessage> {
    return this.serial(() => {
      const profileVersion = this.trust.usable().version;
      return this.sendNow({
        ...this.common(),
        type: 'intake',
        profileVersion,
        answers: [...answers],
      });
    });
  }

  /**
   * A file to the organization: sealed under a fresh key, uploaded to the relay (reserving a blob,
   * retrying what is retryable), then sent as an `attachment` message the way a text is (the
   * outbox, delivery states, and the saved state's transcript). Strip the file's metadata first
   * (`stripMetadata`, shared/src/media). `onProgress` follows the upload.
   *
   * @throws AttachmentError (`attachment_too_large` over the profile's or the relay's bound,
   *   before any upload; `attachment_empty`; a transport code), ConversationError
   *   ('msg_malformed') for a name or type a message cannot carry, and what `sendText` throws
   */
  async sendAttachment(
    file: AttachmentFile,
    onProgress?: BlobProgressListener,
  ): Promise<SentMessage> {
    const ref = await this.uploadAttachment(file, undefined, onProgress);
    return this.serial(() => this.sendNow({ ...this.common(), ...ref, type: 'attachment' }));
  }

  /** Tells the team that the contact has read these messages (ids of theirs). */
  markRead(ids: readonly string[]): Promise<SentMessage | null> {
    return this.serial(() => this.receiptFor('read', ids, undefined));
  }

  protected override receiptFor(
    kind: 'delivered' | 'read',
    ids: readonly string[],
    _caseId: string | undefined,
  ): Promise<SentMessage | null> {
    if (ids.length === 0) return Promise.resolve(null);
    return this.sendNow({ ...this.common(), type: 'receipt', kind, ids: [...ids] });
  }

  protected override onRoster(change: ProfileChange): void {
    this.sessions.retainRoster(change.profile.roster);
  }
}

// -----------------------------------------------------------------------------------------------

export interface TeamOptions extends EndpointOptions {
  /** The device's store, with its prekeys (a `MemoryDeviceStore.create`, or a restored one). */
  readonly store: PublishingStore;
  /** The shared case state this device keeps (a restored one, or a new `CaseReplica`). */
  readonly replica: CaseReplica;
  readonly prekeyPolicy?: Partial<PrekeyPolicy>;
}

/**
 * A coordinator's device: reads every contact's messages and its colleagues' copies, replies
 * to the contact and the other devices at once, keeps the case state with the team (never with
 * the contact), and keeps its prekeys published.
 */
export class TeamDevice extends ConversationEndpoint {
  readonly #replica: CaseReplica;
  readonly #publisher: PrekeyPublisher;
  /** Case id → the contact's identity, most recently heard last. */
  readonly #contacts = new Map<string, PublicIdentity>();

  constructor(options: TeamOptions) {
    super('team', options, options.store);
    if (options.replica.device !== options.store.identity.publicIdentity.id) {
      throw new TypeError('the replica belongs to another device');
    }
    this.#replica = options.replica;
    this.#publisher = new PrekeyPublisher({
      store: options.store,
      request: (frame, expect) => this.client.request(frame, expect),
      clock: this.clock,
      ...(options.prekeyPolicy === undefined ? {} : { policy: options.prekeyPolicy }),
    });
    this.client.on('state', (s) => {
      if (s.state === 'ready') void this.#publisher.onReady();
    });
  }

  /** Prekey upkeep: its events (`published`, `failed`). */
  get prekeys(): PrekeyPublisher {
    return this.#publisher;
  }

  /**
   * Fetches and verifies the profile, then connects (and publishes prekeys). Throws the
   * `OrgError` of a refused profile, `ClientError('no_profile')`, or
   * `ClientError('not_in_roster')` for a device the roster does not list.
   */
  async start(): Promise<OrgProfile> {
    await this.startEndpoint();
    const profile = this.trust.current!;
    if (!isRosterDevice(profile.roster, this.self)) {
      this.close();
      throw new ClientError(ClientErrorCode.NOT_IN_ROSTER);
    }
    return profile;
  }

  override close(): void {
    this.#publisher.stop();
    super.close();
  }

  /** The shared state of a case. */
  caseState(caseId: string): CaseState {
    return this.#replica.state(caseId);
  }

  /** Whether this device can write to a case's contact (it holds the contact's session). */
  canReply(caseId: string): boolean {
    const contact = this.#contactOf(caseId);
    return contact !== undefined && this.sessions.canSend(contact);
  }

  /** A text to the case's contact, copied to every other team device. */
  sendText(caseId: string, body: string): Promise<SentMessage> {
    return this.serial(() =>
      this.sendNow(
        { ...this.common(), type: 'text', case: caseId, body },
        this.#requireContact(caseId),
      ),
    );
  }

  /**
   * A file to the case's contact, copied to every other team device: sealed, uploaded, then sent
   * as an `attachment` message the way a text is. As `ContactConversation.sendAttachment`; also
   * `ClientError('unknown_case')`, before any upload, for a case this device cannot write to.
   */
  async sendAttachment(
    caseId: string,
    file: AttachmentFile,
    onProgress?: BlobProgressListener,
  ): Promise<SentMessage> {
    if (!this.canReply(caseId)) throw new ClientError(ClientErrorCode.UNKNOWN_CASE);
    const ref = await this.uploadAttachment(file, caseId, onProgress);
    return this.serial(() =>
      this.sendNow(
        { ...this.common(), ...ref, type: 'attachment', case: caseId },
        this.#requireContact(caseId),
      ),
    );
  }

  /** What the contact is shown of its case, copied to the team. */
  sendNotice(caseId: string, status: ContactStatus): Promise<SentMessage> {
    return this.serial(() =>
      this.sendNow(
        { ...this.common(), type: 'status_notice', case: caseId, status },
        this.#requireContact(caseId),
      ),
    );
  }

  /**
   * A change to the case's shared state (status, priority, assignee, tag, note, …): applied
   * here at once, then sent to the other team devices only, never to the contact. Throws
   * `ConversationError('case_limit')` past a bound of the case, `ClientError('not_in_roster')`
   * for an assignee the roster does not list.
   */
  caseEvent(caseId: string, op: CaseOp): Promise<SentMessage> {
    return this.serial(() => {
      const roster = this.trust.usable().roster;
      if (op.kind === 'assignee' && op.device !== undefined) {
        const assignee = op.device;
        if (!roster.devices.some((d) => d.id === assignee)) {
          throw new ClientError(ClientErrorCode.NOT_IN_ROSTER);
        }
      }
      const event = this.#replica.change(
        caseId,
        op,
        newConversationId(this.p.random),
        this.clock.now(),
      );
      this.events.emit('case', { case: caseId, state: this.#replica.state(caseId) });
      return this.sendNow(event);
    });
  }

  /** An internal note on the case (team only). */
  note(caseId: string, text: string): Promise<SentMessage> {
    return this.caseEvent(caseId, { kind: 'note', text });
  }

  /** Tells the contact and the team that this coordinator has read these messages. */
  markRead(caseId: string, ids: readonly string[]): Promise<SentMessage | null> {
    return this.serial(() => this.receiptFor('read', ids, caseId));
  }

  protected override receiptFor(
    kind: 'delivered' | 'read',
    ids: readonly string[],
    caseId: string | undefined,
  ): Promise<SentMessage | null> {
    if (ids.length === 0 || caseId === undefined) return Promise.resolve(null);
    return this.sendNow(
      { ...this.common(), type: 'receipt', case: caseId, kind, ids: [...ids] },
      this.#requireContact(caseId),
    );
  }

  protected override onRoster(change: ProfileChange): void {
    // Nothing more to or from a removed device (a seized phone): its sessions go.
    this.sessions.forget(change.removed);
  }

  protected override afterOpen(consumedOneTime: boolean, rotated: boolean): void {
    if (rotated) void this.#publisher.onRotated();
    else if (consumedOneTime) void this.#publisher.onConsumed();
  }

  protected override onContact(contact: PublicIdentity): void {
    this.#contacts.delete(contact.id);
    this.#contacts.set(contact.id, contact);
    if (this.#contacts.size > MAX_CASES_PER_REPLICA) {
      this.#contacts.delete(this.#contacts.keys().next().value!);
    }
  }

  protected override checkIntake(
    profileVersion: number,
    answers: readonly IntakeAnswer[],
  ): ReceivedMessage['intake'] | 'invalid' | null {
    const profile = this.trust.current;
    if (profile === null || profile.version !== profileVersion) return null;
    const questionnaire = profile.content.questionnaire;
    if (checkIntake(questionnaire, answers) !== null) return 'invalid';
    return {
      urgency: intakeUrgency(questionnaire, answers),
      issues: intakeIssues(questionnaire, answers),
    };
  }

  protected override onCaseEvent(
    event: Extract<ConversationMessage, { type: 'case_event' }>,
  ): string | null {
    const now = this.clock.now();
    this.#replica.retryDeferred(now);
    const outcome = this.#replica.receive(event, now);
    if (outcome === 'refused') return ConversationErrorCode.CASE_LIMIT;
    if (outcome === 'applied') {
      this.events.emit('case', { case: event.case, state: this.#replica.state(event.case) });
    }
    return null;
  }

  /** The contact of a case: heard from in this run, or the peer of a held session. */
  #contactOf(caseId: string): PublicIdentity | undefined {
    const known = this.#contacts.get(caseId);
    if (known !== undefined) return known;
    // A restored store: the contact is the peer of one of its sessions.
    const roster = this.trust.current?.roster;
    for (const address of this.store.sessionAddresses()) {
      const peer = this.store.loadSession(address)?.peer;
      if (peer?.id === caseId && (roster === undefined || !isRosterDevice(roster, peer))) {
        return peer;
      }
    }
    return undefined;
  }

  #requireContact(caseId: string): PublicIdentity {
    const contact = this.#contactOf(caseId);
    if (contact === undefined) throw new ClientError(ClientErrorCode.UNKNOWN_CASE);
    return contact;
  }
}
