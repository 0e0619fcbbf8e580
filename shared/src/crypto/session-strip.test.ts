/**
 * Sessions without a sending chain (what a saved copy of a device may hold, ADR 0017), and
 * records merged with another copy's sessions.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { loadPrimitives } from './backend.js';
import { decodePrekeyBundle, publicationOf } from './bundle.js';
import { CryptoErrorCode } from './errors.js';
import { fanOut } from './fanout.js';
import { DeviceIdentity } from './identity.js';
import { MAX_ARCHIVED_SESSIONS } from './limits.js';
import { MemoryDeviceStore } from './memory-store.js';
import type { Primitives } from './primitives.js';
import { SessionCipher } from './session-cipher.js';
import { SessionRecord } from './session-record.js';
import { sessionsTransaction } from './store.js';

let p: Primitives;
beforeAll(async () => {
  p = await loadPrimitives({ prefer: 'libsodium', strict: true });
});

function pair() {
  const teamStore = MemoryDeviceStore.create(p, DeviceIdentity.generate(p), 1_800_000_000);
  const team = new SessionCipher(p, teamStore);
  const me = MemoryDeviceStore.createInitiatorOnly(p, DeviceIdentity.generate(p));
  const mine = new SessionCipher(p, me);
  const bundle = () => {
    const pub = publicationOf(teamStore, teamStore.addOneTimePrekeys(1));
    return decodePrekeyBundle(p, { ...pub, oneTime: pub.oneTime[0]! });
  };
  mine.startSession(bundle());
  team.decrypt(mine.encryptFor(team.identity.publicIdentity, new Uint8Array([1])));
  return { team, me, mine, bundle };
}

/** `me`'s record for the team device, stripped, in a new store. */
function strippedCopy(me: MemoryDeviceStore, address: string): MemoryDeviceStore {
  const copy = MemoryDeviceStore.restore(p, me.export());
  copy.commit(sessionsTransaction([[address, copy.loadSession(address)!.withoutSendingChains()]]));
  return copy;
}

const code = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
};

describe('a session without its sending chain', () => {
  it('cannot encrypt, and still reads what the peer sends', () => {
    const { team, me } = pair();
    const peer = team.identity.publicIdentity;
    const copy = new SessionCipher(p, strippedCopy(me, peer.address));
    expect(copy.session(peer)!.canSend).toBe(false);
    expect(code(() => copy.encryptFor(peer, new Uint8Array([2])))).toBe(CryptoErrorCode.NO_SESSION);
    const reply = team.encryptFor(me.identity.publicIdentity, new Uint8Array([9]));
    expect(copy.decrypt(reply).plaintext).toEqual(new Uint8Array([9]));
  });

  it('gets a sending chain of its own from a new ratchet key, unlike the original copy’s', () => {
    const { team, me, mine } = pair();
    const peer = team.identity.publicIdentity;
    const copy = new SessionCipher(p, strippedCopy(me, peer.address));
    const reply = team.encryptFor(me.identity.publicIdentity, new Uint8Array([9]));
    mine.decrypt(reply);
    copy.decrypt(reply);
    expect(copy.session(peer)!.canSend).toBe(true);
    const a = mine.encryptFor(peer, new Uint8Array([1]));
    const b = copy.encryptFor(peer, new Uint8Array([1]));
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
  });

  it('makes fan-out start a fresh session from a bundle, and refuse without one', () => {
    const { team, me, bundle } = pair();
    const peer = team.identity.publicIdentity;
    const copy = strippedCopy(me, peer.address);
    expect(code(() => fanOut(p, copy, [peer], new Uint8Array([3])))).toBe(
      CryptoErrorCode.NO_SESSION,
    );
    const { envelopes, transaction } = fanOut(p, copy, [peer], new Uint8Array([3]), () => bundle());
    copy.commit(transaction);
    expect(copy.loadSession(peer.address)!.sessions).toHaveLength(2);
    expect(team.decrypt(envelopes[0]!.envelope).plaintext).toEqual(new Uint8Array([3]));
  });

  it('drops the pending initial message and survives encoding', () => {
    const me = MemoryDeviceStore.createInitiatorOnly(p, DeviceIdentity.generate(p));
    const teamStore = MemoryDeviceStore.create(p, DeviceIdentity.generate(p), 1_800_000_000);
    const pub = publicationOf(teamStore, []);
    new SessionCipher(p, me).startSession(decodePrekeyBundle(p, { ...pub, oneTime: null }));
    const record = me.loadSession([...me.sessionAddresses()][0]!)!;
    expect(record.current.isPending).toBe(true);
    const stripped = SessionRecord.decode(p, record.withoutSendingChains().encode());
    expect(stripped.current.isPending).toBe(false);
    expect(stripped.current.canSend).toBe(false);
    expect(stripped.written).toBe(true);
  });
});

describe('merging records', () => {
  it('adds the other copy’s sessions as archived, skips held ones, within MAX_ARCHIVED_SESSIONS', () => {
    const { team, me, mine, bundle } = pair();
    const peer = team.identity.publicIdentity;
    const other = new SessionCipher(p, MemoryDeviceStore.restore(p, me.export()));
    for (let i = 0; i < MAX_ARCHIVED_SESSIONS + 2; i++) other.startSession(bundle());
    mine.startSession(bundle());
    const ours = me.loadSession(peer.address)!;
    const theirs = other.store.loadSession(peer.address)!;
    const merged = ours.withArchived(theirs.sessions);
    expect(merged.current).toBe(ours.current);
    expect(merged.archived).toHaveLength(MAX_ARCHIVED_SESSIONS);
    const keys = merged.sessions.map((s) => Buffer.from(s.baseKey).toString('hex'));
    expect(new Set(keys).size).toBe(keys.length);
    expect(ours.withArchived(ours.sessions).sessions).toHaveLength(ours.sessions.length);
  });

  it('keeps the other copy’s current session when our archive is full: the reply on it decrypts', () => {
    const { team, me, mine, bundle } = pair();
    const peer = team.identity.publicIdentity;
    // Ours: a session per visit, until the archive is full and the oldest went.
    for (let i = 0; i < MAX_ARCHIVED_SESSIONS + 1; i++) mine.startSession(bundle());
    const other = new SessionCipher(p, MemoryDeviceStore.restore(p, me.export()));
    other.startSession(bundle()); // the other tab's fresh session
    // The team reads the other tab's message: it answers on that session.
    team.decrypt(other.encryptFor(peer, new Uint8Array([7])));
    const ours = me.loadSession(peer.address)!;
    const theirs = other.store.loadSession(peer.address)!;
    expect(ours.archived).toHaveLength(MAX_ARCHIVED_SESSIONS);
    const merged = ours.withArchived(theirs.withoutSendingChains().sessions);
    const hex = (s: { baseKey: Uint8Array }) => Buffer.from(s.baseKey).toString('hex');
    expect(hex(merged.current)).toBe(hex(ours.current));
    expect(hex(merged.archived[0]!)).toBe(hex(theirs.current));
    expect(merged.archived).toHaveLength(MAX_ARCHIVED_SESSIONS);
    // Our newest archived sessions stay; our oldest one went for theirs.
    expect(merged.archived.slice(1).map(hex)).toEqual(ours.archived.slice(0, -1).map(hex));
    expect(merged.holdsSameSessionsAs(ours)).toBe(false);
    const reply = team.encryptFor(me.identity.publicIdentity, new Uint8Array([9]));
    const copy = MemoryDeviceStore.restore(p, me.export());
    copy.commit(sessionsTransaction([[peer.address, merged]]));
    expect(new SessionCipher(p, copy).decrypt(reply).plaintext).toEqual(new Uint8Array([9]));
  });

  it('(control) a record without the other copy’s current session cannot read the reply on it', () => {
    const { team, me, mine, bundle } = pair();
    const peer = team.identity.publicIdentity;
    for (let i = 0; i < MAX_ARCHIVED_SESSIONS + 1; i++) mine.startSession(bundle());
    const other = new SessionCipher(p, MemoryDeviceStore.restore(p, me.export()));
    other.startSession(bundle());
    team.decrypt(other.encryptFor(peer, new Uint8Array([7])));
    const reply = team.encryptFor(me.identity.publicIdentity, new Uint8Array([9]));
    expect(code(() => new SessionCipher(p, me).decrypt(reply))).toBeDefined();
  });

  it('interleaves by recency: each copy’s newer sessions ahead of the other’s older ones', () => {
    const { team, me, mine, bundle } = pair();
    const peer = team.identity.publicIdentity;
    const other = new SessionCipher(p, MemoryDeviceStore.restore(p, me.export()));
    // Both copies share the first session; each then starts three of its own.
    for (let i = 0; i < 3; i++) mine.startSession(bundle());
    for (let i = 0; i < 3; i++) other.startSession(bundle());
    const hex = (s: { baseKey: Uint8Array }) => Buffer.from(s.baseKey).toString('hex');
    const ours = me.loadSession(peer.address)!.sessions.map(hex);
    const theirs = other.store.loadSession(peer.address)!.sessions.map(hex);
    expect(ours[3]).toBe(theirs[3]); // the shared one, oldest in both
    const merged = me
      .loadSession(peer.address)!
      .withArchived(other.store.loadSession(peer.address)!.sessions);
    // Past MAX_ARCHIVED_SESSIONS (4) the oldest of either copy go: their third, the shared one.
    expect(merged.sessions.map(hex)).toEqual([ours[0], theirs[0], ours[1], theirs[1], ours[2]]);
  });

  it('holds the same sessions as itself, not as a record of other sessions or order', () => {
    const { team, me, mine, bundle } = pair();
    const peer = team.identity.publicIdentity;
    const before = me.loadSession(peer.address)!;
    expect(before.holdsSameSessionsAs(before)).toBe(true);
    expect(before.holdsSameSessionsAs(before.withArchived(before.sessions))).toBe(true);
    mine.startSession(bundle());
    const after = me.loadSession(peer.address)!;
    expect(after.holdsSameSessionsAs(before)).toBe(false);
    expect(before.holdsSameSessionsAs(after)).toBe(false);
  });

  it('refuses a session with another peer', () => {
    const a = pair();
    const b = pair();
    const ra = a.me.loadSession(a.team.identity.publicIdentity.address)!;
    const rb = b.me.loadSession(b.team.identity.publicIdentity.address)!;
    expect(code(() => ra.withArchived(rb.sessions))).toBe(CryptoErrorCode.INTERNAL);
  });
});
