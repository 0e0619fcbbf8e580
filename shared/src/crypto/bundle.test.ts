import { beforeAll, describe, expect, it } from '@jest/globals';
import {
  FIXED_NOW_SECONDS as NOW,
  errorCodeOf as codeOf,
  flipBit as flip,
} from '@passage/testing/crypto-fixtures';
import { MAX_ONE_TIME_PREKEY_BYTES, MAX_PREKEY_PART_BYTES } from '../protocol/limits.js';
import { parseClientFrame } from '../protocol/parse.js';
import { DeviceIdentity } from './identity.js';
import {
  ONE_TIME_PREKEY_BYTES,
  SIGNED_PREKEY_PART_BYTES,
  decodePrekeyBundle,
  decodeWirePrekeyBundle,
  toWirePublication,
  publicationOf,
} from './bundle.js';
import { MemoryDeviceStore } from './memory-store.js';
import type { Primitives } from './primitives.js';
import { loadSodiumBackend } from './sodium.js';

let p: Primitives;
beforeAll(async () => {
  p = await loadSodiumBackend();
});

function device(): { id: DeviceIdentity; prekeys: MemoryDeviceStore } {
  const id = DeviceIdentity.generate(p);
  return { id, prekeys: MemoryDeviceStore.create(p, id, NOW) };
}

function publication(d: ReturnType<typeof device>) {
  const oneTime = d.prekeys.addOneTimePrekeys(2);
  const pub = publicationOf(d.prekeys, oneTime);
  return { identity: pub.identity, signedPrekey: pub.signedPrekey, oneTime: pub.oneTime[0]! };
}

describe('prekey bundle', () => {
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
