/**
 * Multi-device messaging: one pairwise session per device pair, and one message encrypted for a
 * list of devices (fan-out). `DeviceSessions` is what a device (a contact's page, a coordinator's
 * browser) holds: its identity, its prekeys (for the responder side) and a session per peer
 * device. It turns plaintext into sealed envelopes and envelopes back into plaintext.
 *
 * Sender binding: the identity named inside an envelope only selects a session. A ratchet
 * message must then authenticate under that session's associated data, which the handshake bound
 * to both identities, so naming someone else as the sender fails (`decrypt_failed`). For an
 * initial message the named sender must equal the handshake's initiator, and the handshake's
 * DH1 needs that identity's X25519 secret.
 *
 * Who may receive is decided by the caller, from a roster verified with roster.ts: fan-out
 * encrypts to exactly the identities it is given and never to one it learnt from the network.
 *
 * Several sessions per peer (ADR 0006): the current one, which encrypts, and up to
 * `MAX_ARCHIVED_SESSIONS` archived ones, which still decrypt, so that two devices that start
 * handshakes with each other at once, or a restart with messages still queued, lose nothing.
 * Handshakes already answered are remembered per peer device
 * (`MAX_REMEMBERED_HANDSHAKES_PER_PEER`), so that a replayed first message cannot start an old
 * session again; outsiders cannot flush that memory. Peers held: at most `MAX_PEER_DEVICES`.
 */
import { CryptoError, CryptoErrorCode, isCryptoError } from './errors.js';
import type { Primitives } from './primitives.js';
import { ED25519_PUBLIC_KEY_BYTES, X25519_KEY_BYTES } from './primitives.js';
import { ByteReader, bytesEqual, concatBytes, expectVersion, toHex, u32, u8 } from './encoding.js';
import { openEnvelopeUnverified, sealEnvelope } from './envelope.js';
import type { DeviceIdentity } from './identity.js';
import type { VerifiedPrekeyBundle } from './bundle.js';
import { PUBLIC_IDENTITY_BYTES, PublicIdentity } from './identity.js';
import type { Roster } from './roster.js';
import { Session } from './session.js';
import type { PrekeyLookup } from './x3dh.js';
import { decodePqxdhInitial } from './x3dh.js';

/** The responder side's prekeys: lookups for the handshake, and deletion of used one-time keys. */
export interface ResponderPrekeys extends PrekeyLookup {
  consumeOneTimePrekey(id: number): void;
}

/** An envelope for one device. */
export interface AddressedEnvelope {
  readonly recipient: PublicIdentity;
  readonly envelope: Uint8Array;
}

/** A decrypted message and the device that sent it (authenticated by its session). */
export interface ReceivedMessage {
  readonly sender: PublicIdentity;
  readonly plaintext: Uint8Array;
}

/**
 * Sessions of one peer device kept beside its current one (Signal's "archived session states").
 * When both devices start a handshake at once, or one restarts while the other's messages are in
 * flight, each side ends up with more than one live session per peer; keeping the previous ones
 * lets every message find its session. The oldest archived session is dropped beyond this.
 */
export const MAX_ARCHIVED_SESSIONS = 4;

/**
 * Handshakes (initiator base keys) remembered per peer device, to reject a replayed initial
 * message whose session is no longer held. Only that peer can add to its own list (a handshake
 * naming it as initiator needs its identity X25519 secret and must authenticate), so other
 * senders cannot push an entry out. Entries are forgotten once the signed prekey they used is no
 * longer held (a replay then fails with `unknown_prekey`); beyond this bound the oldest goes.
 */
export const MAX_REMEMBERED_HANDSHAKES_PER_PEER = 64;

/**
 * Peer devices held at most (with sessions, or only remembered handshakes). At the bound a new
 * peer is refused with `limit_exceeded`, after forgetting handshakes whose signed prekey is gone:
 * existing peers keep working; evicting one instead would also forget its handshakes and so
 * reopen the replay that `MAX_REMEMBERED_HANDSHAKES_PER_PEER` closes. Free room with
 * `removeSession` (closed cases) and prekey rotation.
 */
export const MAX_PEER_DEVICES = 10_000;

/** Version byte of `DeviceSessions.encode`. Version 1 (2-byte counts, one global FIFO) is refused. */
export const DEVICE_SESSIONS_VERSION = 2;

/** An answered handshake: the initiator's base key and the signed prekey it used. */
interface RememberedHandshake {
  readonly baseKey: Uint8Array;
  readonly signedPrekeyId: number;
}

/** Everything held about one peer device. `current` is null only when `archived` is empty. */
interface PeerRecord {
  readonly peer: PublicIdentity;
  current: Session | null;
  /** Most recently current first. */
  archived: Session[];
  /** Oldest first. */
  handshakes: RememberedHandshake[];
}

/** Map key of a peer device: its signing and X25519 keys (a "twin" sharing one is another peer). */
function peerKeyOf(peer: PublicIdentity): string {
  return toHex(peer.signingKey) + toHex(peer.dhKey);
}

/** `peerKeyOf` for an encoded identity that has not been verified (lookup only). */
function peerKeyOfEncoded(bytes: Uint8Array): string | null {
  const id = PublicIdentity.idOfEncoded(bytes);
  return id === null
    ? null
    : id +
        toHex(
          bytes.subarray(
            1 + ED25519_PUBLIC_KEY_BYTES,
            1 + ED25519_PUBLIC_KEY_BYTES + X25519_KEY_BYTES,
          ),
        );
}

function sessionsOf(record: PeerRecord): Session[] {
  return record.current === null ? [] : [record.current, ...record.archived];
}

/** Makes `session` current, archiving the previous current one (and dropping the oldest). */
function install(record: PeerRecord, session: Session): void {
  const others = sessionsOf(record).filter((s) => s !== session);
  record.current = session;
  record.archived = others.slice(0, MAX_ARCHIVED_SESSIONS);
}

export class DeviceSessions {
  private readonly peers = new Map<string, PeerRecord>();

  constructor(
    private readonly p: Primitives,
    readonly identity: DeviceIdentity,
    private readonly prekeys: ResponderPrekeys | null,
  ) {}

  /** The current session with a peer device, if any (the one `encryptFor` uses). */
  session(peer: PublicIdentity): Session | undefined {
    return this.peers.get(peerKeyOf(peer))?.current ?? undefined;
  }

  /** Every session held with a peer device, current first, then archived (newest first). */
  sessionsWith(peer: PublicIdentity): readonly Session[] {
    const record = this.peers.get(peerKeyOf(peer));
    return record === undefined ? [] : sessionsOf(record);
  }

  /** Peer devices held (with sessions or remembered handshakes); at most `MAX_PEER_DEVICES`. */
  get peerCount(): number {
    return this.peers.size;
  }

  /**
   * Starts (or restarts) a session as initiator from a verified bundle. The previous session
   * with that device is archived, so its messages still in flight can be read. Throws
   * `limit_exceeded` for a new device when `MAX_PEER_DEVICES` are held.
   */
  startSession(bundle: VerifiedPrekeyBundle): Session {
    const record = this.recordFor(bundle.identity);
    const session = Session.initiate(this.p, this.identity, bundle);
    install(record, session);
    this.peers.set(peerKeyOf(bundle.identity), record);
    return session;
  }

  /**
   * Makes a session restored from its serialisation (`Session.decode`) the current one with its
   * peer; a held session of the same handshake is replaced, any other is archived.
   */
  restoreSession(session: Session): void {
    const record = this.recordFor(session.remote);
    const others = sessionsOf(record).filter((s) => !bytesEqual(s.baseKey, session.baseKey));
    record.current = session;
    record.archived = others.slice(0, MAX_ARCHIVED_SESSIONS);
    this.peers.set(peerKeyOf(session.remote), record);
  }

  /** Every current session (one per peer device). */
  allSessions(): readonly Session[] {
    const out: Session[] = [];
    for (const record of this.peers.values()) if (record.current !== null) out.push(record.current);
    return out;
  }

  /**
   * Forgets the sessions (current and archived) with a peer device, so that nothing more is sent
   * to it or accepted from it (until a new handshake). Its remembered handshakes stay, so an old
   * initial message of that device still cannot start a session again. True when there was one.
   */
  removeSession(peer: PublicIdentity): boolean {
    const key = peerKeyOf(peer);
    const record = this.peers.get(key);
    if (record === undefined || record.current === null) return false;
    this.dropSessions(key, record);
    return true;
  }

  /**
   * Keeps only the sessions with devices listed in `roster` (verified with `verifyRoster`) and
   * returns with how many devices sessions were dropped. A contact's page calls it on every
   * roster it accepts: leaving a device out of `fanOutToRoster` stops writing to it, but only
   * this stops a device that the organization removed (a seized phone) from still being READ, as
   * if it spoke for the organization. Not for coordinators, whose sessions with contacts are not
   * on any roster.
   */
  retainRosterSessions(roster: Roster): number {
    let dropped = 0;
    for (const [key, record] of [...this.peers]) {
      if (record.current === null) continue;
      if (!roster.devices.some((d) => d.equals(record.peer))) {
        this.dropSessions(key, record);
        dropped++;
      }
    }
    return dropped;
  }

  /**
   * Forgets remembered handshakes whose signed prekey this device no longer holds (a replay of
   * one fails with `unknown_prekey` anyway), and peers left with nothing. Returns how many
   * handshakes were forgotten. Runs by itself when a peer's handshakes change and at the peer
   * bound; call it after rotating prekeys to free memory sooner.
   */
  pruneHandshakes(): number {
    let forgotten = 0;
    for (const [key, record] of [...this.peers]) {
      forgotten += this.pruneRecord(record);
      if (record.current === null && record.handshakes.length === 0) this.peers.delete(key);
    }
    return forgotten;
  }

  /**
   * The sessions and remembered handshakes, for storage encrypted at rest (the identity and
   * prekeys are stored on their own, see `DeviceIdentity.encodeSecret`, `DevicePrekeys.encode`):
   *
   *   02 ‖ peers (4) ‖ peers × ( identity (129) ‖ has-current (1) [‖ length (4) ‖ session]
   *      ‖ archived (4) ‖ archived × (length (4) ‖ session)
   *      ‖ handshakes (4) ‖ handshakes × (base key (32) ‖ signed prekey id (4)) )
   *
   * At most `MAX_PEER_DEVICES` peers, `MAX_ARCHIVED_SESSIONS` archived sessions and
   * `MAX_REMEMBERED_HANDSHAKES_PER_PEER` handshakes each; archived sessions newest first,
   * handshakes oldest first.
   */
  encode(): Uint8Array {
    const parts: Uint8Array[] = [u8(DEVICE_SESSIONS_VERSION), u32(this.peers.size)];
    const withLength = (s: Session): Uint8Array[] => {
      const bytes = s.encode();
      return [u32(bytes.length), bytes];
    };
    for (const record of this.peers.values()) {
      parts.push(record.peer.encode());
      if (record.current === null) parts.push(u8(0));
      else parts.push(u8(1), ...withLength(record.current));
      parts.push(u32(record.archived.length), ...record.archived.flatMap(withLength));
      parts.push(u32(record.handshakes.length));
      for (const h of record.handshakes) parts.push(h.baseKey, u32(h.signedPrekeyId));
    }
    return concatBytes(...parts);
  }

  /**
   * Strict decoding of `encode`: `unsupported_version` for any other version (version 1 is not
   * migrated: no such state was ever deployed), `bad_encoding` for a count beyond its bound, a
   * duplicate peer, session or handshake, a session of another peer, a peer with nothing held,
   * truncation or trailing bytes; plus the errors of `Session.decode`.
   */
  static decode(
    p: Primitives,
    identity: DeviceIdentity,
    prekeys: ResponderPrekeys | null,
    bytes: Uint8Array,
  ): DeviceSessions {
    const out = new DeviceSessions(p, identity, prekeys);
    const r = new ByteReader(bytes);
    expectVersion(r, DEVICE_SESSIONS_VERSION);
    const bad = (): CryptoError => new CryptoError(CryptoErrorCode.BAD_ENCODING);
    const peerCount = r.u32();
    if (peerCount > MAX_PEER_DEVICES) throw bad();
    for (let i = 0; i < peerCount; i++) {
      const identityBytes = r.bytesN(PUBLIC_IDENTITY_BYTES);
      const session = (): Session => Session.decode(p, r.bytesN(r.u32()));
      const current = r.flag() ? session() : null;
      const archivedCount = r.u32();
      if (archivedCount > MAX_ARCHIVED_SESSIONS) throw bad();
      if (current === null && archivedCount > 0) throw bad();
      const archived: Session[] = [];
      for (let j = 0; j < archivedCount; j++) archived.push(session());
      const handshakeCount = r.u32();
      if (handshakeCount > MAX_REMEMBERED_HANDSHAKES_PER_PEER) throw bad();
      const handshakes: RememberedHandshake[] = [];
      for (let j = 0; j < handshakeCount; j++) {
        handshakes.push({ baseKey: r.bytesN(X25519_KEY_BYTES), signedPrekeyId: r.u32() });
      }
      const held = current === null ? [] : [current, ...archived];
      if (held.length === 0 && handshakes.length === 0) throw bad();
      // Every session must be with this peer (compared byte for byte: Session.decode verified
      // its identity); a peer with handshakes only is verified here.
      for (const s of held) if (!s.remote.hasEncoding(identityBytes)) throw bad();
      const peer = held[0]?.remote ?? PublicIdentity.decode(p, identityBytes);
      if (hasDuplicate(held.map((s) => s.baseKey))) throw bad();
      if (hasDuplicate(handshakes.map((h) => h.baseKey))) throw bad();
      const key = peerKeyOf(peer);
      if (out.peers.has(key)) throw bad();
      out.peers.set(key, { peer, current, archived, handshakes });
    }
    r.end();
    return out;
  }

  /** Encrypts for one device with an existing session. Throws `no_session` otherwise. */
  encryptFor(recipient: PublicIdentity, plaintext: Uint8Array): Uint8Array {
    const session = this.session(recipient);
    if (session === undefined || !session.canSend)
      throw new CryptoError(CryptoErrorCode.NO_SESSION);
    const { initial, message } = session.encrypt(plaintext);
    return sealEnvelope(this.p, recipient, {
      sender: this.identity.publicIdentity,
      initial,
      message,
    });
  }

  /**
   * Encrypts one message for every device in `recipients` (each through its own pairwise
   * session). A device without a session gets one from `bundleFor` (a verified bundle). All or
   * nothing: if any device has neither a usable session nor a bundle, `no_session` is thrown
   * before anything is encrypted.
   */
  fanOut(
    recipients: readonly PublicIdentity[],
    plaintext: Uint8Array,
    bundleFor: (device: PublicIdentity) => VerifiedPrekeyBundle | undefined = () => undefined,
  ): AddressedEnvelope[] {
    const bundles = new Map<string, VerifiedPrekeyBundle>();
    for (const device of recipients) {
      if (this.session(device)?.canSend === true) continue;
      const bundle = bundleFor(device);
      if (bundle === undefined || !bundle.identity.equals(device)) {
        throw new CryptoError(CryptoErrorCode.NO_SESSION);
      }
      bundles.set(peerKeyOf(device), bundle);
    }
    // All or nothing also at the peer bound: make room (or refuse) before starting anything.
    const newPeers = [...bundles.keys()].filter((k) => !this.peers.has(k)).length;
    if (newPeers > 0 && this.peers.size + newPeers > MAX_PEER_DEVICES) {
      this.pruneHandshakes();
      if (this.peers.size + newPeers > MAX_PEER_DEVICES) {
        throw new CryptoError(CryptoErrorCode.LIMIT_EXCEEDED);
      }
    }
    for (const bundle of bundles.values()) this.startSession(bundle);
    return recipients.map((recipient) => ({
      recipient,
      envelope: this.encryptFor(recipient, plaintext),
    }));
  }

  /**
   * Fans out to the devices of a roster verified with `verifyRoster`, except this device itself
   * (a coordinator writing to its colleagues). Throws `roster_expired` once the roster has
   * expired at `nowSeconds`, so a page left open does not keep using a stale list.
   */
  fanOutToRoster(
    roster: Roster,
    nowSeconds: number,
    plaintext: Uint8Array,
    bundleFor?: (device: PublicIdentity) => VerifiedPrekeyBundle | undefined,
  ): AddressedEnvelope[] {
    if (nowSeconds >= roster.expiresAtSeconds)
      throw new CryptoError(CryptoErrorCode.ROSTER_EXPIRED);
    const me = this.identity.publicIdentity;
    return this.fanOut(
      roster.devices.filter((d) => !d.equals(me)),
      plaintext,
      bundleFor,
    );
  }

  /**
   * Opens and decrypts an envelope. Transactional: on any failure no session, prekey or replay
   * record changes. A message is tried with the sender's current session, then its archived ones
   * (newest first); the one that reads it becomes current. An initial message whose handshake
   * is one of the sender's held sessions is read with that session; any other starts a new
   * session, which becomes current (the previous one is archived). Throws `decrypt_failed` for a
   * forged sender, `no_session` for a message in a session we do not have, `replay` for a
   * message (or handshake) already processed, `limit_exceeded` for a handshake from a new device
   * when `MAX_PEER_DEVICES` are held, and the codes of `openEnvelopeUnverified`,
   * `PublicIdentity.decode`, `Ratchet.decrypt` and `respondPqxdh`.
   */
  decrypt(envelope: Uint8Array): ReceivedMessage {
    const content = openEnvelopeUnverified(this.p, this.identity, envelope);
    const sender = this.senderIdentity(content.senderBytes);
    const key = peerKeyOf(sender);
    const record = this.peers.get(key);

    if (content.initial === null) {
      if (record === undefined || record.current === null) {
        throw new CryptoError(CryptoErrorCode.NO_SESSION);
      }
      return { sender, plaintext: decryptWithAny(record, content.message) };
    }

    const initial = decodePqxdhInitial(this.p, content.initial, sender);
    if (!initial.initiator.equals(sender)) throw new CryptoError(CryptoErrorCode.DECRYPT_FAILED);
    if (record !== undefined) {
      // A further message of a handshake whose session we hold (a retransmission, or a message
      // sent before our answer arrived): that session reads it, or it is refused. Never a new
      // session for a handshake we already answered.
      const held = sessionsOf(record).find((s) => bytesEqual(s.baseKey, initial.ephemeral));
      if (held !== undefined) {
        const plaintext = held.decrypt(content.message);
        install(record, held);
        return { sender, plaintext };
      }
      if (record.handshakes.some((h) => bytesEqual(h.baseKey, initial.ephemeral))) {
        throw new CryptoError(CryptoErrorCode.REPLAY);
      }
    }
    if (this.prekeys === null) throw new CryptoError(CryptoErrorCode.NO_SESSION);
    // Checked before the handshake's work, and without changing anything (transactional).
    if (record === undefined && this.peers.size >= MAX_PEER_DEVICES && !this.anyPrunable()) {
      throw new CryptoError(CryptoErrorCode.LIMIT_EXCEEDED);
    }
    const session = Session.respond(this.p, this.identity, this.prekeys, initial);
    const plaintext = session.decrypt(content.message);
    // Authenticated: commit the session, use up the one-time prekey, remember the handshake.
    if (initial.oneTimePrekeyId !== null)
      this.prekeys.consumeOneTimePrekey(initial.oneTimePrekeyId);
    if (record === undefined && this.peers.size >= MAX_PEER_DEVICES) this.pruneHandshakes();
    const target = record ?? { peer: sender, current: null, archived: [], handshakes: [] };
    install(target, session);
    target.handshakes.push({
      baseKey: initial.ephemeral,
      signedPrekeyId: initial.signedPrekeyId,
    });
    this.pruneRecord(target);
    if (target.handshakes.length > MAX_REMEMBERED_HANDSHAKES_PER_PEER) {
      target.handshakes = target.handshakes.slice(-MAX_REMEMBERED_HANDSHAKES_PER_PEER);
    }
    this.peers.set(key, target);
    return { sender, plaintext };
  }

  /**
   * The record for a peer device, new (not yet stored) if there is none. Throws
   * `limit_exceeded` for a new device when `MAX_PEER_DEVICES` are held after pruning.
   */
  private recordFor(peer: PublicIdentity): PeerRecord {
    const existing = this.peers.get(peerKeyOf(peer));
    if (existing !== undefined) return existing;
    if (this.peers.size >= MAX_PEER_DEVICES) {
      this.pruneHandshakes();
      if (this.peers.size >= MAX_PEER_DEVICES) {
        throw new CryptoError(CryptoErrorCode.LIMIT_EXCEEDED);
      }
    }
    return { peer, current: null, archived: [], handshakes: [] };
  }

  /** Drops a peer's sessions; the peer stays while it has remembered handshakes. */
  private dropSessions(key: string, record: PeerRecord): void {
    record.current = null;
    record.archived = [];
    if (record.handshakes.length === 0) this.peers.delete(key);
  }

  /** True when a signed prekey named by a remembered handshake is still held. */
  private stillAnswerable(h: RememberedHandshake): boolean {
    return this.prekeys?.findSignedPrekey(h.signedPrekeyId) !== undefined;
  }

  /** Forgets a record's handshakes whose signed prekey is gone; returns how many. */
  private pruneRecord(record: PeerRecord): number {
    const kept = record.handshakes.filter((h) => this.stillAnswerable(h));
    const forgotten = record.handshakes.length - kept.length;
    if (forgotten > 0) record.handshakes = kept;
    return forgotten;
  }

  /** True when `pruneHandshakes` would free at least one peer. */
  private anyPrunable(): boolean {
    for (const record of this.peers.values()) {
      if (record.current === null && !record.handshakes.some((h) => this.stillAnswerable(h))) {
        return true;
      }
    }
    return false;
  }

  /**
   * The sender named in an envelope: a peer we hold is compared byte for byte with the identity
   * verified when it was first seen; any other is decoded and verified (Ed25519 costs more than
   * the rest of a message, so it is not repeated for every message).
   */
  private senderIdentity(bytes: Uint8Array): PublicIdentity {
    const key = peerKeyOfEncoded(bytes);
    const known = key === null ? undefined : this.peers.get(key)?.peer;
    if (known?.hasEncoding(bytes) === true) return known;
    return PublicIdentity.decode(this.p, bytes);
  }
}

/**
 * Decrypts a ratchet message with the current session, else an archived one, which then becomes
 * current. Each attempt is transactional (`Ratchet.decrypt`), so failures change nothing. When
 * all fail, the current session's error is thrown, or `replay` if any session recognised the
 * message as already read.
 */
function decryptWithAny(record: PeerRecord, message: Uint8Array): Uint8Array {
  let first: unknown;
  let replay: unknown;
  for (const session of sessionsOf(record)) {
    try {
      const plaintext = session.decrypt(message);
      if (session !== record.current) install(record, session);
      return plaintext;
    } catch (error: unknown) {
      if (!isCryptoError(error)) throw error;
      first ??= error;
      if (error.code === CryptoErrorCode.REPLAY) replay ??= error;
    }
  }
  throw replay ?? first;
}

function hasDuplicate(keys: readonly Uint8Array[]): boolean {
  return new Set(keys.map(toHex)).size !== keys.length;
}
