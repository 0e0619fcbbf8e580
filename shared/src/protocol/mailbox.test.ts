import { createHash } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { AUTH_CHALLENGE_LABEL, authChallengeMessage, mailboxIdFromPublicKey } from './mailbox.js';

describe('mailboxIdFromPublicKey', () => {
  it('is SHA-256 over the label, a zero byte and the key, in base64url', () => {
    const pk = new Uint8Array(32).map((_, i) => i);
    const expected = createHash('sha256')
      .update('passage/v1/mailbox\0')
      .update(pk)
      .digest('base64url');
    expect(mailboxIdFromPublicKey(pk)).toBe(expected);
    expect(mailboxIdFromPublicKey(pk)).toHaveLength(43);
  });

  it('differs for keys that differ in one bit', () => {
    const a = new Uint8Array(32);
    const b = new Uint8Array(32);
    b[31] = 1;
    expect(mailboxIdFromPublicKey(a)).not.toBe(mailboxIdFromPublicKey(b));
  });

  it('refuses a key of the wrong length', () => {
    expect(() => mailboxIdFromPublicKey(new Uint8Array(31))).toThrow(RangeError);
    expect(() => mailboxIdFromPublicKey(new Uint8Array(33))).toThrow(RangeError);
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
