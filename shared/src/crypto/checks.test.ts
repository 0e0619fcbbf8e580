import { describe, expect, it } from '@jest/globals';
import { MAX_REMEMBERED_VALID_ED25519_KEYS, ValidEd25519KeyMemo } from './checks.js';

const key = (i: number): Uint8Array => {
  const k = new Uint8Array(32);
  new DataView(k.buffer).setUint32(0, i);
  return k;
};

/** A check that answers `verdict` and counts its calls per key (by first four bytes). */
function countingCheck(verdict: (k: Uint8Array) => boolean = () => true) {
  const calls = new Map<number, number>();
  const check = (k: Uint8Array): boolean => {
    const i = new DataView(k.buffer, k.byteOffset).getUint32(0);
    calls.set(i, (calls.get(i) ?? 0) + 1);
    return verdict(k);
  };
  return { check, calls };
}

describe('remembered Ed25519 key checks', () => {
  it('checks a valid key once however often it is asked', () => {
    const memo = new ValidEd25519KeyMemo();
    const { check, calls } = countingCheck();
    for (let n = 0; n < 5; n++) expect(memo.isValid(key(1), check)).toBe(true);
    expect(calls.get(1)).toBe(1);
  });

  it('remembers a key by its bytes: a copy is remembered, the same array changed in place is checked again', () => {
    const memo = new ValidEd25519KeyMemo();
    const { check, calls } = countingCheck((k) => k[31] === 0);
    const k = key(1);
    expect(memo.isValid(k, check)).toBe(true);
    expect(memo.isValid(k.slice(), check)).toBe(true);
    expect(calls.get(1)).toBe(1);
    k[31] = 1;
    expect(memo.isValid(k, check)).toBe(false);
    expect(calls.get(1)).toBe(2);
  });

  it('remembers nothing of an invalid key, which is checked every time', () => {
    const memo = new ValidEd25519KeyMemo();
    const { check, calls } = countingCheck(() => false);
    for (let n = 0; n < 3; n++) expect(memo.isValid(key(7), check)).toBe(false);
    expect(calls.get(7)).toBe(3);
    expect(memo.size).toBe(0);
  });

  it('does not answer for a key that differs from a remembered one in one byte', () => {
    const memo = new ValidEd25519KeyMemo();
    const { check } = countingCheck((k) => k[0] === 0);
    expect(memo.isValid(key(1), check)).toBe(true);
    const other = key(1);
    other[0] = 0x80;
    expect(memo.isValid(other, check)).toBe(false);
  });

  it('holds at most its bound: at the bound every key is remembered, one past it the least recently used is checked again', () => {
    const bound = 8;
    const memo = new ValidEd25519KeyMemo(bound);
    const { check, calls } = countingCheck();
    for (let i = 0; i < bound; i++) memo.isValid(key(i), check);
    expect(memo.size).toBe(bound);
    // Key 0 is used again, so key 1 is now the least recently used.
    memo.isValid(key(0), check);
    memo.isValid(key(bound), check);
    expect(memo.size).toBe(bound);
    for (let i = 0; i <= bound; i++) if (i !== 1) memo.isValid(key(i), check);
    for (let i = 0; i <= bound; i++) if (i !== 1) expect(calls.get(i)).toBe(1);
    memo.isValid(key(1), check);
    expect(calls.get(1)).toBe(2);
    expect(memo.size).toBe(bound);
  });

  it('is bounded by MAX_REMEMBERED_VALID_ED25519_KEYS by default', () => {
    const memo = new ValidEd25519KeyMemo();
    const { check } = countingCheck();
    for (let i = 0; i <= MAX_REMEMBERED_VALID_ED25519_KEYS; i++) memo.isValid(key(i), check);
    expect(memo.size).toBe(MAX_REMEMBERED_VALID_ED25519_KEYS);
  });
});
