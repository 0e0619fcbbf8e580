/**
 * What the crypto core reads from a device's storage, and the one transaction through which it
 * changes (libsignal's `storage/traits.rs`, with Signal-Desktop's commit discipline). The cipher
 * (cipher.ts, fanout.ts) only reads these interfaces; every transition returns a `Transaction`
 * that the caller commits in one piece, before the envelope leaves or the `ack` goes, so that a
 * crash never leaves half a message applied (a one-time prekey consumed without the session it
 * started, a message key used twice). memory-store.ts is the reference implementation.
 *
 * Single writer: transitions are computed against the committed state and must be committed
 * (or dropped) before the next one is computed; the in-memory store is synchronous, so that
 * holds as long as nothing awaits between the two.
 */
import type { DeviceIdentity } from './identity.js';
import type { KemPrekey, OneTimePrekeyPair, SignedPrekey } from './prekeys.js';
import type { SessionRecord } from './session-record.js';

/** The device's own identity. */
export interface IdentityKeyStore {
  readonly identity: DeviceIdentity;
}

/** Session records, one per peer device, keyed by `PublicIdentity.address`. */
export interface SessionStore {
  loadSession(address: string): SessionRecord | undefined;
  /** How many peer devices have a record. */
  readonly sessionCount: number;
  /**
   * Skipped message keys held by all records, and by the records of peers this device never
   * wrote to (the bounds of limits.ts are over these).
   */
  skippedKeyCounts(): { readonly all: number; readonly unwritten: number };
  /** Every record's address (roster retention walks them). */
  sessionAddresses(): Iterable<string>;
  /**
   * The peers to evict when new ones must be admitted at `MAX_PEER_DEVICES`: up to `count` of
   * the least recently active peers this device has never written to (`SessionRecord.written`
   * false), least recent first; fewer when there are fewer.
   */
  evictionCandidates(count: number): string[];
}

/** The responder's prekeys, and the handshakes remembered per signed prekey. */
export interface PrekeyStore {
  /**
   * The signed prekeys published now; undefined for a device that publishes none (a contact's
   * page), which refuses a handshake it did not start with `no_session`.
   */
  readonly currentSignedPrekey: SignedPrekey | undefined;
  readonly currentKemPrekey: KemPrekey | undefined;
  findSignedPrekey(id: number): SignedPrekey | undefined;
  findKemPrekey(id: number): KemPrekey | undefined;
  findOneTimePrekey(id: number): OneTimePrekeyPair | undefined;
  /** True when a handshake with this initiator base key was answered under this signed prekey. */
  isHandshakeRemembered(signedPrekeyId: number, baseKey: Uint8Array): boolean;
  /** How many handshakes are remembered under this signed prekey. */
  rememberedHandshakeCount(signedPrekeyId: number): number;
}

/** Everything a transition reads. */
export interface DeviceState extends IdentityKeyStore, SessionStore, PrekeyStore {}

/** A handshake to remember under the signed prekey it used. */
export interface RememberedHandshake {
  readonly signedPrekeyId: number;
  readonly baseKey: Uint8Array;
}

/**
 * Everything one transition changed. Committed all or nothing (`DeviceStore.commit`).
 */
export interface Transaction {
  /** New records by address; null deletes the record. */
  readonly sessions: ReadonlyMap<string, SessionRecord | null>;
  /** One-time prekeys used up by an authenticated handshake. */
  readonly consumedOneTimePrekeys: readonly number[];
  /** Handshakes answered, to refuse their replay while their signed prekey is held. */
  readonly rememberedHandshakes: readonly RememberedHandshake[];
  /**
   * Signed prekeys that replace the current ones (the current become the previous ones, the
   * previous ones and their remembered handshakes are deleted). The caller must publish the
   * new bundle. Null when the transition did not rotate.
   */
  readonly rotatedPrekeys: { readonly signed: SignedPrekey; readonly kem: KemPrekey } | null;
}

/** A store the caller can commit transactions to. */
export interface DeviceStore extends DeviceState {
  /**
   * Applies `tx` all or nothing: it is checked in full (bounds, referenced prekeys) before
   * anything changes, and throws `CryptoError` without changing anything when a check fails.
   */
  commit(tx: Transaction): void;
}

/** A transaction that changes nothing. */
export const EMPTY_TRANSACTION: Transaction = Object.freeze({
  sessions: new Map<string, SessionRecord | null>(),
  consumedOneTimePrekeys: [],
  rememberedHandshakes: [],
  rotatedPrekeys: null,
});

/** A transaction that only writes these records. */
export function sessionsTransaction(
  records: Iterable<readonly [string, SessionRecord | null]>,
): Transaction {
  return { ...EMPTY_TRANSACTION, sessions: new Map(records) };
}

/**
 * `a` then `b` as one transaction (a record written by both takes `b`'s). Both must have been
 * computed against the same committed state, `b` having seen `a`'s records (fan-out does so).
 */
export function mergeTransactions(a: Transaction, b: Transaction): Transaction {
  if (a.rotatedPrekeys !== null && b.rotatedPrekeys !== null) {
    throw new Error('mergeTransactions: two rotations in one transaction');
  }
  return {
    sessions: new Map([...a.sessions, ...b.sessions]),
    consumedOneTimePrekeys: [...a.consumedOneTimePrekeys, ...b.consumedOneTimePrekeys],
    rememberedHandshakes: [...a.rememberedHandshakes, ...b.rememberedHandshakes],
    rotatedPrekeys: a.rotatedPrekeys ?? b.rotatedPrekeys,
  };
}
