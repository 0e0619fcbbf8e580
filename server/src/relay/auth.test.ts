import { describe, expect, it } from '@jest/globals';
import { createPrivateKey, createPublicKey, randomBytes, sign } from 'node:crypto';
import { toBase64url, fromBase64url } from '@passage/shared/protocol/base64url';
import { authChallengeMessage } from '@passage/shared/protocol/mailbox';
import { isUsablePublicKey, newNonce, verifyChallenge } from './auth.js';

function keyPair() {
  const seed = randomBytes(32);
  const privateKey = createPrivateKey({
    key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]),
    format: 'der',
    type: 'pkcs8',
  });
  const pk = fromBase64url(createPublicKey(privateKey).export({ format: 'jwk' }).x!)!;
  return { pk, sign: (m: Uint8Array) => new Uint8Array(sign(null, m, privateKey)) };
}

describe('verifyChallenge', () => {
  it('accepts a signature over the labelled nonce', () => {
    const { pk, sign } = keyPair();
    const nonce = newNonce();
    expect(verifyChallenge(pk, toBase64url(pk), sign(authChallengeMessage(nonce)), nonce)).toBe(
      true,
    );
  });

  it('refuses a signature over another nonce', () => {
    const { pk, sign } = keyPair();
    const sig = sign(authChallengeMessage(newNonce()));
    expect(verifyChallenge(pk, toBase64url(pk), sig, newNonce())).toBe(false);
  });

  it('refuses a signature with one bit flipped', () => {
    const { pk, sign } = keyPair();
    const nonce = newNonce();
    const sig = sign(authChallengeMessage(nonce));
    sig[10]! ^= 1;
    expect(verifyChallenge(pk, toBase64url(pk), sig, nonce)).toBe(false);
  });

  it('refuses a signature whose S is not reduced (S + L)', () => {
    const { pk, sign } = keyPair();
    const nonce = newNonce();
    const sig = sign(authChallengeMessage(nonce));
    // Add the group order L to S (little-endian); same point equation, non-canonical encoding.
    const L = 2n ** 252n + 27742317777372353535851937790883648493n;
    let s = 0n;
    for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(sig[i]!);
    s += L;
    for (let i = 32; i < 64; i++) {
      sig[i] = Number(s & 0xffn);
      s >>= 8n;
    }
    expect(verifyChallenge(pk, toBase64url(pk), sig, nonce)).toBe(false);
  });

  it('refuses when the key is small-order, whatever the signature', () => {
    const pk = new Uint8Array(32);
    pk[0] = 1;
    const sig = new Uint8Array(64);
    sig[0] = 1;
    const nonce = newNonce();
    expect(verifyChallenge(pk, toBase64url(pk), sig, nonce)).toBe(false);
  });

  it('refuses a key of the wrong length', () => {
    expect(isUsablePublicKey(new Uint8Array(31))).toBe(false);
  });

  it('refuses an encoding that is no curve point', () => {
    expect(isUsablePublicKey(new Uint8Array(32).fill(0xff))).toBe(false);
  });
});

describe('newNonce', () => {
  it('returns 32 fresh bytes each time', () => {
    const a = newNonce();
    expect(a).toHaveLength(32);
    expect(a.equals(newNonce())).toBe(false);
  });
});
