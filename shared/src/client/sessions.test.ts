import { beforeAll, describe, expect, it } from '@jest/globals';
import { loadPrimitives } from '../crypto/backend.js';
import { decodePrekeyBundle, publicationOf, toWirePublication } from '../crypto/bundle.js';
import { DeviceIdentity, type PublicIdentity } from '../crypto/identity.js';
import { MemoryDeviceStore } from '../crypto/memory-store.js';
import type { Primitives } from '../crypto/primitives.js';
import { FakeClock } from '@passage/testing/client-fakes';
import { FIXED_NOW_SECONDS, utf8 } from '@passage/testing/crypto-fixtures';
import { ClientError, RelayError } from './errors.js';
import {
  Sessions,
  mailboxOf,
  relayBundleSource,
  type BundleSource,
  type Requester,
} from './sessions.js';

let p: Primitives;

beforeAll(async () => {
  p = await loadPrimitives();
});

/** A device with prekeys (a coordinator's) and its published bundle. */
function device(): { store: MemoryDeviceStore; identity: PublicIdentity } {
  const store = MemoryDeviceStore.create(p, DeviceIdentity.generate(p), FIXED_NOW_SECONDS);
  store.addOneTimePrekeys(2);
  return { store, identity: store.identity.publicIdentity };
}

/** The published parts of `store`, as the relay hands them out (one one-time prekey). */
function wireBundle(store: MemoryDeviceStore) {
  const oneTime = [store.findOneTimePrekey(0)!];
  const pub = toWirePublication(
    publicationOf(
      {
        publicIdentity: store.identity.publicIdentity,
        currentSignedPrekey: store.currentSignedPrekey,
        currentKemPrekey: store.currentKemPrekey,
      },
      oneTime,
    ),
  );
  return { identity: pub.identity, signedPrekey: pub.signedPrekey, oneTime: pub.oneTime[0]! };
}

/** A directory of real stores' bundles (what the relay would hand out). */
function directory(stores: readonly MemoryDeviceStore[]): BundleSource {
  return (d) => {
    const store = stores.find((s) => s.identity.publicIdentity.equals(d));
    if (store === undefined) return Promise.resolve(null);
    const w = wireBundle(store);
    return Promise.resolve(
      decodePrekeyBundle(p, {
        identity: Buffer.from(w.identity, 'base64url'),
        signedPrekey: Buffer.from(w.signedPrekey, 'base64url'),
        oneTime: { id: w.oneTime.id, key: Buffer.from(w.oneTime.key, 'base64url') },
      }),
    );
  };
}

function contactSessions(bundles: BundleSource): Sessions {
  return new Sessions({
    p,
    store: MemoryDeviceStore.createInitiatorOnly(p, DeviceIdentity.generate(p)),
    bundles,
    clock: new FakeClock(FIXED_NOW_SECONDS * 1000),
  });
}

function teamSessions(store: MemoryDeviceStore): Sessions {
  return new Sessions({
    p,
    store,
    bundles: () => Promise.resolve(null),
    clock: new FakeClock(FIXED_NOW_SECONDS * 1000),
  });
}

describe('Sessions.seal and open', () => {
  it('seals one plaintext for every device (each to its mailbox); each opens it and can answer', async () => {
    const team = [device(), device(), device()];
    const contact = contactSessions(directory(team.map((d) => d.store)));
    const result = await contact.seal(
      team.map((d) => d.identity),
      utf8('hello'),
    );
    expect(result.unreachable).toEqual([]);
    expect(result.sealed.map((s) => s.mailbox)).toEqual(team.map((d) => mailboxOf(p, d.identity)));
    expect(contact.store.sessionCount).toBe(3);
    for (const [i, s] of result.sealed.entries()) {
      const receiver = teamSessions(team[i]!.store);
      const opened = receiver.open(s.envelope);
      expect(opened).toMatchObject({
        ok: true,
        consumedOneTimePrekey: true,
        rotatedPrekeys: false,
      });
      expect(opened.ok && opened.sender.equals(contact.self)).toBe(true);
      expect(opened.ok && Buffer.from(opened.plaintext).toString()).toBe('hello');
      expect(receiver.canSend(contact.self)).toBe(true);
    }
  });

  it('a second message needs no bundle (the session is committed)', async () => {
    const team = [device()];
    let fetches = 0;
    const source = directory([team[0]!.store]);
    const contact = contactSessions((d) => {
      fetches++;
      return source(d);
    });
    await contact.seal([team[0]!.identity], utf8('one'));
    await contact.seal([team[0]!.identity], utf8('two'));
    expect(fetches).toBe(1);
  });

  it('leaves out a device that published nothing (no_bundle) and seals for the others', async () => {
    const [a, b] = [device(), device()];
    const contact = contactSessions(directory([a.store]));
    const result = await contact.seal([a.identity, b.identity], utf8('hi'));
    expect(result.sealed.map((s) => s.recipient.id)).toEqual([a.identity.id]);
    expect(result.unreachable).toEqual([{ device: b.identity, reason: 'no_bundle' }]);
  });

  it('leaves out a device whose bundle the relay swapped (bad_bundle)', async () => {
    const [a, b] = [device(), device()];
    const source = directory([a.store]);
    const contact = contactSessions((d) =>
      d.equals(b.identity) ? Promise.reject(new ClientError('bad_bundle')) : source(d),
    );
    const result = await contact.seal([a.identity, b.identity], utf8('hi'));
    expect(result.unreachable).toEqual([{ device: b.identity, reason: 'bad_bundle' }]);
  });

  it('refuses when no device is reachable (no_recipients), with nothing committed', async () => {
    const contact = contactSessions(() => Promise.resolve(null));
    await expect(contact.seal([device().identity], utf8('hi'))).rejects.toMatchObject({
      code: 'no_recipients',
    });
    expect(contact.store.sessionCount).toBe(0);
  });

  it('a fetch the relay could not answer rejects the whole seal, with nothing committed', async () => {
    const [a, b] = [device(), device()];
    const source = directory([a.store]);
    const contact = contactSessions((d) =>
      d.equals(b.identity) ? Promise.reject(new RelayError('rate_limited', true)) : source(d),
    );
    await expect(contact.seal([a.identity, b.identity], utf8('hi'))).rejects.toMatchObject({
      code: 'rate_limited',
    });
    expect(contact.store.sessionCount).toBe(0);
  });

  it('open answers a code for garbage, never throws', () => {
    const me = teamSessions(device().store);
    for (const garbage of [new Uint8Array(0), new Uint8Array(300).fill(7)]) {
      const r = me.open(garbage);
      expect(r.ok).toBe(false);
      expect(r.ok === false && r.retry).toBe(false);
    }
  });

  it('open refuses the same envelope twice (replay) and changes nothing the second time', async () => {
    const a = device();
    const contact = contactSessions(directory([a.store]));
    const { sealed } = await contact.seal([a.identity], utf8('once'));
    const me = teamSessions(a.store);
    expect(me.open(sealed[0]!.envelope).ok).toBe(true);
    expect(me.open(sealed[0]!.envelope)).toEqual({ ok: false, code: 'replay', retry: false });
  });

  it("a device that is not the envelope's recipient cannot open it", async () => {
    const a = device();
    const other = contactSessions(directory([a.store]));
    const { sealed } = await other.seal([a.identity], utf8('x'));
    for (const wrong of [
      teamSessions(device().store),
      contactSessions(() => Promise.resolve(null)),
    ]) {
      expect(wrong.open(sealed[0]!.envelope).ok).toBe(false);
      expect(wrong.store.sessionCount).toBe(0);
    }
  });

  it('forget and retainRoster delete sessions', async () => {
    const [a, b] = [device(), device()];
    const contact = contactSessions(directory([a.store, b.store]));
    await contact.seal([a.identity, b.identity], utf8('x'));
    expect(contact.forget([a.identity, a.identity])).toBe(1);
    expect(contact.canSend(a.identity)).toBe(false);
    expect(contact.canSend(b.identity)).toBe(true);
  });
});

describe('relayBundleSource', () => {
  const answering =
    (answer: (mailbox: string) => unknown): Requester =>
    (frame) =>
      Promise.resolve(answer((frame as { mailbox: string }).mailbox) as never);

  it("fetches and verifies the device's bundle from its mailbox", async () => {
    const a = device();
    const source = relayBundleSource(
      p,
      answering((mailbox) => ({ t: 'prekeys.bundle', mailbox, bundle: wireBundle(a.store) })),
    );
    const bundle = await source(a.identity);
    expect(bundle?.identity.equals(a.identity)).toBe(true);
    expect(bundle?.oneTimePrekey?.id).toBe(0);
  });

  it('answers null for a device that published nothing', async () => {
    const source = relayBundleSource(
      p,
      answering((mailbox) => ({ mailbox, bundle: null })),
    );
    expect(await source(device().identity)).toBeNull();
  });

  it("refuses another device's bundle (bad_bundle)", async () => {
    const [a, b] = [device(), device()];
    const source = relayBundleSource(
      p,
      answering((mailbox) => ({ mailbox, bundle: wireBundle(b.store) })),
    );
    await expect(source(a.identity)).rejects.toMatchObject({ code: 'bad_bundle' });
  });

  it('refuses an answer for another mailbox (bad_bundle)', async () => {
    const a = device();
    const source = relayBundleSource(
      p,
      answering(() => ({ mailbox: mailboxOf(p, device().identity), bundle: wireBundle(a.store) })),
    );
    await expect(source(a.identity)).rejects.toMatchObject({ code: 'bad_bundle' });
  });

  it('refuses a bundle that does not decode or verify (bad_bundle)', async () => {
    const a = device();
    const w = wireBundle(a.store);
    for (const bundle of [
      { ...w, signedPrekey: 'not base64url!' },
      { ...w, signedPrekey: w.signedPrekey.slice(0, -4) },
      { ...w, identity: wireBundle(device().store).identity },
    ]) {
      const source = relayBundleSource(
        p,
        answering((mailbox) => ({ mailbox, bundle })),
      );
      await expect(source(a.identity)).rejects.toBeInstanceOf(ClientError);
    }
  });

  it("passes the relay's own refusal on", async () => {
    const source = relayBundleSource(p, () => Promise.reject(new RelayError('rate_limited', true)));
    await expect(source(device().identity)).rejects.toBeInstanceOf(RelayError);
  });
});
