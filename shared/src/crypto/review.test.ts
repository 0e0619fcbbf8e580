/**
 * Regression tests from the independent review of the crypto core. Each is named after the
 * defect it pins. The two session defects (simultaneous initiation, handshake replay after a
 * flood) were fixed by keeping a peer's archived sessions and a per-peer handshake memory (ADR
 * 0006, the "Devices, fan-out and the roster" part of docs/protocol.md).
 */
import { afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { DeviceSessions } from './fanout.js';
import { DeviceIdentity } from './identity.js';
import { decodePrekeyBundle, publicationOf } from './bundle.js';
import { DevicePrekeys } from './prekeys.js';
import type { PublicIdentity } from './identity.js';
import type { VerifiedPrekeyBundle } from './bundle.js';
import { asEd25519PublicKey, asEd25519Seed } from './keys.js';
import { createNobleBackend } from './noble.js';
import type { Primitives } from './primitives.js';
import type { Roster } from './roster.js';
import { signRoster, verifyRoster } from './roster.js';
import { loadSodiumBackend } from './sodium.js';

/** The size of the global handshake FIFO the flood used to push A's handshake out of. */
const FLOOD_HANDSHAKES = 1000;

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
  bundle(withOneTime?: boolean): VerifiedPrekeyBundle;
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
  it('simultaneous initiation: two devices that start sessions with each other at once can still read each other afterwards', () => {
    // Two coordinators write to each other for the first time at the same moment: each has a
    // pending initiator session when the other's prekey message arrives. Before the fix each
    // side replaced its own session with the responder side of the other's handshake, so A
    // spoke the session of B's handshake and B that of A's and every later message failed.
    // Now each side archives its own session and tries it on decryption.
    const a = device();
    const b = device();
    a.sessions.startSession(b.bundle());
    b.sessions.startSession(a.bundle());
    const fromA = a.sessions.encryptFor(b.pub, text('a1'));
    const fromB = b.sessions.encryptFor(a.pub, text('b1'));
    expect(read(b.sessions.decrypt(fromA).plaintext)).toBe('a1');
    expect(read(a.sessions.decrypt(fromB).plaintext)).toBe('b1');
    // Both sides now think they have a working session; the next messages must get through.
    expect(read(b.sessions.decrypt(a.sessions.encryptFor(b.pub, text('a2'))).plaintext)).toBe('a2');
    expect(read(a.sessions.decrypt(b.sessions.encryptFor(a.pub, text('b2'))).plaintext)).toBe('b2');
  });

  it('handshake replay: an old prekey message replayed after a flood of throwaway handshakes is still rejected', () => {
    // Anyone may open a session with a coordinator device (contacts are anonymous). Before the
    // fix the memory of answered handshakes was one global FIFO of 1000 entries: a relay that
    // captured A's first envelope (sent without a one-time prekey, e.g. when they had run
    // out) flooded the device with 1000 handshakes of its own and then replayed A's old
    // envelope, which replaced A's current session and delivered the old message again. The
    // memory is now per peer device, and only A can add to A's.
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
    for (let i = 0; i < FLOOD_HANDSHAKES; i++) {
      const m = new DeviceSessions(p, DeviceIdentity.generate(p), null);
      m.startSession(flood);
      b.sessions.decrypt(m.encryptFor(b.pub, text('x')));
    }
    const before = b.sessions.encode();
    expect(codeOf(() => b.sessions.decrypt(captured))).toBe('replay');
    expect(b.sessions.encode()).toEqual(before);
    // A's current session is intact: both directions still work.
    expect(read(b.sessions.decrypt(a.sessions.encryptFor(b.pub, text('third'))).plaintext)).toBe(
      'third',
    );
    expect(read(a.sessions.decrypt(b.sessions.encryptFor(a.pub, text('ok'))).plaintext)).toBe('ok');
  }, 120_000);
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
