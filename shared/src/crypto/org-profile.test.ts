/**
 * The page's verifier of the organization profile: pinned key, signature, expiry, monotonic
 * version, the roster inside, and the content (validated only after the signature). Both
 * backends sign and verify alike.
 */
import { beforeAll, describe, expect, it, jest } from '@jest/globals';
import fc from 'fast-check';
import {
  deviceIdentities,
  FIXED_NOW_SECONDS as NOW,
  loadBothBackends,
  organizationKey,
  type OrganizationKey,
} from '@passage/testing/crypto-fixtures';
import { sampleProfileContent, signedProfile } from '@passage/testing/org-fixtures';
import { OrgError, OrgErrorCode } from '../org/errors.js';
import { encodeProfileBody, profileSignedMessage, readProfile } from '../org/signed.js';
import { concatBytes } from './encoding.js';
import type { PublicIdentity } from './identity.js';
import { signOrgProfile, verifyOrgProfile, type OrgProfile } from './org-profile.js';
import type { Primitives } from './primitives.js';
import { signRoster } from './roster.js';

// Sign-and-verify round trips on a loaded 2-core machine: above jest's 5 s default.
jest.setTimeout(60_000);

let p: Primitives;
let noble: Primitives;
let org: OrganizationKey;
let other: OrganizationKey;
let devices: PublicIdentity[];
beforeAll(async () => {
  ({ libsodium: p, noble } = await loadBothBackends());
  org = organizationKey(p);
  other = organizationKey(p);
  devices = deviceIdentities(p, 3);
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

const verify = (bytes: Uint8Array, lastAccepted: OrgProfile | null = null, now = NOW) =>
  verifyOrgProfile(p, bytes, { organizationKey: org.publicKey, nowSeconds: now, lastAccepted });

/** Signs `body` as the organization would, whatever it holds. */
function signBody(body: Uint8Array, seed = org.seed): Uint8Array {
  return concatBytes(body, p.ed25519Sign(seed, profileSignedMessage(body)));
}

describe('organization profile: accepted', () => {
  it('verifies a profile against the pinned key and gives its roster and content', () => {
    const profile = verify(signedProfile(p, org.seed, devices, NOW, { version: 7 }));
    expect(profile.version).toBe(7);
    expect(profile.roster.devices.map((d) => d.id)).toEqual(devices.map((d) => d.id));
    expect(profile.content).toEqual(sampleProfileContent());
  });

  it('gives the same bytes and result on both backends', () => {
    const bytes = signedProfile(p, org.seed, devices, NOW);
    expect(signedProfile(noble, org.seed, devices, NOW)).toEqual(bytes);
    const fromNoble = verifyOrgProfile(noble, bytes, {
      organizationKey: org.publicKey,
      nowSeconds: NOW,
    });
    expect(fromNoble.content).toEqual(verify(bytes).content);
  });

  it('accepts a newer version, and the same profile again', () => {
    const first = verify(signedProfile(p, org.seed, devices, NOW, { version: 3 }));
    expect(verify(first.bytes, first).version).toBe(3);
    const next = signedProfile(p, org.seed, devices.slice(1), NOW, { version: 4, rosterSerial: 2 });
    expect(verify(next, first).roster.devices).toHaveLength(2);
  });

  it('round-trips generated versions, times and retention through sign and verify', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        // Issued a second before NOW, so a validity of one second would end at NOW (expired).
        fc.integer({ min: 2, max: 30 * 86_400 }),
        fc.integer({ min: 1, max: 365 }),
        (version, validity, retentionDays) => {
          const content = { ...sampleProfileContent(), retentionDays };
          const bytes = signOrgProfile(p, org.seed, {
            version,
            issuedAtSeconds: NOW - 1,
            expiresAtSeconds: NOW - 1 + validity,
            roster: signRoster(p, org.seed, {
              serial: 1,
              issuedAtSeconds: NOW - 1,
              expiresAtSeconds: NOW + validity,
              devices,
            }),
            content,
          });
          const profile = verify(bytes);
          expect(profile.version).toBe(version);
          expect(profile.content).toEqual(content);
          expect(profile.expiresAtSeconds).toBe(NOW - 1 + validity);
        },
      ),
      { numRuns: 25 },
    );
  });
});

describe('organization profile: refused', () => {
  it('refuses a profile signed by another key (an impostor)', () => {
    expect(codeOf(() => verify(signedProfile(p, other.seed, devices, NOW)))).toBe(
      OrgErrorCode.WRONG_KEY,
    );
  });

  it('refuses a profile with the pinned key but another signer', () => {
    const body = readProfile(signedProfile(p, org.seed, devices, NOW)).body;
    expect(codeOf(() => verify(signBody(body, other.seed)))).toBe(OrgErrorCode.BAD_SIGNATURE);
  });

  it('refuses a profile with a device the relay injected into its roster', () => {
    const honest = readProfile(signedProfile(p, org.seed, devices, NOW));
    // The relay re-signs the roster with its own key and splices it in: both signatures break.
    const injected = signRoster(p, other.seed, {
      serial: 1,
      issuedAtSeconds: NOW - 10,
      expiresAtSeconds: NOW + 3600,
      devices: [...devices, ...deviceIdentities(p, 1)],
    });
    const body = encodeProfileBody({ ...honest, roster: injected });
    const spliced = concatBytes(body, honest.signature);
    expect(codeOf(() => verify(spliced))).toBe(OrgErrorCode.BAD_SIGNATURE);
  });

  it('refuses an expired profile', () => {
    expect(codeOf(() => verify(signedProfile(p, org.seed, devices, NOW), null, NOW + 3600))).toBe(
      OrgErrorCode.EXPIRED,
    );
  });

  it('refuses a rolled-back version', () => {
    const newer = verify(signedProfile(p, org.seed, devices, NOW, { version: 5 }));
    const older = signedProfile(p, org.seed, devices, NOW, { version: 4 });
    expect(codeOf(() => verify(older, newer))).toBe(OrgErrorCode.ROLLBACK);
  });

  it('refuses another profile under a version already accepted (equivocation)', () => {
    const first = verify(signedProfile(p, org.seed, devices, NOW, { version: 5 }));
    const twin = signedProfile(p, org.seed, devices.slice(0, 1), NOW, { version: 5 });
    expect(codeOf(() => verify(twin, first))).toBe(OrgErrorCode.ROLLBACK);
  });

  it('refuses a newer profile whose roster is older than the roster accepted', () => {
    const first = verify(signedProfile(p, org.seed, devices, NOW, { version: 5, rosterSerial: 9 }));
    const next = signedProfile(p, org.seed, devices, NOW, { version: 6, rosterSerial: 8 });
    expect(codeOf(() => verify(next, first))).toBe(OrgErrorCode.ROSTER_ROLLBACK);
  });

  it('refuses a profile whose roster has expired before it', () => {
    const bytes = signedProfile(p, org.seed, devices, NOW, { rosterExpiresAtSeconds: NOW + 60 });
    expect(verify(bytes, null, NOW + 59).version).toBe(1);
    expect(codeOf(() => verify(bytes, null, NOW + 60))).toBe(OrgErrorCode.ROSTER_EXPIRED);
  });

  it('refuses a profile whose roster another key signed', () => {
    const bytes = signedProfile(p, org.seed, devices, NOW, { rosterSeed: other.seed });
    expect(codeOf(() => verify(bytes))).toBe(OrgErrorCode.ROSTER_INVALID);
  });

  it('refuses a profile whose roster bytes are not a roster', () => {
    const honest = readProfile(signedProfile(p, org.seed, devices, NOW));
    const body = encodeProfileBody({ ...honest, roster: new Uint8Array([1, 2, 3]) });
    expect(codeOf(() => verify(signBody(body)))).toBe(OrgErrorCode.ROSTER_INVALID);
  });

  it('refuses signed content that is not a valid profile, with its issues', () => {
    const honest = readProfile(signedProfile(p, org.seed, devices, NOW));
    const content = new TextEncoder().encode('{"displayName":"x"}');
    const body = encodeProfileBody({ ...honest, content });
    let error: unknown;
    try {
      verify(signBody(body));
    } catch (e) {
      error = e;
    }
    expect((error as OrgError).code).toBe(OrgErrorCode.INVALID);
    expect((error as OrgError).issues.length).toBeGreaterThan(0);
  });

  it('does not parse the content of a profile whose signature fails', () => {
    // Content that would be `profile_invalid` is never reached: the signature is checked first.
    const honest = readProfile(signedProfile(p, org.seed, devices, NOW));
    const body = encodeProfileBody({ ...honest, content: new Uint8Array([0xff]) });
    expect(codeOf(() => verify(concatBytes(body, honest.signature)))).toBe(
      OrgErrorCode.BAD_SIGNATURE,
    );
  });

  it('refuses to sign invalid content', () => {
    expect(() =>
      signedProfile(p, org.seed, devices, NOW, {
        content: { ...sampleProfileContent(), retentionDays: 0 },
      }),
    ).toThrow(OrgError);
  });
});
