import { createHash } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { AUTH_CHALLENGE_LABEL, authChallengeMessage, mailboxIdFromPublicKey } from './mailbox.js';
import { asciiBytes, digestWith } from './sha256.js';

const sha256 = (data: Uint8Array): Uint8Array => createHash('sha256').update(data).digest();

describe('mailboxIdFromPublicKey', () => {
  it('is SHA-256 over the label, a zero byte and the key, in base64url', () => {
    const pk = new Uint8Array(32).map((_, i) => i);
    const expected = createHash('sha256')
      .update('passage/v1/mailbox\0')
      .update(pk)
      .digest('base64url');
    expect(mailboxIdFromPublicKey(pk, sha256)).toBe(expected);
    expect(mailboxIdFromPublicKey(pk, sha256)).toHaveLength(43);
  });

  it('differs for keys that differ in one bit', () => {
    const a = new Uint8Array(32);
    const b = new Uint8Array(32);
    b[31] = 1;
    expect(mailboxIdFromPublicKey(a, sha256)).not.toBe(mailboxIdFromPublicKey(b, sha256));
  });

  it('refuses a key of the wrong length', () => {
    expect(() => mailboxIdFromPublicKey(new Uint8Array(31), sha256)).toThrow(RangeError);
    expect(() => mailboxIdFromPublicKey(new Uint8Array(33), sha256)).toThrow(RangeError);
  });

  it('refuses a hash function that does not return 32 bytes', () => {
    const sha512 = (data: Uint8Array): Uint8Array => createHash('sha512').update(data).digest();
    expect(() => mailboxIdFromPublicKey(new Uint8Array(32), sha512)).toThrow(RangeError);
    expect(() => mailboxIdFromPublicKey(new Uint8Array(32), (d) => sha256(d).slice(1))).toThrow(
      RangeError,
    );
  });
});

describe('digestWith', () => {
  it('returns the 32-byte digest', () => {
    expect(digestWith(sha256, new Uint8Array(3))).toEqual(sha256(new Uint8Array(3)));
  });

  it('refuses a result that is not a byte array', () => {
    const notBytes = (() => 'x'.repeat(32)) as unknown as (d: Uint8Array) => Uint8Array;
    expect(() => digestWith(notBytes, new Uint8Array(0))).toThrow(RangeError);
  });
});

describe('asciiBytes', () => {
  it('spells an ASCII label byte for byte', () => {
    expect(asciiBytes('passage/v1\0')).toEqual(new TextEncoder().encode('passage/v1\0'));
  });

  it('refuses a label outside ASCII', () => {
    expect(() => asciiBytes('passage/é')).toThrow(RangeError);
    expect(() => asciiBytes('\u{1F511}')).toThrow(RangeError);
  });
});

describe('authChallengeMessage', () => {
  it('prefixes the nonce with the labelled domain', () => {
    const nonce = new Uint8Array(32).fill(7);
    const msg = authChallengeMessage(nonce);
    const label = new TextEncoder().encode(AUTH_CHALLENGE_LABEL + '\0');
    expect(msg.slice(0, label.length)).toEqual(label);
    expect(msg.slice(label.length)).toEqual(nonce);
  });

  it('refuses a nonce of the wrong length', () => {
    expect(() => authChallengeMessage(new Uint8Array(16))).toThrow(RangeError);
    expect(() => authChallengeMessage(new Uint8Array(33))).toThrow(RangeError);
  });
});
