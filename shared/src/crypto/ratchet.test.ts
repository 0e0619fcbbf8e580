import { beforeAll, describe, expect, it } from '@jest/globals';
import { fromUtf8 as read, utf8 as text } from '@passage/testing/crypto-fixtures';
import { isCryptoError } from './errors.js';
import type { CryptoErrorCode } from './errors.js';
import { generateX25519KeyPair } from './keys.js';
import { EARLY_TAG_BYTES } from './kdf.js';
import type { Primitives } from './primitives.js';
import {
  MAX_SKIP,
  MAX_SKIPPED_KEYS_TOTAL,
  RATCHET_HEADER_BYTES,
  Ratchet,
  decodeRatchetMessage,
} from './ratchet.js';
import { loadSodiumBackend } from './sodium.js';

let p: Primitives;
beforeAll(async () => {
  p = await loadSodiumBackend();
});

const AD = new Uint8Array(32).fill(7);

function pair(): { alice: Ratchet; bob: Ratchet } {
  const sk = p.random.bytes(32);
  const bobKey = generateX25519KeyPair(p);
  return {
    alice: Ratchet.initiator(p, sk, bobKey.publicKey),
    bob: Ratchet.responder(p, sk, bobKey),
  };
}

/**
 * Recomputes the early tag of a message whose header a test changed, as a holder of the
 * session could (the tag key is in both sides' state), so that the checks after the tag run.
 */
function retag(r: Ratchet, message: Uint8Array, ad = AD): Uint8Array {
  const header = message.subarray(0, RATCHET_HEADER_BYTES);
  const ciphertext = message.subarray(RATCHET_HEADER_BYTES + EARLY_TAG_BYTES);
  const tag = p
    .hmacSha256(r.snapshot().authKey, new Uint8Array([...ad, ...header, ...ciphertext]))
    .subarray(0, EARLY_TAG_BYTES);
  const out = message.slice();
  out.set(tag, RATCHET_HEADER_BYTES);
  return out;
}

/** Asserts that decrypting fails with `code` and leaves the state object untouched. */
function expectRejected(r: Ratchet, message: Uint8Array, code: CryptoErrorCode, ad = AD): void {
  const before = r.snapshot();
  let caught: unknown;
  try {
    r.decrypt(message, ad);
  } catch (error) {
    caught = error;
  }
  expect(isCryptoError(caught, code)).toBe(true);
  expect(r.snapshot()).toBe(before);
}

describe('Double Ratchet', () => {
  it('delivers messages in order from the initiator', () => {
    const { alice, bob } = pair();
    for (let i = 0; i < 5; i++) {
      expect(read(bob.decrypt(alice.encrypt(text(`m${i}`), AD), AD))).toBe(`m${i}`);
    }
  });

  it('delivers a long conversation with turns in both directions', () => {
    const { alice, bob } = pair();
    for (let turn = 0; turn < 20; turn++) {
      const [from, to] = turn % 2 === 0 ? [alice, bob] : [bob, alice];
      for (let i = 0; i <= turn % 3; i++) {
        expect(read(to.decrypt(from.encrypt(text(`t${turn}.${i}`), AD), AD))).toBe(`t${turn}.${i}`);
      }
    }
  });

  it('delivers messages out of order within one chain', () => {
    const { alice, bob } = pair();
    const ms = [0, 1, 2, 3].map((i) => alice.encrypt(text(`m${i}`), AD));
    expect(read(bob.decrypt(ms[2]!, AD))).toBe('m2');
    expect(read(bob.decrypt(ms[0]!, AD))).toBe('m0');
    expect(read(bob.decrypt(ms[3]!, AD))).toBe('m3');
    expect(read(bob.decrypt(ms[1]!, AD))).toBe('m1');
  });

  it('delivers a message from an earlier chain after a DH ratchet step', () => {
    const { alice, bob } = pair();
    const early = alice.encrypt(text('early'), AD);
    bob.decrypt(alice.encrypt(text('first'), AD), AD);
    alice.decrypt(bob.encrypt(text('reply'), AD), AD);
    const later = alice.encrypt(text('later'), AD);
    expect(read(bob.decrypt(later, AD))).toBe('later');
    expect(read(bob.decrypt(early, AD))).toBe('early');
  });

  it('accepts a message exactly MAX_SKIP ahead', () => {
    const { alice, bob } = pair();
    let last: Uint8Array = new Uint8Array();
    for (let i = 0; i <= MAX_SKIP; i++) last = alice.encrypt(text('x'), AD);
    expect(read(bob.decrypt(last, AD))).toBe('x');
    expect(bob.snapshot().skipped).toHaveLength(MAX_SKIP);
  });

  it('pads plaintext so that short messages of different lengths look alike', () => {
    const { alice } = pair();
    expect(alice.encrypt(text('a'), AD).length).toBe(
      alice.encrypt(text('a'.repeat(200)), AD).length,
    );
  });

  it('rejects a replay of a message already read, leaving the state unchanged', () => {
    const { alice, bob } = pair();
    const m = alice.encrypt(text('once'), AD);
    bob.decrypt(m, AD);
    expectRejected(bob, m, 'replay');
  });

  it('rejects a replay of an out-of-order message after its skipped key was used', () => {
    const { alice, bob } = pair();
    const m0 = alice.encrypt(text('0'), AD);
    bob.decrypt(alice.encrypt(text('1'), AD), AD);
    bob.decrypt(m0, AD);
    expectRejected(bob, m0, 'replay');
  });

  it('rejects a replay from an earlier chain after the chain moved on', () => {
    const { alice, bob } = pair();
    const m = alice.encrypt(text('old'), AD);
    bob.decrypt(m, AD);
    alice.decrypt(bob.encrypt(text('r'), AD), AD);
    bob.decrypt(alice.encrypt(text('new chain'), AD), AD);
    expectRejected(bob, m, 'decrypt_failed');
  });

  it('rejects a message more than MAX_SKIP ahead without deriving keys', () => {
    const { alice, bob } = pair();
    let last: Uint8Array = new Uint8Array();
    for (let i = 0; i <= MAX_SKIP + 1; i++) last = alice.encrypt(text('x'), AD);
    expectRejected(bob, last, 'too_many_skipped');
  });

  it('rejects a new chain whose previous chain left more than MAX_SKIP unread', () => {
    const { alice, bob } = pair();
    bob.decrypt(alice.encrypt(text('hello'), AD), AD);
    const reply = bob.encrypt(text('reply'), AD);
    // Alice's first chain runs on, and all of it is lost; then she ratchets on Bob's reply.
    for (let i = 0; i < MAX_SKIP + 2; i++) alice.encrypt(text('lost'), AD);
    alice.decrypt(reply, AD);
    const next = alice.encrypt(text('next chain'), AD);
    // pn = MAX_SKIP + 3 while Bob read 1 message of that chain: MAX_SKIP + 2 would be skipped.
    expectRejected(bob, next, 'too_many_skipped');
  });

  it('rejects a message with a flipped ciphertext bit and keeps the state', () => {
    const { alice, bob } = pair();
    const m = alice.encrypt(text('x'), AD);
    m[m.length - 1]! ^= 1;
    expectRejected(bob, m, 'decrypt_failed');
  });

  it('rejects a message with a flipped message number and keeps the state', () => {
    const { alice, bob } = pair();
    const m = alice.encrypt(text('x'), AD);
    m[RATCHET_HEADER_BYTES - 1]! ^= 1;
    expectRejected(bob, m, 'decrypt_failed');
  });

  it('rejects a message under different associated data', () => {
    const { alice, bob } = pair();
    const m = alice.encrypt(text('x'), AD);
    expectRejected(bob, m, 'decrypt_failed', new Uint8Array(32));
  });

  it('rejects a header whose ratchet key is of low order', () => {
    const { alice, bob } = pair();
    const m = alice.encrypt(text('x'), AD);
    m.set(new Uint8Array(32), 1);
    // Caught by the early tag, and (from a holder of the session) by the DH check.
    expectRejected(bob, m, 'decrypt_failed');
    expectRejected(bob, retag(bob, m), 'low_order');
  });

  it('rejects the largest message number, which no sender produces', () => {
    const { alice, bob } = pair();
    const m = alice.encrypt(text('x'), AD);
    m.set([0xff, 0xff, 0xff, 0xff], RATCHET_HEADER_BYTES - 4);
    expectRejected(bob, m, 'decrypt_failed');
    expectRejected(bob, retag(bob, m), 'limit_exceeded');
  });

  it('rejects a message with an unknown version byte', () => {
    const { alice, bob } = pair();
    const m = alice.encrypt(text('x'), AD);
    for (const version of [1, 3]) {
      m[0] = version;
      expectRejected(bob, m, 'unsupported_version');
    }
  });

  it('rejects a truncated header and a ciphertext shorter than a tag', () => {
    const { alice, bob } = pair();
    const m = alice.encrypt(text('x'), AD);
    expectRejected(bob, m.slice(0, RATCHET_HEADER_BYTES - 1), 'bad_encoding');
    expectRejected(bob, m.slice(0, RATCHET_HEADER_BYTES + 15), 'bad_encoding');
    expectRejected(bob, new Uint8Array(0), 'bad_encoding');
  });

  it('rejects a message from an unrelated session', () => {
    const one = pair();
    const two = pair();
    expectRejected(two.bob, one.alice.encrypt(text('x'), AD), 'decrypt_failed');
  });

  it('refuses to send from the responder before it has received anything', () => {
    const { bob } = pair();
    expect(() => bob.encrypt(text('x'), AD)).toThrow(
      expect.objectContaining({ code: 'no_session' }),
    );
  });

  it('evicts the oldest skipped keys beyond the total bound, and only those', () => {
    const { alice, bob } = pair();
    // Three chains of skipped keys: each round Alice sends MAX_SKIP + 1 and Bob reads the last.
    const firsts: Uint8Array[] = [];
    const rounds = Math.ceil(MAX_SKIPPED_KEYS_TOTAL / MAX_SKIP) + 1;
    for (let round = 0; round < rounds; round++) {
      let last: Uint8Array = new Uint8Array();
      for (let i = 0; i <= MAX_SKIP; i++) {
        last = alice.encrypt(text(`r${round}.${i}`), AD);
        if (i === 0) firsts.push(last);
      }
      bob.decrypt(last, AD);
      alice.decrypt(bob.encrypt(text('ack'), AD), AD);
    }
    expect(bob.snapshot().skipped).toHaveLength(MAX_SKIPPED_KEYS_TOTAL);
    // The first chain's oldest key was evicted; the newest chain's first is still there.
    expectRejected(bob, firsts[0]!, 'decrypt_failed');
    expect(read(bob.decrypt(firsts[rounds - 1]!, AD))).toBe(`r${rounds - 1}.0`);
  });

  it('exposes the header fields it authenticates', () => {
    const { alice } = pair();
    alice.encrypt(text('a'), AD);
    const { header } = decodeRatchetMessage(alice.encrypt(text('b'), AD));
    expect(header.n).toBe(1);
    expect(header.pn).toBe(0);
  });

  it('regression: forged envelopes: the old-chain and new-chain skips of one message are bounded by MAX_SKIP together', () => {
    // Before, each chain was bounded on its own, so one header could make the receiver derive
    // 2 × MAX_SKIP keys. Made by a holder of the session (the tag is valid): the bound is what
    // then limits the work.
    const { alice, bob } = pair();
    bob.decrypt(alice.encrypt(text('first'), AD), AD);
    const half = Math.floor(MAX_SKIP / 2) + 1;
    const m = alice.encrypt(text('x'), AD);
    m.set(generateX25519KeyPair(p).publicKey, 1);
    m.set([0, 0, half >>> 8, half & 0xff], 1 + 32);
    m.set([0, 0, half >>> 8, half & 0xff], 1 + 32 + 4);
    expectRejected(bob, retag(bob, m), 'too_many_skipped');
  });

  it('accepts skips on the old and the new chain that together reach MAX_SKIP exactly', () => {
    const { alice, bob } = pair();
    bob.decrypt(alice.encrypt(text('first'), AD), AD);
    const reply = bob.encrypt(text('reply'), AD);
    // Alice sends 500 more on her first chain (lost), then answers on a new chain after 499 lost.
    const oldChain = Math.floor(MAX_SKIP / 2);
    for (let i = 0; i < oldChain; i++) alice.encrypt(text('lost'), AD);
    alice.decrypt(reply, AD);
    for (let i = 0; i < MAX_SKIP - oldChain; i++) alice.encrypt(text('lost'), AD);
    const far = alice.encrypt(text('far'), AD);
    expect(read(bob.decrypt(far, AD))).toBe('far');
  });

  it('rejects a message whose early tag does not verify before any chain work', () => {
    const { alice, bob } = pair();
    const m = alice.encrypt(text('x'), AD);
    m[RATCHET_HEADER_BYTES]! ^= 1;
    expectRejected(bob, m, 'decrypt_failed');
    expect(bob.authenticates(m, AD)).toBe(false);
    expect(bob.authenticates(alice.encrypt(text('y'), AD), AD)).toBe(true);
    expect(bob.authenticates(new Uint8Array(3), AD)).toBe(false);
  });
});
