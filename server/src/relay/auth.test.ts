import { describe, expect, it } from '@jest/globals';
import { createHash, createPrivateKey, createPublicKey, randomBytes, sign } from 'node:crypto';
import { toBase64url, fromBase64url } from '@passage/shared/protocol/base64url';
import { authChallengeMessage } from '@passage/shared/protocol/mailbox';
import { ed25519 } from '@noble/curves/ed25519.js';
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

  it('regression: mixed-order keys: refuses a valid signature under a prime-order key plus a point of order 8', () => {
    // The order-8 point T, and a secret scalar whose key A + T signs the challenge: cofactorless
    // verification accepts such a signature whenever the challenge hash is a multiple of 8.
    const L = 2n ** 252n + 27742317777372353535851937790883648493n;
    const leToBig = (b: Uint8Array): bigint =>
      b.reduceRight((acc, byte) => (acc << 8n) | BigInt(byte), 0n);
    const le = (n: bigint): Uint8Array =>
      Uint8Array.from({ length: 32 }, (_, i) => Number((n >> BigInt(8 * i)) & 0xffn));
    const t = ed25519.Point.fromHex(
      'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
    );
    const ext = ed25519.utils.getExtendedPublicKey(new Uint8Array(32).fill(7));
    const mixed = ext.point.add(t).toBytes();
    for (;;) {
      const nonce = newNonce();
      const message = authChallengeMessage(nonce);
      const r = (leToBig(randomBytes(64)) % (L - 1n)) + 1n;
      const rBytes = ed25519.Point.BASE.multiply(r).toBytes();
      const k =
        leToBig(createHash('sha512').update(rBytes).update(mixed).update(message).digest()) % L;
      if (k % 8n !== 0n) continue;
      const sig = new Uint8Array([...rBytes, ...le((r + k * ext.scalar) % L)]);
      expect(isUsablePublicKey(mixed)).toBe(false);
      expect(verifyChallenge(mixed, toBase64url(mixed), sig, nonce)).toBe(false);
      expect(isUsablePublicKey(ext.pointBytes)).toBe(true);
      break;
    }
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
