/**
 * Mailbox ids and the authentication challenge. A mailbox id is derived from a device's Ed25519
 * public key, so whoever can sign with that key, and only they, may read the mailbox; anyone who
 * knows the id may send to it.
 */
import { toBase64url } from './base64url.js';
import { AUTH_NONCE_BYTES, ED25519_PUBLIC_KEY_BYTES } from './limits.js';
import { asciiBytes, digestWith, type Sha256 } from './sha256.js';

/** Domain label hashed before the key, so a mailbox id is never a hash of anything else. */
export const MAILBOX_ID_LABEL = 'passage/v1/mailbox';
/** Domain label signed before the nonce, so the signature cannot be reused for anything else. */
export const AUTH_CHALLENGE_LABEL = 'passage/v1/auth-challenge';

const MAILBOX_PREFIX = asciiBytes(MAILBOX_ID_LABEL + '\0');
const AUTH_PREFIX = asciiBytes(AUTH_CHALLENGE_LABEL + '\0');

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/**
 * mailbox id = base64url(SHA-256("passage/v1/mailbox" ‖ 0x00 ‖ Ed25519 public key)). SHA-256
 * is the caller's (see `sha256.ts`: the relay may not import a hash library through shared/).
 */
export function mailboxIdFromPublicKey(publicKey: Uint8Array, sha256: Sha256): string {
  if (publicKey.length !== ED25519_PUBLIC_KEY_BYTES) {
    throw new RangeError(`an Ed25519 public key is ${ED25519_PUBLIC_KEY_BYTES} bytes`);
  }
  return toBase64url(digestWith(sha256, concat(MAILBOX_PREFIX, publicKey)));
}

/** The bytes a client signs to answer a challenge: "passage/v1/auth-challenge" ‖ 0x00 ‖ nonce. */
export function authChallengeMessage(nonce: Uint8Array): Uint8Array {
  if (nonce.length !== AUTH_NONCE_BYTES) {
    throw new RangeError(`a challenge nonce is ${AUTH_NONCE_BYTES} bytes`);
  }
  return concat(AUTH_PREFIX, nonce);
}
