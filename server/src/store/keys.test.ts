import { describe, expect, it } from '@jest/globals';
import { isKeySafeId } from './keys.js';

describe('isKeySafeId', () => {
  it('accepts 1 to 128 base64url characters', () => {
    expect(isKeySafeId('a')).toBe(true);
    expect(isKeySafeId('a'.repeat(128))).toBe(true);
  });

  it('refuses empty, too long, and hash-tag or separator characters', () => {
    for (const id of ['', 'a'.repeat(129), 'a}b', '{a', 'a:b', 'a b']) {
      expect(isKeySafeId(id)).toBe(false);
    }
  });
});
