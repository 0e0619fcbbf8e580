/**
 * The returning contact's state on the relay: save (compare-and-set, merge on conflict), restore
 * and delete, over the three `state.*` requests of the mailbox's authenticated connection
 * (`StateBlobPort`, which `PassageClient` implements). The encoding, sealing and merge rules are
 * contact-state.ts; the rules of use (ADR 0017) are:
 *
 * - **Commit = save.** The contact's page keeps nothing locally, so the blob is its storage:
 *   commit the session transaction of a send, add the message to the transcript and the outbox,
 *   and `save()` before the envelopes go to `PassageClient.send`; and for a delivered envelope,
 *   decrypt, commit, add it to the transcript and `save()` before the handler answers (the ack
 *   goes after). Saves are serialised; one in flight at a time.
 * - **After a restore, a fresh handshake per peer before sending to it** (`needsFreshSession`,
 *   `startFreshSessions`): the blob holds no sending chain, so no restored session can reuse a
 *   message key, and a fresh session also reaches a peer whose ratchet moved on since the blob
 *   was saved (two tabs).
 * - A wrong codename and a missing state are one answer, `state_not_found`: the codename's
 *   Argon2id runs either way (it gives the mailbox that is asked), and the relay's answer for a
 *   mailbox without a state is the same for never saved, deleted, expired and never existed.
 */
import type { VerifiedPrekeyBundle } from '../crypto/bundle.js';
import { startSession } from '../crypto/cipher.js';
import { CryptoError } from '../crypto/errors.js';
import type { PublicIdentity } from '../crypto/identity.js';
import type { MemoryDeviceStore, StoredDevice } from '../crypto/memory-store.js';
import type { Primitives } from '../crypto/primitives.js';
import { SessionRecord } from '../crypto/session-record.js';
import { sessionsTransaction } from '../crypto/store.js';
import { RelayError } from './errors.js';
import {
  ContactStateError,
  ContactStateErrorCode,
  EMPTY_CONVERSATION,
  MAX_STATE_OUTBOX,
  MAX_TRANSCRIPT_ENTRIES,
  contactStateKeys,
  insertEntry,
  mergeConversations,
  openContactState,
  sealContactState,
  type SavedConversation,
  type ContactState,
  type ContactStateKeys,
  type TranscriptEntry,
  type TranscriptReceipt,
} from './contact-state.js';
import type { IntakeMessage } from './conversation/messages.js';

/** Saves tried before `state_conflict_unresolved` (each after re-reading and merging). */
export const MAX_STATE_SAVE_ATTEMPTS = 4;

/** The mailbox's state requests (`PassageClient.getState`, `putState`, `deleteState`). */
export interface StateBlobPort {
  getState(): Promise<{ readonly blob: Uint8Array | null; readonly generation: number }>;
  putState(blob: Uint8Array, ifGeneration: number): Promise<number>;
  deleteState(): Promise<void>;
}

export interface ContactStateOptions {
  readonly primitives: Primitives;
  /** The codename's mailbox/storage key (`deriveCodenameKeys(…).mailboxKey`). */
  readonly mailboxKey: Uint8Array;
  /** The contact's mailbox id (of the codename's identity). */
  readonly mailbox: string;
  readonly port: StateBlobPort;
}

export class ContactStateStore {
  readonly #p: Primitives;
  readonly #keys: ContactStateKeys;
  #port: StateBlobPort;
  /** The device records: the session layer reads and commits through it. */
  readonly device: MemoryDeviceStore;
  #conversation: SavedConversation;
  #generation: number;
  #deleted = false;
  #saving: Promise<void> = Promise.resolve();
  /** Peers whose sessions came from a restored blob and have no fresh one yet (addresses). */
  readonly #fenced: Set<string>;

  private constructor(
    options: ContactStateOptions,
    device: MemoryDeviceStore,
    conversation: SavedConversation,
    generation: number,
    fenced: Iterable<string>,
  ) {
    this.#p = options.primitives;
    this.#keys = contactStateKeys(options.primitives, options.mailboxKey, options.mailbox);
    this.#port = options.port;
    this.device = device;
    this.#conversation = conversation;
    this.#generation = generation;
    this.#fenced = new Set(fenced);
  }

  /** A new contact's state (nothing saved yet: the first `save` creates it). */
  static create(options: ContactStateOptions, device: MemoryDeviceStore): ContactStateStore {
    return new ContactStateStore(options, device, EMPTY_CONVERSATION, 0, []);
  }

  /**
   * The state saved for this codename. Throws `ContactStateError('state_not_found')` when none
   * is held (whatever the reason, a wrong codename among them), a decode code of
   * `ContactStateErrorCode` for a blob that does not open, or the port's error.
   */
  static async restore(
    options: ContactStateOptions,
    device: {
      /** The codename's identity, which the saved one must be. */
      readonly signingKey: Uint8Array;
    },
  ): Promise<ContactStateStore> {
    const { blob, generation } = await options.port.getState();
    const keys = contactStateKeys(options.primitives, options.mailboxKey, options.mailbox);
    if (blob === null) throw new ContactStateError(ContactStateErrorCode.NOT_FOUND);
    const opened = openContactState(options.primitives, keys, blob, {
      identity: device.signingKey,
    });
    return new ContactStateStore(
      options,
      opened.device,
      conversationOf(opened.state),
      generation,
      opened.device.sessionAddresses(),
    );
  }

  /**
   * Goes on over another connection of the same mailbox (a new `PassageClient` after the old one
   * was closed): later saves use it.
   */
  usePort(port: StateBlobPort): void {
    this.#port = port;
  }

  /** The conversation as it is now (saved or not). */
  get conversation(): SavedConversation {
    return this.#conversation;
  }

  /** The generation of the blob this copy last wrote or read (0: none). */
  get generation(): number {
    return this.#generation;
  }

  /** Everything a save would write, before sealing (and trimming). */
  get state(): ContactState {
    return { ...this.#conversation, device: this.device.export() };
  }

  // Changes (in memory until `save`).

  /**
   * Adds a transcript entry (in transcript order; an id held already is ignored). Past
   * `MAX_TRANSCRIPT_ENTRIES` the oldest entry not in the outbox goes (counted in `trimmed`).
   */
  addEntry(entry: TranscriptEntry): void {
    const c = this.#conversation;
    let transcript = insertEntry(c.transcript, entry);
    let trimmed = c.trimmed;
    if (transcript.length > MAX_TRANSCRIPT_ENTRIES) {
      const pinned = new Set(c.outbox);
      const drop = transcript.findIndex((e) => !pinned.has(e.message.id));
      transcript = transcript.filter((_, i) => i !== drop);
      trimmed++;
    }
    this.#conversation = { ...c, transcript, trimmed };
  }

  /** Records a receipt on an entry (never moves it back: none → delivered → read). */
  setReceipt(id: string, receipt: TranscriptReceipt): void {
    const order: readonly TranscriptReceipt[] = ['none', 'delivered', 'read'];
    const c = this.#conversation;
    const transcript = c.transcript.map((e) =>
      e.message.id === id && order.indexOf(receipt) > order.indexOf(e.receipt)
        ? { ...e, receipt }
        : e,
    );
    this.#conversation = { ...c, transcript };
  }

  /** The intake answers as sent (kept apart from the transcript, never trimmed). */
  setIntake(intake: IntakeMessage): void {
    this.#conversation = { ...this.#conversation, intake };
  }

  /**
   * Marks one of the contact's messages as not yet stored for every recipient (kept, and sent
   * again after a restore, with its id). Throws `state_too_large` past `MAX_STATE_OUTBOX`.
   */
  addToOutbox(id: string): void {
    const c = this.#conversation;
    if (c.outbox.includes(id)) return;
    if (c.outbox.length >= MAX_STATE_OUTBOX) {
      throw new ContactStateError(ContactStateErrorCode.TOO_LARGE);
    }
    this.#conversation = { ...c, outbox: [...c.outbox, id] };
  }

  /** The message is stored for every recipient: it leaves the outbox. */
  removeFromOutbox(id: string): void {
    const c = this.#conversation;
    this.#conversation = { ...c, outbox: c.outbox.filter((x) => x !== id) };
  }

  /**
   * Takes back a message of the contact's that was never sent (its save failed before any
   * envelope left): out of the transcript, the intake and the outbox.
   */
  discard(id: string): void {
    const c = this.#conversation;
    this.#conversation = {
      ...c,
      transcript: c.transcript.filter((e) => e.message.id !== id || e.from !== 'contact'),
      intake: c.intake?.id === id ? null : c.intake,
      outbox: c.outbox.filter((x) => x !== id),
    };
  }

  /** An organization profile version accepted; the highest one is kept. */
  seeProfileVersion(version: number): void {
    const c = this.#conversation;
    if (version > c.profileVersion) this.#conversation = { ...c, profileVersion: version };
  }

  // Sessions after a restore.

  /** True when the device's session with `peer` came from a restored blob: start a fresh one. */
  needsFreshSession(peer: PublicIdentity): boolean {
    return this.#fenced.has(peer.address);
  }

  /** The peers that need a fresh session (addresses), e.g. to fetch their bundles at once. */
  get peersNeedingFreshSessions(): readonly string[] {
    return [...this.#fenced];
  }

  /**
   * Starts a fresh session (a new PQXDH handshake from a verified bundle) with each peer of
   * `bundles`, committed to the device, and lifts their restore fence. Save afterwards (with
   * the first message), as after any commit.
   */
  startFreshSessions(bundles: readonly VerifiedPrekeyBundle[]): void {
    for (const bundle of bundles) {
      const { transaction } = startSession(this.#p, this.device, bundle);
      this.device.commit(transaction);
      this.#fenced.delete(bundle.identity.address);
    }
  }

  // The relay.

  /**
   * Writes the state (sealed, trimmed to fit) with compare-and-set on the generation last seen.
   * On `state_conflict` it reads the other writer's state, merges it in (the conversation by
   * `mergeConversations`; the other copy's sessions join this device's records as archived
   * ones, so this device can read what was encrypted to them), and tries again, up to
   * `MAX_STATE_SAVE_ATTEMPTS`. Saves run one at a time, in call order.
   *
   * @throws ContactStateError('state_deleted') when the state was deleted meanwhile (it is not
   *   written again: the contact asked for it gone), ('state_conflict_unresolved'),
   *   ('state_too_large'); the port's errors (not connected, …: save again later)
   */
  save(): Promise<void> {
    const run = this.#saving.then(() => this.#save());
    // The chain goes on after a failed save; the caller still sees the failure.
    this.#saving = run.catch(() => undefined);
    return run;
  }

  async #save(): Promise<void> {
    if (this.#deleted) throw new ContactStateError(ContactStateErrorCode.DELETED);
    for (let attempt = 1; ; attempt++) {
      const before = this.#conversation;
      const sealed = sealContactState(this.#p, this.#keys, this.state);
      try {
        this.#generation = await this.#port.putState(sealed.blob, this.#generation);
        // What was trimmed to fit is gone from memory too, so that memory and blob agree. Only
        // that: what changed in memory while the put was on its way (an entry read meanwhile,
        // an outbox id removed) stays, for the next save to write.
        this.#dropTrimmed(before, sealed.saved);
        return;
      } catch (error) {
        if (!(error instanceof RelayError) || error.code !== 'state_conflict') throw error;
      }
      const { blob, generation } = await this.#port.getState();
      if (blob === null) {
        if (this.#generation !== 0) {
          this.#deleted = true;
          throw new ContactStateError(ContactStateErrorCode.DELETED);
        }
      } else {
        const theirs = openContactState(this.#p, this.#keys, blob, {
          identity: this.device.identity.publicIdentity.signingKey,
        });
        this.#mergeIn(theirs.state);
      }
      this.#generation = generation;
      if (attempt >= MAX_STATE_SAVE_ATTEMPTS) {
        throw new ContactStateError(ContactStateErrorCode.CONFLICT);
      }
    }
  }

  /** Takes out of memory the entries a seal of `before` trimmed away to fit (`saved`). */
  #dropTrimmed(before: SavedConversation, saved: SavedConversation): void {
    if (saved.transcript.length === before.transcript.length) return;
    const key = (e: TranscriptEntry) => `${e.from}:${e.message.id}`;
    const kept = new Set(saved.transcript.map(key));
    const gone = new Set(before.transcript.filter((e) => !kept.has(key(e))).map(key));
    const now = this.#conversation;
    const transcript = now.transcript.filter((e) => !gone.has(key(e)));
    const dropped = now.transcript.length - transcript.length;
    this.#conversation = {
      ...now,
      transcript,
      trimmed: Math.min(0xffff_ffff, now.trimmed + dropped),
    };
  }

  #mergeIn(theirs: ContactState): void {
    this.#conversation = mergeConversations(this.#conversation, conversationOf(theirs));
    const records = mergeSessions(this.#p, this.device, theirs.device);
    // A peer only the other copy knew: its sessions cannot send here, so it needs a fresh one.
    const added = records.filter(([a]) => this.device.loadSession(a) === undefined);
    try {
      this.device.commit(sessionsTransaction(records));
      for (const [address] of added) this.#fenced.add(address);
    } catch (error) {
      // Only at MAX_PEER_DEVICES, which a contact never nears: keep our records as they are.
      if (!(error instanceof CryptoError)) throw error;
    }
  }

  /**
   * "Delete my conversation": the relay deletes the state and what is queued for the mailbox
   * (docs/protocol.md, `state.delete`), and this copy saves nothing more (`state_deleted`), from
   * the moment of the call: a save still waiting in the queue, or asked for while the delete is
   * on its way, is refused, so none can re-create the state after it (a copy that never saved
   * would, with `ifGeneration` 0). The delete goes after the save in flight, if any. If it fails
   * (not connected, …), call it again; this copy keeps refusing saves. The page then forgets
   * everything it holds.
   */
  delete(): Promise<void> {
    this.#deleted = true;
    const run = this.#saving.then(async () => {
      await this.#port.deleteState();
      this.#generation = 0;
    });
    this.#saving = run.catch(() => undefined);
    return run;
  }
}

function conversationOf(state: ContactState): SavedConversation {
  const { profileVersion, trimmed, intake, transcript, outbox } = state;
  return { profileVersion, trimmed, intake, transcript, outbox };
}

/** The other copy's records merged into ours (`SessionRecord.withArchived`), per peer. */
function mergeSessions(
  p: Primitives,
  ours: MemoryDeviceStore,
  theirs: StoredDevice,
): [string, SessionRecord][] {
  const out: [string, SessionRecord][] = [];
  for (const bytes of theirs.sessions) {
    const their = SessionRecord.decode(p, bytes).withoutSendingChains();
    const mine = ours.loadSession(their.address);
    if (mine === undefined) {
      out.push([their.address, their]);
      continue;
    }
    const merged = mine.withArchived(their.sessions);
    // Compared by content: with a full archive a merge changes sessions, not their number.
    if (!merged.holdsSameSessionsAs(mine)) out.push([their.address, merged]);
  }
  return out;
}
