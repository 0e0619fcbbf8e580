import { createHash } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { sha256 as nobleSha256 } from '../crypto/noble.js';
import {
  POW_MAX_BITS,
  POW_MAX_TTL_MS,
  POW_NONCE_BYTES,
  PowErrorCode,
  createPowChallenge,
  encodePowChallenge,
  hasLeadingZeroBits,
  parsePowChallenge,
  solvePow,
  verifyPow,
  type PowChallenge,
} from './pow.js';

const nodeSha256 = (data: Uint8Array): Uint8Array => createHash('sha256').update(data).digest();
const NOW = 1_700_000_000_000;
const TO = new Uint8Array(32).fill(0xab);

function challenge(bits = 8, nowMs = NOW): PowChallenge {
  return createPowChallenge({
    nonce: new Uint8Array(POW_NONCE_BYTES).map((_, i) => i),
    bits,
    to: TO,
    nowMs,
    ttlMs: 60_000,
  });
}

function code(f: () => unknown): string | undefined {
  try {
    f();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
}

const wire = encodePowChallenge(challenge());

describe('parsePowChallenge', () => {
  it('round-trips a challenge through its wire form', () => {
    expect(parsePowChallenge(JSON.parse(JSON.stringify(wire)))).toEqual(challenge());
  });

  it('accepts the smallest and the largest difficulty', () => {
    expect(parsePowChallenge({ ...wire, bits: 1 }).bits).toBe(1);
    expect(parsePowChallenge({ ...wire, bits: POW_MAX_BITS }).bits).toBe(POW_MAX_BITS);
  });

  it('checks the version before anything else', () => {
    expect(code(() => parsePowChallenge({ v: 2 }))).toBe(PowErrorCode.UNSUPPORTED_VERSION);
    expect(code(() => parsePowChallenge({ ...wire, v: 2, bits: 'x' }))).toBe(
      PowErrorCode.UNSUPPORTED_VERSION,
    );
  });

  it.each([
    ['null', null],
    ['an array', [wire]],
    ['a string', JSON.stringify(wire)],
    ['no version', { ...wire, v: undefined }],
    ['a string version', { ...wire, v: '1' }],
    ['an unknown key', { ...wire, extra: 1 }],
    ['a missing key', { v: 1, nonce: wire.nonce, bits: 8, exp: wire.exp }],
    ['difficulty 0', { ...wire, bits: 0 }],
    ['difficulty past the maximum', { ...wire, bits: POW_MAX_BITS + 1 }],
    ['a fractional difficulty', { ...wire, bits: 8.5 }],
    ['a string difficulty', { ...wire, bits: '8' }],
    ['a negative expiry', { ...wire, exp: -1 }],
    ['an unsafe expiry', { ...wire, exp: 2 ** 53 }],
    ['a fractional expiry', { ...wire, exp: 1.5 }],
    ['a nonce one byte short', { ...wire, nonce: wire.nonce.slice(0, -3) }],
    ['a padded nonce', { ...wire, nonce: wire.nonce + '=' }],
    ['a non-canonical nonce', { ...wire, nonce: wire.nonce.slice(0, -1) + 'B' }],
    ['a mailbox one byte long', { ...wire, to: 'AQ' }],
    ['a numeric mailbox', { ...wire, to: 1 }],
  ])('refuses %s', (_name, input) => {
    expect(code(() => parsePowChallenge(input))).toBe(PowErrorCode.BAD_CHALLENGE);
  });
});

describe('createPowChallenge', () => {
  it('refuses a ttl of 0 and one past the maximum', () => {
    const base = { nonce: new Uint8Array(POW_NONCE_BYTES), bits: 8, to: TO, nowMs: NOW };
    expect(code(() => createPowChallenge({ ...base, ttlMs: 0 }))).toBe(PowErrorCode.BAD_CHALLENGE);
    expect(code(() => createPowChallenge({ ...base, ttlMs: POW_MAX_TTL_MS + 1 }))).toBe(
      PowErrorCode.BAD_CHALLENGE,
    );
    expect(createPowChallenge({ ...base, ttlMs: POW_MAX_TTL_MS }).exp).toBe(NOW + POW_MAX_TTL_MS);
  });

  it('refuses a nonce or mailbox of the wrong length', () => {
    const base = { bits: 8, nowMs: NOW, ttlMs: 1000 };
    expect(code(() => createPowChallenge({ ...base, nonce: new Uint8Array(15), to: TO }))).toBe(
      PowErrorCode.BAD_CHALLENGE,
    );
    const nonce = new Uint8Array(POW_NONCE_BYTES);
    expect(code(() => createPowChallenge({ ...base, nonce, to: new Uint8Array(31) }))).toBe(
      PowErrorCode.BAD_CHALLENGE,
    );
  });
});

describe('hasLeadingZeroBits', () => {
  it('counts zero bits across and within bytes', () => {
    expect(hasLeadingZeroBits(Uint8Array.of(0, 0x0f), 12)).toBe(true);
    expect(hasLeadingZeroBits(Uint8Array.of(0, 0x10), 12)).toBe(false);
    expect(hasLeadingZeroBits(Uint8Array.of(0, 0), 16)).toBe(true);
    expect(hasLeadingZeroBits(Uint8Array.of(0, 1), 16)).toBe(false);
  });
});

describe('solvePow and verifyPow', () => {
  it('a solution verifies, on either SHA-256', () => {
    const c = challenge(10);
    const solution = solvePow(c, nobleSha256, { nowMs: NOW });
    expect(() => verifyPow(c, solution, nodeSha256, NOW)).not.toThrow();
    expect(() => verifyPow(c, solution, nobleSha256, NOW)).not.toThrow();
  });

  it('solves from a random start that wraps around 2^64', () => {
    const c = challenge(6);
    const solution = solvePow(c, nodeSha256, {
      nowMs: NOW,
      start: new Uint8Array(8).fill(0xff),
    });
    expect(() => verifyPow(c, solution, nodeSha256, NOW)).not.toThrow();
  });

  it('refuses a solution for another mailbox, nonce, difficulty or expiry', () => {
    const c = challenge(12);
    const solution = solvePow(c, nodeSha256, { nowMs: NOW });
    const others: PowChallenge[] = [
      { ...c, to: new Uint8Array(32).fill(0xac) },
      { ...c, nonce: new Uint8Array(POW_NONCE_BYTES) },
      { ...c, bits: 11 },
      { ...c, exp: c.exp + 1 },
    ];
    // 11 bits would accept a 12-bit solution if the difficulty were not hashed; it is, so the
    // hash changes and a 12-bit solution passes 11 bits only by chance (2^-11).
    for (const other of others) {
      expect(code(() => verifyPow(other, solution, nodeSha256, NOW))).toBe(
        PowErrorCode.INSUFFICIENT,
      );
    }
  });

  it('refuses a solution of the wrong length', () => {
    const c = challenge(4);
    expect(code(() => verifyPow(c, new Uint8Array(7), nodeSha256, NOW))).toBe(
      PowErrorCode.BAD_SOLUTION,
    );
    expect(code(() => verifyPow(c, new Uint8Array(9), nodeSha256, NOW))).toBe(
      PowErrorCode.BAD_SOLUTION,
    );
  });

  it('refuses an expired challenge at its expiry, and one that lies too far ahead', () => {
    const c = challenge(4);
    const solution = solvePow(c, nodeSha256, { nowMs: NOW });
    expect(code(() => verifyPow(c, solution, nodeSha256, c.exp))).toBe(PowErrorCode.EXPIRED);
    expect(() => verifyPow(c, solution, nodeSha256, c.exp - 1)).not.toThrow();
    const far = { ...c, exp: NOW + POW_MAX_TTL_MS + 1 };
    expect(code(() => verifyPow(far, solution, nodeSha256, NOW))).toBe(PowErrorCode.EXPIRED);
    expect(code(() => solvePow(far, nodeSha256, { nowMs: NOW }))).toBe(PowErrorCode.EXPIRED);
  });

  it('gives up after its attempt budget', () => {
    // 32 bits in 10 attempts succeeds with probability 10 · 2^-32.
    expect(code(() => solvePow(challenge(32), nodeSha256, { nowMs: NOW, maxAttempts: 10 }))).toBe(
      PowErrorCode.EXHAUSTED,
    );
  });

  it('refuses a start value of the wrong length', () => {
    expect(
      code(() => solvePow(challenge(4), nodeSha256, { nowMs: NOW, start: new Uint8Array(4) })),
    ).toBe(PowErrorCode.BAD_SOLUTION);
  });

  it('refuses a hash function that does not return 32 bytes', () => {
    const short = (d: Uint8Array): Uint8Array => nodeSha256(d).slice(0, 16);
    expect(() => verifyPow(challenge(4), new Uint8Array(8), short, NOW)).toThrow(RangeError);
  });

  it('hashes the documented input', () => {
    const c = challenge(4);
    const solution = solvePow(c, nodeSha256, { nowMs: NOW });
    const exp = Buffer.alloc(8);
    exp.writeBigUInt64BE(BigInt(c.exp));
    const digest = createHash('sha256')
      .update('passage/v1/pow\0')
      .update(Uint8Array.of(1, 4))
      .update(exp)
      .update(c.nonce)
      .update(c.to)
      .update(solution)
      .digest();
    expect(hasLeadingZeroBits(digest, 4)).toBe(true);
  });
});
