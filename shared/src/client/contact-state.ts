/**
 * The returning contact's state, as one blob on the relay (issue 8 "Returning contacts", ADR 0014
 * for the relay's side, ADR 0017 for this one). The contact's page persists nothing locally; what
 * it needs to come back — its device records, the conversation so far, its intake answers, what
 * it sent that is not yet stored, the highest organization profile version it has accepted — is
 * encoded here, padded to a bucket, and sealed under a key derived from the codename.
 *
 * Plaintext (integers big-endian; every length a u32; decoding is strict: version first, each
 * count within its bound, flags 0 or 1, no trailing bytes, then the checks listed at
 * `decodeContactState`):
 *
 *     state      = 01 ‖ profile version (4) ‖ trimmed (4) ‖ device ‖ intake? ‖ transcript ‖ outbox
 *     device     = identity ‖ list8 signed prekeys ‖ list8 KEM prekeys ‖ list16 one-time prekeys
 *                  ‖ next one-time id (4) ‖ list8 remembered handshakes ‖ list16 session records
 *     intake?    = 00 | 01 ‖ length ‖ canonical JSON of the `intake` message
 *     transcript = count (2) ‖ count × (from ‖ receipt (1) ‖ length ‖ canonical JSON message)
 *     from       = 00 (the contact) | 01 ‖ team device Ed25519 key (32)
 *     outbox     = count (1) ‖ count × message id (16)
 *
 * Blob (what the relay stores):
 *
 *     blob = 01 ‖ nonce (24) ‖ XChaCha20-Poly1305(key, nonce, pad(state), AD)
 *     key  = HKDF-SHA256(codename mailbox key, salt 0×32, "passage/v1/contact-state/key", 32)
 *     AD   = "passage/v1/contact-state/ad" ‖ 0 ‖ 01 ‖ mailbox id (32)
 *
 * The padded plaintext takes one of five sizes so that the blob is exactly 4, 8, 16, 32 or 64 KiB
 * (`CONTACT_STATE_BLOB_BYTES`): its length says which bucket, not how long the conversation is.
 * The nonce is random (XChaCha20's 192 bits make collisions across the saves of one codename
 * negligible); the AD binds the blob to its mailbox and format version, so a relay cannot hand
 * one mailbox's blob to another.
 *
 * **No sending chain is ever saved** (ADR 0017): every session of every record is stored without
 * its sending chain key (`SessionRecord.withoutSendingChains`). A restored state may be older than
 * the last message sent (a tab closed mid-send, two tabs with one codename); it can still read
 * what was queued meanwhile, but it cannot derive a sending message key that was derived before.
 * After a restore the client starts a fresh handshake with each peer before sending to it.
 *
 * Bounds, and what is trimmed: the transcript holds at most `MAX_TRANSCRIPT_ENTRIES` entries, in
 * order of the sender's timestamp then id. When a state does not fit the largest bucket,
 * `sealContactState` first drops the skipped message keys of the records (messages that never
 * arrived stay unreadable), then the oldest transcript entries that are not in the outbox, one
 * by one, counting them in `trimmed` (so a page can say "n earlier messages are no longer
 * kept"); the intake answers and the outbox are never trimmed, and a state that does not fit
 * without them is `state_too_large`.
 */
import { CryptoError } from '../crypto/errors.js';
import {
  ByteReader,
  bytesEqual,
  concatBytes,
  labelBytes,
  labelPrefix,
  toHex,
  u16,
  u32,
  u8,
} from '../crypto/encoding.js';
import { KDF_LABELS } from '../crypto/kdf.js';
import { MemoryDeviceStore, type StoredDevice } from '../crypto/memory-store.js';
import { pad, unpad } from '../crypto/padding.js';
import type { Primitives } from '../crypto/primitives.js';
import {
  POLY1305_TAG_BYTES,
  XCHACHA20POLY1305_KEY_BYTES,
  XCHACHA20POLY1305_NONCE_BYTES,
} from '../crypto/primitives.js';
import { SessionRecord } from '../crypto/session-record.js';
import { fromBase64url, toBase64url } from '../protocol/base64url.js';
import { MAX_STATE_BLOB_BYTES } from '../protocol/limits.js';
import { CONVERSATION_ID_BYTES } from './conversation/limits.js';
import {
  checkOrigin,
  decodeConversationMessage,
  encodeConversationMessage,
  type AttachmentMessage,
  type IntakeMessage,
  type StatusNoticeMessage,
  type TextMessage,
} from './conversation/messages.js';

// ---------------------------------------------------------------------------------------------
// Limits

/** The version byte of the blob and of the plaintext inside it. */
export const CONTACT_STATE_VERSION = 1;

/** The sizes a sealed blob takes, in bytes; the largest is the relay's `MAX_STATE_BLOB_BYTES`. */
export const CONTACT_STATE_BLOB_BYTES: readonly number[] = Object.freeze([
  4_096,
  8_192,
  16_384,
  32_768,
  MAX_STATE_BLOB_BYTES,
]);

/** What the blob adds around the padded plaintext: version, nonce, tag. */
export const CONTACT_STATE_OVERHEAD_BYTES = 1 + XCHACHA20POLY1305_NONCE_BYTES + POLY1305_TAG_BYTES;

/** The padding buckets of the plaintext: each blob size less the overhead. */
const PLAINTEXT_BUCKETS: readonly number[] = CONTACT_STATE_BLOB_BYTES.map(
  (b) => b - CONTACT_STATE_OVERHEAD_BYTES,
);

/** Most transcript entries a state keeps (the oldest go first). */
export const MAX_TRANSCRIPT_ENTRIES = 1_000;

/** Most messages in the outbox of a state (sent, not yet stored for every recipient). */
export const MAX_STATE_OUTBOX = 64;

/** Most records of each kind in the device part (a contact holds one per coordinator device). */
const MAX_DEVICE_SESSIONS = 1_024;
const MAX_ONE_TIME_PREKEYS = 1_024;

// ---------------------------------------------------------------------------------------------
// Errors

/**
 * Why a state could not be restored or saved. `state_not_found` is the one answer for a
 * codename whose mailbox holds no state: never saved, deleted, expired — or another codename,
 * which derives another mailbox. The decode codes below it are only reachable for bytes the
 * relay (or a bug) altered: nothing a guessed codename can tell apart.
 */
export const ContactStateErrorCode = {
  /** No state is held for this codename. */
  NOT_FOUND: 'state_not_found',
  /** The blob's first byte is not `CONTACT_STATE_VERSION` (read before anything else). */
  UNSUPPORTED_VERSION: 'state_unsupported_version',
  /** Shorter than the smallest blob size (an empty blob among them). */
  TRUNCATED: 'state_truncated',
  /** Longer than `MAX_STATE_BLOB_BYTES`. */
  TOO_LONG: 'state_too_long',
  /** A length between the bounds that is not one of `CONTACT_STATE_BLOB_BYTES`. */
  BAD_LENGTH: 'state_bad_length',
  /** The AEAD tag does not verify: another key (mailbox), or altered bytes. */
  DECRYPT_FAILED: 'state_decrypt_failed',
  /** Authenticated, but the padding is not what `pad` makes for this bucket. */
  BAD_PADDING: 'state_bad_padding',
  /** Authenticated and padded, but not a state this code writes (structure, bounds, records). */
  MALFORMED: 'state_malformed',
  /** Saving: the intake answers and the outbox alone do not fit the largest blob. */
  TOO_LARGE: 'state_too_large',
  /** Saving: the state was deleted ("delete my conversation") by another tab or device. */
  DELETED: 'state_deleted',
  /** Saving: other writers kept winning the compare-and-set (`MAX_STATE_SAVE_ATTEMPTS`). */
  CONFLICT: 'state_conflict_unresolved',
} as const;
export type ContactStateErrorCode =
  (typeof ContactStateErrorCode)[keyof typeof ContactStateErrorCode];

const MESSAGES: Readonly<Record<ContactStateErrorCode, string>> = {
  state_not_found: 'No conversation is saved for this codename.',
  state_unsupported_version: 'The saved conversation has an unsupported version.',
  state_truncated: 'The saved conversation is truncated.',
  state_too_long: 'The saved conversation is too long.',
  state_bad_length: 'The saved conversation has an invalid length.',
  state_decrypt_failed: 'The saved conversation could not be opened.',
  state_bad_padding: 'The saved conversation has invalid padding.',
  state_malformed: 'The saved conversation is malformed.',
  state_too_large: 'The conversation does not fit the saved state.',
  state_deleted: 'The conversation was deleted.',
  state_conflict_unresolved: 'The saved conversation kept changing; try again.',
};

/** A failure of this module; the message is generic and holds no content. */
export class ContactStateError extends Error {
  override readonly name = 'ContactStateError';
  constructor(
    readonly code: ContactStateErrorCode,
    options?: { cause?: unknown },
  ) {
    super(MESSAGES[code], options);
  }
}

// ---------------------------------------------------------------------------------------------
// The state

/** What a contact's transcript shows: its messages and the team's. */
export type TranscriptMessage = TextMessage | AttachmentMessage | StatusNoticeMessage;

/** Receipt state of an entry: of the team for the contact's own, of the contact for the team's. */
export type TranscriptReceipt = 'none' | 'delivered' | 'read';
const RECEIPTS: readonly TranscriptReceipt[] = ['none', 'delivered', 'read'];

export interface TranscriptEntry {
  /** `contact`, or the team device that sent it (`PublicIdentity.id`, 64 hex). */
  readonly from: string;
  readonly message: TranscriptMessage;
  readonly receipt: TranscriptReceipt;
}

/** Everything in a state besides the device records. */
export interface SavedConversation {
  /** Highest organization profile version accepted (0 for none): refuse a rollback below it. */
  readonly profileVersion: number;
  /** Transcript entries dropped from the front over the state's life. */
  readonly trimmed: number;
  readonly intake: IntakeMessage | null;
  /** In order of `ts`, then `id`; ids unique. */
  readonly transcript: readonly TranscriptEntry[];
  /** Ids of the contact's messages (transcript or intake) not yet stored for every recipient. */
  readonly outbox: readonly string[];
}

export interface ContactState extends SavedConversation {
  readonly device: StoredDevice;
}

/** An empty conversation. */
export const EMPTY_CONVERSATION: SavedConversation = Object.freeze({
  profileVersion: 0,
  trimmed: 0,
  intake: null,
  transcript: [],
  outbox: [],
});

const DEVICE_ID = /^[0-9a-f]{64}$/;
const ALLOWED_TYPES: ReadonlySet<string> = new Set(['text', 'attachment', 'status_notice']);

/** Transcript order: sender timestamp, then id. */
export function compareEntries(a: TranscriptEntry, b: TranscriptEntry): number {
  if (a.message.ts !== b.message.ts) return a.message.ts - b.message.ts;
  return a.message.id < b.message.id ? -1 : a.message.id > b.message.id ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// Plaintext encoding

const list8 = (items: readonly Uint8Array[]): Uint8Array[] => [
  u8(items.length),
  ...items.flatMap((b) => [u32(b.length), b]),
];
const list16 = (items: readonly Uint8Array[]): Uint8Array[] => [
  u16(items.length),
  ...items.flatMap((b) => [u32(b.length), b]),
];

function encodeEntry(e: TranscriptEntry): Uint8Array {
  const body = encodeConversationMessage(e.message);
  const from = e.from === 'contact' ? [u8(0)] : [u8(1), hexToBytes(e.from)];
  return concatBytes(...from, u8(RECEIPTS.indexOf(e.receipt)), u32(body.length), body);
}

function hexToBytes(hex: string): Uint8Array {
  if (!DEVICE_ID.test(hex)) throw new ContactStateError(ContactStateErrorCode.MALFORMED);
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function idBytes(id: string): Uint8Array {
  const b = fromBase64url(id);
  if (b?.length !== CONVERSATION_ID_BYTES) {
    throw new ContactStateError(ContactStateErrorCode.MALFORMED);
  }
  return b;
}

/** The parts of an encoding, so that trimming can compute sizes without re-encoding. */
interface EncodedParts {
  readonly head: Uint8Array;
  readonly entries: Uint8Array[];
  readonly outbox: Uint8Array;
}

function encodeParts(state: ContactState): EncodedParts {
  const d = state.device;
  const intake =
    state.intake === null
      ? [u8(0)]
      : (() => {
          const b = encodeConversationMessage(state.intake);
          return [u8(1), u32(b.length), b];
        })();
  const head = concatBytes(
    u8(CONTACT_STATE_VERSION),
    u32(state.profileVersion),
    u32(state.trimmed),
    u32(d.identity.length),
    d.identity,
    ...list8(d.signedPrekeys),
    ...list8(d.kemPrekeys),
    ...list16(d.oneTimePrekeys),
    u32(d.nextOneTimePrekeyId),
    ...list8(d.rememberedHandshakes),
    ...list16(d.sessions),
    ...intake,
  );
  const outbox = concatBytes(u8(state.outbox.length), ...state.outbox.map(idBytes));
  return { head, entries: state.transcript.map(encodeEntry), outbox };
}

function joinParts(parts: EncodedParts): Uint8Array {
  return concatBytes(parts.head, u16(parts.entries.length), ...parts.entries, parts.outbox);
}

/**
 * The plaintext of a state, unpadded. Throws `ContactStateError('state_malformed')` for a state
 * that breaks a bound (a caller's bug), and `ConversationError` for an invalid message in it.
 */
export function encodeContactState(state: ContactState): Uint8Array {
  checkConversation(state);
  return joinParts(encodeParts(state));
}

/** The bounds and orders every state must keep; the same checks on both sides. */
function checkConversation(c: SavedConversation): void {
  const bad = () => new ContactStateError(ContactStateErrorCode.MALFORMED);
  if (!Number.isInteger(c.profileVersion) || c.profileVersion < 0 || c.profileVersion > 0xffff_ffff)
    throw bad();
  if (!Number.isInteger(c.trimmed) || c.trimmed < 0 || c.trimmed > 0xffff_ffff) throw bad();
  if (c.transcript.length > MAX_TRANSCRIPT_ENTRIES) throw bad();
  if (c.outbox.length > MAX_STATE_OUTBOX) throw bad();
  const ids = new Set<string>();
  const own = new Set<string>();
  if (c.intake !== null) {
    ids.add(c.intake.id);
    own.add(c.intake.id);
  }
  let previous: TranscriptEntry | undefined;
  for (const e of c.transcript) {
    if (!ALLOWED_TYPES.has(e.message.type)) throw bad();
    if (!RECEIPTS.includes(e.receipt)) throw bad();
    if (e.from !== 'contact' && !DEVICE_ID.test(e.from)) throw bad();
    const origin =
      e.from === 'contact'
        ? ({ from: 'contact' } as const)
        : ({ from: 'team', device: e.from } as const);
    // What the contact's device could have received or sent, and nothing else.
    if (checkOrigin(e.message, origin, e.from === 'contact' ? 'team' : 'contact') !== null)
      throw bad();
    if (ids.has(e.message.id)) throw bad();
    if (previous !== undefined && compareEntries(previous, e) >= 0) throw bad();
    ids.add(e.message.id);
    if (e.from === 'contact') own.add(e.message.id);
    previous = e;
  }
  if (new Set(c.outbox).size !== c.outbox.length) throw bad();
  for (const id of c.outbox) if (!own.has(id)) throw bad();
}

/**
 * Strict decoding of `encodeContactState`. Throws `ContactStateError('state_malformed')` for a
 * wrong structure (truncated, trailing bytes, a count past its bound, a bad flag), an invalid or
 * non-canonical message, a transcript entry its sender could not have sent or this device
 * received, duplicate or unordered entries, an outbox id that names no message of the contact,
 * device records that do not restore, or (with `expected`) another identity than the codename's.
 * Returns the state and the restored device store.
 */
export function decodeContactState(
  p: Primitives,
  bytes: Uint8Array,
  expected?: { readonly identity: Uint8Array },
): { readonly state: ContactState; readonly device: MemoryDeviceStore } {
  const bad = (cause?: unknown) =>
    new ContactStateError(ContactStateErrorCode.MALFORMED, { cause });
  try {
    const r = new ByteReader(bytes);
    if (r.remaining < 1 || r.u8() !== CONTACT_STATE_VERSION) throw bad();
    const profileVersion = r.u32();
    const trimmed = r.u32();
    const chunk = () => r.bytesN(r.u32());
    const list = (count: number, max: number) => {
      if (count > max) throw bad();
      return Array.from({ length: count }, chunk);
    };
    const identity = chunk();
    const signedPrekeys = list(r.u8(), 2);
    const kemPrekeys = list(r.u8(), 2);
    const oneTimePrekeys = list(r.u16(), MAX_ONE_TIME_PREKEYS);
    const nextOneTimePrekeyId = r.u32();
    const rememberedHandshakes = list(r.u8(), 2);
    const sessions = list(r.u16(), MAX_DEVICE_SESSIONS);
    const device: StoredDevice = {
      identity,
      signedPrekeys,
      kemPrekeys,
      oneTimePrekeys,
      nextOneTimePrekeyId,
      rememberedHandshakes,
      sessions,
    };
    const intake = r.flag()
      ? (() => {
          const decoded = decodeConversationMessage(chunk());
          if (!decoded.ok || decoded.message.type !== 'intake') throw bad();
          return decoded.message;
        })()
      : null;
    const entryCount = r.u16();
    if (entryCount > MAX_TRANSCRIPT_ENTRIES) throw bad();
    const transcript: TranscriptEntry[] = [];
    for (let i = 0; i < entryCount; i++) {
      const from = r.flag() ? toHex(r.bytesN(32)) : 'contact';
      const receipt = RECEIPTS[r.u8()];
      if (receipt === undefined) throw bad();
      const decoded = decodeConversationMessage(chunk());
      if (!decoded.ok || !ALLOWED_TYPES.has(decoded.message.type)) throw bad();
      transcript.push({ from, receipt, message: decoded.message as TranscriptMessage });
    }
    const outboxCount = r.u8();
    if (outboxCount > MAX_STATE_OUTBOX) throw bad();
    const outbox = Array.from({ length: outboxCount }, () =>
      toBase64url(r.bytesN(CONVERSATION_ID_BYTES)),
    );
    r.end();
    const state: ContactState = {
      profileVersion,
      trimmed,
      intake,
      transcript,
      outbox,
      device,
    };
    checkConversation(state);
    if (expected !== undefined && !bytesEqual(expected.identity, identityPublicPart(p, identity)))
      throw bad();
    return { state, device: MemoryDeviceStore.restore(p, device) };
  } catch (error) {
    if (error instanceof ContactStateError) throw error;
    throw bad(error);
  }
}

/** The Ed25519 public key of an encoded secret identity (to compare with the codename's). */
function identityPublicPart(p: Primitives, encodedSecret: Uint8Array): Uint8Array {
  // `01 ‖ Ed25519 seed ‖ X25519 secret` (DeviceIdentity.encodeSecret); the seed gives the key.
  if (encodedSecret.length < 33) throw new ContactStateError(ContactStateErrorCode.MALFORMED);
  return p.ed25519KeyPairFromSeed(encodedSecret.slice(1, 33)).publicKey;
}

// ---------------------------------------------------------------------------------------------
// Sealing

/** The keys of one codename's state: derive once per visit (after Argon2id). */
export interface ContactStateKeys {
  readonly key: Uint8Array;
  /** The mailbox id's 32 bytes (the AD). */
  readonly mailbox: Uint8Array;
}

/** The blob key and AD input from the codename's mailbox key and the mailbox id (base64url). */
export function contactStateKeys(
  p: Primitives,
  mailboxKey: Uint8Array,
  mailboxId: string,
): ContactStateKeys {
  const mailbox = fromBase64url(mailboxId);
  if (mailbox?.length !== 32) throw new RangeError('a mailbox id is 32 bytes');
  const key = p.hkdfSha256(
    mailboxKey,
    new Uint8Array(32),
    labelBytes(KDF_LABELS.contactStateKey),
    XCHACHA20POLY1305_KEY_BYTES,
  );
  return { key, mailbox };
}

function associatedData(keys: ContactStateKeys): Uint8Array {
  return concatBytes(
    labelPrefix(KDF_LABELS.contactStateAd),
    u8(CONTACT_STATE_VERSION),
    keys.mailbox,
  );
}

/** Every record without sending chains (and, with `dropSkipped`, without skipped keys). */
function strippedDevice(p: Primitives, device: StoredDevice, dropSkipped: boolean): StoredDevice {
  return {
    ...device,
    sessions: device.sessions.map((b) => {
      let record = SessionRecord.decode(p, b).withoutSendingChains();
      if (dropSkipped) record = record.withSkippedAtMost(0);
      return record.encode();
    }),
  };
}

/** What `sealContactState` made: the blob, and the state it holds (after any trimming). */
export interface SealedContactState {
  readonly blob: Uint8Array;
  readonly saved: ContactState;
}

/**
 * Seals a state: sessions without their sending chains, trimmed to fit as the module comment
 * says, padded to the smallest bucket it fits, encrypted with a fresh random nonce.
 *
 * @throws ContactStateError('state_too_large') when the untrimmable part does not fit;
 *   ('state_malformed') for a state that breaks a bound
 */
export function sealContactState(
  p: Primitives,
  keys: ContactStateKeys,
  state: ContactState,
): SealedContactState {
  checkConversation(state);
  const largest = PLAINTEXT_BUCKETS[PLAINTEXT_BUCKETS.length - 1]! - 1; // the padding marker
  let fitted: ContactState = { ...state, device: strippedDevice(p, state.device, false) };
  let parts = encodeParts(fitted);
  const size = (x: EncodedParts) =>
    x.head.length + 2 + x.entries.reduce((n, e) => n + e.length, 0) + x.outbox.length;
  if (size(parts) > largest) {
    fitted = { ...fitted, device: strippedDevice(p, state.device, true) };
    parts = encodeParts(fitted);
  }
  if (size(parts) > largest) {
    // Drop the oldest entries not in the outbox until it fits. `trimmed` grows by as many; its
    // own width is fixed (u32), so the size is computed, not re-encoded, at every step.
    const pinned = new Set(state.outbox);
    const keep: boolean[] = fitted.transcript.map(() => true);
    let total = size(parts);
    let dropped = 0;
    for (let i = 0; i < keep.length && total > largest; i++) {
      if (pinned.has(fitted.transcript[i]!.message.id)) continue;
      keep[i] = false;
      total -= parts.entries[i]!.length;
      dropped++;
    }
    if (total > largest) throw new ContactStateError(ContactStateErrorCode.TOO_LARGE);
    fitted = {
      ...fitted,
      trimmed: Math.min(0xffff_ffff, fitted.trimmed + dropped),
      transcript: fitted.transcript.filter((_, i) => keep[i]),
    };
    parts = encodeParts(fitted);
  }
  const plaintext = joinParts(parts);
  const nonce = p.random.bytes(XCHACHA20POLY1305_NONCE_BYTES);
  const sealed = p.xchacha20poly1305Seal(
    keys.key,
    nonce,
    pad(plaintext, PLAINTEXT_BUCKETS),
    associatedData(keys),
  );
  return { blob: concatBytes(u8(CONTACT_STATE_VERSION), nonce, sealed), saved: fitted };
}

/**
 * Opens a blob: version, length, AEAD, padding, then `decodeContactState` (with the identity the
 * codename gives). Each failure has its own code (`ContactStateErrorCode`); the sessions of the
 * restored store cannot send (they were saved without sending chains, and are stripped again
 * here, so that a blob written by other code cannot make this device reuse a chain either).
 */
export function openContactState(
  p: Primitives,
  keys: ContactStateKeys,
  blob: Uint8Array,
  expected?: { readonly identity: Uint8Array },
): { readonly state: ContactState; readonly device: MemoryDeviceStore } {
  const fail = (code: ContactStateErrorCode, cause?: unknown) =>
    new ContactStateError(code, { cause });
  if (blob.length >= 1 && blob[0] !== CONTACT_STATE_VERSION)
    throw fail(ContactStateErrorCode.UNSUPPORTED_VERSION);
  if (blob.length < CONTACT_STATE_BLOB_BYTES[0]!) throw fail(ContactStateErrorCode.TRUNCATED);
  if (blob.length > MAX_STATE_BLOB_BYTES) throw fail(ContactStateErrorCode.TOO_LONG);
  if (!CONTACT_STATE_BLOB_BYTES.includes(blob.length)) throw fail(ContactStateErrorCode.BAD_LENGTH);
  const nonce = blob.subarray(1, 1 + XCHACHA20POLY1305_NONCE_BYTES);
  let padded: Uint8Array;
  try {
    padded = p.xchacha20poly1305Open(
      keys.key,
      nonce,
      blob.subarray(1 + XCHACHA20POLY1305_NONCE_BYTES),
      associatedData(keys),
    );
  } catch (error) {
    throw fail(ContactStateErrorCode.DECRYPT_FAILED, error);
  }
  let plaintext: Uint8Array;
  try {
    plaintext = unpad(padded, PLAINTEXT_BUCKETS);
  } catch (error) {
    if (!(error instanceof CryptoError)) throw error;
    throw fail(ContactStateErrorCode.BAD_PADDING, error);
  }
  const opened = decodeContactState(p, plaintext, expected);
  const device = {
    ...opened.state.device,
    sessions: opened.state.device.sessions.map((b) =>
      SessionRecord.decode(p, b).withoutSendingChains().encode(),
    ),
  };
  return {
    state: { ...opened.state, device },
    device: MemoryDeviceStore.restore(p, device),
  };
}

// ---------------------------------------------------------------------------------------------
// Merging

/**
 * Two copies of one contact's conversation as one (after a `state_conflict`: another tab wrote
 * in between). Commutative up to the order of the arguments only where noted: the transcript is
 * the union by id in transcript order (an id both hold keeps `ours`, with the further receipt);
 * the intake is ours, else theirs; the outbox is the union (a message the other copy already
 * stored is sent again with its id, which receivers drop as a duplicate); the profile version
 * and the trimmed count are the larger. The union is then cut to `MAX_TRANSCRIPT_ENTRIES`
 * (oldest unpinned first) and to `MAX_STATE_OUTBOX` (ours first).
 */
export function mergeConversations(
  ours: SavedConversation,
  theirs: SavedConversation,
): SavedConversation {
  const byId = new Map<string, TranscriptEntry>();
  for (const e of theirs.transcript) byId.set(e.message.id, e);
  for (const e of ours.transcript) {
    const other = byId.get(e.message.id);
    const receipt =
      other === undefined
        ? e.receipt
        : RECEIPTS[Math.max(RECEIPTS.indexOf(e.receipt), RECEIPTS.indexOf(other.receipt))]!;
    byId.set(e.message.id, { ...e, receipt });
  }
  const intake = ours.intake ?? theirs.intake;
  const transcript = [...byId.values()].sort(compareEntries);
  const own = new Set(transcript.filter((e) => e.from === 'contact').map((e) => e.message.id));
  if (intake !== null) own.add(intake.id);
  const outbox = [...new Set([...ours.outbox, ...theirs.outbox])]
    .filter((id) => own.has(id))
    .slice(0, MAX_STATE_OUTBOX);
  const pinned = new Set(outbox);
  let excess = transcript.length - MAX_TRANSCRIPT_ENTRIES;
  const kept = transcript.filter((e) => {
    if (excess <= 0 || pinned.has(e.message.id)) return true;
    excess--;
    return false;
  });
  return {
    profileVersion: Math.max(ours.profileVersion, theirs.profileVersion),
    trimmed: Math.max(ours.trimmed, theirs.trimmed) + (transcript.length - kept.length),
    intake,
    transcript: kept,
    outbox,
  };
}

/** `entries` with `entry` inserted in transcript order; the same array if its id is held. */
export function insertEntry(
  entries: readonly TranscriptEntry[],
  entry: TranscriptEntry,
): readonly TranscriptEntry[] {
  if (entries.some((e) => e.message.id === entry.message.id)) return entries;
  const at = entries.findIndex((e) => compareEntries(entry, e) < 0);
  const out = entries.slice();
  out.splice(at < 0 ? out.length : at, 0, entry);
  return out;
}
