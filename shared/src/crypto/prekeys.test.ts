import { beforeAll, describe, expect, it } from '@jest/globals';
import { FIXED_NOW_SECONDS as NOW, errorCodeOf as codeOf } from '@passage/testing/crypto-fixtures';
import { DeviceIdentity } from './identity.js';
import { publicationOf } from './bundle.js';
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

function device(): { id: DeviceIdentity; prekeys: MemoryDeviceStore } {
  const id = DeviceIdentity.generate(p);
  return { id, prekeys: MemoryDeviceStore.create(p, id, NOW) };
}

describe('signed and one-time prekeys', () => {
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

describe('stored prekeys', () => {
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
