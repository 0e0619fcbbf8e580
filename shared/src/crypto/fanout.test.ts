import { beforeAll, describe, expect, it } from '@jest/globals';
import { MAX_ENVELOPE_BYTES } from '../protocol/limits.js';
import { ENVELOPE_SIZES_BYTES, openEnvelope, sealEnvelope } from './envelope.js';
import {
  DEVICE_SESSIONS_VERSION,
  DeviceSessions,
  MAX_ARCHIVED_SESSIONS,
  MAX_PEER_DEVICES,
  MAX_REMEMBERED_HANDSHAKES_PER_PEER,
} from './fanout.js';
import { DeviceIdentity } from './identity.js';
import { decodePrekeyBundle, publicationOf } from './bundle.js';
import { DevicePrekeys, SIGNED_PREKEY_ROTATION_SECONDS } from './prekeys.js';
import type { PublicIdentity } from './identity.js';
import type { VerifiedPrekeyBundle } from './bundle.js';
import { asEd25519PublicKey, asEd25519Seed } from './keys.js';
import { MAX_PADDED_DATA_BYTES } from './padding.js';
import { bytesEqual } from './encoding.js';
import { decodePqxdhInitial } from './x3dh.js';
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
  bundle(withOneTime?: boolean): VerifiedPrekeyBundle;
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
      const pub = publicationOf(prekeys, withOneTime ? prekeys.addOneTimePrekeys(1) : []);
      return decodePrekeyBundle(p, { ...pub, oneTime: pub.oneTime[0] ?? null });
    },
  };
}

/** The base key of the handshake in a prekey envelope addressed to `to`. */
function baseKeyOf(to: Device, envelope: Uint8Array): Uint8Array {
  const inner = openEnvelope(p, to.sessions.identity, envelope);
  return decodePqxdhInitial(p, inner.initial!).ephemeral;
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

  it('continues archived sessions and remembered handshakes after a restore', () => {
    const a = device();
    const b = device();
    a.sessions.startSession(b.bundle(false));
    const old = a.sessions.encryptFor(b.pub, text('old'));
    b.sessions.decrypt(old);
    const replyInOld = b.sessions.encryptFor(a.pub, text('reply in the old session'));
    a.sessions.startSession(b.bundle(false));
    b.sessions.decrypt(a.sessions.encryptFor(b.pub, text('new')));
    const restoredA = DeviceSessions.decode(p, a.sessions.identity, a.prekeys, a.sessions.encode());
    const restoredB = DeviceSessions.decode(p, b.sessions.identity, b.prekeys, b.sessions.encode());
    expect(restoredB.encode()).toEqual(b.sessions.encode());
    expect(restoredA.sessionsWith(b.pub)).toHaveLength(2);
    expect(read(restoredA.decrypt(replyInOld).plaintext)).toBe('reply in the old session');
    expect(codeOf(() => restoredB.decrypt(old))).toBe('replay');
  });
});

describe('archived sessions and remembered handshakes', () => {
  it('reads a reply sent in the previous session after the initiator restarted, and makes it current', () => {
    const { a, b } = connected();
    const first = a.sessions.session(b.pub)!;
    const reply = b.sessions.encryptFor(a.pub, text('in the old session'));
    const second = a.sessions.startSession(b.bundle());
    expect(a.sessions.sessionsWith(b.pub)).toEqual([second, first]);
    expect(read(a.sessions.decrypt(reply).plaintext)).toBe('in the old session');
    expect(a.sessions.session(b.pub)).toBe(first);
    expect(a.sessions.sessionsWith(b.pub)).toEqual([first, second]);
  });

  it('reads a later prekey message of an answered handshake with its session, even archived, and starts no new one', () => {
    const a = device();
    const b = device();
    a.sessions.startSession(b.bundle());
    const m1 = a.sessions.encryptFor(b.pub, text('m1'));
    const m2 = a.sessions.encryptFor(b.pub, text('m2'));
    b.sessions.decrypt(m1);
    const answered = b.sessions.session(a.pub)!;
    // b restarts towards a: its own new session is current, the answered one archived.
    b.sessions.startSession(a.bundle());
    expect(b.sessions.session(a.pub)).not.toBe(answered);
    expect(read(b.sessions.decrypt(m2).plaintext)).toBe('m2');
    expect(b.sessions.session(a.pub)).toBe(answered);
    expect(b.sessions.sessionsWith(a.pub)).toHaveLength(2);
  });

  it('keeps at most MAX_ARCHIVED_SESSIONS archived sessions, dropping the oldest', () => {
    const a = device();
    const b = device();
    const started = Array.from({ length: MAX_ARCHIVED_SESSIONS + 2 }, () =>
      a.sessions.startSession(b.bundle()),
    );
    const held = a.sessions.sessionsWith(b.pub);
    expect(held).toHaveLength(MAX_ARCHIVED_SESSIONS + 1);
    expect(held).toEqual(started.slice(1).reverse());
  });

  it('rejects a replayed initial message whose session left the archive, leaving the state byte-identical', () => {
    const a = device();
    const b = device();
    a.sessions.startSession(b.bundle(false));
    const old = a.sessions.encryptFor(b.pub, text('old'));
    b.sessions.decrypt(old);
    for (let i = 0; i <= MAX_ARCHIVED_SESSIONS; i++) {
      a.sessions.startSession(b.bundle(false));
      b.sessions.decrypt(a.sessions.encryptFor(b.pub, text(`restart ${i}`)));
    }
    expect(
      b.sessions.sessionsWith(a.pub).some((s) => bytesEqual(s.baseKey, baseKeyOf(b, old))),
    ).toBe(false);
    const before = b.sessions.encode();
    expect(codeOf(() => b.sessions.decrypt(old))).toBe('replay');
    expect(b.sessions.encode()).toEqual(before);
  });

  it('rejects a replayed initial message after its sessions were removed', () => {
    const a = device();
    const b = device();
    a.sessions.startSession(b.bundle(false));
    const old = a.sessions.encryptFor(b.pub, text('old'));
    b.sessions.decrypt(old);
    expect(b.sessions.removeSession(a.pub)).toBe(true);
    expect(b.sessions.session(a.pub)).toBeUndefined();
    expect(b.sessions.peerCount).toBe(1);
    expect(codeOf(() => b.sessions.decrypt(old))).toBe('replay');
    expect(codeOf(() => b.sessions.decrypt(a.sessions.encryptFor(b.pub, text('x'))))).toBe(
      'replay',
    );
  });

  it('forgets a handshake once its signed prekey is gone, and the replay then fails on the prekey', () => {
    const a = device();
    const b = device();
    a.sessions.startSession(b.bundle(false));
    const old = a.sessions.encryptFor(b.pub, text('old'));
    b.sessions.decrypt(old);
    b.sessions.removeSession(a.pub);
    b.prekeys.rotate(1_800_000_000 + SIGNED_PREKEY_ROTATION_SECONDS);
    expect(b.sessions.pruneHandshakes()).toBe(0);
    b.prekeys.rotate(1_800_000_000 + 2 * SIGNED_PREKEY_ROTATION_SECONDS);
    expect(b.sessions.pruneHandshakes()).toBe(1);
    expect(b.sessions.peerCount).toBe(0);
    const before = b.sessions.encode();
    expect(codeOf(() => b.sessions.decrypt(old))).toBe('unknown_prekey');
    expect(b.sessions.encode()).toEqual(before);
  });

  it('remembers at most MAX_REMEMBERED_HANDSHAKES_PER_PEER handshakes of one peer; beyond, its oldest replay is no longer caught (documented residual)', () => {
    // Only a itself can push its own handshakes out (each needs a's identity secret), and only
    // while the signed prekey they name is held: ADR 0006 accepts this residual.
    const a = device();
    const b = device();
    const firsts: Uint8Array[] = [];
    for (let i = 0; i < MAX_REMEMBERED_HANDSHAKES_PER_PEER + MAX_ARCHIVED_SESSIONS + 2; i++) {
      a.sessions.startSession(b.bundle(false));
      const env = a.sessions.encryptFor(b.pub, text(`handshake ${i}`));
      b.sessions.decrypt(env);
      firsts.push(env);
    }
    const stored = b.sessions.encode();
    expect(DeviceSessions.decode(p, b.sessions.identity, b.prekeys, stored).encode()).toEqual(
      stored,
    );
    // A recent one is remembered (its session left the archive long ago).
    expect(codeOf(() => b.sessions.decrypt(firsts[MAX_ARCHIVED_SESSIONS + 2]!))).toBe('replay');
    // The oldest is neither held nor remembered.
    expect(read(b.sessions.decrypt(firsts[0]!).plaintext)).toBe('handshake 0');
  });

  it('tries every held session on a tampered message and changes none of them', () => {
    const { a, b } = connected();
    b.sessions.startSession(a.bundle());
    a.sessions.decrypt(b.sessions.encryptFor(a.pub, text('second handshake')));
    expect(a.sessions.sessionsWith(b.pub)).toHaveLength(2);
    const env = b.sessions.encryptFor(a.pub, text('x'));
    const inner = openEnvelope(p, a.sessions.identity, env);
    const message = inner.message.slice();
    message[message.length - 1]! ^= 1;
    const tampered = sealEnvelope(p, a.pub, { ...inner, message });
    const before = a.sessions.encode();
    expect(codeOf(() => a.sessions.decrypt(tampered))).toBe('decrypt_failed');
    expect(a.sessions.encode()).toEqual(before);
    expect(read(a.sessions.decrypt(env).plaintext)).toBe('x');
  });
});

describe('peer bound', () => {
  /** A stored state of b holding MAX_PEER_DEVICES peers with one remembered handshake each. */
  function full(b: Device): Uint8Array {
    const spk = b.prekeys.currentSignedPrekey.id;
    const peers: StoredPeer[] = [];
    for (let i = 0; i < MAX_PEER_DEVICES; i++) {
      const key = new Uint8Array(32);
      key.set(be32(i));
      peers.push({
        identity: DeviceIdentity.generate(p).publicIdentity.encode(),
        current: null,
        archived: [],
        handshakes: [[key, spk]],
      });
    }
    return storedState(peers);
  }

  it('holds MAX_PEER_DEVICES peers, refuses one more (state unchanged), and takes it once pruning frees room', () => {
    const b = device();
    const sessions = DeviceSessions.decode(p, b.sessions.identity, b.prekeys, full(b));
    expect(sessions.peerCount).toBe(MAX_PEER_DEVICES);
    const a = device();
    a.sessions.startSession(b.bundle());
    const env = a.sessions.encryptFor(b.pub, text('hello'));
    const before = sessions.encode();
    const oneTime = b.prekeys.oneTimeCount;
    expect(codeOf(() => sessions.decrypt(env))).toBe('limit_exceeded');
    expect(sessions.encode()).toEqual(before);
    expect(b.prekeys.oneTimeCount).toBe(oneTime);
    expect(codeOf(() => sessions.startSession(a.bundle()))).toBe('limit_exceeded');
    expect(codeOf(() => sessions.fanOut([a.pub], text('x'), () => a.bundle()))).toBe(
      'limit_exceeded',
    );
    // Two rotations drop the signed prekey those handshakes used; a's is then unknown too, so
    // a starts again with the new bundle.
    b.prekeys.rotate(1_800_000_000 + SIGNED_PREKEY_ROTATION_SECONDS);
    b.prekeys.rotate(1_800_000_000 + 2 * SIGNED_PREKEY_ROTATION_SECONDS);
    a.sessions.startSession(b.bundle());
    expect(read(sessions.decrypt(a.sessions.encryptFor(b.pub, text('now'))).plaintext)).toBe('now');
    expect(sessions.peerCount).toBe(1);
  }, 120_000);
});

/** The documented layout of `DeviceSessions.encode`, written independently of the code. */
interface StoredPeer {
  readonly identity: Uint8Array;
  readonly current: Uint8Array | null;
  readonly archived: readonly Uint8Array[];
  readonly handshakes: readonly (readonly [Uint8Array, number])[];
  /** Overrides the has-current flag byte. */
  readonly flag?: number;
}

function be32(n: number): number[] {
  return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

function storedState(peers: readonly StoredPeer[], version = DEVICE_SESSIONS_VERSION): Uint8Array {
  const out: number[] = [version, ...be32(peers.length)];
  for (const peer of peers) {
    out.push(...peer.identity);
    out.push(peer.flag ?? (peer.current === null ? 0 : 1));
    if (peer.current !== null) out.push(...be32(peer.current.length), ...peer.current);
    out.push(...be32(peer.archived.length));
    for (const s of peer.archived) out.push(...be32(s.length), ...s);
    out.push(...be32(peer.handshakes.length));
    for (const [key, id] of peer.handshakes) out.push(...key, ...be32(id));
  }
  return Uint8Array.from(out);
}

describe('stored device sessions: strict decoding', () => {
  /** b holds two sessions with a (current and one archived) and two remembered handshakes. */
  function twoHandshakes(): { a: Device; b: Device; peer: StoredPeer } {
    const a = device();
    const b = device();
    for (const body of ['one', 'two']) {
      a.sessions.startSession(b.bundle());
      b.sessions.decrypt(a.sessions.encryptFor(b.pub, text(body)));
    }
    const [current, archived] = b.sessions.sessionsWith(a.pub);
    const spk = b.prekeys.currentSignedPrekey.id;
    const peer: StoredPeer = {
      identity: a.pub.encode(),
      current: current!.encode(),
      archived: [archived!.encode()],
      handshakes: [
        [archived!.baseKey, spk],
        [current!.baseKey, spk],
      ],
    };
    return { a, b, peer };
  }

  const decodeCode = (b: Device, bytes: Uint8Array): string | undefined =>
    codeOf(() => DeviceSessions.decode(p, b.sessions.identity, b.prekeys, bytes));

  it('matches the documented layout byte for byte', () => {
    const { b, peer } = twoHandshakes();
    expect(b.sessions.encode()).toEqual(storedState([peer]));
    const empty = new DeviceSessions(p, b.sessions.identity, b.prekeys).encode();
    expect(empty).toEqual(storedState([]));
  });

  it('decodes a peer that has only remembered handshakes (its sessions were removed)', () => {
    const { a, b, peer } = twoHandshakes();
    const bytes = storedState([{ ...peer, current: null, archived: [] }]);
    const restored = DeviceSessions.decode(p, b.sessions.identity, b.prekeys, bytes);
    expect(restored.peerCount).toBe(1);
    expect(restored.session(a.pub)).toBeUndefined();
    expect(restored.encode()).toEqual(bytes);
  });

  it('rejects the version 1 encoding with unsupported_version (it is not migrated)', () => {
    const { b, peer } = twoHandshakes();
    expect(decodeCode(b, storedState([peer], 1))).toBe('unsupported_version');
    expect(decodeCode(b, Uint8Array.from([1, 0, 0, 0, 0]))).toBe('unsupported_version');
  });

  it('rejects an unknown newer version', () => {
    const { b, peer } = twoHandshakes();
    expect(decodeCode(b, storedState([peer], DEVICE_SESSIONS_VERSION + 1))).toBe(
      'unsupported_version',
    );
  });

  it('rejects empty, truncated and trailing bytes', () => {
    const { b } = twoHandshakes();
    const bytes = b.sessions.encode();
    expect(decodeCode(b, new Uint8Array(0))).toBe('bad_encoding');
    expect(decodeCode(b, bytes.slice(0, -1))).toBe('bad_encoding');
    expect(decodeCode(b, bytes.slice(0, 3))).toBe('bad_encoding');
    expect(decodeCode(b, new Uint8Array([...bytes, 0]))).toBe('bad_encoding');
  });

  it('rejects a peer count above MAX_PEER_DEVICES before reading any peer', () => {
    const { b } = twoHandshakes();
    const bytes = Uint8Array.from([DEVICE_SESSIONS_VERSION, ...be32(MAX_PEER_DEVICES + 1)]);
    expect(decodeCode(b, bytes)).toBe('bad_encoding');
    expect(decodeCode(b, Uint8Array.from([DEVICE_SESSIONS_VERSION, 0xff, 0xff, 0xff, 0xff]))).toBe(
      'bad_encoding',
    );
  });

  it('rejects more archived sessions than MAX_ARCHIVED_SESSIONS', () => {
    const { b, peer } = twoHandshakes();
    const tooMany = Array.from({ length: MAX_ARCHIVED_SESSIONS + 1 }, () => peer.archived[0]!);
    expect(decodeCode(b, storedState([{ ...peer, archived: tooMany }]))).toBe('bad_encoding');
  });

  it('rejects more remembered handshakes than MAX_REMEMBERED_HANDSHAKES_PER_PEER', () => {
    const { b, peer } = twoHandshakes();
    const handshakes = Array.from(
      { length: MAX_REMEMBERED_HANDSHAKES_PER_PEER + 1 },
      (_, i) => [new Uint8Array(32).fill(i + 1), 1] as const,
    );
    expect(decodeCode(b, storedState([{ ...peer, handshakes }]))).toBe('bad_encoding');
  });

  it('rejects the same peer twice', () => {
    const { b, peer } = twoHandshakes();
    expect(decodeCode(b, storedState([peer, peer]))).toBe('bad_encoding');
  });

  it('rejects the same session twice under one peer', () => {
    const { b, peer } = twoHandshakes();
    expect(decodeCode(b, storedState([{ ...peer, archived: [peer.current!] }]))).toBe(
      'bad_encoding',
    );
  });

  it('rejects the same handshake remembered twice', () => {
    const { b, peer } = twoHandshakes();
    const twice = [peer.handshakes[0]!, peer.handshakes[0]!];
    expect(decodeCode(b, storedState([{ ...peer, handshakes: twice }]))).toBe('bad_encoding');
  });

  it("rejects a session stored under another peer's identity", () => {
    const { b, peer } = twoHandshakes();
    expect(decodeCode(b, storedState([{ ...peer, identity: device().pub.encode() }]))).toBe(
      'bad_encoding',
    );
  });

  it('rejects archived sessions without a current one', () => {
    const { b, peer } = twoHandshakes();
    expect(decodeCode(b, storedState([{ ...peer, current: null }]))).toBe('bad_encoding');
  });

  it('rejects a peer with neither sessions nor handshakes', () => {
    const { b, peer } = twoHandshakes();
    const nothing = { ...peer, current: null, archived: [], handshakes: [] };
    expect(decodeCode(b, storedState([nothing]))).toBe('bad_encoding');
  });

  it('rejects a has-current flag that is neither 0 nor 1', () => {
    const { b, peer } = twoHandshakes();
    expect(decodeCode(b, storedState([{ ...peer, flag: 2 }]))).toBe('bad_encoding');
  });

  it('rejects a session length that runs past the end', () => {
    const { b, peer } = twoHandshakes();
    const bytes = storedState([{ ...peer, archived: [], handshakes: [] }]);
    // The current session's length follows version, count, identity and flag.
    bytes.set(be32(bytes.length), 1 + 4 + 129 + 1);
    expect(decodeCode(b, bytes)).toBe('bad_encoding');
  });

  it('rejects a tampered identity of a peer that has only handshakes', () => {
    const { b, peer } = twoHandshakes();
    const identity = peer.identity.slice();
    identity[100]! ^= 1;
    const bytes = storedState([{ ...peer, identity, current: null, archived: [] }]);
    expect(decodeCode(b, bytes)).toBe('bad_signature');
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
