import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { toBase64url } from '@passage/shared/protocol/base64url';
import { PROTOCOL_VERSION } from '@passage/shared/protocol/limits';
import { AppClient, MAX_OUTBOX } from './app-client.js';
import { startInProcessRelay, type InProcessRelay } from './in-process.js';
import { TestClient, identity, messageId } from './test-client.js';
import { until } from './wait.js';

const v = PROTOCOL_VERSION;
let relay: InProcessRelay;
const running: AppClient[] = [];
const raw: TestClient[] = [];

beforeAll(async () => {
  relay = await startInProcessRelay({ env: { LOG_LEVEL: 'warn' } });
});
afterEach(async () => {
  for (const client of running.splice(0)) client.stop();
  await Promise.all(raw.splice(0).map((c) => c.close()));
});
afterAll(() => relay.stop());

function app(shown: string[] = [], resendAfterMs = 60_000): AppClient {
  const client = new AppClient({
    who: identity(),
    relayUrl: () => relay.wsUrl,
    resendAfterMs,
    onShown: (_from, id) => shown.push(id),
  });
  running.push(client);
  return client;
}

/** What the app client puts in an envelope, for the raw client to imitate. */
function payload(k: string, f: string, id: string): string {
  return toBase64url(new TextEncoder().encode(JSON.stringify({ k, f, id })));
}

async function rawSender(): Promise<TestClient> {
  const client = await TestClient.connect(relay.wsUrl);
  raw.push(client);
  await client.authenticate();
  return client;
}

describe('AppClient', () => {
  it('delivers a message once and empties the outbox when the receipt comes back', async () => {
    const shown: string[] = [];
    const alice = app();
    const bob = app(shown);
    alice.start();
    bob.start();
    const id = alice.send(bob.mailbox);
    await until(() => alice.outboxSize === 0);
    expect(shown).toEqual([id]);
    expect(alice.counts).toMatchObject({ sent: 1, receipted: 1 });
    expect(bob.counts).toMatchObject({ shown: 1, duplicatesDropped: 0 });
  });

  it('keeps a message in the outbox while the recipient is offline, and it arrives later', async () => {
    const shown: string[] = [];
    const alice = app();
    const bob = app(shown);
    alice.start();
    const id = alice.send(bob.mailbox);
    await until(() => alice.counts.transmissions === 1);
    expect(alice.outboxSize).toBe(1); // stored by the relay, not yet receipted
    bob.start();
    await until(() => alice.outboxSize === 0);
    expect(shown).toEqual([id]);
  });

  it('resends a message until its receipt arrives, also after the relay answered stored', async () => {
    const alice = app([], 200);
    alice.start();
    alice.send(identity().mailbox); // nobody reads this mailbox: no receipt
    await until(() => alice.counts.resentAfterStored >= 1);
    expect(alice.outboxSize).toBe(1);
  });

  it('shows a copy of an id it has shown already no more, and receipts it again', async () => {
    const shown: string[] = [];
    const bob = app(shown);
    bob.start();
    await until(() => bob.connectedTo !== undefined);
    const sender = await rawSender();
    const id = messageId();
    // Two relay messages carrying the same application id (a resend after Redis forgot it).
    for (const [rid, relayId] of [messageId(), messageId()].entries()) {
      sender.send({
        v,
        t: 'send',
        rid,
        to: bob.mailbox,
        id: relayId,
        env: payload('m', sender.mailbox!, id),
      });
    }
    await until(() => bob.counts.duplicatesDropped === 1);
    expect(shown).toEqual([id]);
    const receipts = [await sender.next('deliver'), await sender.next('deliver')];
    expect(receipts.map((r) => r.env)).toEqual([
      payload('r', bob.mailbox, id),
      payload('r', bob.mailbox, id),
    ]);
  });

  it('shows nothing for an envelope that is not its format, and acknowledges it', async () => {
    const shown: string[] = [];
    const bob = app(shown);
    bob.start();
    await until(() => bob.connectedTo !== undefined);
    const sender = await rawSender();
    const bad = [
      toBase64url(new TextEncoder().encode('not json')),
      toBase64url(new TextEncoder().encode('null')),
      payload('x', 'f', 'id'),
      toBase64url(new TextEncoder().encode(JSON.stringify({ k: 'm', f: 1, id: 'i' }))),
    ];
    for (const [rid, env] of bad.entries()) {
      sender.send({ v, t: 'send', rid, to: bob.mailbox, id: messageId(), env });
    }
    for (let i = 0; i < bad.length; i += 1) await sender.next('stored');
    // A good one after them arrives, so the bad ones were taken (and acknowledged) first.
    sender.send({
      v,
      t: 'send',
      rid: 99,
      to: bob.mailbox,
      id: messageId(),
      env: payload('m', sender.mailbox!, 'ok'),
    });
    await until(() => shown.length === 1);
    expect(shown).toEqual(['ok']);
    expect(bob.counts.duplicatesDropped).toBe(0);
  });

  it('ignores a receipt for a message it does not hold', async () => {
    const alice = app();
    alice.start();
    await until(() => alice.connectedTo !== undefined);
    const sender = await rawSender();
    sender.send({
      v,
      t: 'send',
      rid: 1,
      to: alice.mailbox,
      id: messageId(),
      env: payload('r', sender.mailbox!, 'unknown'),
    });
    await sender.next('stored');
    expect(alice.counts.receipted).toBe(0);
  });

  it('holds MAX_OUTBOX unreceipted messages and refuses one more', () => {
    const alice = app(); // never started: nothing leaves
    const to = identity().mailbox;
    for (let i = 0; i < MAX_OUTBOX; i += 1) alice.send(to);
    expect(alice.outboxSize).toBe(MAX_OUTBOX);
    expect(() => alice.send(to)).toThrow(RangeError);
  });
});
