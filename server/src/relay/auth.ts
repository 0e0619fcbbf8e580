/**
 * Proof of mailbox ownership: the client signs the relay's fresh nonce with the Ed25519 key its
 * mailbox id is derived from. Verification only: the relay holds no secret key.
 */
import { createPublicKey, randomBytes, verify } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { AUTH_NONCE_BYTES, ED25519_PUBLIC_KEY_BYTES } from '@passage/shared/protocol/limits';
import { authChallengeMessage } from '@passage/shared/protocol/mailbox';

/** A fresh challenge nonce from the OS CSPRNG. */
export function newNonce(): Buffer {
  return randomBytes(AUTH_NONCE_BYTES);
}

/**
 * True when `publicKey` is a point of prime order: on the curve, not of small order, and not of
 * mixed order. A small-order key is refused outright: signatures under it can verify for many
 * messages (under lax rules, for any), so it proves nothing about who holds it. A mixed-order key
 * (a prime-order point plus a small-order one) is refused too: with the cofactorless check one
 * secret key could otherwise prove ownership of eight mailbox ids.
 */
export function isUsablePublicKey(publicKey: Uint8Array): boolean {
  if (publicKey.length !== ED25519_PUBLIC_KEY_BYTES) return false;
  try {
    const point = ed25519.Point.fromBytes(publicKey);
    return !point.isSmallOrder() && point.isTorsionFree();
  } catch {
    // Not the encoding of a curve point.
    return false;
  }
}

/**
 * Verifies an Ed25519 `signature` over `message` under `publicKey` (an organization profile,
 * `org/signed.ts`); false for a key that is not of prime order, as for auth. Verification only.
 */
export function verifyEd25519(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (!isUsablePublicKey(publicKey)) return false;
  try {
    const key = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKey).toString('base64url') },
      format: 'jwk',
    });
    return verify(null, message, key, signature);
  } catch {
    return false;
  }
}

/**
 * Verifies `signature` over `authChallengeMessage(nonce)` under `publicKey`.
 *
 * @param publicKeyB64 the same key as canonical base64url (the JWK `x`, as it came on the wire),
 *   so that it is not encoded again.
 */
export function verifyChallenge(
  publicKey: Uint8Array,
  publicKeyB64: string,
  signature: Uint8Array,
  nonce: Uint8Array,
): boolean {
  if (!isUsablePublicKey(publicKey)) return false;
  try {
    const key = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: publicKeyB64 },
      format: 'jwk',
    });
    // OpenSSL's Ed25519 (RFC 8032): rejects non-canonical S and checks the equation cofactorless.
    return verify(null, authChallengeMessage(nonce), key, signature);
  } catch {
    return false;
  }
}
