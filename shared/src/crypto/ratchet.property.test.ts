/**
 * Property tests of the ratchet as the relay's peers use it (sealed envelopes through
 * `SessionCipher`), on both backends: random interleavings of two parties with loss,
 * reordering and duplicates; a flipped bit anywhere in an envelope; skips beyond the bound.
 * "State unchanged" is checked on the serialised session, byte for byte.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { fromUtf8 as read, utf8 as text } from '@passage/testing/crypto-fixtures';
import { loadPrimitives } from './backend.js';
import { isCryptoError } from './errors.js';
import { SessionCipher } from './session-cipher.js';
import { DeviceIdentity } from './identity.js';
import { decodePrekeyBundle, publicationOf } from './bundle.js';
import { MemoryDeviceStore } from './memory-store.js';
import type { PublicIdentity } from './identity.js';
import type { Primitives } from './primitives.js';
import { generateX25519KeyPair } from './keys.js';
import { MAX_SKIP, Ratchet } from './ratchet.js';

const backends: Record<Primitives['backend'], Primitives> = {} as Record<
  Primitives['backend'],
  Primitives
>;
beforeAll(async () => {
  backends.libsodium = await loadPrimitives({ prefer: 'libsodium', strict: true });
  backends.noble = await loadPrimitives({ prefer: 'noble' });
});

interface Party {
  readonly sessions: SessionCipher;
  readonly prekeys: MemoryDeviceStore;
  readonly pub: PublicIdentity;
}

function party(p: Primitives): Party {
  const id = DeviceIdentity.generate(p);
  const prekeys = MemoryDeviceStore.create(p, id, 1_800_000_000);
  return { sessions: new SessionCipher(p, prekeys), prekeys, pub: id.publicIdentity };
}

function bundleOf(p: Primitives, b: Party) {
  const pub = publicationOf(b.prekeys, b.prekeys.addOneTimePrekeys(1));
  return decodePrekeyBundle(p, { ...pub, oneTime: pub.oneTime[0]! });
}

/** Two parties that have each sent and received once. */
function connected(p: Primitives): { a: Party; b: Party } {
  const a = party(p);
  const b = party(p);
  a.sessions.startSession(bundleOf(p, b));
  b.sessions.decrypt(a.sessions.encryptFor(b.pub, text('hello')));
  a.sessions.decrypt(b.sessions.encryptFor(a.pub, text('hi')));
  return { a, b };
}

function stateOf(receiver: Party, sender: Party): Uint8Array | undefined {
  return receiver.sessions.session(sender.pub)?.encode();
}

/** Decrypting must fail with a CryptoError and leave the receiver's session unchanged. */
function expectRejectedUnchanged(receiver: Party, sender: Party, envelope: Uint8Array): void {
  const before = stateOf(receiver, sender);
  const oneTimeBefore = receiver.prekeys.oneTimeCount;
  let caught: unknown;
  try {
    receiver.sessions.decrypt(envelope);
  } catch (error) {
    caught = error;
  }
  expect(isCryptoError(caught)).toBe(true);
  expect(stateOf(receiver, sender)).toEqual(before);
  expect(receiver.prekeys.oneTimeCount).toBe(oneTimeBefore);
}

const Fate = fc.constantFrom('now', 'later', 'lost', 'twice');

const Rounds = fc.array(
  fc.record({
    fromA: fc.boolean(),
    messages: fc.array(fc.record({ fate: Fate, order: fc.nat(1000) }), {
      minLength: 1,
      maxLength: 4,
    }),
  }),
  { maxLength: 10 },
);

describe.each(['libsodium', 'noble'] as const)('ratchet properties (%s)', (name) => {
  it('delivers every message that arrives, once, whatever the interleaving, loss and order', () => {
    const p = backends[name];
    fc.assert(
      fc.property(Rounds, (rounds) => {
        const { a, b } = connected(p);
        const later: { to: Party; from: Party; env: Uint8Array; body: string; order: number }[] =
          [];
        let counter = 0;
        const deliver = (
          to: Party,
          from: Party,
          env: Uint8Array,
          body: string,
          twice: boolean,
        ): void => {
          const got = to.sessions.decrypt(env);
          expect(read(got.plaintext)).toBe(body);
          expect(got.sender.equals(from.pub)).toBe(true);
          if (twice) expectRejectedUnchanged(to, from, env);
        };
        for (const round of rounds) {
          const [from, to] = round.fromA ? [a, b] : [b, a];
          const now: { env: Uint8Array; body: string; order: number; twice: boolean }[] = [];
          for (const m of round.messages) {
            const body = `message ${counter++}`;
            const env = from.sessions.encryptFor(to.pub, text(body));
            if (m.fate === 'later') later.push({ to, from, env, body, order: m.order });
            else if (m.fate !== 'lost')
              now.push({ env, body, order: m.order, twice: m.fate === 'twice' });
          }
          now.sort((x, y) => x.order - y.order);
          for (const m of now) deliver(to, from, m.env, m.body, m.twice);
        }
        later.sort((x, y) => x.order - y.order);
        for (const m of later) deliver(m.to, m.from, m.env, m.body, true);
      }),
      { numRuns: name === 'libsodium' ? 60 : 20 },
    );
  });

  it('rejects an envelope with any single bit flipped and leaves the session unchanged', () => {
    const p = backends[name];
    const { a, b } = connected(p);
    const fresh = party(p);
    fresh.sessions.startSession(bundleOf(p, b));
    fc.assert(
      fc.property(fc.boolean(), fc.nat(), fc.nat(7), (initial, at, bit) => {
        const sender = initial ? fresh : a;
        const env = sender.sessions.encryptFor(b.pub, text('flip me'));
        const tampered = env.slice();
        tampered[at % env.length]! ^= 1 << bit;
        expectRejectedUnchanged(b, sender, tampered);
        if (!initial) expect(read(b.sessions.decrypt(env).plaintext)).toBe('flip me');
      }),
      { numRuns: name === 'libsodium' ? 200 : 40 },
    );
  });

  it('accepts a gap up to MAX_SKIP and rejects a larger one with the state unchanged', () => {
    const p = backends[name];
    fc.assert(
      fc.property(fc.integer({ min: MAX_SKIP - 2, max: MAX_SKIP + 3 }), (gap) => {
        const { a, b } = connected(p);
        for (let i = 0; i < gap; i++) a.sessions.encryptFor(b.pub, text('lost'));
        const env = a.sessions.encryptFor(b.pub, text('arrives'));
        if (gap <= MAX_SKIP) expect(read(b.sessions.decrypt(env).plaintext)).toBe('arrives');
        else expectRejectedUnchanged(b, a, env);
      }),
      { numRuns: name === 'libsodium' ? 6 : 2 },
    );
  });
});

describe.each(['libsodium', 'noble'] as const)('ratchet reordering (%s)', (name) => {
  it('delivers a chain of up to MAX_SKIP + 1 messages in any order, each once', () => {
    const p = backends[name];
    const ad = new Uint8Array(32).fill(1);
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: MAX_SKIP + 1 }).chain((n) =>
          fc.shuffledSubarray(
            Array.from({ length: n }, (_, i) => i),
            { minLength: n, maxLength: n },
          ),
        ),
        (order) => {
          const sk = p.random.bytes(32);
          const bobKey = generateX25519KeyPair(p);
          const alice = Ratchet.initiator(p, sk, bobKey.publicKey);
          const bob = Ratchet.responder(p, sk, bobKey);
          const messages = order.map((_, i) => alice.encrypt(text(`m${i}`), ad));
          for (const i of order) expect(read(bob.decrypt(messages[i]!, ad))).toBe(`m${i}`);
          expect(bob.snapshot().skipped).toHaveLength(0);
          for (const i of order.slice(0, 3)) {
            const before = bob.snapshot();
            expect(() => bob.decrypt(messages[i]!, ad)).toThrow(
              expect.objectContaining({ code: 'replay' }),
            );
            expect(bob.snapshot()).toBe(before);
          }
        },
      ),
      { numRuns: name === 'libsodium' ? 8 : 3 },
    );
  });
});

describe('ratchet work bound', () => {
  it('rejects a header beyond MAX_SKIP before deriving any chain key', () => {
    const base = backends.libsodium;
    let hmacCalls = 0;
    const counting: Primitives = {
      ...base,
      hmacSha256: (key, data) => {
        hmacCalls++;
        return base.hmacSha256(key, data);
      },
    };
    const { a, b } = connected(counting);
    for (let i = 0; i <= MAX_SKIP; i++) a.sessions.encryptFor(b.pub, text('lost'));
    const far = a.sessions.encryptFor(b.pub, text('too far'));
    hmacCalls = 0;
    expectRejectedUnchanged(b, a, far);
    // Opening the sealed envelope costs one HKDF (two HMACs per block); no chain step runs.
    expect(hmacCalls).toBeLessThanOrEqual(4);
  });
});

describe('backend interchange', () => {
  it('continues on the noble backend a session started on libsodium, and back', () => {
    const sodium = backends.libsodium;
    const noble = backends.noble;
    const a = party(sodium);
    const bId = DeviceIdentity.generate(noble);
    const bPrekeys = MemoryDeviceStore.create(noble, bId, 1_800_000_000);
    const b: Party = {
      sessions: new SessionCipher(noble, bPrekeys),
      prekeys: bPrekeys,
      pub: bId.publicIdentity,
    };
    a.sessions.startSession(bundleOf(sodium, b));
    expect(
      read(b.sessions.decrypt(a.sessions.encryptFor(b.pub, text('from wasm'))).plaintext),
    ).toBe('from wasm');
    expect(read(a.sessions.decrypt(b.sessions.encryptFor(a.pub, text('from js'))).plaintext)).toBe(
      'from js',
    );
    // Move a's session state across backends mid-conversation.
    const moved = new SessionCipher(noble, MemoryDeviceStore.restore(noble, a.prekeys.export()));
    expect(read(b.sessions.decrypt(moved.encryptFor(b.pub, text('moved'))).plaintext)).toBe(
      'moved',
    );
    expect(read(moved.decrypt(b.sessions.encryptFor(a.pub, text('still here'))).plaintext)).toBe(
      'still here',
    );
  });
});
