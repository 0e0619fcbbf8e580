import { beforeAll, describe, expect, it } from '@jest/globals';
import { MAX_ENVELOPE_BYTES } from '../protocol/limits.js';
import { ENVELOPE_SIZES_BYTES, openEnvelope, sealEnvelope } from './envelope.js';
import { DeviceSessions } from './fanout.js';
import { DeviceIdentity, DevicePrekeys, decodePrekeyBundle } from './identity.js';
import type { PrekeyBundle, PublicIdentity } from './identity.js';
import { asEd25519PublicKey, asEd25519Seed } from './keys.js';
import { MAX_PADDED_DATA_BYTES } from './padding.js';
import type { Primitives } from './primitives.js';
import { signRoster, verifyRoster } from './roster.js';
import { loadSodiumBackend } from './sodium.js';

let p: Primitives;
beforeAll(async () => {
  p = await loadSodiumBackend();
});

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const read = (b: Uint8Array): string => new TextDecoder().decode(b);

interface Device {
  readonly sessions: DeviceSessions;
  readonly prekeys: DevicePrekeys;
  bundle(withOneTime?: boolean): PrekeyBundle;
  readonly pub: PublicIdentity;
}

function device(): Device {
  const id = DeviceIdentity.generate(p);
  const prekeys = DevicePrekeys.create(p, id, 1_800_000_000);
  return {
    sessions: new DeviceSessions(p, id, prekeys),
    prekeys,
    pub: id.publicIdentity,
    bundle(withOneTime = true) {
      const pub = prekeys.publication(withOneTime ? prekeys.addOneTimePrekeys(1) : []);
      return decodePrekeyBundle(p, { ...pub, oneTime: pub.oneTime[0] ?? null });
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

function connected(): { a: Device; b: Device } {
  const a = device();
  const b = device();
  a.sessions.startSession(b.bundle());
  b.sessions.decrypt(a.sessions.encryptFor(b.pub, text('hello')));
  a.sessions.decrypt(b.sessions.encryptFor(a.pub, text('hi')));
  return { a, b };
}

describe('sealed envelopes and device sessions', () => {
  it('delivers a first message through the handshake and uses up the one-time prekey', () => {
    const a = device();
    const b = device();
    const bundle = b.bundle();
    a.sessions.startSession(bundle);
    const got = b.sessions.decrypt(a.sessions.encryptFor(b.pub, text('hello')));
    expect(read(got.plaintext)).toBe('hello');
    expect(got.sender.equals(a.pub)).toBe(true);
    expect(b.prekeys.findOneTimePrekey(bundle.oneTimePrekey!.id)).toBeUndefined();
  });

  it('delivers several messages sent before the responder answered, in any order', () => {
    const a = device();
    const b = device();
    a.sessions.startSession(b.bundle(false));
    const m = [0, 1, 2].map((i) => a.sessions.encryptFor(b.pub, text(`m${i}`)));
    expect(read(b.sessions.decrypt(m[2]!).plaintext)).toBe('m2');
    expect(read(b.sessions.decrypt(m[0]!).plaintext)).toBe('m0');
    expect(read(b.sessions.decrypt(m[1]!).plaintext)).toBe('m1');
  });

  it('makes every envelope one of the fixed sizes, the largest being the relay limit', () => {
    const { a, b } = connected();
    expect(ENVELOPE_SIZES_BYTES.at(-1)).toBe(MAX_ENVELOPE_BYTES);
    for (const n of [0, 1, 255, 1024, 4096, 16_000, 40_000, MAX_PADDED_DATA_BYTES]) {
      const env = a.sessions.encryptFor(b.pub, new Uint8Array(n));
      expect(ENVELOPE_SIZES_BYTES).toContain(env.length);
      expect(b.sessions.decrypt(env).plaintext.length).toBe(n);
    }
    const fresh = device();
    fresh.sessions.startSession(b.bundle());
    const first = fresh.sessions.encryptFor(b.pub, new Uint8Array(MAX_PADDED_DATA_BYTES));
    expect(first.length).toBe(MAX_ENVELOPE_BYTES);
  });

  it('hides the sender: the envelope holds no sender key in the clear', () => {
    const { a, b } = connected();
    const env = a.sessions.encryptFor(b.pub, text('x'));
    const hex = Buffer.from(env).toString('hex');
    expect(hex.includes(Buffer.from(a.pub.signingKey).toString('hex'))).toBe(false);
    expect(hex.includes(Buffer.from(a.pub.dhKey).toString('hex'))).toBe(false);
  });

  it('fans one message out to every device, each through its own session', () => {
    const a = device();
    const devices = Array.from({ length: 4 }, device);
    const bundles = new Map(devices.map((d) => [d.pub.id, d.bundle()]));
    const out = a.sessions.fanOut(
      devices.map((d) => d.pub),
      text('to all'),
      (d) => bundles.get(d.id),
    );
    expect(out).toHaveLength(4);
    out.forEach((o, i) => {
      expect(o.recipient.equals(devices[i]!.pub)).toBe(true);
      expect(read(devices[i]!.sessions.decrypt(o.envelope).plaintext)).toBe('to all');
    });
    // A device cannot open another device's envelope.
    expect(codeOf(() => devices[1]!.sessions.decrypt(out[0]!.envelope))).toBe('decrypt_failed');
  });

  it('refuses a fan-out in which some device has neither a session nor a bundle, encrypting nothing', () => {
    const { a, b } = connected();
    const stranger = device();
    const before = a.sessions.session(b.pub)!.encode();
    expect(codeOf(() => a.sessions.fanOut([b.pub, stranger.pub], text('x')))).toBe('no_session');
    expect(a.sessions.session(b.pub)!.encode()).toEqual(before);
  });

  it('refuses a fan-out bundle that belongs to a different device', () => {
    const a = device();
    const b = device();
    const c = device();
    expect(codeOf(() => a.sessions.fanOut([b.pub], text('x'), () => c.bundle()))).toBe(
      'no_session',
    );
  });

  it('rejects a message whose sealed sender names a different device', () => {
    const { a, b } = connected();
    const c = device();
    // c has its own session with b; it takes a's message and re-seals it naming itself.
    c.sessions.startSession(b.bundle());
    b.sessions.decrypt(c.sessions.encryptFor(b.pub, text('c here')));
    const inner = openEnvelope(
      p,
      b.sessions.identity,
      a.sessions.encryptFor(b.pub, text('from a')),
    );
    const forged = sealEnvelope(p, b.pub, { sender: c.pub, initial: null, message: inner.message });
    const before = b.sessions.session(c.pub)!.encode();
    expect(codeOf(() => b.sessions.decrypt(forged))).toBe('decrypt_failed');
    expect(b.sessions.session(c.pub)!.encode()).toEqual(before);
  });

  it('rejects a message naming a known signing key with another X25519 key', () => {
    const { a, b } = connected();
    // Validly self-signed, same signing key (same device id), different X25519 key.
    const twin = DeviceIdentity.fromSeeds(p, a.sessions.identity.signingSeed, p.random.bytes(32));
    expect(twin.publicIdentity.id).toBe(a.pub.id);
    const inner = openEnvelope(p, b.sessions.identity, a.sessions.encryptFor(b.pub, text('x')));
    const forged = sealEnvelope(p, b.pub, { ...inner, sender: twin.publicIdentity });
    const before = b.sessions.session(a.pub)!.encode();
    expect(codeOf(() => b.sessions.decrypt(forged))).toBe('no_session');
    expect(b.sessions.session(a.pub)!.encode()).toEqual(before);
  });

  it('rejects an initial message whose sealed sender is not the initiator', () => {
    const a = device();
    const b = device();
    const c = device();
    a.sessions.startSession(b.bundle());
    const inner = openEnvelope(p, b.sessions.identity, a.sessions.encryptFor(b.pub, text('x')));
    const forged = sealEnvelope(p, b.pub, { ...inner, sender: c.pub });
    expect(codeOf(() => b.sessions.decrypt(forged))).toBe('decrypt_failed');
    expect(b.sessions.session(c.pub)).toBeUndefined();
    expect(b.sessions.session(a.pub)).toBeUndefined();
  });

  it('rejects a message in a session the recipient does not have', () => {
    const { a, b } = connected();
    const stranger = device();
    // b's genuine ratchet message to a, re-sealed to a device that never talked to b.
    const inner = openEnvelope(p, a.sessions.identity, b.sessions.encryptFor(a.pub, text('x')));
    const resealed = sealEnvelope(p, stranger.pub, inner);
    expect(codeOf(() => stranger.sessions.decrypt(resealed))).toBe('no_session');
  });

  it('rejects a replayed envelope, initial or not', () => {
    const a = device();
    const b = device();
    a.sessions.startSession(b.bundle());
    const first = a.sessions.encryptFor(b.pub, text('first'));
    b.sessions.decrypt(first);
    expect(codeOf(() => b.sessions.decrypt(first))).toBe('replay');
    a.sessions.decrypt(b.sessions.encryptFor(a.pub, text('r')));
    const second = a.sessions.encryptFor(b.pub, text('second'));
    b.sessions.decrypt(second);
    expect(codeOf(() => b.sessions.decrypt(second))).toBe('replay');
  });

  it('rejects a replayed initial message after the session was replaced by a newer handshake', () => {
    const a = device();
    const b = device();
    a.sessions.startSession(b.bundle(false));
    const old = a.sessions.encryptFor(b.pub, text('old'));
    b.sessions.decrypt(old);
    a.sessions.startSession(b.bundle(false));
    b.sessions.decrypt(a.sessions.encryptFor(b.pub, text('new')));
    expect(codeOf(() => b.sessions.decrypt(old))).toBe('replay');
  });

  it('rejects an envelope that is not one of the fixed sizes, or has an unknown version', () => {
    const { a, b } = connected();
    const env = a.sessions.encryptFor(b.pub, text('x'));
    expect(codeOf(() => b.sessions.decrypt(env.slice(0, -1)))).toBe('bad_encoding');
    expect(codeOf(() => b.sessions.decrypt(new Uint8Array([...env, 0])))).toBe('bad_encoding');
    const v2 = env.slice();
    v2[0] = 2;
    expect(codeOf(() => b.sessions.decrypt(v2))).toBe('unsupported_version');
    expect(codeOf(() => b.sessions.decrypt(new Uint8Array(0)))).toBe('bad_encoding');
  });

  it('rejects an envelope with a low-order ephemeral key', () => {
    const { a, b } = connected();
    const env = a.sessions.encryptFor(b.pub, text('x'));
    env.set(new Uint8Array(32), 1);
    expect(codeOf(() => b.sessions.decrypt(env))).toBe('low_order');
  });

  it('rejects sealing content that does not fit the largest envelope', () => {
    const { a } = connected();
    const b = device();
    expect(
      codeOf(() =>
        sealEnvelope(p, b.pub, {
          sender: a.pub,
          initial: null,
          message: new Uint8Array(MAX_ENVELOPE_BYTES),
        }),
      ),
    ).toBe('limit_exceeded');
  });
});

describe('stored device sessions', () => {
  it('continues every session after the device state is stored and restored', () => {
    const { a, b } = connected();
    const inFlight = a.sessions.encryptFor(b.pub, text('in flight'));
    const restored = DeviceSessions.decode(p, b.sessions.identity, b.prekeys, b.sessions.encode());
    expect(read(restored.decrypt(inFlight).plaintext)).toBe('in flight');
    expect(read(a.sessions.decrypt(restored.encryptFor(a.pub, text('back'))).plaintext)).toBe(
      'back',
    );
  });

  it('still rejects a replayed initial message after a restore', () => {
    const a = device();
    const b = device();
    a.sessions.startSession(b.bundle(false));
    const old = a.sessions.encryptFor(b.pub, text('old'));
    b.sessions.decrypt(old);
    a.sessions.startSession(b.bundle(false));
    b.sessions.decrypt(a.sessions.encryptFor(b.pub, text('new')));
    const restored = DeviceSessions.decode(p, b.sessions.identity, b.prekeys, b.sessions.encode());
    expect(codeOf(() => restored.decrypt(old))).toBe('replay');
  });

  it('rejects stored sessions that are truncated, have a trailing byte or a duplicate peer', () => {
    const { b } = connected();
    const bytes = b.sessions.encode();
    const decode = (x: Uint8Array) =>
      codeOf(() => DeviceSessions.decode(p, b.sessions.identity, b.prekeys, x));
    expect(decode(bytes.slice(0, -1))).toBe('bad_encoding');
    expect(decode(new Uint8Array([...bytes, 0]))).toBe('bad_encoding');
    expect(decode(Uint8Array.from(bytes, (x, i) => (i === 0 ? 2 : x)))).toBe('unsupported_version');
    // Two copies of the one session.
    const one = bytes.slice(3, bytes.length - 2 - 32);
    const twice = new Uint8Array([1, 0, 2, ...one, ...one, ...bytes.slice(bytes.length - 2 - 32)]);
    expect(decode(twice)).toBe('bad_encoding');
  });
});

describe('fan-out to a roster', () => {
  it('sends to every roster device but this one, and refuses an expired roster', () => {
    const orgSeed = asEd25519Seed(p.random.bytes(32));
    const orgKey = asEd25519PublicKey(p.ed25519KeyPairFromSeed(orgSeed).publicKey);
    const me = device();
    const others = [device(), device()];
    const now = 1_800_000_000;
    const roster = verifyRoster(
      p,
      signRoster(p, orgSeed, {
        serial: 1,
        issuedAtSeconds: now,
        expiresAtSeconds: now + 60,
        devices: [me.pub, ...others.map((d) => d.pub)],
      }),
      { organizationKey: orgKey, nowSeconds: now },
    );
    const bundles = new Map(others.map((d) => [d.pub.id, d.bundle()]));
    const out = me.sessions.fanOutToRoster(roster, now, text('team'), (d) => bundles.get(d.id));
    expect(out.map((o) => o.recipient.id)).toEqual(others.map((d) => d.pub.id));
    out.forEach((o, i) =>
      expect(read(others[i]!.sessions.decrypt(o.envelope).plaintext)).toBe('team'),
    );
    expect(codeOf(() => me.sessions.fanOutToRoster(roster, now + 60, text('late')))).toBe(
      'roster_expired',
    );
  });
});
