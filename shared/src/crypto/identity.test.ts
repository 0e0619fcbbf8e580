import { beforeAll, describe, expect, it } from '@jest/globals';
import { ed25519 } from '@noble/curves/ed25519.js';
import { MAX_ONE_TIME_PREKEY_BYTES, MAX_PREKEY_PART_BYTES } from '../protocol/limits.js';
import { parseClientFrame } from '../protocol/parse.js';
import { DeviceIdentity, PUBLIC_IDENTITY_BYTES, PublicIdentity } from './identity.js';
import {
  ONE_TIME_PREKEY_BYTES,
  SIGNED_PREKEY_PART_BYTES,
  decodePrekeyBundle,
  decodeWirePrekeyBundle,
  toWirePublication,
  publicationOf,
} from './bundle.js';
import { MemoryDeviceStore } from './memory-store.js';
import { EMPTY_TRANSACTION } from './store.js';
import {
  decodeOneTimePrekeyRecord,
  decodeSignedPrekeyRecord,
  decodeKemPrekeyRecord,
  encodeOneTimePrekeyRecord,
  encodeSignedPrekeyRecord,
  encodeKemPrekeyRecord,
  SIGNED_PREKEY_ROTATION_SECONDS,
} from './prekeys.js';
import type { Primitives } from './primitives.js';
import { loadSodiumBackend } from './sodium.js';

let p: Primitives;
beforeAll(async () => {
  p = await loadSodiumBackend();
});

const NOW = 1_800_000_000;

function device(): { id: DeviceIdentity; prekeys: MemoryDeviceStore } {
  const id = DeviceIdentity.generate(p);
  return { id, prekeys: MemoryDeviceStore.create(p, id, NOW) };
}

function publication(d: ReturnType<typeof device>) {
  const oneTime = d.prekeys.addOneTimePrekeys(2);
  const pub = publicationOf(d.prekeys, oneTime);
  return { identity: pub.identity, signedPrekey: pub.signedPrekey, oneTime: pub.oneTime[0]! };
}

function flip(bytes: Uint8Array, index: number): Uint8Array {
  const out = bytes.slice();
  out[index]! ^= 0x01;
  return out;
}

const codeOf = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
};

describe('device identity and prekey bundle', () => {
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

  it('publishes parts that fit the relay limits', () => {
    const pub = publication(device());
    expect(pub.identity.length).toBeLessThanOrEqual(MAX_PREKEY_PART_BYTES);
    expect(pub.signedPrekey.length).toBe(SIGNED_PREKEY_PART_BYTES);
    expect(pub.signedPrekey.length).toBeLessThanOrEqual(MAX_PREKEY_PART_BYTES);
    expect(pub.oneTime.key.length).toBe(ONE_TIME_PREKEY_BYTES);
    expect(pub.oneTime.key.length).toBeLessThanOrEqual(MAX_ONE_TIME_PREKEY_BYTES);
  });

  it('decodes and verifies a published bundle, with and without a one-time prekey', () => {
    const d = device();
    const pub = publication(d);
    const bundle = decodePrekeyBundle(p, pub);
    expect(bundle.identity.equals(d.id.publicIdentity)).toBe(true);
    expect(bundle.signedPrekey.id).toBe(d.prekeys.currentSignedPrekey!.id);
    expect(bundle.oneTimePrekey?.id).toBe(pub.oneTime.id);
    expect(decodePrekeyBundle(p, { ...pub, oneTime: null }).oneTimePrekey).toBeNull();
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

  it('rejects a bundle whose signed prekey signature does not verify', () => {
    const pub = publication(device());
    // Byte 9 is the first byte of the X25519 prekey; 41 is in its signature.
    for (const i of [1, 5, 9, 41]) {
      expect(
        codeOf(() => decodePrekeyBundle(p, { ...pub, signedPrekey: flip(pub.signedPrekey, i) })),
      ).toBe('bad_signature');
    }
  });

  it('rejects a bundle whose ML-KEM prekey or its signature was changed', () => {
    const pub = publication(device());
    for (const i of [105, 109, 113, 600, 1300, SIGNED_PREKEY_PART_BYTES - 1]) {
      expect(
        codeOf(() => decodePrekeyBundle(p, { ...pub, signedPrekey: flip(pub.signedPrekey, i) })),
      ).toBe('bad_signature');
    }
  });

  it('rejects signed prekeys of one device presented under another identity', () => {
    const a = publication(device());
    const b = publication(device());
    expect(codeOf(() => decodePrekeyBundle(p, { ...a, signedPrekey: b.signedPrekey }))).toBe(
      'bad_signature',
    );
  });

  it('rejects a signed prekey part with an unknown version, truncation or a trailing byte', () => {
    const pub = publication(device());
    const v0 = pub.signedPrekey.slice();
    v0[0] = 0;
    expect(codeOf(() => decodePrekeyBundle(p, { ...pub, signedPrekey: v0 }))).toBe(
      'unsupported_version',
    );
    expect(
      codeOf(() => decodePrekeyBundle(p, { ...pub, signedPrekey: pub.signedPrekey.slice(0, -1) })),
    ).toBe('bad_encoding');
    expect(
      codeOf(() =>
        decodePrekeyBundle(p, { ...pub, signedPrekey: new Uint8Array([...pub.signedPrekey, 0]) }),
      ),
    ).toBe('bad_encoding');
  });

  it('rejects a one-time prekey of the wrong length or version', () => {
    const pub = publication(device());
    const key = pub.oneTime.key;
    const bad = (k: Uint8Array) =>
      codeOf(() => decodePrekeyBundle(p, { ...pub, oneTime: { id: 1, key: k } }));
    expect(bad(key.slice(0, -1))).toBe('bad_encoding');
    expect(bad(new Uint8Array([...key, 0]))).toBe('bad_encoding');
    const v9 = key.slice();
    v9[0] = 9;
    expect(bad(v9)).toBe('unsupported_version');
  });

  it('rotates the signed prekeys when due and keeps the previous ones for one rotation', () => {
    const d = device();
    const first = d.prekeys.currentSignedPrekey!;
    const firstKem = d.prekeys.currentKemPrekey!;
    expect(d.prekeys.rotateIfDue(NOW + SIGNED_PREKEY_ROTATION_SECONDS - 1)).toBe(false);
    expect(d.prekeys.rotateIfDue(NOW + SIGNED_PREKEY_ROTATION_SECONDS)).toBe(true);
    expect(d.prekeys.currentSignedPrekey!.id).toBe(first.id + 1);
    expect(d.prekeys.findSignedPrekey(first.id)).toBe(first);
    expect(d.prekeys.findKemPrekey(firstKem.id)).toBe(firstKem);
    d.prekeys.rotate(NOW + 2 * SIGNED_PREKEY_ROTATION_SECONDS);
    expect(d.prekeys.findSignedPrekey(first.id)).toBeUndefined();
    expect(d.prekeys.findKemPrekey(firstKem.id)).toBeUndefined();
  });

  it('forgets a one-time prekey once consumed', () => {
    const d = device();
    const [k] = d.prekeys.addOneTimePrekeys(1);
    expect(d.prekeys.findOneTimePrekey(k!.id)).toBe(k);
    d.prekeys.commit({ ...EMPTY_TRANSACTION, consumedOneTimePrekeys: [k!.id] });
    expect(d.prekeys.findOneTimePrekey(k!.id)).toBeUndefined();
    expect(d.prekeys.oneTimeCount).toBe(0);
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

describe('stored device secrets', () => {
  it('restores an identity from its stored secrets', () => {
    const { id } = device();
    const restored = DeviceIdentity.decodeSecret(p, id.encodeSecret());
    expect(restored.publicIdentity.encode()).toEqual(id.publicIdentity.encode());
  });

  it('restores prekeys that answer the same handshakes and publish the same bundle', () => {
    const d = device();
    const oneTime = d.prekeys.addOneTimePrekeys(3);
    d.prekeys.commit({ ...EMPTY_TRANSACTION, consumedOneTimePrekeys: [oneTime[1]!.id] });
    d.prekeys.rotate(NOW + 1);
    const restored = MemoryDeviceStore.restore(p, d.prekeys.export());
    expect(restored.export()).toEqual(d.prekeys.export());
    expect(publicationOf(restored, []).signedPrekey).toEqual(
      publicationOf(d.prekeys, []).signedPrekey,
    );
    expect(restored.findSignedPrekey(0)?.keyPair.secretKey).toEqual(
      d.prekeys.findSignedPrekey(0)?.keyPair.secretKey,
    );
    expect(restored.findKemPrekey(0)?.keyPair.secretKey).toEqual(
      d.prekeys.findKemPrekey(0)?.keyPair.secretKey,
    );
    expect(restored.findOneTimePrekey(oneTime[1]!.id)).toBeUndefined();
    expect(restored.findOneTimePrekey(oneTime[2]!.id)?.keyPair.secretKey).toEqual(
      oneTime[2]!.keyPair.secretKey,
    );
    expect(restored.addOneTimePrekeys(1)[0]!.id).toBe(3);
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

  it('encodes each prekey as its own record of the documented size', () => {
    const d = device();
    const [k] = d.prekeys.addOneTimePrekeys(1);
    expect(encodeSignedPrekeyRecord(d.prekeys.currentSignedPrekey!)).toHaveLength(41);
    expect(encodeKemPrekeyRecord(d.prekeys.currentKemPrekey!)).toHaveLength(73);
    expect(encodeOneTimePrekeyRecord(k!)).toHaveLength(37);
  });

  it('rejects prekey records that are truncated, have a trailing byte or an unknown version', () => {
    const d = device();
    const [k] = d.prekeys.addOneTimePrekeys(1);
    const records: [Uint8Array, (b: Uint8Array) => unknown][] = [
      [
        encodeSignedPrekeyRecord(d.prekeys.currentSignedPrekey!),
        (b) => decodeSignedPrekeyRecord(p, d.id, b),
      ],
      [
        encodeKemPrekeyRecord(d.prekeys.currentKemPrekey!),
        (b) => decodeKemPrekeyRecord(p, d.id, b),
      ],
      [encodeOneTimePrekeyRecord(k!), (b) => decodeOneTimePrekeyRecord(p, b)],
    ];
    for (const [bytes, decode] of records) {
      expect(codeOf(() => decode(bytes.slice(0, -1)))).toBe('bad_encoding');
      expect(codeOf(() => decode(new Uint8Array([...bytes, 0])))).toBe('bad_encoding');
      expect(codeOf(() => decode(Uint8Array.from(bytes, (b, i) => (i === 0 ? 9 : b))))).toBe(
        'unsupported_version',
      );
    }
  });

  it('rejects a stored device with a one-time prekey twice, or three signed prekeys', () => {
    const d = device();
    d.prekeys.addOneTimePrekeys(1);
    d.prekeys.rotate(NOW + 1);
    const stored = d.prekeys.export();
    const twice = {
      ...stored,
      oneTimePrekeys: [stored.oneTimePrekeys[0]!, stored.oneTimePrekeys[0]!],
    };
    expect(codeOf(() => MemoryDeviceStore.restore(p, twice))).toBe('bad_encoding');
    const three = {
      ...stored,
      signedPrekeys: [...stored.signedPrekeys, stored.signedPrekeys[0]!],
      kemPrekeys: [...stored.kemPrekeys, stored.kemPrekeys[0]!],
    };
    expect(codeOf(() => MemoryDeviceStore.restore(p, three))).toBe('bad_encoding');
  });
});

describe('prekey bundles on the wire', () => {
  it('round-trips a publication through the frame schemas', () => {
    const d = device();
    const wire = toWirePublication(publicationOf(d.prekeys, d.prekeys.addOneTimePrekeys(2)));
    const frame = parseClientFrame(JSON.stringify({ v: 1, t: 'prekeys.publish', rid: 1, ...wire }));
    expect(frame.ok).toBe(true);
    const bundle = decodeWirePrekeyBundle(p, { ...wire, oneTime: wire.oneTime[0]! });
    expect(bundle.identity.equals(d.id.publicIdentity)).toBe(true);
    expect(bundle.oneTimePrekey?.id).toBe(wire.oneTime[0]!.id);
  });

  it('rejects a bundle part that is not canonical base64url', () => {
    const d = device();
    const wire = toWirePublication(publicationOf(d.prekeys, []));
    expect(
      codeOf(() =>
        decodeWirePrekeyBundle(p, { ...wire, oneTime: null, identity: wire.identity + '=' }),
      ),
    ).toBe('bad_encoding');
    expect(
      codeOf(() =>
        decodeWirePrekeyBundle(p, { ...wire, oneTime: { id: 1, key: 'not base64url!' } }),
      ),
    ).toBe('bad_encoding');
  });
});
