import { beforeAll, describe, expect, it } from '@jest/globals';
import {
  deviceIdentities,
  errorCodeOf as codeOf,
  FIXED_NOW_SECONDS as NOW,
  organizationKey,
} from '@passage/testing/crypto-fixtures';
import { DeviceIdentity } from './identity.js';
import type { PublicIdentity } from './identity.js';
import { asEd25519Seed } from './keys.js';
import type { Ed25519PublicKey, Ed25519Seed } from './keys.js';
import type { Primitives } from './primitives.js';
import { MAX_ROSTER_DEVICES, signRoster, verifyRoster } from './roster.js';
import type { RosterContent } from './roster.js';
import { loadSodiumBackend } from './sodium.js';

let p: Primitives;
let orgSeed: Ed25519Seed;
let orgKey: Ed25519PublicKey;
let devices: PublicIdentity[];
beforeAll(async () => {
  p = await loadSodiumBackend();
  ({ seed: orgSeed, publicKey: orgKey } = organizationKey(p));
  devices = deviceIdentities(p, 3);
});

const content = (over: Partial<RosterContent> = {}): RosterContent => ({
  serial: 5,
  issuedAtSeconds: NOW - 10,
  expiresAtSeconds: NOW + 3600,
  devices,
  ...over,
});

describe('organization roster', () => {
  it('verifies a roster signed by the pinned organization key and lists its devices', () => {
    const roster = verifyRoster(p, signRoster(p, orgSeed, content()), {
      organizationKey: orgKey,
      nowSeconds: NOW,
    });
    expect(roster.serial).toBe(5);
    expect(roster.devices.map((d) => d.id)).toEqual(devices.map((d) => d.id));
  });

  it('accepts a newer serial, and the same roster again', () => {
    const first = verifyRoster(p, signRoster(p, orgSeed, content()), {
      organizationKey: orgKey,
      nowSeconds: NOW,
    });
    expect(
      verifyRoster(p, first.bytes, {
        organizationKey: orgKey,
        nowSeconds: NOW,
        lastAccepted: first,
      }).serial,
    ).toBe(5);
    const next = signRoster(p, orgSeed, content({ serial: 6, devices: devices.slice(0, 2) }));
    expect(
      verifyRoster(p, next, { organizationKey: orgKey, nowSeconds: NOW, lastAccepted: first })
        .devices,
    ).toHaveLength(2);
  });

  it('rejects a roster with a device added by someone without the organization key', () => {
    const bytes = signRoster(p, orgSeed, content());
    const intruder = DeviceIdentity.generate(p).publicIdentity.encode();
    const tampered = bytes.slice();
    tampered.set(intruder, 1 + 32 + 12 + 2 + 129);
    expect(
      codeOf(() => verifyRoster(p, tampered, { organizationKey: orgKey, nowSeconds: NOW })),
    ).toBe('bad_signature');
  });

  it('rejects a roster signed by another organization', () => {
    const other = asEd25519Seed(p.random.bytes(32));
    expect(
      codeOf(() =>
        verifyRoster(p, signRoster(p, other, content()), {
          organizationKey: orgKey,
          nowSeconds: NOW,
        }),
      ),
    ).toBe('bad_signature');
  });

  it('rejects a roster with any bit of its signed part flipped', () => {
    const bytes = signRoster(p, orgSeed, content());
    for (const i of [1, 33, 36, 40, 44, 46, 100, bytes.length - 1]) {
      const bad = bytes.slice();
      bad[i]! ^= 1;
      expect(
        codeOf(() => verifyRoster(p, bad, { organizationKey: orgKey, nowSeconds: NOW })),
      ).toMatch(/^(bad_signature|bad_encoding|limit_exceeded)$/);
    }
  });

  it('rejects an expired roster, at and after its expiry', () => {
    const bytes = signRoster(p, orgSeed, content());
    expect(
      codeOf(() => verifyRoster(p, bytes, { organizationKey: orgKey, nowSeconds: NOW + 3600 })),
    ).toBe('roster_expired');
    expect(verifyRoster(p, bytes, { organizationKey: orgKey, nowSeconds: NOW + 3599 }).serial).toBe(
      5,
    );
  });

  it('rejects a rollback to an older serial', () => {
    const newer = verifyRoster(p, signRoster(p, orgSeed, content({ serial: 9 })), {
      organizationKey: orgKey,
      nowSeconds: NOW,
    });
    const older = signRoster(p, orgSeed, content({ serial: 8 }));
    expect(
      codeOf(() =>
        verifyRoster(p, older, { organizationKey: orgKey, nowSeconds: NOW, lastAccepted: newer }),
      ),
    ).toBe('roster_rollback');
  });

  it('rejects a different roster under a serial already accepted', () => {
    const accepted = verifyRoster(p, signRoster(p, orgSeed, content()), {
      organizationKey: orgKey,
      nowSeconds: NOW,
    });
    const other = signRoster(p, orgSeed, content({ devices: devices.slice(1) }));
    expect(
      codeOf(() =>
        verifyRoster(p, other, {
          organizationKey: orgKey,
          nowSeconds: NOW,
          lastAccepted: accepted,
        }),
      ),
    ).toBe('roster_rollback');
  });

  it('rejects an unknown version, truncation and trailing bytes', () => {
    const bytes = signRoster(p, orgSeed, content());
    const check = { organizationKey: orgKey, nowSeconds: NOW };
    expect(
      codeOf(() =>
        verifyRoster(
          p,
          Uint8Array.from(bytes, (b, i) => (i === 0 ? 2 : b)),
          check,
        ),
      ),
    ).toBe('unsupported_version');
    expect(codeOf(() => verifyRoster(p, bytes.slice(0, -1), check))).toBe('bad_encoding');
    expect(codeOf(() => verifyRoster(p, new Uint8Array([...bytes, 0]), check))).toBe(
      'bad_encoding',
    );
  });

  it('refuses to sign an empty roster, duplicates, too many devices, or expiry before issue', () => {
    expect(codeOf(() => signRoster(p, orgSeed, content({ devices: [] })))).toBe('limit_exceeded');
    expect(
      codeOf(() => signRoster(p, orgSeed, content({ devices: [devices[0]!, devices[0]!] }))),
    ).toBe('bad_encoding');
    const many = Array.from({ length: MAX_ROSTER_DEVICES + 1 }, () => devices[0]!);
    expect(codeOf(() => signRoster(p, orgSeed, content({ devices: many })))).toBe('limit_exceeded');
    expect(codeOf(() => signRoster(p, orgSeed, content({ expiresAtSeconds: NOW - 20 })))).toBe(
      'bad_encoding',
    );
  });

  it('accepts exactly MAX_ROSTER_DEVICES devices', () => {
    const many = Array.from(
      { length: MAX_ROSTER_DEVICES },
      () => DeviceIdentity.generate(p).publicIdentity,
    );
    const bytes = signRoster(p, orgSeed, content({ devices: many }));
    expect(
      verifyRoster(p, bytes, { organizationKey: orgKey, nowSeconds: NOW }).devices,
    ).toHaveLength(MAX_ROSTER_DEVICES);
  });
});
