import { beforeAll, describe, expect, it } from '@jest/globals';
import { DeviceIdentity } from './identity.js';
import { decodePrekeyBundle, publicationOf } from './bundle.js';
import { MemoryDeviceStore } from './memory-store.js';
import type { Primitives } from './primitives.js';
import { SESSION_STATE_VERSION, Session } from './session.js';
import { loadSodiumBackend } from './sodium.js';
import { decodePqxdhInitial } from './x3dh.js';

let p: Primitives;
beforeAll(async () => {
  p = await loadSodiumBackend();
});

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const read = (b: Uint8Array): string => new TextDecoder().decode(b);

function start(): { alice: Session; bob: Session; first: Uint8Array } {
  const aliceId = DeviceIdentity.generate(p);
  const bobId = DeviceIdentity.generate(p);
  const prekeys = MemoryDeviceStore.create(p, bobId, 1_800_000_000);
  const pub = publicationOf(prekeys, prekeys.addOneTimePrekeys(1));
  const bundle = decodePrekeyBundle(p, { ...pub, oneTime: pub.oneTime[0]! });
  const alice = Session.initiate(p, aliceId, bundle);
  const out = alice.encrypt(text('hello'));
  const bob = Session.respond(p, bobId, prekeys, decodePqxdhInitial(p, out.initial!));
  return { alice, bob, first: out.message };
}

const codeOf = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
};

describe('session', () => {
  it('carries the initial message until the peer answers', () => {
    const { alice, bob, first } = start();
    expect(read(bob.decrypt(first))).toBe('hello');
    expect(alice.encrypt(text('again')).initial).not.toBeNull();
    expect(alice.isPending).toBe(true);
    alice.decrypt(bob.encrypt(text('hi')).message);
    expect(alice.isPending).toBe(false);
    expect(alice.encrypt(text('now plain')).initial).toBeNull();
  });

  it('continues a conversation after both sides are serialised and restored', () => {
    const s = start();
    s.bob.decrypt(s.first);
    const pending = s.alice.encrypt(text('in flight')).message;
    const alice = Session.decode(p, s.alice.encode());
    const bob = Session.decode(p, s.bob.encode());
    expect(read(bob.decrypt(pending))).toBe('in flight');
    expect(read(alice.decrypt(bob.encrypt(text('reply')).message))).toBe('reply');
    expect(read(bob.decrypt(alice.encrypt(text('more')).message))).toBe('more');
    expect(Session.decode(p, bob.encode()).encode()).toEqual(bob.encode());
  });

  it('serialises skipped message keys and delivers their messages after a restore', () => {
    const s = start();
    s.bob.decrypt(s.first);
    const late = s.alice.encrypt(text('late')).message;
    s.bob.decrypt(s.alice.encrypt(text('early')).message);
    const bob = Session.decode(p, s.bob.encode());
    expect(read(bob.decrypt(late))).toBe('late');
  });

  it('rejects a serialisation with an old or unknown version', () => {
    // Version 2 held a pending initial message of version 1 (no early tag); it is not migrated.
    const bytes = start().alice.encode();
    expect(bytes[0]).toBe(SESSION_STATE_VERSION);
    for (const version of [1, 2, 4]) {
      bytes[0] = version;
      expect(codeOf(() => Session.decode(p, bytes))).toBe('unsupported_version');
    }
  });

  it('rejects a truncated serialisation and one with a trailing byte', () => {
    const bytes = start().alice.encode();
    expect(codeOf(() => Session.decode(p, bytes.slice(0, -1)))).toBe('bad_encoding');
    expect(codeOf(() => Session.decode(p, new Uint8Array([...bytes, 0])))).toBe('bad_encoding');
  });

  it('rejects a serialisation whose flag byte is neither 0 nor 1', () => {
    const bytes = start().alice.encode();
    // The has-initial flag follows version, identity, AD, auth key and base key.
    const at = 1 + 129 + 32 + 32 + 32;
    expect(bytes[at]).toBe(1);
    bytes[at] = 2;
    expect(codeOf(() => Session.decode(p, bytes))).toBe('bad_encoding');
  });

  it('rejects a serialisation whose ratchet key pair does not match', () => {
    const s = start();
    const bytes = s.bob.encode();
    // Bob: no pending initial, so the ratchet secret starts right after the flag.
    const at = 1 + 129 + 32 + 32 + 32 + 1;
    bytes[at]! ^= 0x40;
    expect(codeOf(() => Session.decode(p, bytes))).toBe('bad_encoding');
  });

  it('rejects a serialisation with a tampered peer identity', () => {
    const bytes = start().alice.encode();
    bytes[100]! ^= 1;
    expect(codeOf(() => Session.decode(p, bytes))).toBe('bad_signature');
  });

  it('rejects a serialisation claiming more skipped keys than the bound', () => {
    const bytes = start().bob.encode();
    // The skipped-key count is the last two bytes when no key is stored.
    bytes[bytes.length - 2] = 0xff;
    expect(codeOf(() => Session.decode(p, bytes))).toBe('bad_encoding');
  });
});
