import { beforeAll, describe, expect, it } from '@jest/globals';
import { ed25519 } from '@noble/curves/ed25519.js';
import { errorCodeOf as codeOf, flipBit as flip } from '@passage/testing/crypto-fixtures';
import { DeviceIdentity, PUBLIC_IDENTITY_BYTES, PublicIdentity } from './identity.js';
import type { Primitives } from './primitives.js';
import { loadSodiumBackend } from './sodium.js';

let p: Primitives;
beforeAll(async () => {
  p = await loadSodiumBackend();
});

function device(): { id: DeviceIdentity } {
  return { id: DeviceIdentity.generate(p) };
}

describe('device identity', () => {
  it('derives the same identity from the same seeds', () => {
    const a = DeviceIdentity.fromSeeds(p, new Uint8Array(32).fill(1), new Uint8Array(32).fill(2));
    const b = DeviceIdentity.fromSeeds(p, new Uint8Array(32).fill(1), new Uint8Array(32).fill(2));
    expect(a.publicIdentity.encode()).toEqual(b.publicIdentity.encode());
  });

  it('encodes a public identity in 129 bytes and decodes it back', () => {
    const { id } = device();
    const bytes = id.publicIdentity.encode();
    expect(bytes.length).toBe(PUBLIC_IDENTITY_BYTES);
    expect(PublicIdentity.decode(p, bytes).equals(id.publicIdentity)).toBe(true);
  });

  it('rejects an identity whose X25519 key is not signed by its signing key', () => {
    const bytes = device().id.publicIdentity.encode();
    expect(codeOf(() => PublicIdentity.decode(p, flip(bytes, 40)))).toBe('bad_signature');
    expect(codeOf(() => PublicIdentity.decode(p, flip(bytes, 100)))).toBe('bad_signature');
  });

  it('rejects an identity with an unknown version, a missing byte or a trailing byte', () => {
    const bytes = device().id.publicIdentity.encode();
    const v2 = bytes.slice();
    v2[0] = 2;
    expect(codeOf(() => PublicIdentity.decode(p, v2))).toBe('unsupported_version');
    expect(codeOf(() => PublicIdentity.decode(p, bytes.slice(0, -1)))).toBe('bad_encoding');
    expect(codeOf(() => PublicIdentity.decode(p, new Uint8Array([...bytes, 0])))).toBe(
      'bad_encoding',
    );
    expect(codeOf(() => PublicIdentity.decode(p, new Uint8Array(0)))).toBe('bad_encoding');
  });
});

describe('identity keys of prime order only', () => {
  it('rejects an identity whose signing key is of mixed order before checking its signature', () => {
    const { id } = device();
    const bytes = id.publicIdentity.encode();
    const t = ed25519.Point.fromHex(
      'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
    );
    const mixed = ed25519.Point.fromBytes(id.publicIdentity.signingKey).add(t).toBytes();
    bytes.set(mixed, 1);
    expect(codeOf(() => PublicIdentity.decode(p, bytes))).toBe('bad_encoding');
  });
});

describe('stored identity secrets', () => {
  it('restores an identity from its stored secrets', () => {
    const { id } = device();
    const restored = DeviceIdentity.decodeSecret(p, id.encodeSecret());
    expect(restored.publicIdentity.encode()).toEqual(id.publicIdentity.encode());
  });

  it('rejects stored identity secrets of the wrong length or version', () => {
    const bytes = device().id.encodeSecret();
    expect(codeOf(() => DeviceIdentity.decodeSecret(p, bytes.slice(0, -1)))).toBe('bad_encoding');
    expect(codeOf(() => DeviceIdentity.decodeSecret(p, new Uint8Array([...bytes, 0])))).toBe(
      'bad_encoding',
    );
    expect(
      codeOf(() =>
        DeviceIdentity.decodeSecret(
          p,
          Uint8Array.from(bytes, (b, i) => (i === 0 ? 9 : b)),
        ),
      ),
    ).toBe('unsupported_version');
  });
});
