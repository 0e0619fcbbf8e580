/**
 * Every key-derivation label of the crypto core, and the KDFs of Signal's Double Ratchet
 * (revision 1, §5.2 "Recommended cryptographic algorithms"):
 *
 * - KDF_RK(rk, dh_out): HKDF-SHA256 with `rk` as salt, `dh_out` as input key material and an
 *   application-specific info, giving 64 bytes: the new root key and a chain key.
 * - KDF_CK(ck): HMAC-SHA256 keyed with `ck`, input 0x01 for the message key and 0x02 for the next
 *   chain key.
 * - The message key is expanded with HKDF into an XChaCha20-Poly1305 key and nonce. Deriving the
 *   nonce (rather than drawing it) is safe because every message key is used exactly once, and it
 *   saves a `randombytes_buf` call per message, which costs tens of microseconds in WASM.
 *
 * HKDF is the backend's `Primitives.hkdfSha256` (one definition; checked against RFC 5869 and
 * Wycheproof on both backends). The libsodium backend computes it at one HMAC call per block,
 * because every call into the WASM module costs a copy in and out, and the ratchet and the
 * sealed envelope run HKDF on every message.
 *
 * Labels carry the protocol version (`passage/v1/...`): a future v2 derives unrelated keys from
 * the same secrets, so no key can be used under two protocol versions.
 */
import type { Primitives } from './primitives.js';
import {
  SHA256_BYTES,
  XCHACHA20POLY1305_KEY_BYTES,
  XCHACHA20POLY1305_NONCE_BYTES,
} from './primitives.js';
import { labelBytes } from './encoding.js';
import { PROFILE_SIGNATURE_LABEL } from '../org/signed.js';

/** HKDF info strings and hash prefixes. Changing any of them changes the wire format. */
export const KDF_LABELS = {
  /** PQXDH: SK = HKDF(F ‖ DH1 ‖ DH2 ‖ DH3 [‖ DH4] ‖ SS). */
  pqxdh: 'passage/v1/pqxdh/x25519-sha256-mlkem768',
  /** PQXDH associated data: hash of both identities and the KEM prekey. */
  pqxdhAssociatedData: 'passage/v1/pqxdh/ad',
  /** PQXDH DH1 → the key of the initial message's early tag (x3dh.ts). */
  pqxdhInitialAuth: 'passage/v1/pqxdh/initial-auth',
  /** Double Ratchet KDF_RK. */
  ratchetRoot: 'passage/v1/ratchet-root',
  /** Handshake secret → a session's message authentication key (the early tag, ratchet.ts). */
  ratchetMessageAuth: 'passage/v1/ratchet-message-auth',
  /** Message key → AEAD key and nonce. */
  ratchetMessage: 'passage/v1/ratchet-message',
  /** Sealed envelope: ephemeral-static DH → AEAD key and nonce. */
  sealedEnvelope: 'passage/v1/sealed-envelope',
  /** Signatures over an identity's X25519 key. */
  identityKeySignature: 'passage/v1/sig/identity-x25519',
  /** Signatures over a signed X25519 prekey. */
  signedPrekeySignature: 'passage/v1/sig/signed-prekey-x25519',
  /** Signatures over a signed ML-KEM-768 prekey (distinct from X25519 ones: no type confusion). */
  kemPrekeySignature: 'passage/v1/sig/signed-prekey-mlkem768',
  /** Signatures of an organization over its roster. */
  rosterSignature: 'passage/v1/sig/roster',
  /** Argon2id salt of the codename (domain separation, see codename.ts). */
  codenameSalt: 'passage/v1/codename/salt',
  codenameSigningSeed: 'passage/v1/codename/ed25519-seed',
  codenameX25519Seed: 'passage/v1/codename/x25519-seed',
  codenameMailboxKey: 'passage/v1/codename/mailbox-key',
  /** Codename's mailbox/storage key → the AEAD key of the contact's state blob (contact-state.ts). */
  contactStateKey: 'passage/v1/contact-state/key',
  /** Associated data of the contact's state blob: this label ‖ 0 ‖ version ‖ mailbox id. */
  contactStateAd: 'passage/v1/contact-state/ad',
  /** Safety numbers (fingerprints). */
  safetyNumber: 'passage/v1/safety-number',
  /** Signatures of an organization over its profile (the label lives with the container, which
   * the relay reads too: `org/signed.ts`). */
  orgProfileSignature: PROFILE_SIGNATURE_LABEL,
  /** Invite secret → the key that authenticates an enrolment request (enrolment.ts). */
  enrolmentMacKey: 'passage/v1/enrol/mac-key',
  /** The MAC over an enrolment request. */
  enrolmentRequestMac: 'passage/v1/enrol/request-mac',
  /** A device's signature over its own enrolment request (proof that it holds the key). */
  enrolmentRequestSignature: 'passage/v1/sig/enrol-request',
} as const;

/** Root keys, chain keys and message keys are all 32 bytes. */
export const ROOT_KEY_BYTES = 32;
export const CHAIN_KEY_BYTES = 32;
export const MESSAGE_KEY_BYTES = 32;

const ZERO_SALT = new Uint8Array(SHA256_BYTES);

const MESSAGE_KEY_INPUT = new Uint8Array([0x01]);
const CHAIN_KEY_INPUT = new Uint8Array([0x02]);

const RATCHET_ROOT_INFO = labelBytes(KDF_LABELS.ratchetRoot);
const RATCHET_MESSAGE_INFO = labelBytes(KDF_LABELS.ratchetMessage);

const RATCHET_MESSAGE_AUTH_INFO = labelBytes(KDF_LABELS.ratchetMessageAuth);
const PQXDH_INITIAL_AUTH_INFO = labelBytes(KDF_LABELS.pqxdhInitialAuth);

/**
 * Bytes of the key of an early authentication tag: a session's message authentication key
 * (ratchet messages), or the key of a PQXDH initial message's tag.
 */
export const AUTH_KEY_BYTES = 32;

/**
 * Bytes of an early authentication tag (HMAC-SHA256 truncated), in ratchet messages and in
 * PQXDH initial messages. A tag is a filter against work, checked before the expensive steps; a
 * forger has one chance in 2¹²⁸ per attempt, and every attempt costs it an envelope.
 */
export const EARLY_TAG_BYTES = 16;

/** The session's message authentication key, from the handshake's shared secret SK. */
export function messageAuthKey(p: Primitives, sharedSecret: Uint8Array): Uint8Array {
  return p.hkdfSha256(sharedSecret, ZERO_SALT, RATCHET_MESSAGE_AUTH_INFO, AUTH_KEY_BYTES);
}

/**
 * The key of a PQXDH initial message's early tag, from DH1 = DH(IK_A, SPK_B): the first value
 * of the handshake that only the initiator (with its identity secret) and the responder (with
 * its signed prekey secret) can compute.
 */
export function initialAuthKey(p: Primitives, dh1: Uint8Array): Uint8Array {
  return p.hkdfSha256(dh1, ZERO_SALT, PQXDH_INITIAL_AUTH_INFO, AUTH_KEY_BYTES);
}

/** An early authentication tag: HMAC-SHA256(key, data), its first `EARLY_TAG_BYTES`. */
export function earlyTag(p: Primitives, key: Uint8Array, data: Uint8Array): Uint8Array {
  return p.hmacSha256(key, data).slice(0, EARLY_TAG_BYTES);
}

/** KDF_RK: (root key, DH output) → (next root key, chain key). */
export function kdfRoot(
  p: Primitives,
  rootKey: Uint8Array,
  dhOutput: Uint8Array,
): { readonly rootKey: Uint8Array; readonly chainKey: Uint8Array } {
  const out = p.hkdfSha256(dhOutput, rootKey, RATCHET_ROOT_INFO, ROOT_KEY_BYTES + CHAIN_KEY_BYTES);
  return { rootKey: out.slice(0, ROOT_KEY_BYTES), chainKey: out.slice(ROOT_KEY_BYTES) };
}

/** KDF_CK: chain key → (next chain key, message key), HMAC-SHA256 with inputs 0x02 and 0x01. */
export function kdfChain(
  p: Primitives,
  chainKey: Uint8Array,
): { readonly chainKey: Uint8Array; readonly messageKey: Uint8Array } {
  return {
    chainKey: p.hmacSha256(chainKey, CHAIN_KEY_INPUT),
    messageKey: p.hmacSha256(chainKey, MESSAGE_KEY_INPUT),
  };
}

/** A message key expanded into the XChaCha20-Poly1305 key and nonce it is used with, once. */
export function messageKeyMaterial(
  p: Primitives,
  messageKey: Uint8Array,
): { readonly key: Uint8Array; readonly nonce: Uint8Array } {
  const out = p.hkdfSha256(
    messageKey,
    ZERO_SALT,
    RATCHET_MESSAGE_INFO,
    XCHACHA20POLY1305_KEY_BYTES + XCHACHA20POLY1305_NONCE_BYTES,
  );
  return {
    key: out.slice(0, XCHACHA20POLY1305_KEY_BYTES),
    nonce: out.slice(XCHACHA20POLY1305_KEY_BYTES),
  };
}
