/**
 * The inbox against a fake relay: one envelope at a time, ack only after the handler's commit,
 * dedup by message id, unreadable envelopes acked and counted, `later` and throwing handlers
 * left for a redelivery, and nothing a relay or a handler does crashes it or blocks the queue.
 */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { toBase64url } from '@passage/shared/protocol/base64url';
import {
  encodeAuthedFrame,
  encodeChallengeFrame,
  encodeDeliverFrame,
} from '@passage/shared/protocol/encode';
import { MAX_ACK_IDS } from '@passage/shared/protocol/limits';
import { FakeClock, FakeTransport, flush, type FakeSocket } from '@passage/testing/client-fakes';
import { identity, messageId } from '@passage/testing/test-client';
import { Connection } from './connection.js';
import { HANDLER_FAILED, Inbox, type EnvelopeHandler, type InboxLimits } from './inbox.js';

const sha256 = (data: Uint8Array): Uint8Array => createHash('sha256').update(data).digest();

async function setup(handler: EnvelopeHandler, limits?: Partial<InboxLimits>) {
  const who = identity();
  const transport = new FakeTransport();
  const clock = new FakeClock();
  const connection = new Connection({
    url: 'ws://relay.test/v1/ws',
    transport,
    clock,
    sha256,
    random: () => 0,
    timing: { heartbeatIntervalMs: 3_600_000 },
    signer: { signingKey: who.publicKey, sign: (m: Uint8Array) => who.sign(m) },
  });
  const inbox = new Inbox({ connection, handler, ...(limits === undefined ? {} : { limits }) });
  const online = async (): Promise<FakeSocket> => {
    if (connection.state === 'idle') connection.connect();
    else await clock.advance(connection.status.retryAt! - clock.now());
    const socket = transport.current;
    socket.open();
    socket.receive(encodeChallengeFrame(toBase64url(randomBytes(32))));
    socket.receive(encodeAuthedFrame(socket.last('auth')!['rid'] as number, who.mailbox));
    await flush();
    return socket;
  };
  return { inbox, connection, clock, online, socket: await online() };
}

const acked = (socket: FakeSocket): string[] =>
  socket
    .frames()
    .filter((f) => f['t'] === 'ack')
    .flatMap((f) => f['ids'] as string[]);

const env = (bytes: number[] = [1, 2, 3]) => toBase64url(new Uint8Array(bytes));

/** A handler whose calls the test settles one by one. */
function gated() {
  const calls: { id: string; bytes: Uint8Array; settle: () => void }[] = [];
  const handler: EnvelopeHandler = (bytes, id) =>
    new Promise((resolve) =>
      calls.push({ id, bytes, settle: () => resolve({ kind: 'accepted' }) }),
    );
  return { calls, handler };
}

describe('one at a time, ack after commit', () => {
  it('hands over the bytes and acks only once the handler has finished', async () => {
    const g = gated();
    const s = await setup(g.handler);
    const id = messageId();
    s.socket.receive(encodeDeliverFrame(id, env([9, 8, 7])));
    await flush();
    expect(g.calls.map((c) => [c.id, [...c.bytes]])).toEqual([[id, [9, 8, 7]]]);
    expect(acked(s.socket)).toEqual([]);
    g.calls[0]!.settle();
    await s.inbox.idle();
    expect(acked(s.socket)).toEqual([id]);
    expect(s.inbox.stats.accepted).toBe(1);
  });

  it('never runs the handler for two envelopes at once, and keeps their order', async () => {
    const g = gated();
    const s = await setup(g.handler);
    const ids = [messageId(), messageId(), messageId()];
    for (const id of ids) s.socket.receive(encodeDeliverFrame(id, env()));
    await flush();
    expect(g.calls).toHaveLength(1);
    g.calls[0]!.settle();
    await flush();
    expect(g.calls).toHaveLength(2);
    g.calls[1]!.settle();
    await flush();
    g.calls[2]!.settle();
    await s.inbox.idle();
    expect(g.calls.map((c) => c.id)).toEqual(ids);
    expect(acked(s.socket)).toEqual(ids);
  });

  it('batches acks at MAX_ACK_IDS per frame', async () => {
    const s = await setup(() => ({ kind: 'accepted' }));
    const ids = Array.from({ length: MAX_ACK_IDS + 5 }, () => messageId());
    for (const id of ids) s.socket.receive(encodeDeliverFrame(id, env()));
    await s.inbox.idle();
    const frames = s.socket.frames().filter((f) => f['t'] === 'ack');
    expect(frames.every((f) => (f['ids'] as string[]).length <= MAX_ACK_IDS)).toBe(true);
    expect(acked(s.socket)).toEqual(ids);
  });
});

describe('duplicates', () => {
  it('a redelivered id is not handed over again but acked again', async () => {
    const seen: string[] = [];
    const s = await setup((_b, id) => {
      seen.push(id);
      return { kind: 'accepted' };
    });
    const id = messageId();
    s.socket.receive(encodeDeliverFrame(id, env()));
    await s.inbox.idle();
    s.socket.receive(encodeDeliverFrame(id, env()));
    await s.inbox.idle();
    expect(seen).toEqual([id]);
    expect(acked(s.socket)).toEqual([id, id]);
    expect(s.inbox.stats.duplicates).toBe(1);
  });

  it('a copy arriving while the first is being handled is dropped', async () => {
    const g = gated();
    const s = await setup(g.handler);
    const id = messageId();
    s.socket.receive(encodeDeliverFrame(id, env()));
    s.socket.receive(encodeDeliverFrame(id, env()));
    await flush();
    g.calls[0]!.settle();
    await s.inbox.idle();
    expect(g.calls).toHaveLength(1);
    expect(acked(s.socket)).toEqual([id]);
  });

  it('after a reconnect, the relay redelivers; handled ids are only acked', async () => {
    const seen: string[] = [];
    const s = await setup((_b, id) => {
      seen.push(id);
      return { kind: 'accepted' };
    });
    const a = messageId();
    s.socket.receive(encodeDeliverFrame(a, env()));
    await s.inbox.idle();
    s.socket.serverClose(1006);
    const next = await s.online();
    const b = messageId();
    next.receive(encodeDeliverFrame(a, env()));
    next.receive(encodeDeliverFrame(b, env()));
    await s.inbox.idle();
    expect(seen).toEqual([a, b]);
    expect(acked(next)).toEqual([a, b]);
  });

  it('an ack that cannot be written is dropped; the redelivery is acked', async () => {
    const g = gated();
    const s = await setup(g.handler);
    const id = messageId();
    s.socket.receive(encodeDeliverFrame(id, env()));
    await flush();
    s.socket.serverClose(1006); // lost while the handler commits
    g.calls[0]!.settle();
    await s.inbox.idle();
    expect(acked(s.socket)).toEqual([]);
    const next = await s.online();
    next.receive(encodeDeliverFrame(id, env()));
    await s.inbox.idle();
    expect(g.calls).toHaveLength(1);
    expect(acked(next)).toEqual([id]);
  });
});

describe('what can never be read, and what cannot be read yet', () => {
  it('unreadable: acked, counted by reason, announced, and the queue goes on', async () => {
    const reasons = ['no_session', 'decrypt_failed', 'no_session'];
    let i = 0;
    const s = await setup(() =>
      i < reasons.length ? { kind: 'unreadable', reason: reasons[i++]! } : { kind: 'accepted' },
    );
    const announced: string[] = [];
    s.inbox.events.on('unreadable', (e) => announced.push(e.reason));
    const ids = Array.from({ length: 4 }, () => messageId());
    for (const id of ids) s.socket.receive(encodeDeliverFrame(id, env()));
    await s.inbox.idle();
    expect(acked(s.socket)).toEqual(ids);
    expect(s.inbox.stats).toMatchObject({
      accepted: 1,
      unreadable: { no_session: 2, decrypt_failed: 1 },
    });
    expect(announced).toEqual(reasons);
  });

  it('later: not acked, counted, and handed over again on redelivery', async () => {
    let first = true;
    const s = await setup(() => {
      if (first) {
        first = false;
        return { kind: 'later', reason: 'limit_exceeded' };
      }
      return { kind: 'accepted' };
    });
    const id = messageId();
    s.socket.receive(encodeDeliverFrame(id, env()));
    await s.inbox.idle();
    expect(acked(s.socket)).toEqual([]);
    expect(s.inbox.stats.later).toEqual({ limit_exceeded: 1 });
    s.socket.receive(encodeDeliverFrame(id, env()));
    await s.inbox.idle();
    expect(acked(s.socket)).toEqual([id]);
  });

  it('a handler that throws: left for redelivery, and unreadable after maxHandlerFailures', async () => {
    const s = await setup(() => {
      throw new Error('bug');
    });
    const id = messageId();
    const other = messageId();
    for (let n = 0; n < 2; n++) {
      s.socket.receive(encodeDeliverFrame(id, env()));
      await s.inbox.idle();
    }
    expect(acked(s.socket)).toEqual([]);
    s.socket.receive(encodeDeliverFrame(id, env()));
    s.socket.receive(encodeDeliverFrame(other, env())); // not blocked behind it
    await s.inbox.idle();
    expect(acked(s.socket)).toEqual([id]);
    expect(s.inbox.stats.unreadable).toEqual({ [HANDLER_FAILED]: 1 });
    expect(s.inbox.stats.later).toEqual({ [HANDLER_FAILED]: 3 });
  });

  it('a handler that rejects is treated like one that throws', async () => {
    const s = await setup(() => Promise.reject(new Error('bug')), { maxHandlerFailures: 1 });
    const id = messageId();
    s.socket.receive(encodeDeliverFrame(id, env()));
    await s.inbox.idle();
    expect(acked(s.socket)).toEqual([id]);
  });

  it.each([
    undefined,
    null,
    42,
    { kind: 'nope' },
    { kind: 'unreadable' },
    { kind: 'later', reason: 1 },
  ])('a handler result that is not an outcome (%p) counts as a failure', async (result) => {
    const s = await setup(() => result as never, { maxHandlerFailures: 1 });
    const id = messageId();
    s.socket.receive(encodeDeliverFrame(id, env()));
    await s.inbox.idle();
    expect(s.inbox.stats.unreadable).toEqual({ [HANDLER_FAILED]: 1 });
  });

  it('past maxQueued, deliveries are dropped unacked (they come again), and counted', async () => {
    const g = gated();
    const s = await setup(g.handler, { maxQueued: 2 });
    const ids = Array.from({ length: 5 }, () => messageId());
    for (const id of ids) s.socket.receive(encodeDeliverFrame(id, env()));
    await flush();
    expect(s.inbox.stats.overflow).toBe(2);
    for (let i = 0; i < 3; i++) {
      g.calls[i]!.settle();
      await flush();
    }
    await s.inbox.idle();
    expect(acked(s.socket)).toEqual(ids.slice(0, 3));
  });

  it('forgets the oldest handled ids past maxSeenIds (the session layer refuses a replay then)', async () => {
    const seen: string[] = [];
    const s = await setup(
      (_b, id) => {
        seen.push(id);
        return { kind: 'accepted' };
      },
      { maxSeenIds: 2 },
    );
    const ids = [messageId(), messageId(), messageId()];
    for (const id of ids) s.socket.receive(encodeDeliverFrame(id, env()));
    await s.inbox.idle();
    s.socket.receive(encodeDeliverFrame(ids[0]!, env()));
    s.socket.receive(encodeDeliverFrame(ids[2]!, env()));
    await s.inbox.idle();
    expect(seen).toEqual([...ids, ids[0]]);
  });
});
