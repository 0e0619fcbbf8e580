/**
 * What the outbox tells the operator about failed acknowledgements, on the real relay in-process
 * with a MemoryStore whose `ack` has a bug (it throws an error that is not a store error).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { ClientPool } from '@passage/testing/client-pool';
import { startInProcessRelay, type InProcessRelay } from '@passage/testing/in-process';
import { envelope, messageId, type TestClient } from '@passage/testing/test-client';
import { until } from '@passage/testing/wait';
import { MemoryStore } from '../store/memory.js';
import { MAX_ACK_ATTEMPTS } from './delivery.js';

jest.setTimeout(60_000);

const clients = new ClientPool();
afterEach(() => clients.closeAll());

/** A MemoryStore whose ack fails with a bug, naming the mailbox (as a careless bug would). */
class BuggyAckStore extends MemoryStore {
  override ack(mailbox: string): Promise<void> {
    return Promise.reject(new TypeError(`ack bug for ${mailbox}`));
  }
}

/** Delivers one new message to `owner` and acknowledges it (alone). */
async function deliverAndAck(sender: TestClient, owner: TestClient, rid: number): Promise<void> {
  const id = messageId();
  sender.send({ v: 1, t: 'send', rid, to: owner.mailbox, id, env: envelope() });
  expect(await sender.next('stored')).toMatchObject({ rid, id });
  // Skipping redeliveries of an earlier message whose ack was given up.
  while ((await owner.next('deliver')).id !== id);
  owner.send({ v: 1, t: 'ack', ids: [id] });
}

describe('regression: an acknowledgement that failed with a bug was logged at every retry', () => {
  let relay: InProcessRelay;
  beforeAll(async () => {
    relay = await startInProcessRelay({
      store: (config) => new BuggyAckStore(config.storeLimits),
    });
  });
  afterAll(() => relay.stop());

  const bugLines = () => relay.logs.filter((l) => l.includes('acknowledgement failed'));

  it('logs a bug-class ack failure once per batch, rate-limited over batches, and still retries each batch', async () => {
    const load = relay.server.relay.load;
    const owner = await clients.online(relay);
    const sender = await clients.connect(relay);
    await deliverAndAck(sender, owner, 1);
    await until(() => load.totals().ackAbandoned === 1);
    expect(bugLines()).toHaveLength(1);
    // Every attempt was made (retry semantics unchanged), only the first was logged.
    expect(load.totals().ackRetries).toBe(MAX_ACK_ATTEMPTS - 1);

    // A second batch in the same report interval: counted, not logged again.
    await deliverAndAck(sender, owner, 2);
    await until(() => load.totals().ackAbandoned === 2);
    expect(bugLines()).toHaveLength(1);
    expect(load.totals().ackBugs).toBe(2);
    expect(load.totals().ackRetries).toBe(2 * (MAX_ACK_ATTEMPTS - 1));

    const line = JSON.parse(bugLines()[0]!) as Record<string, unknown>;
    expect(line).toMatchObject({ level: 50, event: 'ack_bug' });
    expect(relay.logs.join('\n')).not.toContain(owner.mailbox!);
  });
});
