/**
 * A pairwise session between this device and one peer device: the ratchet, the handshake's
 * associated data (which binds both identities), the peer's identity, and, on the initiator's
 * side, the PQXDH initial message that accompanies every message until the peer has answered
 * (so the peer can set up its side whichever message it gets first).
 *
 * The state serialises to versioned bytes and back (a coordinator keeps it encrypted at rest; a
 * contact keeps it in memory). Decoding is strict: version first, exact lengths, flags 0 or 1,
 * no trailing bytes, skipped keys within their bound.
 *
 *   0x03 ‖ peer identity (129) ‖ AD (32) ‖ auth key (32) ‖ base key (32)
 *        ‖ has-initial (1) [‖ initial (1279)]
 *        ‖ ratchet: our secret (32) ‖ our public (32) ‖ has-remote (1) [‖ remote (32)]
 *          ‖ root key (32) ‖ has-send (1) [‖ CKs (32)] ‖ has-receive (1) [‖ CKr (32)]
 *          ‖ Ns (4) ‖ Nr (4) ‖ PN (4) ‖ skipped count (2) ‖ count × (dh (32) ‖ n (4) ‖ key (32))
 */
import { CryptoError, CryptoErrorCode } from './errors.js';
import type { Primitives } from './primitives.js';
import { SHA256_BYTES, X25519_KEY_BYTES } from './primitives.js';
import { ByteReader, bytesEqual, concatBytes, expectVersion, u16, u32, u8 } from './encoding.js';
import { AUTH_KEY_BYTES, CHAIN_KEY_BYTES, MESSAGE_KEY_BYTES, ROOT_KEY_BYTES } from './kdf.js';
import type { DeviceIdentity } from './identity.js';
import type { VerifiedPrekeyBundle } from './bundle.js';
import { PUBLIC_IDENTITY_BYTES, PublicIdentity } from './identity.js';
import type { X25519PublicKey } from './keys.js';
import { asX25519PublicKey, asX25519SecretKey } from './keys.js';
import type { RatchetState, SkippedKey } from './ratchet.js';
import { MAX_SKIPPED_KEYS_TOTAL, Ratchet } from './ratchet.js';
import type { PqxdhInitialMessage, PrekeyLookup } from './x3dh.js';
import { PQXDH_INITIAL_BYTES, encodePqxdhInitial, initiatePqxdh, respondPqxdh } from './x3dh.js';

/**
 * Version 2 added the message authentication key; version 3 holds a pending initial message of
 * version 2 (with its early tag, x3dh.ts). Older versions are refused, not migrated.
 */
export const SESSION_STATE_VERSION = 3;

/** What `Session.encrypt` produces: the ratchet message, and the initial message while pending. */
export interface SessionCiphertext {
  readonly initial: Uint8Array | null;
  readonly message: Uint8Array;
}

export class Session {
  private constructor(
    /** The peer device. */
    readonly remote: PublicIdentity,
    /** The handshake's AD (32 bytes), prefixed to every ratchet message's associated data. */
    private readonly associatedData: Uint8Array,
    /** The initiator's ephemeral key: identifies this handshake when an initial message repeats. */
    readonly baseKey: X25519PublicKey,
    private readonly ratchet: Ratchet,
    private pendingInitial: Uint8Array | null,
  ) {}

  /** Starts a session as initiator, from a verified bundle (see `decodePrekeyBundle`). */
  static initiate(p: Primitives, me: DeviceIdentity, bundle: VerifiedPrekeyBundle): Session {
    const hs = initiatePqxdh(p, me, bundle);
    const ratchet = Ratchet.initiator(p, hs.sharedSecret, hs.remoteSignedPrekey);
    return new Session(
      bundle.identity,
      hs.associatedData,
      hs.initial.ephemeral,
      ratchet,
      encodePqxdhInitial(hs.initial),
    );
  }

  /**
   * The responder's session for an initial message. Nothing is stored by this call: the caller
   * decrypts the accompanying ratchet message with the result and keeps the session (and
   * consumes the one-time prekey) only if that succeeds.
   */
  static respond(
    p: Primitives,
    me: DeviceIdentity,
    prekeys: PrekeyLookup,
    initial: PqxdhInitialMessage,
  ): Session {
    const hs = respondPqxdh(p, me, prekeys, initial);
    return new Session(
      initial.initiator,
      hs.associatedData,
      initial.ephemeral,
      Ratchet.responder(p, hs.sharedSecret, hs.signedPrekey),
      null,
    );
  }

  /**
   * An independent copy (cheap: it shares the immutable ratchet state). Session records are
   * immutable values: a transition advances a clone and puts it in a new record, so the stored
   * record stays as it was until the caller commits the new one.
   */
  clone(): Session {
    return new Session(
      this.remote,
      this.associatedData,
      this.baseKey,
      this.ratchet.clone(),
      this.pendingInitial,
    );
  }

  /** True while the peer has not answered (our messages still carry the initial message). */
  get isPending(): boolean {
    return this.pendingInitial !== null;
  }

  /** True once this side may send (a responder may only after decrypting a message). */
  get canSend(): boolean {
    return this.ratchet.canSend;
  }

  encrypt(plaintext: Uint8Array): SessionCiphertext {
    const message = this.ratchet.encrypt(plaintext, this.associatedData);
    return { initial: this.pendingInitial, message };
  }

  /** How many skipped message keys this session holds. */
  get skippedCount(): number {
    return this.ratchet.skippedCount;
  }

  /** A copy without the `count` oldest skipped keys. */
  withoutOldestSkipped(count: number): Session {
    if (count <= 0) return this;
    return new Session(
      this.remote,
      this.associatedData,
      this.baseKey,
      this.ratchet.withoutOldestSkipped(count),
      this.pendingInitial,
    );
  }

  /**
   * A copy that cannot send (`Ratchet.withoutSendingChain`), without the pending initial message
   * either: that only ever travels with a message this copy will not encrypt, and if a message
   * from the peer gives the copy a sending chain again, the peer has the session already.
   */
  withoutSendingChain(): Session {
    if (!this.canSend && this.pendingInitial === null) return this;
    return new Session(
      this.remote,
      this.associatedData,
      this.baseKey,
      this.ratchet.withoutSendingChain(),
      null,
    );
  }

  /** True when `message` carries this session's early tag (see `Ratchet.authenticates`). */
  authenticates(message: Uint8Array): boolean {
    return this.ratchet.authenticates(message, this.associatedData);
  }

  /** Decrypts a ratchet message; transactional (see `Ratchet.decrypt`). */
  decrypt(message: Uint8Array): Uint8Array {
    const plaintext = this.decryptIfTagged(message);
    if (plaintext === null) throw new CryptoError(CryptoErrorCode.DECRYPT_FAILED);
    return plaintext;
  }

  /** `decrypt`, or null for a message without this session's early tag (`Ratchet`). */
  decryptIfTagged(message: Uint8Array): Uint8Array | null {
    const plaintext = this.ratchet.decryptIfTagged(message, this.associatedData);
    if (plaintext === null) return null;
    // The peer could only produce this message after processing our initial message.
    this.pendingInitial = null;
    return plaintext;
  }

  /** The versioned serialisation; contains secrets (encrypt it at rest). */
  encode(): Uint8Array {
    const s = this.ratchet.snapshot();
    const optional = (v: Uint8Array | null): Uint8Array[] => (v === null ? [u8(0)] : [u8(1), v]);
    return concatBytes(
      u8(SESSION_STATE_VERSION),
      this.remote.encode(),
      this.associatedData,
      s.authKey,
      this.baseKey,
      ...optional(this.pendingInitial),
      s.self.secretKey,
      s.self.publicKey,
      ...optional(s.remote),
      s.rootKey,
      ...optional(s.sendChainKey),
      ...optional(s.receiveChainKey),
      u32(s.sendCount),
      u32(s.receiveCount),
      u32(s.previousSendCount),
      u16(s.skipped.length),
      ...s.skipped.flatMap((k) => [k.dh, u32(k.n), k.messageKey]),
    );
  }

  /** Strict decoding of `encode`'s output. */
  static decode(p: Primitives, bytes: Uint8Array): Session {
    const r = new ByteReader(bytes);
    expectVersion(r, SESSION_STATE_VERSION);
    const remote = PublicIdentity.decode(p, r.bytesN(PUBLIC_IDENTITY_BYTES));
    const associatedData = r.bytesN(SHA256_BYTES);
    const authKey = r.bytesN(AUTH_KEY_BYTES);
    const baseKey = asX25519PublicKey(r.bytesN(X25519_KEY_BYTES));
    const pendingInitial = r.flag() ? r.bytesN(PQXDH_INITIAL_BYTES) : null;
    const secretKey = asX25519SecretKey(r.bytesN(X25519_KEY_BYTES));
    const publicKey = asX25519PublicKey(r.bytesN(X25519_KEY_BYTES));
    const remoteKey = r.flag() ? asX25519PublicKey(r.bytesN(X25519_KEY_BYTES)) : null;
    const rootKey = r.bytesN(ROOT_KEY_BYTES);
    const sendChainKey = r.flag() ? r.bytesN(CHAIN_KEY_BYTES) : null;
    const receiveChainKey = r.flag() ? r.bytesN(CHAIN_KEY_BYTES) : null;
    const sendCount = r.u32();
    const receiveCount = r.u32();
    const previousSendCount = r.u32();
    const skippedCount = r.u16();
    if (skippedCount > MAX_SKIPPED_KEYS_TOTAL) throw new CryptoError(CryptoErrorCode.BAD_ENCODING);
    const skipped: SkippedKey[] = [];
    for (let i = 0; i < skippedCount; i++) {
      skipped.push({
        dh: asX25519PublicKey(r.bytesN(X25519_KEY_BYTES)),
        n: r.u32(),
        messageKey: r.bytesN(MESSAGE_KEY_BYTES),
      });
    }
    r.end();
    // A stored key pair must be a key pair: catches corruption before it breaks the session.
    if (!bytesEqual(p.x25519PublicKey(secretKey), publicKey)) {
      throw new CryptoError(CryptoErrorCode.BAD_ENCODING);
    }
    const state: RatchetState = {
      self: { secretKey, publicKey },
      remote: remoteKey,
      rootKey,
      sendChainKey,
      receiveChainKey,
      sendCount,
      receiveCount,
      previousSendCount,
      skipped,
      authKey,
    };
    return new Session(
      remote,
      associatedData,
      baseKey,
      Ratchet.fromState(p, state),
      pendingInitial,
    );
  }
}
