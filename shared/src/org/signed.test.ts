/**
 * The signed container as the relay checks it: size, version, structure, key, signature and
 * expiry, with Ed25519 verification passed in. Every byte flipped and every truncation refused.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import {
  deviceIdentities,
  FIXED_NOW_SECONDS as NOW,
  organizationKey,
  type OrganizationKey,
} from '@passage/testing/crypto-fixtures';
import { signedProfile } from '@passage/testing/org-fixtures';
import type { PublicIdentity } from '../crypto/identity.js';
import type { Primitives } from '../crypto/primitives.js';
import { loadSodiumBackend } from '../crypto/sodium.js';
import { OrgError, OrgErrorCode } from './errors.js';
import { MAX_PROFILE_BYTES, MAX_PROFILE_VALIDITY_SECONDS } from './limits.js';
import {
  checkSignedProfile,
  encodeProfileBody,
  profileSignedMessage,
  readProfile,
  type Ed25519Verify,
} from './signed.js';

let p: Primitives;
let org: OrganizationKey;
let other: OrganizationKey;
let devices: PublicIdentity[];
let verify: Ed25519Verify;
let good: Uint8Array;
beforeAll(async () => {
  p = await loadSodiumBackend();
  org = organizationKey(p);
  other = organizationKey(p);
  devices = deviceIdentities(p, 2);
  verify = (k, m, s) => p.ed25519Verify(k, m, s);
  good = signedProfile(p, org.seed, devices, NOW);
});

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    if (!(error instanceof OrgError)) throw error;
    return error.code;
  }
}

const check = (bytes: Uint8Array, now = NOW) =>
  checkSignedProfile(bytes, { organizationKey: org.publicKey, verify, nowSeconds: now });

/** A profile whose body is `body` signed with `seed` (to build containers the signer refuses). */
function signBody(body: Uint8Array, seed = org.seed): Uint8Array {
  const sig = p.ed25519Sign(seed, profileSignedMessage(body));
  const out = new Uint8Array(body.length + sig.length);
  out.set(body);
  out.set(sig, body.length);
  return out;
}

describe('signed profile container', () => {
  it('accepts a profile signed by the configured key and reads its fields', () => {
    const read = check(good);
    expect(read.version).toBe(1);
    expect(read.expiresAtSeconds).toBe(NOW + 3600);
    expect(read.organizationKey).toEqual(org.publicKey);
  });

  it('accepts it until the second before its expiry', () => {
    expect(check(good, NOW + 3599).version).toBe(1);
  });

  it('refuses a profile signed by another organization key (profile_wrong_key)', () => {
    expect(codeOf(() => check(signedProfile(p, other.seed, devices, NOW)))).toBe(
      OrgErrorCode.WRONG_KEY,
    );
  });

  it('refuses a profile that names the configured key but is signed by another (profile_bad_signature)', () => {
    const forged = signBody(readProfile(good).body, other.seed);
    expect(codeOf(() => check(forged))).toBe(OrgErrorCode.BAD_SIGNATURE);
  });

  it('refuses a signature made for a roster (the label separates them)', () => {
    const body = readProfile(good).body;
    const rosterLabelled = p.ed25519Sign(
      org.seed,
      new Uint8Array([...new TextEncoder().encode('passage/v1/sig/roster\0'), ...body]),
    );
    expect(codeOf(() => check(new Uint8Array([...body, ...rosterLabelled])))).toBe(
      OrgErrorCode.BAD_SIGNATURE,
    );
  });

  it('refuses a verifier that throws as a bad signature', () => {
    const throwing: Ed25519Verify = () => {
      throw new Error('backend');
    };
    expect(
      codeOf(() =>
        checkSignedProfile(good, {
          organizationKey: org.publicKey,
          verify: throwing,
          nowSeconds: NOW,
        }),
      ),
    ).toBe(OrgErrorCode.BAD_SIGNATURE);
  });

  it('refuses an expired profile at its expiry second (profile_expired)', () => {
    expect(codeOf(() => check(good, NOW + 3600))).toBe(OrgErrorCode.EXPIRED);
  });

  it('refuses an unknown format version before reading further', () => {
    const v2 = good.slice();
    v2[0] = 2;
    expect(codeOf(() => check(v2))).toBe(OrgErrorCode.UNSUPPORTED_VERSION);
    expect(codeOf(() => check(Uint8Array.of(0)))).toBe(OrgErrorCode.UNSUPPORTED_VERSION);
  });

  it('refuses every single flipped bit (checked at every byte)', () => {
    for (let i = 0; i < good.length; i++) {
      const bad = good.slice();
      bad[i] = bad[i]! ^ (1 << (i % 8));
      expect(codeOf(() => check(bad))).toBeDefined();
    }
  });

  it('refuses every truncation, the empty input included', () => {
    for (let n = 0; n < good.length; n++) {
      const code = codeOf(() => check(good.subarray(0, n)));
      expect([OrgErrorCode.MALFORMED, OrgErrorCode.BAD_SIGNATURE]).toContain(code);
    }
  });

  it('refuses trailing bytes', () => {
    expect(codeOf(() => check(new Uint8Array([...good, 0])))).toBe(OrgErrorCode.MALFORMED);
  });

  it('refuses a roster length that runs past the end', () => {
    const bad = good.slice();
    bad[45] = 0xff;
    bad[46] = 0xff;
    expect(codeOf(() => check(bad))).toBe(OrgErrorCode.MALFORMED);
  });

  it('refuses an empty roster, even signed', () => {
    const read = readProfile(good);
    const body = new Uint8Array([...read.body.subarray(0, 45), 0, 0, 0, 0, 0, 0]);
    expect(codeOf(() => check(signBody(body)))).toBe(OrgErrorCode.MALFORMED);
  });

  it('refuses times out of order or further apart than MAX_PROFILE_VALIDITY_SECONDS, even signed', () => {
    const read = readProfile(good);
    const withTimes = (issued: number, expires: number) => {
      const body = read.body.slice();
      const view = new DataView(body.buffer);
      view.setUint32(37, issued);
      view.setUint32(41, expires);
      return signBody(body);
    };
    expect(codeOf(() => check(withTimes(NOW, NOW)))).toBe(OrgErrorCode.MALFORMED);
    expect(codeOf(() => check(withTimes(NOW, NOW - 1)))).toBe(OrgErrorCode.MALFORMED);
    expect(
      codeOf(() => check(withTimes(NOW - 10, NOW - 10 + MAX_PROFILE_VALIDITY_SECONDS + 1))),
    ).toBe(OrgErrorCode.MALFORMED);
    expect(check(withTimes(NOW - 10, NOW - 10 + MAX_PROFILE_VALIDITY_SECONDS)).version).toBe(1);
  });

  it('reads a profile of exactly MAX_PROFILE_BYTES, and refuses one byte more before reading it', () => {
    const read = readProfile(good);
    const fields = { ...read, content: new Uint8Array(0) };
    const empty = encodeProfileBody(fields).length + 64;
    const atLimit = { ...read, content: new Uint8Array(MAX_PROFILE_BYTES - empty).fill(0x20) };
    const profile = signBody(encodeProfileBody(atLimit));
    expect(profile.length).toBe(MAX_PROFILE_BYTES);
    expect(check(profile).content.length).toBe(MAX_PROFILE_BYTES - empty);
    expect(codeOf(() => check(new Uint8Array([...profile, 0])))).toBe(OrgErrorCode.TOO_LARGE);
    expect(
      codeOf(() =>
        encodeProfileBody({ ...atLimit, content: new Uint8Array(atLimit.content.length + 1) }),
      ),
    ).toBe(OrgErrorCode.TOO_LARGE);
  });

  it('refuses to encode fields that have no encoding', () => {
    const read = readProfile(good);
    expect(() => encodeProfileBody({ ...read, organizationKey: new Uint8Array(31) })).toThrow(
      RangeError,
    );
    expect(() => encodeProfileBody({ ...read, version: -1 })).toThrow(RangeError);
    expect(() => encodeProfileBody({ ...read, version: 2 ** 32 })).toThrow(RangeError);
    expect(() => encodeProfileBody({ ...read, expiresAtSeconds: read.issuedAtSeconds })).toThrow(
      RangeError,
    );
    expect(() => encodeProfileBody({ ...read, roster: new Uint8Array(0) })).toThrow(RangeError);
  });
});
