/**
 * The session cipher (libsignal's `session_cipher.rs`): pure transitions over the stores of
 * store.ts. Encrypting for a peer returns the envelope and the transaction that holds the new
 * record; decrypting returns the plaintext, the one-time prekey it consumed and the transaction
 * that holds everything it changed (the peer's new record, the used one-time prekey, the
 * remembered handshake, an early prekey rotation, an evicted peer). Nothing is written here: the
 * caller commits the transaction, in one piece, before the envelope leaves or the `ack` goes.
 * A transition that throws changes nothing, so a rejected envelope leaves no trace.
 *
 * Sender binding: the identity named inside an envelope only selects a record. A ratchet
 * message must then authenticate under that session's associated data, which the handshake
 * bound to both identities, so naming someone else as the sender fails (`decrypt_failed`). For
 * an initial message the named sender must equal the handshake's initiator, and the initial
 * message's early tag (x3dh.ts), checked after DH1 and before the rest of the handshake, needs
 * that identity's X25519 secret: a forgery naming a held peer costs one DH.
 *
 * Several sessions per peer (ADR 0006): the current one, which encrypts, and archived ones that
 * still decrypt. A ratchet message is read by the held session whose early tag it carries
 * (ratchet.ts), which becomes current; no other session does any work on it. An initial message whose handshake is
 * one of the sender's held sessions is read with that session; any other starts a new session,
 * which becomes current. Answered handshakes are remembered with the signed prekey they used
 * (limits.ts), so a replayed initial message cannot start an old session again.
 */
import { CryptoError, CryptoErrorCode } from './errors.js';
import type { Primitives } from './primitives.js';
import type { OpenedEnvelope } from './envelope.js';
import { openEnvelopeUnverified, sealEnvelope } from './envelope.js';
import { PublicIdentity } from './identity.js';
import type { VerifiedPrekeyBundle } from './bundle.js';
import {
  FAILED_DECRYPTION_WINDOW_MS,
  MAX_FAILED_DECRYPTIONS_PER_PEER,
  MAX_PEER_DEVICES,
  MAX_REMEMBERED_HANDSHAKES_PER_SIGNED_PREKEY,
  MAX_SKIPPED_KEYS_PER_DEVICE,
  MAX_SKIPPED_KEYS_PER_PEER,
  MAX_SKIPPED_KEYS_UNWRITTEN_PEERS,
} from './limits.js';
import { nextSignedPrekeys } from './prekeys.js';
import { SessionRecord } from './session-record.js';
import { Session } from './session.js';
import type { DeviceState, IdentityKeyStore, SessionStore, Transaction } from './store.js';
import { EMPTY_TRANSACTION } from './store.js';
import { decodePqxdhInitial } from './x3dh.js';

/** A decrypted message and the device that sent it (authenticated by its session). */
export interface ReceivedMessage {
  readonly sender: PublicIdentity;
  readonly plaintext: Uint8Array;
}

/** What `decryptEnvelope` returns: commit `transaction` before acknowledging the envelope. */
export interface DecryptResult extends ReceivedMessage {
  /** The one-time prekey the handshake used up (already in `transaction`), if any. */
  readonly consumedOneTimePrekeyId: number | null;
  /** True when the transaction rotates the signed prekeys: publish the new bundle. */
  readonly rotatedPrekeys: boolean;
  readonly transaction: Transaction;
}

/** What `encryptFor` returns: commit `transaction` before the envelope leaves. */
export interface EncryptResult {
  readonly envelope: Uint8Array;
  readonly transaction: Transaction;
}

/**
 * A per-peer budget of failed decryptions (limits.ts, `MAX_FAILED_DECRYPTIONS_PER_PEER`). Not
 * part of any record or transaction: it protects the device's CPU, not the protocol's state,
 * and starts empty after a restart. Holds at most `MAX_PEER_DEVICES` peers (the oldest window
 * goes first). The clock is injected.
 */
export class FailureBudget {
  private readonly windows = new Map<string, { startMs: number; failures: number }>();

  constructor(private readonly nowMs: () => number) {}

  /** False while the peer at `address` has used up its budget in the current window. */
  allows(address: string): boolean {
    const w = this.windows.get(address);
    if (w === undefined) return true;
    if (this.nowMs() - w.startMs >= FAILED_DECRYPTION_WINDOW_MS) {
      this.windows.delete(address);
      return true;
    }
    return w.failures < MAX_FAILED_DECRYPTIONS_PER_PEER;
  }

  /** Counts one failed decryption of an envelope naming the peer at `address`. */
  charge(address: string): void {
    const now = this.nowMs();
    const w = this.windows.get(address);
    if (w !== undefined && now - w.startMs < FAILED_DECRYPTION_WINDOW_MS) {
      w.failures++;
      return;
    }
    this.windows.delete(address);
    if (this.windows.size >= MAX_PEER_DEVICES) {
      for (const oldest of this.windows.keys()) {
        this.windows.delete(oldest);
        break;
      }
    }
    this.windows.set(address, { startMs: now, failures: 1 });
  }
}

/** Options of `decryptEnvelope`. */
export interface DecryptOptions {
  /**
   * The per-peer budget of failed decryptions to consult and charge (a device keeps one for
   * its lifetime). Without it, failures are not budgeted. An envelope refused by the budget
   * (`limit_exceeded`) should not be acknowledged: the relay then delivers it again later, so a
   * genuine message caught in a flood of forgeries is read once the window ends.
   */
  readonly budget?: FailureBudget;
  /**
   * Unix time, the creation time of signed prekeys that an early rotation makes (limits.ts,
   * `MAX_REMEMBERED_HANDSHAKES_PER_SIGNED_PREKEY`). Without it they carry the creation time of
   * the ones they replace, which only makes the next scheduled rotation come sooner.
   */
  readonly nowSeconds?: number;
}

/**
 * Records changed within one transition (fan-out builds several): reads see them before the
 * store. A null entry is a record deleted in this transition.
 */
export class RecordOverlay {
  readonly changed = new Map<string, SessionRecord | null>();

  constructor(private readonly store: SessionStore) {}

  load(address: string): SessionRecord | undefined {
    const own = this.changed.get(address);
    if (own !== undefined) return own ?? undefined;
    return this.store.loadSession(address);
  }

  put(record: SessionRecord): void {
    this.changed.set(record.address, record);
  }

  /**
   * Makes room for `fresh` new peers at `MAX_PEER_DEVICES` by deleting the least recently active
   * peers this device never wrote to (never one of `keep`). Throws `limit_exceeded`, changing
   * nothing, when there are not enough of them.
   */
  admit(fresh: number, keep: ReadonlySet<string>): void {
    if (fresh === 0) return;
    let count = this.store.sessionCount;
    for (const [address, record] of this.changed) {
      const held = this.store.loadSession(address) !== undefined;
      if (record === null && held) count--;
      if (record !== null && !held) count++;
    }
    const over = count + fresh - MAX_PEER_DEVICES;
    if (over <= 0) return;
    const victims = this.store
      .evictionCandidates(over + keep.size)
      .filter((a) => !keep.has(a) && this.changed.get(a) === undefined)
      .slice(0, over);
    if (victims.length < over) throw new CryptoError(CryptoErrorCode.LIMIT_EXCEEDED);
    for (const a of victims) this.changed.set(a, null);
  }

  transaction(): Transaction {
    return { ...EMPTY_TRANSACTION, sessions: new Map(this.changed) };
  }
}

/**
 * `next` (the record of a peer after a message was read) cut to the skipped keys the device
 * bounds leave it (limits.ts): its own bound, the room left under `MAX_SKIPPED_KEYS_PER_DEVICE`,
 * and for a peer this device never wrote to the room left under
 * `MAX_SKIPPED_KEYS_UNWRITTEN_PEERS`. The oldest go first.
 */
function withinDeviceBounds(
  state: SessionStore,
  old: SessionRecord | undefined,
  next: SessionRecord,
): SessionRecord {
  const counts = state.skippedKeyCounts();
  const held = old?.skippedKeyCount ?? 0;
  let room = Math.min(MAX_SKIPPED_KEYS_PER_PEER, MAX_SKIPPED_KEYS_PER_DEVICE - (counts.all - held));
  if (!next.written) {
    const heldUnwritten = old !== undefined && !old.written ? held : 0;
    room = Math.min(room, MAX_SKIPPED_KEYS_UNWRITTEN_PEERS - (counts.unwritten - heldUnwritten));
  }
  return next.withSkippedAtMost(room);
}

/**
 * Starts (or restarts) a session as initiator from a verified bundle, into `records`. The
 * previous session with that device is archived, so that its messages still in flight can be
 * read. Throws `limit_exceeded` for a new device when `MAX_PEER_DEVICES` are held and none can
 * be evicted.
 */
export function startSessionIn(
  p: Primitives,
  me: IdentityKeyStore,
  records: RecordOverlay,
  bundle: VerifiedPrekeyBundle,
): SessionRecord {
  const address = bundle.identity.address;
  const existing = records.load(address);
  if (existing === undefined) records.admit(1, new Set([address]));
  const session = Session.initiate(p, me.identity, bundle);
  // Starting a session is this device's choice (a bundle it fetched), so the peer counts as
  // one it wrote to: it is kept like one (archived sessions, eviction, skipped-key room).
  const record =
    existing === undefined
      ? SessionRecord.of(session, true)
      : existing.asWritten().withCurrent(session);
  records.put(record);
  return record;
}

/** `startSessionIn` as a transaction of its own. */
export function startSession(
  p: Primitives,
  state: IdentityKeyStore & SessionStore,
  bundle: VerifiedPrekeyBundle,
): { readonly record: SessionRecord; readonly transaction: Transaction } {
  const records = new RecordOverlay(state);
  const record = startSessionIn(p, state, records, bundle);
  return { record, transaction: records.transaction() };
}

/** Encrypts for one device with its current session, into `records`; `no_session` otherwise. */
export function encryptIn(
  p: Primitives,
  me: IdentityKeyStore,
  records: RecordOverlay,
  recipient: PublicIdentity,
  plaintext: Uint8Array,
): Uint8Array {
  const record = records.load(recipient.address);
  if (record === undefined || !record.current.canSend) {
    throw new CryptoError(CryptoErrorCode.NO_SESSION);
  }
  const session = record.current.clone();
  const { initial, message } = session.encrypt(plaintext);
  records.put(record.withCurrent(session).asWritten());
  return sealEnvelope(p, recipient, { sender: me.identity.publicIdentity, initial, message });
}

/** Encrypts for one device with an existing session. Throws `no_session` otherwise. */
export function encryptFor(
  p: Primitives,
  state: IdentityKeyStore & SessionStore,
  recipient: PublicIdentity,
  plaintext: Uint8Array,
): EncryptResult {
  const records = new RecordOverlay(state);
  const envelope = encryptIn(p, state, records, recipient, plaintext);
  return { envelope, transaction: records.transaction() };
}

/**
 * Opens and decrypts an envelope addressed to this device. Throws `decrypt_failed` for a forged
 * sender, `no_session` for a message in a session we do not have, `replay` for a message (or
 * handshake) already processed, `limit_exceeded` for a handshake from a new device when
 * `MAX_PEER_DEVICES` are held and none can be evicted (or on a signed prekey whose handshake
 * memory is full), and the codes of `openEnvelopeUnverified`, `PublicIdentity.decode`,
 * `Ratchet.decrypt` and `respondPqxdh`. Nothing changes until the caller commits the result.
 */
export function decryptEnvelope(
  p: Primitives,
  state: DeviceState,
  envelope: Uint8Array,
  options: DecryptOptions = {},
): DecryptResult {
  const content = openEnvelopeUnverified(p, state.identity, envelope);
  const address = PublicIdentity.addressOfEncoded(content.senderBytes);
  const stored = address === null ? undefined : state.loadSession(address);
  // A held peer is compared byte for byte with the identity verified when it was first seen;
  // Ed25519 costs more than the rest of a message, so it is not repeated for every message.
  const record = stored?.peer.hasEncoding(content.senderBytes) === true ? stored : undefined;
  if (record === undefined || options.budget === undefined) {
    return decryptOpened(p, state, content, record, options);
  }
  // An envelope naming a held peer: refused before any work once that peer's budget of
  // failures is used up, and a failure is charged to it.
  if (!options.budget.allows(record.address)) {
    throw new CryptoError(CryptoErrorCode.LIMIT_EXCEEDED);
  }
  try {
    return decryptOpened(p, state, content, record, options);
  } catch (error: unknown) {
    if (chargeable(error)) options.budget.charge(record.address);
    throw error;
  }
}

/**
 * Whether a failure counts against the named peer's budget: only one that got past an early tag
 * (so it was made by a holder of the peer's keys) and may have cost real work. Not a duplicate
 * (what an at-least-once relay delivers by design), not a failed tag or a message naming someone
 * else (anyone who knows the peer's public identity can send those, and they cost one HMAC or
 * one DH), not malformed bytes (refused while parsing, before any work).
 */
function chargeable(error: unknown): boolean {
  if (!(error instanceof CryptoError)) return true;
  if (error.unauthenticated) return false;
  return !(
    error.code === CryptoErrorCode.REPLAY ||
    error.code === CryptoErrorCode.BAD_ENCODING ||
    error.code === CryptoErrorCode.UNSUPPORTED_VERSION
  );
}

function decryptOpened(
  p: Primitives,
  state: DeviceState,
  content: OpenedEnvelope,
  record: SessionRecord | undefined,
  options: DecryptOptions,
): DecryptResult {
  const records = new RecordOverlay(state);
  const done = (sender: PublicIdentity, plaintext: Uint8Array): DecryptResult => ({
    sender,
    plaintext,
    consumedOneTimePrekeyId: null,
    rotatedPrekeys: false,
    transaction: records.transaction(),
  });

  if (content.initial === null) {
    // Only a held peer can have a session: refused without verifying the named identity.
    if (record === undefined) throw new CryptoError(CryptoErrorCode.NO_SESSION);
    const { session, plaintext } = decryptWithAny(record, content.message);
    records.put(withinDeviceBounds(state, record, record.withCurrent(session)));
    return done(record.peer, plaintext);
  }

  const sender = record?.peer ?? PublicIdentity.decode(p, content.senderBytes);
  const initial = decodePqxdhInitial(p, content.initial, sender);
  if (!initial.initiator.equals(sender)) {
    throw new CryptoError(CryptoErrorCode.DECRYPT_FAILED, { unauthenticated: true });
  }
  // A further message of a handshake whose session we hold (a retransmission, or a message sent
  // before our answer arrived): that session reads it, or it is refused. Never a new session
  // for a handshake we already answered.
  const held = record?.sessionWithBaseKey(initial.ephemeral);
  if (held !== undefined) {
    const session = held.clone();
    const plaintext = session.decrypt(content.message);
    records.put(withinDeviceBounds(state, record, record!.withCurrent(session)));
    return done(sender, plaintext);
  }
  if (state.isHandshakeRemembered(initial.signedPrekeyId, initial.ephemeral)) {
    throw new CryptoError(CryptoErrorCode.REPLAY);
  }
  const current = { signed: state.currentSignedPrekey, kem: state.currentKemPrekey };
  if (current.signed === undefined || current.kem === undefined) {
    throw new CryptoError(CryptoErrorCode.NO_SESSION);
  }
  const remembered = state.rememberedHandshakeCount(initial.signedPrekeyId);
  if (remembered >= MAX_REMEMBERED_HANDSHAKES_PER_SIGNED_PREKEY) {
    throw new CryptoError(CryptoErrorCode.LIMIT_EXCEEDED);
  }
  // Checked before the handshake's work (and changing nothing).
  if (record === undefined) records.admit(1, new Set([sender.address]));
  const session = Session.respond(p, state.identity, state, initial);
  const plaintext = session.decrypt(content.message);

  // Authenticated: the new session, the used one-time prekey and the remembered handshake.
  const next = record === undefined ? SessionRecord.of(session) : record.withCurrent(session);
  records.put(withinDeviceBounds(state, record, next));
  const fills =
    initial.signedPrekeyId === current.signed.id &&
    remembered + 1 >= MAX_REMEMBERED_HANDSHAKES_PER_SIGNED_PREKEY;
  const rotatedPrekeys = fills
    ? nextSignedPrekeys(
        p,
        state.identity,
        current.signed,
        current.kem,
        options.nowSeconds ?? current.signed.createdAtSeconds,
      )
    : null;
  const consumed = initial.oneTimePrekeyId;
  return {
    sender,
    plaintext,
    consumedOneTimePrekeyId: consumed,
    rotatedPrekeys: rotatedPrekeys !== null,
    transaction: {
      sessions: new Map(records.changed),
      consumedOneTimePrekeys: consumed === null ? [] : [consumed],
      rememberedHandshakes: [
        { signedPrekeyId: initial.signedPrekeyId, baseKey: initial.ephemeral },
      ],
      rotatedPrekeys,
    },
  };
}

/**
 * Decrypts a ratchet message with the held session whose early tag it carries (current first,
 * then archived, newest first), on a clone: the record is not changed. The tag names the
 * session, also for a new ratchet key, so no other session does any chain work: a message no
 * session authenticates costs one HMAC per held session and fails with `decrypt_failed`.
 */
function decryptWithAny(
  record: SessionRecord,
  message: Uint8Array,
): { readonly session: Session; readonly plaintext: Uint8Array } {
  for (const held of record.sessions) {
    const session = held.clone();
    const plaintext = session.decryptIfTagged(message);
    if (plaintext !== null) return { session, plaintext };
  }
  throw new CryptoError(CryptoErrorCode.DECRYPT_FAILED, { unauthenticated: true });
}
