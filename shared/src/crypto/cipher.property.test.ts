/**
 * Property test of the pure transitions with crashes (issue 6 §1): two devices encrypt and
 * decrypt through an at-least-once relay, and any step may crash between computing a transition
 * and committing it (the transaction is lost), or between committing and acknowledging (the
 * relay delivers the envelope again). Devices also restart from their committed records. The
 * sender keeps what it wants to send in an outbox and resends whatever it had not committed.
 *
 * Asserted: no message key (ratchet key and message number) is used for two envelopes that left
 * a device; every message is delivered to the application exactly once in the end; none twice.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { loadPrimitives } from './backend.js';
import { decodePrekeyBundle, publicationOf } from './bundle.js';
import { decryptEnvelope, encryptFor, startSession } from './cipher.js';
import { isCryptoError } from './errors.js';
import { openEnvelope } from './envelope.js';
import { toHex } from './encoding.js';
import { DeviceIdentity } from './identity.js';
import { MemoryDeviceStore } from './memory-store.js';
import type { Primitives } from './primitives.js';
import { decodeRatchetMessage } from './ratchet.js';

let p: Primitives;
beforeAll(async () => {
  p = await loadPrimitives({ prefer: 'libsodium', strict: true });
});

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const read = (b: Uint8Array): string => new TextDecoder().decode(b);

interface Device {
  readonly name: 'A' | 'B';
  store: MemoryDeviceStore;
  /** Messages the application wants sent and that have not left yet. */
  readonly outbox: string[];
  /** Messages handed to the application. */
  readonly delivered: string[];
}

interface Queued {
  readonly id: number;
  readonly envelope: Uint8Array;
}

const Fate = fc.constantFrom('ok', 'crash-before-commit', 'crash-after-commit');
const Step = fc.oneof(
  fc.record({ kind: fc.constant('write' as const), fromA: fc.boolean() }),
  fc.record({
    kind: fc.constant('send' as const),
    fromA: fc.boolean(),
    crash: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('deliver' as const),
    toA: fc.boolean(),
    pick: fc.nat(),
    fate: Fate,
  }),
  fc.record({ kind: fc.constant('restart' as const), a: fc.boolean() }),
);

describe('pure transitions under crashes and redelivery', () => {
  it('never reuses a message key, loses no message and delivers none twice', () => {
    fc.assert(
      fc.property(fc.array(Step, { maxLength: 40 }), (steps) => {
        const a: Device = {
          name: 'A',
          store: MemoryDeviceStore.create(p, DeviceIdentity.generate(p), 1_800_000_000),
          outbox: [],
          delivered: [],
        };
        const b: Device = {
          name: 'B',
          store: MemoryDeviceStore.create(p, DeviceIdentity.generate(p), 1_800_000_000),
          outbox: [],
          delivered: [],
        };
        const other = (d: Device): Device => (d === a ? b : a);
        const queues = new Map<Device, Queued[]>([
          [a, []],
          [b, []],
        ]);
        const usedKeys = new Set<string>();
        let written = 0;
        let nextId = 0;

        // A starts the conversation (committed at once, as fetching a bundle is).
        const pub = publicationOf(b.store, b.store.addOneTimePrekeys(1));
        const bundle = decodePrekeyBundle(p, { ...pub, oneTime: pub.oneTime[0]! });
        a.store.commit(startSession(p, a.store, bundle).transaction);

        const canSend = (d: Device): boolean =>
          d.store.loadSession(other(d).store.identity.publicIdentity.address)?.current.canSend ===
          true;

        const send = (from: Device, crash: boolean): void => {
          if (from.outbox.length === 0 || !canSend(from)) return;
          const to = other(from);
          const body = from.outbox[0]!;
          const { envelope, transaction } = encryptFor(
            p,
            from.store,
            to.store.identity.publicIdentity,
            text(body),
          );
          if (crash) return; // Lost with the transaction; the outbox still holds the message.
          // Commit, then the envelope leaves (the application's outbox entry goes with it).
          from.store.commit(transaction);
          from.outbox.shift();
          const opened = openEnvelope(p, to.store.identity, envelope);
          const { header } = decodeRatchetMessage(opened.message);
          const key = `${from.name}:${toHex(header.dh)}:${header.n}`;
          expect(usedKeys.has(key)).toBe(false);
          usedKeys.add(key);
          queues.get(to)!.push({ id: nextId++, envelope });
        };

        const deliver = (to: Device, pick: number, fate: string): void => {
          const queue = queues.get(to)!;
          if (queue.length === 0) return;
          // The relay may deliver any unacknowledged envelope (redelivery after reconnects).
          const item = queue[pick % queue.length]!;
          let result: ReturnType<typeof decryptEnvelope>;
          try {
            result = decryptEnvelope(p, to.store, item.envelope);
          } catch (error: unknown) {
            // Only a duplicate may fail: it was read and committed before, its ack was lost.
            expect(isCryptoError(error, 'replay')).toBe(true);
            queue.splice(queue.indexOf(item), 1);
            return;
          }
          if (fate === 'crash-before-commit') return;
          to.store.commit(result.transaction);
          to.delivered.push(read(result.plaintext));
          if (fate === 'ok') queue.splice(queue.indexOf(item), 1);
        };

        for (const step of steps) {
          if (step.kind === 'write') {
            const from = step.fromA ? a : b;
            from.outbox.push(`${from.name} ${written++}`);
          } else if (step.kind === 'send') {
            send(step.fromA ? a : b, step.crash);
          } else if (step.kind === 'deliver') {
            deliver(step.toA ? a : b, step.pick, step.fate);
          } else {
            // A restart: the device comes back from its committed records only.
            const d = step.a ? a : b;
            d.store = MemoryDeviceStore.restore(p, d.store.export());
          }
        }

        // Afterwards the network is kind: everything queued arrives and everything unsent is
        // sent, until nothing is left (B can send once it has read something of A's).
        for (let round = 0; round < 4; round++) {
          for (const d of [a, b]) while (queues.get(d)!.length > 0) deliver(d, 0, 'ok');
          for (const d of [a, b]) while (d.outbox.length > 0 && canSend(d)) send(d, false);
        }
        if (b.outbox.length > 0) {
          // B never read anything from A (A wrote nothing): A writes once to open the way.
          a.outbox.push('A opens');
          written++;
          send(a, false);
          while (queues.get(b)!.length > 0) deliver(b, 0, 'ok');
          while (b.outbox.length > 0) send(b, false);
          while (queues.get(a)!.length > 0) deliver(a, 0, 'ok');
        }
        const all = [...a.delivered, ...b.delivered].sort();
        expect(new Set(all).size).toBe(all.length);
        expect(all).toHaveLength(written);
        expect(a.outbox).toEqual([]);
        expect(b.outbox).toEqual([]);
      }),
      { numRuns: 100 },
    );
  }, 300_000);
});
