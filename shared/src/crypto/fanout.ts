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
 */
import { CryptoError, CryptoErrorCode } from './errors.js';
import type { Primitives } from './primitives.js';
import { X25519_KEY_BYTES } from './primitives.js';
import {
  ByteReader,
  bytesEqual,
  concatBytes,
  expectVersion,
  toHex,
  u16,
  u32,
  u8,
} from './encoding.js';
import { openEnvelopeUnverified, sealEnvelope } from './envelope.js';
import type { DeviceIdentity, PrekeyBundle } from './identity.js';
import { PublicIdentity } from './identity.js';
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
 * Handshakes remembered to reject a replayed initial message whose session has since been
 * replaced (it would otherwise start the old session again). Oldest forgotten first.
 */
export const MAX_REMEMBERED_HANDSHAKES = 1000;

/** Version byte of `DeviceSessions.encode`. */
export const DEVICE_SESSIONS_VERSION = 1;

export class DeviceSessions {
  private readonly sessions = new Map<string, Session>();
  /** Handshake base keys answered, by hex, oldest first. */
  private readonly seenBaseKeys = new Map<string, Uint8Array>();

  constructor(
    private readonly p: Primitives,
    readonly identity: DeviceIdentity,
    private readonly prekeys: ResponderPrekeys | null,
  ) {}

  /** The session with a peer device, if any. */
  session(peer: PublicIdentity): Session | undefined {
    const s = this.sessions.get(peer.id);
    return s !== undefined && s.remote.equals(peer) ? s : undefined;
  }

  /** Starts (or restarts) a session as initiator from a verified bundle. */
  startSession(bundle: PrekeyBundle): Session {
    const session = Session.initiate(this.p, this.identity, bundle);
    this.sessions.set(bundle.identity.id, session);
    return session;
  }

  /** Adds a session restored from its serialisation (`Session.decode`). */
  restoreSession(session: Session): void {
    this.sessions.set(session.remote.id, session);
  }

  /** Every session. */
  allSessions(): readonly Session[] {
    return [...this.sessions.values()];
  }

  /**
   * Forgets the session with a peer device, so that nothing more is sent to it or accepted from
   * it (until a new handshake). True when there was one.
   */
  removeSession(peer: PublicIdentity): boolean {
    if (this.session(peer) === undefined) return false;
    return this.sessions.delete(peer.id);
  }

  /**
   * Keeps only the sessions with devices listed in `roster` (verified with `verifyRoster`) and
   * returns how many were dropped. A contact's page calls it on every roster it accepts: leaving
   * a device out of `fanOutToRoster` stops writing to it, but only this stops a device that the
   * organization removed (a seized phone) from still being READ, as if it spoke for the
   * organization. Not for coordinators, whose sessions with contacts are not on any roster.
   */
  retainRosterSessions(roster: Roster): number {
    let dropped = 0;
    for (const [id, session] of [...this.sessions]) {
      if (!roster.devices.some((d) => d.equals(session.remote))) {
        this.sessions.delete(id);
        dropped++;
      }
    }
    return dropped;
  }

  /**
   * The sessions and the remembered handshakes, for storage encrypted at rest (the identity and
   * prekeys are stored on their own, see `DeviceIdentity.encodeSecret`, `DevicePrekeys.encode`):
   *   01 ‖ count (2) ‖ count × (length (4) ‖ session) ‖ handshakes (2) ‖ handshakes × key (32)
   */
  encode(): Uint8Array {
    const sessions = [...this.sessions.values()].map((s) => s.encode());
    return concatBytes(
      u8(DEVICE_SESSIONS_VERSION),
      u16(sessions.length),
      ...sessions.flatMap((s) => [u32(s.length), s]),
      u16(this.seenBaseKeys.size),
      ...this.seenBaseKeys.values(),
    );
  }

  /** Strict decoding of `encode`. */
  static decode(
    p: Primitives,
    identity: DeviceIdentity,
    prekeys: ResponderPrekeys | null,
    bytes: Uint8Array,
  ): DeviceSessions {
    const out = new DeviceSessions(p, identity, prekeys);
    const r = new ByteReader(bytes);
    expectVersion(r, DEVICE_SESSIONS_VERSION);
    const count = r.u16();
    for (let i = 0; i < count; i++) {
      const session = Session.decode(out.p, r.bytesN(r.u32()));
      if (out.sessions.has(session.remote.id)) throw new CryptoError(CryptoErrorCode.BAD_ENCODING);
      out.sessions.set(session.remote.id, session);
    }
    const seen = r.u16();
    if (seen > MAX_REMEMBERED_HANDSHAKES) throw new CryptoError(CryptoErrorCode.BAD_ENCODING);
    for (let i = 0; i < seen; i++) {
      const key = r.bytesN(X25519_KEY_BYTES);
      out.seenBaseKeys.set(toHex(key), key);
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
    bundleFor: (device: PublicIdentity) => PrekeyBundle | undefined = () => undefined,
  ): AddressedEnvelope[] {
    const bundles = new Map<string, PrekeyBundle>();
    for (const device of recipients) {
      if (this.session(device)?.canSend === true) continue;
      const bundle = bundleFor(device);
      if (bundle === undefined || !bundle.identity.equals(device)) {
        throw new CryptoError(CryptoErrorCode.NO_SESSION);
      }
      bundles.set(device.id, bundle);
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
    bundleFor?: (device: PublicIdentity) => PrekeyBundle | undefined,
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
   * record changes. Throws `decrypt_failed` for a forged sender, `no_session` for a message in a
   * session we do not have, `replay` for a message (or handshake) already processed, and the
   * codes of `openEnvelopeUnverified`, `PublicIdentity.decode`, `Ratchet.decrypt` and `respondPqxdh`.
   */
  decrypt(envelope: Uint8Array): ReceivedMessage {
    const content = openEnvelopeUnverified(this.p, this.identity, envelope);
    const sender = this.senderIdentity(content.senderBytes);

    if (content.initial === null) {
      const session = this.session(sender);
      if (session === undefined) throw new CryptoError(CryptoErrorCode.NO_SESSION);
      return { sender, plaintext: session.decrypt(content.message) };
    }

    const initial = decodePqxdhInitial(this.p, content.initial, sender);
    if (!initial.initiator.equals(sender)) throw new CryptoError(CryptoErrorCode.DECRYPT_FAILED);
    const existing = this.session(sender);
    if (existing !== undefined && bytesEqual(existing.baseKey, initial.ephemeral)) {
      // A further message of a handshake we already answered.
      return { sender, plaintext: existing.decrypt(content.message) };
    }
    const baseKeyId = toHex(initial.ephemeral);
    if (this.seenBaseKeys.has(baseKeyId)) throw new CryptoError(CryptoErrorCode.REPLAY);
    if (this.prekeys === null) throw new CryptoError(CryptoErrorCode.NO_SESSION);
    const session = Session.respond(this.p, this.identity, this.prekeys, initial);
    const plaintext = session.decrypt(content.message);
    // Authenticated: commit the session, use up the one-time prekey, remember the handshake.
    this.sessions.set(sender.id, session);
    if (initial.oneTimePrekeyId !== null)
      this.prekeys.consumeOneTimePrekey(initial.oneTimePrekeyId);
    this.seenBaseKeys.set(baseKeyId, initial.ephemeral);
    if (this.seenBaseKeys.size > MAX_REMEMBERED_HANDSHAKES) {
      const oldest = this.seenBaseKeys.keys().next().value;
      if (oldest !== undefined) this.seenBaseKeys.delete(oldest);
    }
    return { sender, plaintext };
  }

  /**
   * The sender named in an envelope: a peer we have a session with is compared byte for byte
   * with the identity verified when the session began; any other is decoded and verified
   * (Ed25519 costs more than the rest of a message, so it is not repeated for every message).
   */
  private senderIdentity(bytes: Uint8Array): PublicIdentity {
    const id = PublicIdentity.idOfEncoded(bytes);
    const known = id === null ? undefined : this.sessions.get(id)?.remote;
    if (known?.hasEncoding(bytes) === true) return known;
    return PublicIdentity.decode(this.p, bytes);
  }
}
