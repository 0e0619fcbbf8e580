import { beforeAll, describe, expect, it } from '@jest/globals';
import { DeviceIdentity } from './identity.js';
import { decodePrekeyBundle, publicationOf } from './bundle.js';
import { MemoryDeviceStore } from './memory-store.js';
import { EMPTY_TRANSACTION } from './store.js';
import type { VerifiedPrekeyBundle } from './bundle.js';
import type { Primitives } from './primitives.js';
import { loadSodiumBackend } from './sodium.js';
import {
  PQXDH_INITIAL_BYTES,
  decodePqxdhInitial,
  encodePqxdhInitial,
  initiatePqxdh,
  respondPqxdh,
} from './x3dh.js';
import type { PqxdhInitialMessage } from './x3dh.js';

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

  it('round-trips the initial message through its encoding', () => {
    const { alice, bob, bobPrekeys, bundle } = setup();
    const a = initiatePqxdh(p, alice, bundle);
    const bytes = encodePqxdhInitial(a.initial);
    expect(bytes.length).toBe(PQXDH_INITIAL_BYTES);
    const decoded = decodePqxdhInitial(p, bytes);
    expect(respondPqxdh(p, bob, bobPrekeys, decoded).sharedSecret).toEqual(a.sharedSecret);
    const noOpk = encodePqxdhInitial({ ...a.initial, oneTimePrekeyId: null });
    expect(decodePqxdhInitial(p, noOpk).oneTimePrekeyId).toBeNull();
  });

  it('yields a different secret when the KEM ciphertext was tampered with', () => {
    const { alice, bob, bobPrekeys, bundle } = setup();
    const a = initiatePqxdh(p, alice, bundle);
    const ct = a.initial.kemCiphertext.slice();
    ct[0]! ^= 1;
    const b = respondPqxdh(p, bob, bobPrekeys, { ...a.initial, kemCiphertext: ct });
    expect(b.sharedSecret).not.toEqual(a.sharedSecret);
  });

  it('yields a different secret and AD when the initiator identity is swapped', () => {
    const { alice, bob, bobPrekeys, bundle } = setup();
    const a = initiatePqxdh(p, alice, bundle);
    const mallory = DeviceIdentity.generate(p);
    const b = respondPqxdh(p, bob, bobPrekeys, { ...a.initial, initiator: mallory.publicIdentity });
    expect(b.sharedSecret).not.toEqual(a.sharedSecret);
    expect(b.associatedData).not.toEqual(a.associatedData);
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
      expect(codeOf(() => respondPqxdh(p, bob, bobPrekeys, { ...a.initial, ...v }))).toBe(
        'unknown_prekey',
      );
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

  it('aborts on a low-order ephemeral key', () => {
    const { alice, bob, bobPrekeys, bundle } = setup();
    const a = initiatePqxdh(p, alice, bundle);
    const zero = new Uint8Array(32) as typeof a.initial.ephemeral;
    expect(codeOf(() => respondPqxdh(p, bob, bobPrekeys, { ...a.initial, ephemeral: zero }))).toBe(
      'low_order',
    );
  });

  it('rejects an initial message with an unknown version, bad flag, stray id or trailing byte', () => {
    const { alice, bundle } = setup();
    const bytes = encodePqxdhInitial({
      ...initiatePqxdh(p, alice, bundle).initial,
      oneTimePrekeyId: null,
    });
    const flagAt = 1 + 129 + 32 + 4 + 4;
    const variants: [Uint8Array, string][] = [
      [Uint8Array.from(bytes, (b, i) => (i === 0 ? 2 : b)), 'unsupported_version'],
      [Uint8Array.from(bytes, (b, i) => (i === flagAt ? 2 : b)), 'bad_encoding'],
      [Uint8Array.from(bytes, (b, i) => (i === flagAt + 4 ? 1 : b)), 'bad_encoding'],
      [new Uint8Array([...bytes, 0]), 'bad_encoding'],
      [bytes.slice(0, -1), 'bad_encoding'],
      [Uint8Array.from(bytes, (b, i) => (i === 70 ? b ^ 1 : b)), 'bad_signature'],
    ];
    for (const [v, code] of variants) expect(codeOf(() => decodePqxdhInitial(p, v))).toBe(code);
  });
});
