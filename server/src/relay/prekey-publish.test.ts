/**
 * Bounds on `prekeys.publish` (store fill by throwaway identities: any fresh key authenticates,
 * and each publish may store about 60 KB for the prekey TTL): at most
 * MAX_PREKEY_PUBLISHES_PER_CONNECTION per connection and PREKEY_PUBLISHES_PER_MINUTE (with its
 * burst) over the relay.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { toBase64url } from '@passage/shared/protocol/base64url';
import { ErrorCode } from '@passage/shared/protocol/errors';
import { ClientPool } from '@passage/testing/client-pool';
import { startInProcessRelay, type InProcessRelay } from '@passage/testing/in-process';
import type { TestClient } from '@passage/testing/test-client';
import { MAX_PREKEY_PUBLISHES_PER_CONNECTION } from './connection.js';

jest.setTimeout(60_000);

const clients = new ClientPool();
afterEach(() => clients.closeAll());

const b64 = (n: number, fill = 1) => toBase64url(new Uint8Array(n).fill(fill));
let prekeyId = 0;

/** Publishes a small bundle with one new one-time prekey; the answer to this very frame. */
async function publish(client: TestClient, rid: number) {
  client.send({
    v: 1,
    t: 'prekeys.publish',
    rid,
    identity: b64(129),
    signedPrekey: b64(200),
    oneTime: [{ id: ++prekeyId, key: b64(33) }],
  });
  const answer = await client.nextOf(['prekeys.count', 'error']);
  expect(answer.rid).toBe(rid);
  return answer;
}

describe('prekey publishes', () => {
  let relay: InProcessRelay;
  beforeAll(async () => {
    relay = await startInProcessRelay({
      env: { PREKEY_PUBLISHES_PER_MINUTE: '1', PREKEY_PUBLISH_BURST: '20' },
    });
  });
  afterAll(() => relay.stop());

  it(`regression: one connection published without bound; now ${MAX_PREKEY_PUBLISHES_PER_CONNECTION} pass and the next is refused`, async () => {
    const device = await clients.online(relay);
    for (let i = 1; i <= MAX_PREKEY_PUBLISHES_PER_CONNECTION; i++) {
      expect(await publish(device, i)).toMatchObject({ t: 'prekeys.count', remaining: i });
    }
    expect(await publish(device, 99)).toMatchObject({
      t: 'error',
      code: ErrorCode.RATE_LIMITED,
      retryable: true,
    });
    // Reading the count is not a publish and stays open.
    device.send({ v: 1, t: 'prekeys.status', rid: 100 });
    expect(await device.next('prekeys.count')).toMatchObject({ rid: 100 });
  });

  it('regression: throwaway identities published without bound; now the relay-wide burst holds', async () => {
    // The first test spent 8 of the 20; two more connections spend the rest, then refusal.
    const a = await clients.online(relay);
    for (let i = 1; i <= 8; i++) expect((await publish(a, i)).t).toBe('prekeys.count');
    const b = await clients.online(relay);
    for (let i = 1; i <= 4; i++) expect((await publish(b, i)).t).toBe('prekeys.count');
    expect(await publish(b, 5)).toMatchObject({ code: ErrorCode.RATE_LIMITED });
    const c = await clients.online(relay);
    expect(await publish(c, 1)).toMatchObject({ code: ErrorCode.RATE_LIMITED });
  });
});
