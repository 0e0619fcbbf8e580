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
 * Encoding (integers big-endian; decoding is strict: version first, counts within their bounds,
 * flags 0 or 1, no duplicate session, every session with this peer, no trailing bytes):
 *
 *   0x01 ‖ peer identity (129) ‖ written (1) ‖ archived count (1)
 *        ‖ current: length (4) ‖ session ‖ archived × (length (4) ‖ session)
 *
 * `written` is 1 once this device has encrypted a message to the peer (in any session): a peer
 * this device never wrote to may be anyone (contacts are anonymous), and the bounds treat it so.
 * Archived sessions are newest first.
 */
import { CryptoError, CryptoErrorCode } from './errors.js';
import type { Primitives } from './primitives.js';
import { ByteReader, bytesEqual, concatBytes, expectVersion, toHex, u32, u8 } from './encoding.js';
import type { PublicIdentity } from './identity.js';
import { PUBLIC_IDENTITY_BYTES } from './identity.js';
import { MAX_ARCHIVED_SESSIONS } from './limits.js';
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
    /** True once this device has encrypted a message to the peer. */
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

  /**
   * This record with `session` current: the previous current one is archived (and the oldest
   * archived one dropped beyond `MAX_ARCHIVED_SESSIONS`). A held session of the same handshake
   * (same base key) is replaced, so a session never appears twice.
   */
  withCurrent(session: Session): SessionRecord {
    const others = this.sessions.filter((s) => !bytesEqual(s.baseKey, session.baseKey));
    return new SessionRecord(
      this.peer,
      session,
      others.slice(0, MAX_ARCHIVED_SESSIONS),
      this.written,
    );
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
    if (archivedCount > MAX_ARCHIVED_SESSIONS) throw bad();
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
    return new SessionRecord(current.remote, current, archived, written);
  }
}
