import { beforeAll, describe, expect, it } from '@jest/globals';
import { CryptoError } from '@passage/shared/crypto/errors';
import { PublicIdentity } from '@passage/shared/crypto/identity';
import type { Primitives } from '@passage/shared/crypto/primitives';
import { loadSodiumBackend } from '@passage/shared/crypto/sodium';
import {
  FIXED_NOW_SECONDS,
  deviceIdentities,
  errorCodeOf,
  flipBit,
  fromUtf8,
  loadBothBackends,
  organizationKey,
  utf8,
} from './crypto-fixtures.js';

let p: Primitives;
beforeAll(async () => {
  p = await loadSodiumBackend();
});

describe('errorCodeOf', () => {
  it("returns a CryptoError's code", () => {
    expect(
      errorCodeOf(() => {
        throw new CryptoError('bad_length');
      }),
    ).toBe('bad_length');
  });

  it('returns undefined when the operation succeeds', () => {
    expect(errorCodeOf(() => 1)).toBeUndefined();
  });

  it('returns undefined for an error without a code', () => {
    expect(
      errorCodeOf(() => {
        throw new Error('plain');
      }),
    ).toBeUndefined();
  });

  it('returns undefined for a code that is not a string', () => {
    expect(
      errorCodeOf(() => {
        throw Object.assign(new Error('odd'), { code: 7 });
      }),
    ).toBeUndefined();
  });

  it('returns undefined for a thrown non-object', () => {
    expect(
      errorCodeOf(() => {
        // Tests meet whatever a library throws, not only Error objects.
        // eslint-disable-next-line @typescript-eslint/only-throw-error
        throw 'bad_length';
      }),
    ).toBeUndefined();
  });
});

describe('flipBit', () => {
  it('flips the lowest bit of one byte of a copy', () => {
    const bytes = Uint8Array.from([0x10, 0x20, 0x30]);
    expect([...flipBit(bytes, 1)]).toEqual([0x10, 0x21, 0x30]);
    expect([...bytes]).toEqual([0x10, 0x20, 0x30]);
  });

  it.each([-1, 3, 1.5])('refuses index %s of 3 bytes', (index) => {
    expect(() => flipBit(new Uint8Array(3), index)).toThrow(RangeError);
  });
});

describe('the other fixtures', () => {
  it('round-trips text through UTF-8, beyond ASCII', () => {
    expect(fromUtf8(utf8('Привет, 世界'))).toBe('Привет, 世界');
    expect(utf8('é')).toEqual(Uint8Array.from([0xc3, 0xa9]));
  });

  it('fixes the clock at 2027-01-15', () => {
    expect(new Date(FIXED_NOW_SECONDS * 1000).toISOString()).toBe('2027-01-15T08:00:00.000Z');
  });

  it('loads both backends, each under its own name', async () => {
    const backends = await loadBothBackends();
    expect(backends.libsodium.backend).toBe('libsodium');
    expect(backends.noble.backend).toBe('noble');
  });

  it('makes an organization key whose public half belongs to its seed', () => {
    const key = organizationKey(p);
    expect(key.seed).toHaveLength(32);
    expect(key.publicKey).toEqual(p.ed25519KeyPairFromSeed(key.seed).publicKey);
    expect(organizationKey(p).seed).not.toEqual(key.seed);
  });

  it('makes distinct device identities', () => {
    const devices = deviceIdentities(p, 3);
    expect(devices).toHaveLength(3);
    for (const d of devices) expect(d).toBeInstanceOf(PublicIdentity);
    expect(new Set(devices.map((d) => d.id)).size).toBe(3);
  });
});
