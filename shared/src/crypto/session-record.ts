/**
 * The session record of one peer device (libsignal's `SessionRecord`): its current session, the
 * archived ones that still decrypt, and what this device remembers about that peer. One record
 * per peer device, loaded and saved on its own (store.ts), so that a message costs the record
 * of its peer and not the state of every peer.
 *
 * Records are immutable values. A transition (cipher.ts) builds a new record from the old one
 * and hands it to the caller, who commits it with everything else the message changed in one
 * transaction; until then the stored record is untouched.
 *
 * Encoding (integers big-endian; decoding is strict: version first, counts within their bounds
 * (archived sessions, skipped keys over all sessions), flags 0 or 1, no duplicate session,
 * every session with this peer, no trailing bytes):
 *
 *   0x01 ‖ peer identity (129) ‖ written (1) ‖ archived count (1)
 *        ‖ current: length (4) ‖ session ‖ archived × (length (4) ‖ session)
 *
 * `written` is 1 once this device has started a session with the peer or encrypted a message to
 * it: a peer this device never wrote to may be anyone (contacts are anonymous, and a handshake
 * from a throwaway identity costs a stranger little), and the bounds treat it so (limits.ts).
 * Archived sessions are newest first.
 */
import { CryptoError, CryptoErrorCode } from './errors.js';
import type { Primitives } from './primitives.js';
import { ByteReader, bytesEqual, concatBytes, expectVersion, toHex, u32, u8 } from './encoding.js';
import type { PublicIdentity } from './identity.js';
import { PUBLIC_IDENTITY_BYTES } from './identity.js';
import {
  MAX_ARCHIVED_SESSIONS,
  MAX_ARCHIVED_SESSIONS_UNWRITTEN,
  MAX_SKIPPED_KEYS_PER_PEER,
} from './limits.js';
import { Session } from './session.js';

/** Version byte of `SessionRecord.encode`. */
export const SESSION_RECORD_VERSION = 1;

/** Everything this device holds about one peer device. Immutable. */
export class SessionRecord {
  private constructor(
    readonly peer: PublicIdentity,
    /** The session `encryptFor` uses. */
    readonly current: Session,
    /** Sessions that still decrypt, most recently current first. */
    readonly archived: readonly Session[],
    /** True once this device has started a session with the peer or encrypted to it. */
    readonly written: boolean,
  ) {}

  /** A record whose only session is `session`. */
  static of(session: Session, written = false): SessionRecord {
    return new SessionRecord(session.remote, session, [], written);
  }

  /** The peer's store key (`PublicIdentity.address`). */
  get address(): string {
    return this.peer.address;
  }

  /** Every session, current first, then archived (newest first). */
  get sessions(): readonly Session[] {
    return [this.current, ...this.archived];
  }

  /** Archived sessions kept at most: fewer for a peer this device never wrote to (limits.ts). */
  get maxArchived(): number {
    return this.written ? MAX_ARCHIVED_SESSIONS : MAX_ARCHIVED_SESSIONS_UNWRITTEN;
  }

  /** Skipped message keys held over all sessions. */
  get skippedKeyCount(): number {
    return this.sessions.reduce((n, s) => n + s.skippedCount, 0);
  }

  /**
   * This record with `session` current: the previous current one is archived (and the oldest
   * archived ones dropped beyond `maxArchived`). A held session of the same handshake (same base
   * key) is replaced, so a session never appears twice. Skipped keys are then cut to
   * `MAX_SKIPPED_KEYS_PER_PEER` (`withSkippedAtMost`).
   */
  withCurrent(session: Session): SessionRecord {
    const others = this.sessions.filter((s) => !bytesEqual(s.baseKey, session.baseKey));
    return new SessionRecord(
      this.peer,
      session,
      others.slice(0, this.maxArchived),
      this.written,
    ).withSkippedAtMost(MAX_SKIPPED_KEYS_PER_PEER);
  }

  /**
   * This record holding at most `limit` skipped keys: the oldest go first, from the oldest
   * archived session on, the current session's last.
   */
  withSkippedAtMost(limit: number): SessionRecord {
    let excess = this.skippedKeyCount - Math.max(0, limit);
    if (excess <= 0) return this;
    const oldestFirst = [...this.archived].reverse();
    const trimmed = new Map<Session, Session>();
    for (const s of [...oldestFirst, this.current]) {
      if (excess <= 0) break;
      const drop = Math.min(excess, s.skippedCount);
      if (drop > 0) trimmed.set(s, s.withoutOldestSkipped(drop));
      excess -= drop;
    }
    const pick = (s: Session): Session => trimmed.get(s) ?? s;
    return new SessionRecord(this.peer, pick(this.current), this.archived.map(pick), this.written);
  }

  /**
   * This record with no session able to send (`Session.withoutSendingChain`, current and
   * archived alike, since an archived session becomes current when it reads a message): what a
   * saved copy of the state may hold (ADR 0017).
   */
  withoutSendingChains(): SessionRecord {
    const strip = (s: Session): Session => s.withoutSendingChain();
    return new SessionRecord(
      this.peer,
      strip(this.current),
      this.archived.map(strip),
      this.written,
    );
  }

  /**
   * This record with another copy's `sessions` (current first, then archived newest first, as
   * `sessions` gives them) merged in, except those it holds (same base key), within
   * `maxArchived` and `MAX_SKIPPED_KEYS_PER_PEER`: how two copies of one device's state are
   * merged, the current session staying this record's. The archive is ordered by recency in
   * each copy, the two interleaved (ours, theirs at each rank): the other copy's current
   * session comes right after ours, ahead of our archived ones, and the oldest of either copy
   * are dropped first. The other copy's current session is the one the peer answers it on, so
   * it must survive a full archive (the archive fills after a few restores, each adding a
   * fresh session, ADR 0017).
   *
   * @throws CryptoError('internal') for a session with another peer (a caller's bug).
   */
  withArchived(sessions: readonly Session[]): SessionRecord {
    for (const s of sessions) {
      if (!s.remote.equals(this.peer)) throw new CryptoError(CryptoErrorCode.INTERNAL);
    }
    const ours = this.sessions;
    const held: Session[] = [];
    const add = (s: Session | undefined): void => {
      if (s !== undefined && !held.some((h) => bytesEqual(h.baseKey, s.baseKey))) held.push(s);
    };
    for (let i = 0; i < Math.max(ours.length, sessions.length); i++) {
      add(ours[i]);
      add(sessions[i]);
    }
    return new SessionRecord(
      this.peer,
      this.current,
      held.slice(1, 1 + this.maxArchived),
      this.written,
    ).withSkippedAtMost(MAX_SKIPPED_KEYS_PER_PEER);
  }

  /** True when `other` holds the same sessions (by base key) in the same order. */
  holdsSameSessionsAs(other: SessionRecord): boolean {
    const a = this.sessions;
    const b = other.sessions;
    return a.length === b.length && a.every((s, i) => bytesEqual(s.baseKey, b[i]!.baseKey));
  }

  /** This record, marked as one this device has written to. */
  asWritten(): SessionRecord {
    return this.written ? this : new SessionRecord(this.peer, this.current, this.archived, true);
  }

  /** The held session of the handshake with initiator base key `baseKey`, if any. */
  sessionWithBaseKey(baseKey: Uint8Array): Session | undefined {
    return this.sessions.find((s) => bytesEqual(s.baseKey, baseKey));
  }

  /** The versioned encoding; contains secrets (encrypt it at rest). */
  encode(): Uint8Array {
    const withLength = (s: Session): Uint8Array[] => {
      const bytes = s.encode();
      return [u32(bytes.length), bytes];
    };
    return concatBytes(
      u8(SESSION_RECORD_VERSION),
      this.peer.encode(),
      u8(this.written ? 1 : 0),
      u8(this.archived.length),
      ...withLength(this.current),
      ...this.archived.flatMap(withLength),
    );
  }

  /**
   * Strict decoding of `encode`: `unsupported_version` for another version, `bad_encoding` for
   * more archived sessions than `MAX_ARCHIVED_SESSIONS`, a session of another peer, the same
   * session twice, a bad flag, truncation or trailing bytes; plus the errors of `Session.decode`.
   */
  static decode(p: Primitives, bytes: Uint8Array): SessionRecord {
    const r = new ByteReader(bytes);
    expectVersion(r, SESSION_RECORD_VERSION);
    const bad = (): CryptoError => new CryptoError(CryptoErrorCode.BAD_ENCODING);
    const identityBytes = r.bytesN(PUBLIC_IDENTITY_BYTES);
    const written = r.flag();
    const archivedCount = r.u8();
    if (archivedCount > (written ? MAX_ARCHIVED_SESSIONS : MAX_ARCHIVED_SESSIONS_UNWRITTEN)) {
      throw bad();
    }
    const session = (): Session => Session.decode(p, r.bytesN(r.u32()));
    const current = session();
    const archived: Session[] = [];
    for (let i = 0; i < archivedCount; i++) archived.push(session());
    r.end();
    const all = [current, ...archived];
    // Every session must be with this peer (compared byte for byte: Session.decode verified
    // its identity), and each handshake held once.
    for (const s of all) if (!s.remote.hasEncoding(identityBytes)) throw bad();
    if (new Set(all.map((s) => toHex(s.baseKey))).size !== all.length) throw bad();
    const record = new SessionRecord(current.remote, current, archived, written);
    if (record.skippedKeyCount > MAX_SKIPPED_KEYS_PER_PEER) throw bad();
    return record;
  }
}
