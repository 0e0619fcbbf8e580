/**
 * Signal's Double Ratchet (revision 1, 2016-11-20), with X25519, HMAC-SHA256 chains, HKDF root
 * steps (kdf.ts) and XChaCha20-Poly1305 whose key and nonce come from the message key.
 *
 * Differences from the specification's pseudocode, each deliberate:
 * - **Transactional decryption.** `decrypt` computes every change (new chain keys, skipped keys,
 *   a DH ratchet step) into locals, opens the ciphertext, and only then commits. A message that
 *   fails for any reason (tampered, replayed, too far ahead, wrong session) leaves the state
 *   byte-for-byte unchanged, so an attacker cannot desynchronise a session by injecting garbage.
 *   The new sending key pair of a DH ratchet step is generated after the ciphertext has been
 *   authenticated, so a rejected message does not even consume randomness.
 * - **Bounded skipped-key store.** At most `MAX_SKIP` keys are skipped in one chain per message,
 *   and at most `MAX_SKIPPED_KEYS_TOTAL` are stored; beyond that the oldest are evicted first
 *   (insertion order, deterministic). A header asking for more work than the bound is rejected
 *   before any key is derived.
 * - **Replays.** A message whose key was already used (or discarded) on the current receiving
 *   chain is rejected with `replay`. One on an older chain no longer has a key and fails to
 *   authenticate (`decrypt_failed`); either way it is never delivered twice.
 * - **Padding.** Plaintext is padded to a bucket (padding.ts) before encryption.
 *
 * Wire format of a ratchet message (all integers big-endian):
 *   version (1) = 1 ‖ dh (32) ‖ pn (u32) ‖ n (u32) ‖ XChaCha20-Poly1305(padded plaintext)
 * The AEAD associated data is the session's AD (from the handshake) ‖ the 41 header bytes.
 */
import { CryptoError, CryptoErrorCode } from './errors.js';
import type { Primitives } from './primitives.js';
import { POLY1305_TAG_BYTES, X25519_KEY_BYTES } from './primitives.js';
import { ByteReader, bytesEqual, concatBytes, expectVersion, toHex, u32, u8 } from './encoding.js';
import {
  EARLY_TAG_BYTES,
  earlyTag,
  kdfChain,
  kdfRoot,
  messageAuthKey,
  messageKeyMaterial,
} from './kdf.js';
import { constantTimeEqual } from './checks.js';
import type { X25519KeyPair, X25519PublicKey } from './keys.js';
import { asX25519PublicKey, generateX25519KeyPair } from './keys.js';
import { pad, unpad } from './padding.js';

/**
 * Version byte of a ratchet message. Version 2 added the early authentication tag; version 1
 * (no tag) is refused with `unsupported_version`.
 */
export const RATCHET_MESSAGE_VERSION = 2;
/** Bytes of the header: version, DH public key, previous chain length, message number. */
export const RATCHET_HEADER_BYTES = 1 + X25519_KEY_BYTES + 4 + 4;
/**
 * Most message keys one incoming message may make us derive and skip, on the old and the new
 * receiving chain together.
 */
export const MAX_SKIP = 1000;
/** Most skipped message keys kept in total; the oldest are evicted beyond this. */
export const MAX_SKIPPED_KEYS_TOTAL = 2000;
/** Largest message number; a chain cannot be longer (a sender must ratchet before). */
export const MAX_MESSAGE_NUMBER = 0xffff_ffff;

/** A message key kept for a message that has not arrived yet. */
export interface SkippedKey {
  readonly dh: X25519PublicKey;
  readonly n: number;
  readonly messageKey: Uint8Array;
}

/** The complete state of one side of a ratchet. Treat as opaque outside this folder. */
export interface RatchetState {
  /** Our current ratchet key pair (DHs). */
  readonly self: X25519KeyPair;
  /** The peer's current ratchet public key (DHr); null until we receive a message. */
  readonly remote: X25519PublicKey | null;
  readonly rootKey: Uint8Array;
  /** CKs; null for the responder until its first DH ratchet step. */
  readonly sendChainKey: Uint8Array | null;
  /** CKr; null until a message has been received. */
  readonly receiveChainKey: Uint8Array | null;
  /** Ns, Nr, PN. */
  readonly sendCount: number;
  readonly receiveCount: number;
  readonly previousSendCount: number;
  /** Skipped keys, oldest first (the order eviction follows). */
  readonly skipped: readonly SkippedKey[];
  /** The session's message authentication key, from the handshake (`kdf.ts`, `messageAuthKey`). */
  readonly authKey: Uint8Array;
}

interface Header {
  readonly dh: X25519PublicKey;
  readonly pn: number;
  readonly n: number;
}

function encodeHeader(h: Header): Uint8Array {
  return concatBytes(u8(RATCHET_MESSAGE_VERSION), h.dh, u32(h.pn), u32(h.n));
}

/** Splits a ratchet message into its header, tag and ciphertext; strict about version and sizes. */
export function decodeRatchetMessage(message: Uint8Array): {
  readonly header: Header;
  readonly headerBytes: Uint8Array;
  readonly tag: Uint8Array;
  readonly ciphertext: Uint8Array;
} {
  const r = new ByteReader(message);
  expectVersion(r, RATCHET_MESSAGE_VERSION);
  const dh = asX25519PublicKey(r.bytesN(X25519_KEY_BYTES));
  const pn = r.u32();
  const n = r.u32();
  const tag = r.bytesN(EARLY_TAG_BYTES);
  const ciphertext = r.rest();
  if (ciphertext.length < POLY1305_TAG_BYTES) throw new CryptoError(CryptoErrorCode.BAD_ENCODING);
  return {
    header: { dh, pn, n },
    headerBytes: message.slice(0, RATCHET_HEADER_BYTES),
    tag,
    ciphertext,
  };
}

/**
 * The early authentication tag: HMAC-SHA256(auth key, AD ‖ header ‖ ciphertext), truncated to
 * `EARLY_TAG_BYTES` (kdf.ts). It is checked before any chain key is derived, so that rejecting a message
 * not made by a holder of the session costs one HMAC instead of up to `MAX_SKIP` chain steps.
 * It is a filter against work, not the message's authentication: the AEAD under the message key
 * still decides, and the auth key does not ratchet (one who stole a session's state can pass
 * the filter, and then costs at most what a real message may cost).
 */
function messageTag(
  p: Primitives,
  authKey: Uint8Array,
  associatedData: Uint8Array,
  headerBytes: Uint8Array,
  ciphertext: Uint8Array,
): Uint8Array {
  return earlyTag(p, authKey, concatBytes(associatedData, headerBytes, ciphertext));
}

function skippedId(dh: Uint8Array, n: number): string {
  return `${toHex(dh)}:${n}`;
}

/**
 * One side of a Double Ratchet session. Mutable: `encrypt` and a successful `decrypt` advance
 * it; a failed `decrypt` leaves it exactly as it was.
 */
export class Ratchet {
  private state: RatchetState;
  /** Index over `state.skipped` by (dh, n); rebuilt on every commit that changes the store. */
  private skippedIndex: Map<string, SkippedKey>;

  private constructor(
    private readonly p: Primitives,
    state: RatchetState,
    index?: Map<string, SkippedKey>,
  ) {
    this.state = state;
    this.skippedIndex = index ?? new Map(state.skipped.map((k) => [skippedId(k.dh, k.n), k]));
  }

  /**
   * An independent copy: advancing it leaves this one as it was. Cheap, because the state is
   * immutable and `commit` replaces the index instead of changing it, so both share them.
   */
  clone(): Ratchet {
    return new Ratchet(this.p, this.state, this.skippedIndex);
  }

  /**
   * The initiator's side (RatchetInitAlice): performs the first DH ratchet step against the
   * responder's signed prekey, so the initiator can send at once.
   */
  static initiator(p: Primitives, sharedSecret: Uint8Array, remote: X25519PublicKey): Ratchet {
    const self = generateX25519KeyPair(p);
    const { rootKey, chainKey } = kdfRoot(p, sharedSecret, p.x25519(self.secretKey, remote));
    return new Ratchet(p, {
      self,
      remote,
      rootKey,
      sendChainKey: chainKey,
      receiveChainKey: null,
      sendCount: 0,
      receiveCount: 0,
      previousSendCount: 0,
      skipped: [],
      authKey: messageAuthKey(p, sharedSecret),
    });
  }

  /** The responder's side (RatchetInitBob): its signed prekey pair is the first ratchet key. */
  static responder(p: Primitives, sharedSecret: Uint8Array, self: X25519KeyPair): Ratchet {
    return new Ratchet(p, {
      self,
      remote: null,
      rootKey: sharedSecret.slice(),
      sendChainKey: null,
      receiveChainKey: null,
      sendCount: 0,
      receiveCount: 0,
      previousSendCount: 0,
      skipped: [],
      authKey: messageAuthKey(p, sharedSecret),
    });
  }

  /** Restores a ratchet from a stored state (see `Session.encode` / `Session.decode`). */
  static fromState(p: Primitives, state: RatchetState): Ratchet {
    return new Ratchet(p, state);
  }

  /** A snapshot of the state (immutable; safe to serialise). */
  snapshot(): RatchetState {
    return this.state;
  }

  /**
   * True when `message` carries this session's early tag (ratchet message version 2): only a
   * holder of this session can have made it. One HMAC; derives no chain key, changes nothing.
   * False for anything that is not a ratchet message.
   */
  authenticates(message: Uint8Array, associatedData: Uint8Array): boolean {
    let parts: ReturnType<typeof decodeRatchetMessage>;
    try {
      parts = decodeRatchetMessage(message);
    } catch {
      return false;
    }
    const expected = messageTag(
      this.p,
      this.state.authKey,
      associatedData,
      parts.headerBytes,
      parts.ciphertext,
    );
    return constantTimeEqual(parts.tag, expected);
  }

  /** How many skipped message keys this side holds. */
  get skippedCount(): number {
    return this.state.skipped.length;
  }

  /** A copy without the `count` oldest skipped keys (the messages they were for are then lost). */
  withoutOldestSkipped(count: number): Ratchet {
    if (count <= 0) return this;
    const next = new Ratchet(this.p, { ...this.state, skipped: this.state.skipped.slice(count) });
    return next;
  }

  /**
   * A copy that cannot send: its sending chain key is gone (a restored copy of a state that may
   * have sent since it was saved must never derive a sending message key again; ADR 0017). It
   * still receives, and a message under a new ratchet key from the peer gives it a new sending
   * chain from a fresh key pair, which no other copy of the state can derive.
   */
  withoutSendingChain(): Ratchet {
    if (this.state.sendChainKey === null) return this;
    return new Ratchet(this.p, { ...this.state, sendChainKey: null }, this.skippedIndex);
  }

  /** True once this side can send (the responder can only after its first received message). */
  get canSend(): boolean {
    return this.state.sendChainKey !== null;
  }

  /** Encrypts one message: pads, derives the next message key, seals with the header as AD. */
  encrypt(plaintext: Uint8Array, associatedData: Uint8Array): Uint8Array {
    const s = this.state;
    if (s.sendChainKey === null) throw new CryptoError(CryptoErrorCode.NO_SESSION);
    if (s.sendCount >= MAX_MESSAGE_NUMBER) throw new CryptoError(CryptoErrorCode.LIMIT_EXCEEDED);
    const { chainKey, messageKey } = kdfChain(this.p, s.sendChainKey);
    const headerBytes = encodeHeader({
      dh: s.self.publicKey,
      pn: s.previousSendCount,
      n: s.sendCount,
    });
    const { key, nonce } = messageKeyMaterial(this.p, messageKey);
    const sealed = this.p.xchacha20poly1305Seal(
      key,
      nonce,
      pad(plaintext),
      concatBytes(associatedData, headerBytes),
    );
    this.state = { ...s, sendChainKey: chainKey, sendCount: s.sendCount + 1 };
    return concatBytes(
      headerBytes,
      messageTag(this.p, s.authKey, associatedData, headerBytes, sealed),
      sealed,
    );
  }

  /**
   * Decrypts one message. Throws `CryptoError` with `bad_encoding`/`unsupported_version` (not a
   * ratchet message), `too_many_skipped` (the header asks us to skip more than `MAX_SKIP`),
   * `replay` (already read on this chain), `low_order` or `decrypt_failed`; the state is then
   * unchanged.
   */
  decrypt(message: Uint8Array, associatedData: Uint8Array): Uint8Array {
    const plaintext = this.decryptIfTagged(message, associatedData);
    if (plaintext === null) throw new CryptoError(CryptoErrorCode.DECRYPT_FAILED);
    return plaintext;
  }

  /**
   * `decrypt`, except that a message whose early tag is not this session's returns null (after
   * one HMAC, nothing derived, nothing changed) instead of throwing: a record tries its
   * sessions with it and computes each tag once.
   */
  decryptIfTagged(message: Uint8Array, associatedData: Uint8Array): Uint8Array | null {
    const { header, headerBytes, tag, ciphertext } = decodeRatchetMessage(message);
    const s = this.state;
    // First, before any chain work: was this made by a holder of this session?
    const expected = messageTag(this.p, s.authKey, associatedData, headerBytes, ciphertext);
    if (!constantTimeEqual(tag, expected)) return null;
    // No sender produces this number (`encrypt` stops below it); accepting it would push Nr past
    // what the stored state can represent.
    if (header.n >= MAX_MESSAGE_NUMBER) throw new CryptoError(CryptoErrorCode.LIMIT_EXCEEDED);
    const ad = concatBytes(associatedData, headerBytes);

    const id = skippedId(header.dh, header.n);
    const stored = this.skippedIndex.get(id);
    if (stored !== undefined) {
      const plaintext = this.open(stored.messageKey, ciphertext, ad);
      this.commit({ ...s, skipped: s.skipped.filter((k) => k !== stored) });
      return plaintext;
    }

    if (s.remote !== null && s.receiveChainKey !== null && bytesEqual(header.dh, s.remote)) {
      // Same receiving chain: walk forward from Nr.
      if (header.n < s.receiveCount) throw new CryptoError(CryptoErrorCode.REPLAY);
      if (header.n - s.receiveCount > MAX_SKIP) {
        throw new CryptoError(CryptoErrorCode.TOO_MANY_SKIPPED);
      }
      const walk = this.walkChain(s.receiveChainKey, s.receiveCount, header.n, header.dh);
      const plaintext = this.open(walk.messageKey, ciphertext, ad);
      this.commit({
        ...s,
        receiveChainKey: walk.chainKey,
        receiveCount: header.n + 1,
        skipped: evict(s.skipped, walk.skipped),
      });
      return plaintext;
    }

    // A new ratchet key from the peer: finish the old receiving chain up to `pn`, then step. The
    // skips on both chains together are bounded, so one message costs at most MAX_SKIP steps.
    const oldChainSkips =
      s.receiveChainKey !== null && s.remote !== null ? Math.max(0, header.pn - s.receiveCount) : 0;
    if (oldChainSkips + header.n > MAX_SKIP) {
      throw new CryptoError(CryptoErrorCode.TOO_MANY_SKIPPED);
    }
    let oldChainSkipped: SkippedKey[] = [];
    if (s.receiveChainKey !== null && s.remote !== null && header.pn > s.receiveCount) {
      oldChainSkipped = this.walkChain(
        s.receiveChainKey,
        s.receiveCount,
        header.pn,
        s.remote,
      ).skipped;
    }
    const receiveStep = kdfRoot(this.p, s.rootKey, this.p.x25519(s.self.secretKey, header.dh));
    const walk = this.walkChain(receiveStep.chainKey, 0, header.n, header.dh);
    const plaintext = this.open(walk.messageKey, ciphertext, ad);

    // Authenticated: now (and only now) complete the DH ratchet step with a fresh key pair.
    const self = generateX25519KeyPair(this.p);
    const sendStep = kdfRoot(this.p, receiveStep.rootKey, this.p.x25519(self.secretKey, header.dh));
    this.commit({
      self,
      remote: header.dh,
      rootKey: sendStep.rootKey,
      sendChainKey: sendStep.chainKey,
      receiveChainKey: walk.chainKey,
      sendCount: 0,
      receiveCount: header.n + 1,
      previousSendCount: s.sendCount,
      skipped: evict(s.skipped, oldChainSkipped, walk.skipped),
      authKey: s.authKey,
    });
    return plaintext;
  }

  /**
   * Derives message keys `from`..`to` of a chain: the keys before `to` become skipped keys, the
   * one at `to` is returned (with the chain key after it). When `to` equals `from` nothing is
   * skipped. Callers bound `to - from` by `MAX_SKIP` first.
   */
  private walkChain(
    chainKey: Uint8Array,
    from: number,
    to: number,
    dh: X25519PublicKey,
  ): { chainKey: Uint8Array; messageKey: Uint8Array; skipped: SkippedKey[] } {
    const skipped: SkippedKey[] = [];
    let ck = chainKey;
    for (let n = from; n < to; n++) {
      const step = kdfChain(this.p, ck);
      skipped.push({ dh, n, messageKey: step.messageKey });
      ck = step.chainKey;
    }
    const last = kdfChain(this.p, ck);
    return { chainKey: last.chainKey, messageKey: last.messageKey, skipped };
  }

  private open(messageKey: Uint8Array, ciphertext: Uint8Array, ad: Uint8Array): Uint8Array {
    const { key, nonce } = messageKeyMaterial(this.p, messageKey);
    return unpad(this.p.xchacha20poly1305Open(key, nonce, ciphertext, ad));
  }

  private commit(next: RatchetState): void {
    // The index only needs rebuilding when the store changed (in-order messages leave it be).
    if (next.skipped !== this.state.skipped) {
      this.skippedIndex = new Map(next.skipped.map((k) => [skippedId(k.dh, k.n), k]));
    }
    this.state = next;
  }
}

/**
 * Appends newly skipped keys and drops the oldest beyond `MAX_SKIPPED_KEYS_TOTAL`. Returns the
 * same array when nothing was added, so that the index is kept.
 */
function evict(stored: readonly SkippedKey[], ...added: SkippedKey[][]): readonly SkippedKey[] {
  if (added.every((a) => a.length === 0)) return stored;
  const all = stored.concat(...added);
  return all.length > MAX_SKIPPED_KEYS_TOTAL ? all.slice(all.length - MAX_SKIPPED_KEYS_TOTAL) : all;
}
