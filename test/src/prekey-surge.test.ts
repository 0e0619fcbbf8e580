/**
 * Many new contacts reaching one coordinator device at once, over the real relay: past the
 * per-mailbox one-time prekey rate the relay answers bundles without a one-time prekey (ADR
 * 0023), and each contact still starts a session the device opens; the one-time prekeys the
 * device holds fall only by what the rate handed out.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { loadPrimitives } from '@passage/shared/crypto/backend';
import { publicationOf, toWirePublication } from '@passage/shared/crypto/bundle';
import { DeviceIdentity } from '@passage/shared/crypto/identity';
import { MemoryDeviceStore } from '@passage/shared/crypto/memory-store';
import type { Primitives } from '@passage/shared/crypto/primitives';
import { RelayError } from '@passage/shared/client/errors';
import {
  Sessions,
  mailboxOf,
  relayBundleSource,
  type Requester,
} from '@passage/shared/client/sessions';
import { PROTOCOL_VERSION } from '@passage/shared/protocol/limits';
import { FakeClock } from '@passage/testing/client-fakes';
import { FIXED_NOW_SECONDS } from '@passage/testing/crypto-fixtures';
import { startInProcessRelay, type InProcessRelay } from '@passage/testing/in-process';
import { TestClient, type TestIdentity } from '@passage/testing/test-client';

let p: Primitives;
let relay: InProcessRelay;
const opened: TestClient[] = [];

beforeAll(async () => {
  p = await loadPrimitives();
  relay = await startInProcessRelay({
    env: { PREKEY_FETCHES_PER_MINUTE: '1', PREKEY_FETCH_BURST: '2' },
  });
});

afterAll(async () => {
  await Promise.all(opened.map((c) => c.close()));
  await relay.stop();
});

async function connect(): Promise<TestClient> {
  const c = await TestClient.connect(relay.wsUrl);
  opened.push(c);
  return c;
}

/** `request` over a raw connection: each frame gets the next rid; an error frame throws. */
function requester(c: TestClient): Requester {
  let rid = 0;
  return (async (frame: Parameters<Requester>[0], expect: Parameters<Requester>[1]) => {
    rid += 1;
    c.send({ ...frame, rid });
    const answer = await c.nextOf([expect, 'error']);
    if (answer.t === 'error') throw new RelayError(answer.code, answer.retryable);
    return answer;
  }) as Requester;
}

/** A coordinator device with `count` one-time prekeys published through the relay. */
async function coordinator(count: number) {
  const store = MemoryDeviceStore.create(p, DeviceIdentity.generate(p), FIXED_NOW_SECONDS);
  const oneTime = store.addOneTimePrekeys(count);
  const self = store.identity.publicIdentity;
  const who: TestIdentity = {
    seed: new Uint8Array(0),
    publicKey: self.signingKey,
    mailbox: mailboxOf(p, self),
    sign: (m) => store.identity.sign(m),
  };
  const owner = await connect();
  await owner.authenticate(who);
  const wire = toWirePublication(
    publicationOf(
      {
        publicIdentity: self,
        currentSignedPrekey: store.currentSignedPrekey,
        currentKemPrekey: store.currentKemPrekey,
      },
      oneTime,
    ),
  );
  owner.send({ v: PROTOCOL_VERSION, t: 'prekeys.publish', rid: 1, ...wire });
  expect(await owner.next('prekeys.count')).toMatchObject({ rid: 1, remaining: count });
  const sessions = new Sessions({
    p,
    store,
    bundles: () => Promise.resolve(null),
    clock: new FakeClock(FIXED_NOW_SECONDS * 1000),
  });
  return { store, self, owner, sessions };
}

async function contact(): Promise<Sessions> {
  return new Sessions({
    p,
    store: MemoryDeviceStore.createInitiatorOnly(p, DeviceIdentity.generate(p)),
    bundles: relayBundleSource(p, requester(await connect())),
    clock: new FakeClock(FIXED_NOW_SECONDS * 1000),
  });
}

describe('a surge of new contacts to one device', () => {
  it('regression: contacts past the fetch burst got rate_limited; now all 8 start sessions the device opens, 2 with a one-time prekey', async () => {
    const device = await coordinator(5);
    const results = [];
    for (let i = 0; i < 8; i++) {
      const c = await contact();
      const sealed = await c.seal([device.self], new TextEncoder().encode(`hello ${i}`));
      expect(sealed.unreachable).toEqual([]);
      const opening = device.sessions.open(sealed.sealed[0]!.envelope);
      expect(opening.ok && new TextDecoder().decode(opening.plaintext)).toBe(`hello ${i}`);
      expect(opening.ok && opening.sender.equals(c.self)).toBe(true);
      results.push(opening.ok && opening.consumedOneTimePrekey);
    }
    expect(results.filter((used) => used)).toHaveLength(2);
    expect(results.slice(2)).toEqual([false, false, false, false, false, false]);
    device.owner.send({ v: PROTOCOL_VERSION, t: 'prekeys.status', rid: 2 });
    expect(await device.owner.next('prekeys.count')).toMatchObject({ rid: 2, remaining: 3 });
  });

  it('a session started without a one-time prekey answers both ways', async () => {
    const device = await coordinator(0);
    const c = await contact();
    const sealed = await c.seal([device.self], new TextEncoder().encode('first'));
    const opening = device.sessions.open(sealed.sealed[0]!.envelope);
    expect(opening).toMatchObject({ ok: true, consumedOneTimePrekey: false });
    const reply = await device.sessions.seal([c.self], new TextEncoder().encode('reply'));
    expect(reply.unreachable).toEqual([]);
    const back = c.open(reply.sealed[0]!.envelope);
    expect(back.ok && new TextDecoder().decode(back.plaintext)).toBe('reply');
  });

  it('a device that published nothing stays no_bundle past the rate, never a rate_limited error', async () => {
    const stranger = MemoryDeviceStore.create(p, DeviceIdentity.generate(p), FIXED_NOW_SECONDS);
    const device = await coordinator(0);
    for (let i = 0; i < 4; i++) {
      const c = await contact();
      const sealed = await c.seal(
        [stranger.identity.publicIdentity, device.self],
        new Uint8Array([1]),
      );
      // Sealed for the device that published (past the rate too), not for the stranger.
      expect(sealed.sealed.map((e) => e.mailbox)).toEqual([mailboxOf(p, device.self)]);
      expect(sealed.unreachable).toEqual([
        { device: stranger.identity.publicIdentity, reason: 'no_bundle' },
      ]);
    }
  });

  it("one device's spent rate does not withhold another device's one-time prekeys", async () => {
    const busy = await coordinator(4);
    const quiet = await coordinator(4);
    for (let i = 0; i < 3; i++) {
      const c = await contact();
      const sealed = await c.seal([busy.self], new Uint8Array([1]));
      expect(busy.sessions.open(sealed.sealed[0]!.envelope).ok).toBe(true);
    }
    const c = await contact();
    const sealed = await c.seal([quiet.self], new Uint8Array([2]));
    expect(quiet.sessions.open(sealed.sealed[0]!.envelope)).toMatchObject({
      ok: true,
      consumedOneTimePrekey: true,
    });
  });
});
