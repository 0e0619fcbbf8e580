/**
 * Regression tests from the independent review of the crypto core. Each is named after the
 * defect it pins. Tests declared with `it.failing` document a defect that is NOT fixed yet (it
 * needs a design change: keeping a peer's previous sessions, see ADR 0006 and the "Devices,
 * fan-out and the roster" part of docs/protocol.md): they pass while the defect exists and start
 * failing the day it is fixed, so that whoever fixes it turns them into ordinary tests.
 */
import { afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { DeviceSessions, MAX_REMEMBERED_HANDSHAKES } from './fanout.js';
import { DeviceIdentity, DevicePrekeys, decodePrekeyBundle } from './identity.js';
import type { PrekeyBundle, PublicIdentity } from './identity.js';
import { asEd25519PublicKey, asEd25519Seed } from './keys.js';
import { createNobleBackend } from './noble.js';
import type { Primitives } from './primitives.js';
import type { Roster } from './roster.js';
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
  readonly pub: PublicIdentity;
  bundle(withOneTime?: boolean): PrekeyBundle;
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

describe('review: randomness', () => {
  const realCrypto = Object.getOwnPropertyDescriptor(globalThis, 'crypto');
  afterEach(() => {
    if (realCrypto !== undefined) Object.defineProperty(globalThis, 'crypto', realCrypto);
  });

  it('noble random source: more than 65,536 bytes in one call are drawn in chunks, as on libsodium', () => {
    // getRandomValues refuses more than 65,536 bytes per call (QuotaExceededError); the
    // libsodium backend chunks, the noble one must too, or the backends disagree.
    const noble = createNobleBackend();
    const big = noble.random.bytes(65_536 * 2 + 7);
    expect(big.length).toBe(65_536 * 2 + 7);
    expect(p.random.bytes(65_536 * 2 + 7).length).toBe(65_536 * 2 + 7);
    // Not all zero in any chunk (a chunk that was never filled would be).
    for (const start of [0, 65_536, 131_072]) {
      expect(big.subarray(start, start + 7).some((b) => b !== 0)).toBe(true);
    }
  });

  it('both backends fail closed (no bytes) when the platform has no Web Crypto', () => {
    const noble = createNobleBackend();
    Object.defineProperty(globalThis, 'crypto', { value: undefined, configurable: true });
    expect(() => p.random.bytes(32)).toThrow();
    expect(() => noble.random.bytes(32)).toThrow();
  });
});

describe('review: sessions between two devices', () => {
  it.failing(
    'simultaneous initiation: two devices that start sessions with each other at once can still read each other afterwards',
    () => {
      // Two coordinators write to each other for the first time at the same moment: each has a
      // pending initiator session when the other's prekey message arrives. Each side replaces
      // its own session with the responder side of the other's handshake, so from then on A
      // speaks the session of B's handshake and B the session of A's: every later message fails
      // on both sides (lost, with no recovery short of a new handshake).
      const a = device();
      const b = device();
      a.sessions.startSession(b.bundle());
      b.sessions.startSession(a.bundle());
      const fromA = a.sessions.encryptFor(b.pub, text('a1'));
      const fromB = b.sessions.encryptFor(a.pub, text('b1'));
      expect(read(b.sessions.decrypt(fromA).plaintext)).toBe('a1');
      expect(read(a.sessions.decrypt(fromB).plaintext)).toBe('b1');
      // Both sides now think they have a working session; the next messages must get through.
      expect(read(b.sessions.decrypt(a.sessions.encryptFor(b.pub, text('a2'))).plaintext)).toBe(
        'a2',
      );
      expect(read(a.sessions.decrypt(b.sessions.encryptFor(a.pub, text('b2'))).plaintext)).toBe(
        'b2',
      );
    },
  );

  it.failing(
    'handshake replay: an old prekey message replayed after a flood of throwaway handshakes is still rejected',
    () => {
      // Anyone may open a session with a coordinator device (contacts are anonymous), and the
      // memory of answered handshakes is one global FIFO of MAX_REMEMBERED_HANDSHAKES. A relay
      // that captured A's first envelope (sent without a one-time prekey, e.g. when they had
      // run out) floods the device with that many handshakes of its own, and then replays A's
      // old envelope: the device replaces A's current session with the old one and delivers the
      // old message a second time.
      const a = device();
      const b = device();
      const bundle = b.bundle(false);
      a.sessions.startSession(bundle);
      const captured = a.sessions.encryptFor(b.pub, text('first session'));
      expect(read(b.sessions.decrypt(captured).plaintext)).toBe('first session');
      // A starts over (a reloaded page, a restored device) with a new handshake.
      a.sessions.startSession(b.bundle(false));
      expect(read(b.sessions.decrypt(a.sessions.encryptFor(b.pub, text('second'))).plaintext)).toBe(
        'second',
      );
      expect(codeOf(() => b.sessions.decrypt(captured))).toBe('replay');
      // The flood: throwaway identities, each a valid handshake.
      const flood = b.bundle(false);
      for (let i = 0; i < MAX_REMEMBERED_HANDSHAKES; i++) {
        const m = new DeviceSessions(p, DeviceIdentity.generate(p), null);
        m.startSession(flood);
        b.sessions.decrypt(m.encryptFor(b.pub, text('x')));
      }
      expect(codeOf(() => b.sessions.decrypt(captured))).toBe('replay');
    },
    120_000,
  );
});

describe('review: revoked roster devices', () => {
  it('revoked device: once the contact accepts a roster without it, its messages are refused', () => {
    const orgSeed = asEd25519Seed(p.random.bytes(32));
    const orgKey = asEd25519PublicKey(p.ed25519KeyPairFromSeed(orgSeed).publicKey);
    const now = 1_800_000_000;
    const x = device();
    const y = device();
    const roster = (serial: number, devices: PublicIdentity[]): Roster =>
      verifyRoster(
        p,
        signRoster(p, orgSeed, {
          serial,
          issuedAtSeconds: now,
          expiresAtSeconds: now + 3600,
          devices,
        }),
        { organizationKey: orgKey, nowSeconds: now },
      );
    const contact = new DeviceSessions(p, DeviceIdentity.generate(p), null);
    const bundles = new Map([x, y].map((d) => [d.pub.id, d.bundle()]));
    const first = roster(1, [x.pub, y.pub]);
    for (const out of contact.fanOutToRoster(first, now, text('help'), (d) => bundles.get(d.id))) {
      [x, y].find((d) => d.pub.equals(out.recipient))!.sessions.decrypt(out.envelope);
    }
    const contactPub = contact.identity.publicIdentity;
    // X's phone is seized; the organization signs a roster without it.
    const second = roster(2, [y.pub]);
    expect(contact.retainRosterSessions(second)).toBe(1);
    // The seized device still holds its session and writes to the contact: refused.
    const fromSeized = x.sessions.encryptFor(contactPub, text('meet me at the station'));
    expect(codeOf(() => contact.decrypt(fromSeized))).toBe('no_session');
    // Y, still on the roster, is read as before, and fan-out goes to Y alone.
    expect(read(contact.decrypt(y.sessions.encryptFor(contactPub, text('ok'))).plaintext)).toBe(
      'ok',
    );
    expect(contact.fanOutToRoster(second, now, text('thanks')).map((o) => o.recipient.id)).toEqual([
      y.pub.id,
    ]);
    expect(contact.removeSession(y.pub)).toBe(true);
    expect(contact.removeSession(y.pub)).toBe(false);
  });
});
