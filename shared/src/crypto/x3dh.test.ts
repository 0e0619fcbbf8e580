import { beforeAll, describe, expect, it } from '@jest/globals';
import { DeviceIdentity } from './identity.js';
import { decodePrekeyBundle, publicationOf } from './bundle.js';
import { MemoryDeviceStore } from './memory-store.js';
import { EMPTY_TRANSACTION } from './store.js';
import type { VerifiedPrekeyBundle } from './bundle.js';
import type { Primitives } from './primitives.js';
import { loadSodiumBackend } from './sodium.js';
import { EARLY_TAG_BYTES } from './kdf.js';
import {
  PQXDH_INITIAL_BYTES,
  PQXDH_INITIAL_VERSION,
  decodePqxdhInitial,
  encodePqxdhInitial,
  initiatePqxdh,
  pqxdhInitialTag,
  respondPqxdh,
} from './x3dh.js';
import type { PqxdhInitialFields, PqxdhInitialMessage } from './x3dh.js';

let p: Primitives;
beforeAll(async () => {
  p = await loadSodiumBackend();
});

const NOW = 1_800_000_000;

function setup(withOneTime = true): {
  alice: DeviceIdentity;
  bob: DeviceIdentity;
  bobPrekeys: MemoryDeviceStore;
  bundle: VerifiedPrekeyBundle;
} {
  const alice = DeviceIdentity.generate(p);
  const bob = DeviceIdentity.generate(p);
  const bobPrekeys = MemoryDeviceStore.create(p, bob, NOW);
  const oneTime = bobPrekeys.addOneTimePrekeys(3);
  const pub = publicationOf(bobPrekeys, oneTime);
  const bundle = decodePrekeyBundle(p, {
    identity: pub.identity,
    signedPrekey: pub.signedPrekey,
    oneTime: withOneTime ? pub.oneTime[1]! : null,
  });
  return { alice, bob, bobPrekeys, bundle };
}

/**
 * `fields` with the tag the initiator `alice` computes for them (it holds IK_A's secret, so it
 * can tag anything): what lets a test reach the checks after the tag.
 */
function tagged(
  alice: DeviceIdentity,
  bundle: VerifiedPrekeyBundle,
  fields: PqxdhInitialFields,
): PqxdhInitialMessage {
  const dh1 = p.x25519(alice.dh.secretKey, bundle.signedPrekey.publicKey);
  return { ...fields, tag: pqxdhInitialTag(p, dh1, bundle.identity, fields) };
}

/** Primitives that count the calls a responder makes to the expensive steps. */
function counting(): { p: Primitives; calls: { x25519: number; decapsulate: number } } {
  const calls = { x25519: 0, decapsulate: 0 };
  return {
    calls,
    p: {
      ...p,
      x25519: (sk, pk) => {
        calls.x25519++;
        return p.x25519(sk, pk);
      },
      mlkem768Decapsulate: (sk, ct) => {
        calls.decapsulate++;
        return p.mlkem768Decapsulate(sk, ct);
      },
    },
  };
}

const codeOf = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
};

describe('PQXDH handshake', () => {
  it('gives both sides the same secret and associated data with a one-time prekey', () => {
    const { alice, bob, bobPrekeys, bundle } = setup();
    const a = initiatePqxdh(p, alice, bundle);
    const b = respondPqxdh(p, bob, bobPrekeys, a.initial);
    expect(b.sharedSecret).toEqual(a.sharedSecret);
    expect(b.associatedData).toEqual(a.associatedData);
    expect(a.initial.oneTimePrekeyId).toBe(1);
  });

  it('works when no one-time prekey is left', () => {
    const { alice, bob, bobPrekeys, bundle } = setup(false);
    const a = initiatePqxdh(p, alice, bundle);
    expect(a.initial.oneTimePrekeyId).toBeNull();
    expect(respondPqxdh(p, bob, bobPrekeys, a.initial).sharedSecret).toEqual(a.sharedSecret);
  });

  it('gives different secrets for two handshakes against the same bundle', () => {
    const { alice, bundle } = setup(false);
    expect(initiatePqxdh(p, alice, bundle).sharedSecret).not.toEqual(
      initiatePqxdh(p, alice, bundle).sharedSecret,
    );
  });

  it('round-trips the initial message through its encoding, tag included', () => {
    const { alice, bob, bobPrekeys, bundle } = setup();
    const a = initiatePqxdh(p, alice, bundle);
    const bytes = encodePqxdhInitial(a.initial);
    expect(bytes.length).toBe(PQXDH_INITIAL_BYTES);
    expect(bytes[0]).toBe(PQXDH_INITIAL_VERSION);
    expect(bytes.subarray(-EARLY_TAG_BYTES)).toEqual(a.initial.tag);
    const decoded = decodePqxdhInitial(p, bytes);
    expect(respondPqxdh(p, bob, bobPrekeys, decoded).sharedSecret).toEqual(a.sharedSecret);
    expect(encodePqxdhInitial(decoded)).toEqual(bytes);
    const noOpk = encodePqxdhInitial({ ...a.initial, oneTimePrekeyId: null });
    expect(decodePqxdhInitial(p, noOpk).oneTimePrekeyId).toBeNull();
  });

  it('yields a different secret for a tampered KEM ciphertext that the initiator itself tagged', () => {
    // ML-KEM's implicit rejection: only the holder of IK_A can get past the tag with a wrong
    // ciphertext, and then the first ratchet message fails (nothing is consumed before it).
    const { alice, bob, bobPrekeys, bundle } = setup();
    const a = initiatePqxdh(p, alice, bundle);
    const ct = a.initial.kemCiphertext.slice();
    ct[0]! ^= 1;
    const b = respondPqxdh(
      p,
      bob,
      bobPrekeys,
      tagged(alice, bundle, { ...a.initial, kemCiphertext: ct }),
    );
    expect(b.sharedSecret).not.toEqual(a.sharedSecret);
  });

  it('refuses a forged initial message after one DH, without the other DHs or the KEM decapsulation', () => {
    const { alice, bob, bobPrekeys, bundle } = setup();
    const a = initiatePqxdh(p, alice, bundle);
    const forged = { ...a.initial, tag: p.random.bytes(EARLY_TAG_BYTES) };
    const c = counting();
    expect(codeOf(() => respondPqxdh(c.p, bob, bobPrekeys, forged))).toBe('decrypt_failed');
    expect(c.calls).toEqual({ x25519: 1, decapsulate: 0 });
    // A genuine one does all of the handshake (four DHs with the one-time prekey).
    const d = counting();
    respondPqxdh(d.p, bob, bobPrekeys, a.initial);
    expect(d.calls).toEqual({ x25519: 4, decapsulate: 1 });
  });

  it('refuses an initial message whose tag has any bit of any byte flipped', () => {
    const { alice, bob, bobPrekeys, bundle } = setup();
    const a = initiatePqxdh(p, alice, bundle);
    for (let i = 0; i < EARLY_TAG_BYTES; i++) {
      for (const bit of [0x01, 0x80]) {
        const tag = a.initial.tag.slice();
        tag[i]! ^= bit;
        expect(codeOf(() => respondPqxdh(p, bob, bobPrekeys, { ...a.initial, tag }))).toBe(
          'decrypt_failed',
        );
      }
    }
  });

  it('refuses an initial message with an all-zero tag, or with the tag of another handshake', () => {
    const { alice, bob, bobPrekeys, bundle } = setup();
    const a = initiatePqxdh(p, alice, bundle);
    const other = initiatePqxdh(p, alice, bundle);
    for (const tag of [new Uint8Array(EARLY_TAG_BYTES), other.initial.tag]) {
      expect(codeOf(() => respondPqxdh(p, bob, bobPrekeys, { ...a.initial, tag }))).toBe(
        'decrypt_failed',
      );
    }
  });

  it('refuses a replayed header with a changed KEM ciphertext or base key at the tag', () => {
    const { alice, bob, bobPrekeys, bundle } = setup();
    const a = initiatePqxdh(p, alice, bundle);
    const ct = a.initial.kemCiphertext.slice();
    ct[ct.length - 1]! ^= 1;
    const variants: Partial<PqxdhInitialMessage>[] = [
      { kemCiphertext: ct },
      { kemCiphertext: p.random.bytes(ct.length) },
      { ephemeral: initiatePqxdh(p, alice, bundle).initial.ephemeral },
    ];
    for (const v of variants) {
      const c = counting();
      expect(codeOf(() => respondPqxdh(c.p, bob, bobPrekeys, { ...a.initial, ...v }))).toBe(
        'decrypt_failed',
      );
      expect(c.calls.decapsulate).toBe(0);
    }
  });

  it('refuses an initial message naming another held prekey than the one it was tagged for', () => {
    const { alice, bob, bobPrekeys, bundle } = setup();
    const a = initiatePqxdh(p, alice, bundle);
    // After a rotation the previous signed and KEM prekeys (id 0) are still held beside the new
    // ones (id 1), and one-time prekeys 0 and 2 are held beside the one used (1).
    bobPrekeys.rotate(NOW + 1);
    expect(respondPqxdh(p, bob, bobPrekeys, a.initial).sharedSecret).toEqual(a.sharedSecret);
    const variants: Partial<PqxdhInitialMessage>[] = [
      { signedPrekeyId: 1 },
      { kemPrekeyId: 1 },
      { oneTimePrekeyId: 0 },
      { oneTimePrekeyId: 2 },
      { oneTimePrekeyId: null },
    ];
    for (const v of variants) {
      expect(codeOf(() => respondPqxdh(p, bob, bobPrekeys, { ...a.initial, ...v }))).toBe(
        'decrypt_failed',
      );
    }
  });

  it('refuses an initial message tagged for another recipient, even one with the same prekey ids', () => {
    const { alice, bob, bobPrekeys, bundle } = setup();
    const carol = DeviceIdentity.generate(p);
    const carolPrekeys = MemoryDeviceStore.create(p, carol, NOW);
    const carolBundle = decodePrekeyBundle(p, {
      ...publicationOf(carolPrekeys, []),
      oneTime: null,
    });
    const toCarol = initiatePqxdh(p, alice, carolBundle);
    expect(toCarol.initial.signedPrekeyId).toBe(bundle.signedPrekey.id);
    expect(toCarol.initial.kemPrekeyId).toBe(bundle.kemPrekey.id);
    expect(codeOf(() => respondPqxdh(p, bob, bobPrekeys, toCarol.initial))).toBe('decrypt_failed');
    // The tag also covers the responder's identity, not only its signed prekey (through DH1):
    // a device holding Bob's prekeys under another identity refuses Bob's initial message.
    const toBob = initiatePqxdh(p, alice, bundle);
    expect(codeOf(() => respondPqxdh(p, carol, bobPrekeys, toBob.initial))).toBe('decrypt_failed');
  });

  it('refuses an initial message whose initiator identity was swapped, at the tag', () => {
    const { alice, bob, bobPrekeys, bundle } = setup();
    const a = initiatePqxdh(p, alice, bundle);
    const mallory = DeviceIdentity.generate(p);
    const c = counting();
    const swapped = { ...a.initial, initiator: mallory.publicIdentity };
    expect(codeOf(() => respondPqxdh(c.p, bob, bobPrekeys, swapped))).toBe('decrypt_failed');
    expect(c.calls).toEqual({ x25519: 1, decapsulate: 0 });
  });

  it('rejects an initial message naming an unknown signed prekey, KEM prekey or one-time prekey', () => {
    const { alice, bob, bobPrekeys, bundle } = setup();
    const a = initiatePqxdh(p, alice, bundle);
    const variants: Partial<PqxdhInitialMessage>[] = [
      { signedPrekeyId: 7 },
      { kemPrekeyId: 7 },
      { oneTimePrekeyId: 99 },
    ];
    for (const v of variants) {
      const c = counting();
      expect(codeOf(() => respondPqxdh(c.p, bob, bobPrekeys, { ...a.initial, ...v }))).toBe(
        'unknown_prekey',
      );
      expect(c.calls.x25519).toBe(0);
    }
  });

  it('rejects a reuse of a consumed one-time prekey', () => {
    const { alice, bob, bobPrekeys, bundle } = setup();
    const a = initiatePqxdh(p, alice, bundle);
    bobPrekeys.commit({
      ...EMPTY_TRANSACTION,
      consumedOneTimePrekeys: [a.initial.oneTimePrekeyId!],
    });
    expect(codeOf(() => respondPqxdh(p, bob, bobPrekeys, a.initial))).toBe('unknown_prekey');
  });

  it('aborts on a low-order ephemeral key, even one the initiator tagged', () => {
    const { alice, bob, bobPrekeys, bundle } = setup();
    const a = initiatePqxdh(p, alice, bundle);
    const zero = new Uint8Array(32) as typeof a.initial.ephemeral;
    const initial = tagged(alice, bundle, { ...a.initial, ephemeral: zero });
    expect(codeOf(() => respondPqxdh(p, bob, bobPrekeys, initial))).toBe('low_order');
  });

  it('refuses to encode a tag of the wrong length', () => {
    const { alice, bundle } = setup();
    const a = initiatePqxdh(p, alice, bundle);
    for (const tag of [a.initial.tag.subarray(1), new Uint8Array(EARLY_TAG_BYTES + 1)]) {
      expect(codeOf(() => encodePqxdhInitial({ ...a.initial, tag }))).toBe('bad_length');
    }
  });

  it('rejects an initial message with an old or unknown version, bad flag, stray id, missing or cut tag, or trailing byte', () => {
    const { alice, bundle } = setup();
    const bytes = encodePqxdhInitial({
      ...initiatePqxdh(p, alice, bundle).initial,
      oneTimePrekeyId: null,
    });
    const flagAt = 1 + 129 + 32 + 4 + 4;
    const withVersion = (v: number, b = bytes): Uint8Array =>
      Uint8Array.from(b, (x, i) => (i === 0 ? v : x));
    const untagged = bytes.slice(0, -EARLY_TAG_BYTES);
    const variants: [Uint8Array, string][] = [
      // Version 1, as it was encoded (no tag), and as long as version 2.
      [withVersion(1, untagged), 'unsupported_version'],
      [withVersion(1), 'unsupported_version'],
      [withVersion(0), 'unsupported_version'],
      [withVersion(3), 'unsupported_version'],
      [new Uint8Array(0), 'bad_encoding'],
      [Uint8Array.from(bytes, (b, i) => (i === flagAt ? 2 : b)), 'bad_encoding'],
      [Uint8Array.from(bytes, (b, i) => (i === flagAt + 4 ? 1 : b)), 'bad_encoding'],
      [new Uint8Array([...bytes, 0]), 'bad_encoding'],
      [bytes.slice(0, -1), 'bad_encoding'],
      [untagged, 'bad_encoding'],
      [bytes.slice(0, 1 + 129), 'bad_encoding'],
      [Uint8Array.from(bytes, (b, i) => (i === 70 ? b ^ 1 : b)), 'bad_signature'],
    ];
    for (const [v, code] of variants) expect(codeOf(() => decodePqxdhInitial(p, v))).toBe(code);
  });
});
