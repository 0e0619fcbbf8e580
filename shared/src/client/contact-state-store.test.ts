/**
 * The contact's state store between its saves: what changes in memory while a save is on its
 * way to the relay is not lost when that save completes. The port here holds the blob in memory
 * and lets the test decide when a put completes, which is what a slow relay does; the relay
 * itself is exercised in test/src/contact-state.test.ts.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { loadPrimitives } from '../crypto/backend.js';
import { DeviceIdentity } from '../crypto/identity.js';
import { MemoryDeviceStore } from '../crypto/memory-store.js';
import type { Primitives } from '../crypto/primitives.js';
import { toBase64url } from '../protocol/base64url.js';
import { mailboxIdFromPublicKey } from '../protocol/mailbox.js';
import { ContactStateStore, type StateBlobPort } from './contact-state-store.js';
import { RelayError } from './errors.js';
import { MAX_TRANSCRIPT_ENTRIES, type TranscriptEntry } from './contact-state.js';

let p: Primitives;

beforeAll(async () => {
  p = await loadPrimitives({ prefer: 'libsodium', strict: true });
});

const TS = 1_750_000_000_000;
const idOf = (n: number) => toBase64url(new Uint8Array(16).fill(n % 256).fill(n >> 8, 0, 1));

const entry = (n: number, from = 'contact', body = `message ${n}`): TranscriptEntry => ({
  from,
  // A team's message names the case (the contact's id); the contact's own names none.
  message: {
    v: 1,
    type: 'text',
    id: idOf(n),
    ts: TS + n,
    body,
    ...(from === 'contact' ? {} : { case: 'c'.repeat(64) }),
  },
  receipt: 'none',
});

/** A port holding one blob, whose puts complete when the test says so. */
class HeldPort implements StateBlobPort {
  blob: Uint8Array | null = null;
  generation = 0;
  readonly held: (() => void)[] = [];
  hold = false;

  getState() {
    return Promise.resolve({ blob: this.blob, generation: this.generation });
  }

  async putState(blob: Uint8Array, ifGeneration: number): Promise<number> {
    if (this.hold) await new Promise<void>((resolve) => this.held.push(resolve));
    if (ifGeneration !== this.generation) throw new RelayError('state_conflict', false);
    this.blob = blob;
    return ++this.generation;
  }

  deleteState() {
    this.blob = null;
    this.generation = 0;
    return Promise.resolve();
  }

  release(): void {
    for (const r of this.held.splice(0)) r();
  }
}

function newStore(port: StateBlobPort) {
  const identity = DeviceIdentity.generate(p);
  const mailbox = mailboxIdFromPublicKey(identity.publicIdentity.signingKey, (d) => p.sha256(d));
  const options = { primitives: p, mailboxKey: p.random.bytes(32), mailbox, port };
  const store = ContactStateStore.create(
    options,
    MemoryDeviceStore.createInitiatorOnly(p, identity),
  );
  const restore = () =>
    ContactStateStore.restore(options, { signingKey: identity.publicIdentity.signingKey });
  return { store, restore };
}

const bodies = (s: ContactStateStore) =>
  s.conversation.transcript.map((e) => (e.message.type === 'text' ? e.message.body : '?'));

const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('a save on its way', () => {
  it('keeps an entry added while the put was on its way, and the next save writes it', async () => {
    const port = new HeldPort();
    const { store, restore } = newStore(port);
    store.addEntry(entry(1));
    store.addToOutbox(idOf(1));
    await store.save();

    port.hold = true;
    store.removeFromOutbox(idOf(1));
    const first = store.save();
    await flush();
    // A reply read while that save is with the relay.
    store.addEntry(entry(2, 'a'.repeat(64), 'We are here.'));
    port.hold = false;
    port.release();
    await first;
    expect(bodies(store)).toEqual(['message 1', 'We are here.']);
    await store.save();
    expect(bodies(await restore())).toEqual(['message 1', 'We are here.']);
  });

  it('keeps an outbox change made while the put was on its way', async () => {
    const port = new HeldPort();
    const { store, restore } = newStore(port);
    store.addEntry(entry(1));
    store.addToOutbox(idOf(1));
    port.hold = true;
    const first = store.save();
    await flush();
    store.removeFromOutbox(idOf(1));
    port.hold = false;
    port.release();
    await first;
    expect(store.conversation.outbox).toEqual([]);
    await store.save();
    expect((await restore()).conversation.outbox).toEqual([]);
  });

  it('still drops from memory what the save trimmed, and counts it once', async () => {
    const port = new HeldPort();
    const { store } = newStore(port);
    // Long entries: the transcript no longer fits the largest blob and the oldest are trimmed.
    const long = 'x'.repeat(3_000);
    for (let i = 1; i <= 40; i++) store.addEntry(entry(i, 'contact', `${i} ${long}`));
    expect(store.conversation.transcript.length).toBeLessThanOrEqual(MAX_TRANSCRIPT_ENTRIES);
    port.hold = true;
    const first = store.save();
    await flush();
    store.addEntry(entry(41, 'b'.repeat(64), 'late reply'));
    port.hold = false;
    port.release();
    await first;
    const kept = bodies(store);
    expect(store.conversation.trimmed).toBeGreaterThan(0);
    // Every entry is either kept or counted as trimmed, and the late reply is kept.
    expect(kept.length + store.conversation.trimmed).toBe(41);
    expect(kept).toContain('late reply');
    expect(kept[0]!.startsWith(`${store.conversation.trimmed + 1} `)).toBe(true);
  });
});
