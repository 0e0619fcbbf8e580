import { beforeAll, describe, expect, it } from '@jest/globals';
import { loadPrimitives } from '../crypto/backend.js';
import type { PublicIdentity } from '../crypto/identity.js';
import type { Primitives } from '../crypto/primitives.js';
import { FakeClock } from '@passage/testing/client-fakes';
import {
  deviceIdentities,
  organizationKey,
  type OrganizationKey,
} from '@passage/testing/crypto-fixtures';
import { signedProfile } from '@passage/testing/org-fixtures';
import { OrgTrust } from './org-trust.js';

let p: Primitives;
let org: OrganizationKey;
let devices: PublicIdentity[];
const START_MS = 1_800_000_000_000;
const NOW = START_MS / 1000;

beforeAll(async () => {
  p = await loadPrimitives();
  org = organizationKey(p);
  devices = deviceIdentities(p, 3);
});

/** A trust that fetches whatever `serve` holds at the time. */
function trustServing(clock = new FakeClock(START_MS), minVersion?: number) {
  const serve: { bytes: Uint8Array | Error } = { bytes: new Error('unset') };
  const trust = new OrgTrust({
    p,
    organizationKey: org.publicKey,
    clock,
    ...(minVersion === undefined ? {} : { minVersion }),
    fetchProfile: () =>
      serve.bytes instanceof Error ? Promise.reject(serve.bytes) : Promise.resolve(serve.bytes),
  });
  return { trust, serve, clock };
}

const codeOf = (promise: Promise<unknown>) =>
  promise.then(
    () => 'resolved',
    (e: { code?: string }) => e.code,
  );

describe('OrgTrust', () => {
  it('accepts a verified profile and reports its roster as added', async () => {
    const { trust, serve } = trustServing();
    serve.bytes = signedProfile(p, org.seed, devices, NOW);
    const change = await trust.refresh();
    expect(change?.profile.version).toBe(1);
    expect(change?.added.map((d) => d.id)).toEqual(devices.map((d) => d.id));
    expect(change?.removed).toEqual([]);
    expect(trust.usable().version).toBe(1);
  });

  it('a newer version reports the devices it dropped', async () => {
    const { trust, serve } = trustServing();
    serve.bytes = signedProfile(p, org.seed, devices, NOW);
    await trust.refresh();
    serve.bytes = signedProfile(p, org.seed, devices.slice(0, 2), NOW, {
      version: 2,
      rosterSerial: 2,
    });
    const change = await trust.refresh();
    expect(change?.previousVersion).toBe(1);
    expect(change?.removed.map((d) => d.id)).toEqual([devices[2]!.id]);
    expect(trust.current?.version).toBe(2);
  });

  it('the same profile again changes nothing', async () => {
    const { trust, serve } = trustServing();
    serve.bytes = signedProfile(p, org.seed, devices, NOW);
    await trust.refresh();
    expect(await trust.refresh()).toBeNull();
  });

  it('refuses an older version and keeps the newer one (profile_rollback)', async () => {
    const { trust, serve } = trustServing();
    const v1 = signedProfile(p, org.seed, devices, NOW);
    serve.bytes = signedProfile(p, org.seed, devices, NOW, { version: 2, rosterSerial: 2 });
    await trust.refresh();
    serve.bytes = v1;
    expect(await codeOf(trust.refresh())).toBe('profile_rollback');
    expect(trust.current?.version).toBe(2);
  });

  it('refuses another profile under the version held (profile_rollback)', async () => {
    const { trust, serve } = trustServing();
    serve.bytes = signedProfile(p, org.seed, devices, NOW);
    await trust.refresh();
    serve.bytes = signedProfile(p, org.seed, devices.slice(0, 1), NOW);
    expect(await codeOf(trust.refresh())).toBe('profile_rollback');
  });

  it('accepts a first profile at or above minVersion (the floor a restored contact kept)', async () => {
    for (const version of [3, 4]) {
      const { trust, serve } = trustServing(undefined, 3);
      serve.bytes = signedProfile(p, org.seed, devices, NOW, { version, rosterSerial: version });
      expect((await trust.refresh())?.profile.version).toBe(version);
    }
  });

  it('refuses a first profile below minVersion (profile_rollback) and holds none', async () => {
    const { trust, serve } = trustServing(undefined, 3);
    serve.bytes = signedProfile(p, org.seed, devices, NOW, { version: 2, rosterSerial: 2 });
    expect(await codeOf(trust.refresh())).toBe('profile_rollback');
    expect(trust.current).toBeNull();
    expect(trust.fetchedAtMs).toBeUndefined();
    expect(() => trust.usable()).toThrow(expect.objectContaining({ code: 'no_profile' }));
  });

  it('refuses below minVersion by accept() too, with nothing held to compare with', () => {
    const { trust } = trustServing(undefined, 2);
    const v1 = signedProfile(p, org.seed, devices, NOW);
    expect(() => trust.accept(v1)).toThrow(expect.objectContaining({ code: 'profile_rollback' }));
    expect(trust.current).toBeNull();
    const v2 = signedProfile(p, org.seed, devices, NOW, { version: 2, rosterSerial: 2 });
    expect(trust.accept(v2)?.profile.version).toBe(2);
  });

  it('refuses a minVersion that is not a non-negative integer', () => {
    for (const minVersion of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
      expect(() => trustServing(undefined, minVersion)).toThrow(RangeError);
    }
    expect(() => trustServing(undefined, 0)).not.toThrow();
  });

  it('refuses a profile signed by another organization (profile_wrong_key)', async () => {
    const { trust, serve } = trustServing();
    serve.bytes = signedProfile(p, organizationKey(p).seed, devices, NOW);
    expect(await codeOf(trust.refresh())).toBe('profile_wrong_key');
    expect(trust.current).toBeNull();
  });

  it('refuses a profile with a flipped bit (profile_bad_signature)', async () => {
    const { trust, serve } = trustServing();
    const bytes = signedProfile(p, org.seed, devices, NOW);
    bytes[60] = bytes[60]! ^ 1;
    serve.bytes = bytes;
    expect(await codeOf(trust.refresh())).toMatch(/^profile_(bad_signature|malformed)$/);
    expect(trust.current).toBeNull();
  });

  it('refuses an expired profile (profile_expired)', async () => {
    const { trust, serve } = trustServing();
    serve.bytes = signedProfile(p, org.seed, devices, NOW - 7200, { expiresAtSeconds: NOW - 1 });
    expect(await codeOf(trust.refresh())).toBe('profile_expired');
  });

  it('refuses a roster signed by another key inside a genuine profile (profile_roster_invalid)', async () => {
    const { trust, serve } = trustServing();
    serve.bytes = signedProfile(p, org.seed, devices, NOW, { rosterSeed: organizationKey(p).seed });
    expect(await codeOf(trust.refresh())).toBe('profile_roster_invalid');
  });

  it('a fetch that fails is no_profile, and the held profile stays', async () => {
    const { trust, serve } = trustServing();
    serve.bytes = signedProfile(p, org.seed, devices, NOW);
    await trust.refresh();
    serve.bytes = new Error('offline');
    expect(await codeOf(trust.refresh())).toBe('no_profile');
    expect(trust.current?.version).toBe(1);
  });

  it('usable() refuses when nothing is held (no_profile) and once the held one expired', async () => {
    const { trust, serve, clock } = trustServing();
    expect(() => trust.usable()).toThrow(expect.objectContaining({ code: 'no_profile' }));
    serve.bytes = signedProfile(p, org.seed, devices, NOW);
    await trust.refresh();
    await clock.advance(3600 * 1000);
    expect(() => trust.usable()).toThrow(expect.objectContaining({ code: 'profile_expired' }));
  });

  it('usable() refuses once the roster inside expired before the profile', async () => {
    const { trust, serve, clock } = trustServing();
    serve.bytes = signedProfile(p, org.seed, devices, NOW, { rosterExpiresAtSeconds: NOW + 60 });
    await trust.refresh();
    await clock.advance(60 * 1000);
    expect(() => trust.usable()).toThrow(
      expect.objectContaining({ code: 'profile_roster_expired' }),
    );
  });
});
