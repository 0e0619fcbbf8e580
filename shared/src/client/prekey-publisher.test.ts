import { beforeAll, describe, expect, it } from '@jest/globals';
import { loadPrimitives } from '../crypto/backend.js';
import { decodeWirePrekeyBundle } from '../crypto/bundle.js';
import { DeviceIdentity } from '../crypto/identity.js';
import { MemoryDeviceStore } from '../crypto/memory-store.js';
import { SIGNED_PREKEY_ROTATION_SECONDS } from '../crypto/prekeys.js';
import type { Primitives } from '../crypto/primitives.js';
import { RelayError } from './errors.js';
import { FakeClock } from '@passage/testing/client-fakes';
import { MAX_ONE_TIME_PREKEYS_PER_PUBLISH } from '../protocol/limits.js';
import { MAX_RUNS_PER_CHECK, PrekeyPublisher } from './prekey-publisher.js';
import type { Requester } from './sessions.js';

let p: Primitives;
const START_MS = 1_800_000_000_000;

beforeAll(async () => {
  p = await loadPrimitives();
});

interface Published {
  readonly identity: string;
  readonly signedPrekey: string;
  readonly oneTime: readonly { id: number; key: string }[];
}

/** The relay's side of `prekeys.status` / `prekeys.publish`, as the directory answers them. */
class FakeDirectory {
  remaining = 0;
  /** When set, the next publish is refused with it (once). */
  refuseNext: RelayError | undefined;
  /** When true, the count never grows (a relay whose keys are fetched as fast as published). */
  drained = false;
  readonly published: Published[] = [];
  statusCalls = 0;

  readonly request: Requester = (frame, expect) => {
    const f = frame as { t: string } & Partial<Published>;
    if (f.t === 'prekeys.status') {
      this.statusCalls++;
      return Promise.resolve({ v: 1, t: expect, rid: 1, remaining: this.remaining } as never);
    }
    if (f.t === 'prekeys.publish') {
      if (this.refuseNext !== undefined) {
        const e = this.refuseNext;
        this.refuseNext = undefined;
        return Promise.reject(e);
      }
      this.published.push(f as Published);
      if (!this.drained) this.remaining = Math.min(100, this.remaining + f.oneTime!.length);
      return Promise.resolve({ v: 1, t: expect, rid: 1, remaining: this.remaining } as never);
    }
    return Promise.reject(new Error(`unexpected ${f.t}`));
  };
}

function setUp(policy = {}) {
  const clock = new FakeClock(START_MS);
  const store = MemoryDeviceStore.create(p, DeviceIdentity.generate(p), START_MS / 1000);
  const relay = new FakeDirectory();
  const publisher = new PrekeyPublisher({ store, request: relay.request, clock, policy });
  const failures: string[] = [];
  publisher.events.on('failed', (e) => failures.push(e.code));
  return { clock, store, relay, publisher, failures };
}

const signedIdOf = (pub: Published) =>
  decodeWirePrekeyBundle(p, {
    identity: pub.identity,
    signedPrekey: pub.signedPrekey,
    oneTime: null,
  }).signedPrekey.id;

describe('PrekeyPublisher', () => {
  it('publishes a verifiable bundle and one frame of one-time prekeys on the first connection', async () => {
    const { relay, publisher, store } = setUp();
    await publisher.onReady();
    expect(relay.published).toHaveLength(1);
    const pub = relay.published[0]!;
    expect(pub.oneTime).toHaveLength(MAX_ONE_TIME_PREKEYS_PER_PUBLISH);
    const bundle = decodeWirePrekeyBundle(p, {
      identity: pub.identity,
      signedPrekey: pub.signedPrekey,
      oneTime: pub.oneTime[0]!,
    });
    expect(bundle.identity.equals(store.identity.publicIdentity)).toBe(true);
    // The store keeps the secret of every key it published.
    for (const k of pub.oneTime) expect(store.findOneTimePrekey(k.id)).toBeDefined();
    expect(publisher.published).toBe(true);
  });

  it('publishes once per start even when the relay already holds enough keys', async () => {
    const { relay, publisher } = setUp();
    relay.remaining = 80;
    await publisher.onReady();
    expect(relay.published).toHaveLength(1);
    expect(relay.published[0]!.oneTime).toHaveLength(0);
  });

  it('does not publish again on a reconnect while the count is at or above the threshold', async () => {
    const { relay, publisher } = setUp({ minOneTime: 10 });
    await publisher.onReady();
    relay.remaining = 10;
    await publisher.onReady();
    expect(relay.published).toHaveLength(1);
    expect(relay.statusCalls).toBe(2);
  });

  it('tops up when the count falls one below the threshold', async () => {
    const { relay, publisher } = setUp({ minOneTime: 10, targetOneTime: 20 });
    await publisher.onReady();
    relay.remaining = 9;
    await publisher.onConsumed();
    expect(relay.published).toHaveLength(2);
    expect(relay.published[1]!.oneTime).toHaveLength(11);
    // Fresh ids: no key is published twice.
    const ids = relay.published.flatMap((x) => x.oneTime.map((k) => k.id));
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('rotates the signed prekey when it is due and publishes it', async () => {
    const { relay, publisher, clock } = setUp();
    await publisher.onReady();
    relay.remaining = 50;
    await clock.advance(SIGNED_PREKEY_ROTATION_SECONDS * 1000 - 1000);
    await publisher.check();
    expect(relay.published).toHaveLength(1);
    await clock.advance(1000);
    await publisher.check();
    expect(relay.published).toHaveLength(2);
    expect(signedIdOf(relay.published[1]!)).toBe(signedIdOf(relay.published[0]!) + 1);
  });

  it("publishes the bundle a handshake's early rotation made", async () => {
    const { relay, publisher, store } = setUp();
    await publisher.onReady();
    relay.remaining = 50;
    store.rotate(START_MS / 1000);
    await publisher.onRotated();
    expect(relay.published).toHaveLength(2);
    expect(signedIdOf(relay.published[1]!)).toBe(1);
  });

  it('a refused publish is announced, and its keys go with the next one (none made twice)', async () => {
    const { relay, publisher, failures } = setUp({ minOneTime: 10, targetOneTime: 20 });
    relay.refuseNext = new RelayError('rate_limited', true);
    await publisher.onReady();
    expect(failures).toEqual(['rate_limited']);
    expect(relay.published).toHaveLength(0);
    await publisher.onReady();
    expect(relay.published).toHaveLength(1);
    expect(relay.published[0]!.oneTime.map((k) => k.id)).toEqual(
      Array.from({ length: 20 }, (_, i) => i),
    );
  });

  it('a status request that fails is announced and changes nothing', async () => {
    const { failures, store } = setUp();
    const broken = new PrekeyPublisher({
      store,
      request: () => Promise.reject(new RelayError('unavailable', true)),
      clock: new FakeClock(START_MS),
    });
    broken.events.on('failed', (e) => failures.push(e.code));
    await broken.onReady();
    expect(failures).toEqual(['unavailable']);
    expect(store.oneTimeCount).toBe(0);
    expect(broken.published).toBe(false);
  });

  it(`a relay that stays low cannot make one check publish more than ${MAX_RUNS_PER_CHECK} times`, async () => {
    const { relay, publisher } = setUp();
    relay.drained = true;
    await publisher.onReady();
    expect(relay.published).toHaveLength(MAX_RUNS_PER_CHECK);
  });

  it('checks asked for while one runs are done once after it', async () => {
    const { relay, publisher } = setUp();
    relay.remaining = 50;
    await Promise.all([publisher.onReady(), publisher.check(), publisher.check()]);
    expect(relay.statusCalls).toBe(2);
  });

  it('checks again every interval while running, and not after stop', async () => {
    const { relay, publisher, clock } = setUp({ checkIntervalMs: 1000 });
    relay.remaining = 50;
    await publisher.onReady();
    await clock.advance(1000);
    expect(relay.statusCalls).toBe(2);
    publisher.stop();
    await clock.advance(5000);
    expect(relay.statusCalls).toBe(2);
  });

  it('refuses a policy past what the relay keeps, or a threshold above the target', () => {
    const store = MemoryDeviceStore.create(p, DeviceIdentity.generate(p), START_MS / 1000);
    const make = (policy: object) => () =>
      new PrekeyPublisher({
        store,
        request: new FakeDirectory().request,
        clock: new FakeClock(),
        policy,
      });
    expect(make({ targetOneTime: 101 })).toThrow(RangeError);
    expect(make({ minOneTime: 30, targetOneTime: 20 })).toThrow(RangeError);
    expect(make({ minOneTime: -1 })).toThrow(RangeError);
    expect(make({ targetOneTime: 100 })).not.toThrow();
  });
});
