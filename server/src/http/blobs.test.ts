/**
 * Attachment blob endpoints over a real in-process relay: an upload needs a reservation from an
 * authenticated WebSocket connection and is taken once; the body limit at MAX_BLOB_BYTES and one
 * past it; the same 404 for an id never reserved, expired or malformed; bad methods; the headers
 * of every other response.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { FrameOf } from '@passage/shared/protocol/frames';
import { MAX_BLOB_BYTES } from '@passage/shared/protocol/limits';
import { ClientPool } from '@passage/testing/client-pool';
import { startInProcessRelay, type InProcessRelay } from '@passage/testing/in-process';
import { MemoryStore } from '../store/memory.js';
import { expectedPageCsp } from '@passage/testing/page-csp';
import { BLOBS_PATH } from './blobs.js';

jest.setTimeout(60_000);

const clients = new ClientPool();
afterEach(() => clients.closeAll());

let relay: InProcessRelay;
let now = Date.now();
beforeAll(async () => {
  relay = await startInProcessRelay({
    store: (config) => new MemoryStore(config.storeLimits, () => now),
  });
});
afterAll(() => relay.stop());

let rid = 0;
async function reserve(): Promise<FrameOf<'blob.reserved'>> {
  const client = await clients.online(relay);
  client.send({ v: 1, t: 'blob.reserve', rid: ++rid });
  const answer = await client.next('blob.reserved');
  if (answer.t !== 'blob.reserved') throw new Error('not reserved');
  return answer;
}

const upload = (id: string, token: string | undefined, body: Uint8Array, method = 'PUT') =>
  fetch(`${relay.url}${BLOBS_PATH}/${id}`, {
    method,
    headers: {
      'Content-Type': 'application/octet-stream',
      ...(token === undefined ? {} : { Authorization: `Bearer ${token}` }),
    },
    body,
  });

async function answer(res: Response): Promise<[number, unknown]> {
  return [res.status, await res.json()];
}

describe('attachment blob endpoints', () => {
  it('stores an upload and serves exactly its bytes, with no-store and the CSP', async () => {
    const { id, token } = await reserve();
    const body = randomBytes(10_000);
    expect(await answer(await upload(id, token, body))).toEqual([201, { status: 'stored' }]);
    const res = await fetch(`${relay.url}${BLOBS_PATH}/${id}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('content-security-policy')).toBe(expectedPageCsp());
    expect(res.headers.get('accept-ranges')).toBeNull();
    expect(Buffer.from(await res.arrayBuffer()).equals(body)).toBe(true);
  });

  it('takes a body of exactly MAX_BLOB_BYTES and refuses one byte more with 413, unread', async () => {
    const atLimit = await reserve();
    const max = randomBytes(MAX_BLOB_BYTES);
    expect((await upload(atLimit.id, atLimit.token, max)).status).toBe(201);
    const got = Buffer.from(
      await (await fetch(`${relay.url}${BLOBS_PATH}/${atLimit.id}`)).arrayBuffer(),
    );
    expect(got.equals(max)).toBe(true);
    const past = await reserve();
    const over = await upload(past.id, past.token, randomBytes(MAX_BLOB_BYTES + 1));
    expect(await answer(over)).toEqual([413, { code: 'blob_too_large' }]);
    expect((await fetch(`${relay.url}${BLOBS_PATH}/${past.id}`)).status).toBe(404);
    // Nothing was spent: the reservation still takes a body within the limit.
    expect((await upload(past.id, past.token, randomBytes(10))).status).toBe(201);
  });

  it('takes one upload per token: a second is refused and the first kept', async () => {
    const { id, token } = await reserve();
    const first = randomBytes(100);
    await upload(id, token, first);
    expect(await answer(await upload(id, token, randomBytes(100)))).toEqual([
      403,
      { code: 'blob_not_reserved' },
    ]);
    const got = Buffer.from(await (await fetch(`${relay.url}${BLOBS_PATH}/${id}`)).arrayBuffer());
    expect(got.equals(first)).toBe(true);
  });

  it('refuses an upload with another token, without one, or with a malformed one, alike', async () => {
    const { id, token } = await reserve();
    const other = randomBytes(32).toString('base64url');
    const refusals = [
      await upload(id, other, randomBytes(10)),
      await upload(id, undefined, randomBytes(10)),
      await upload(id, token.slice(1), randomBytes(10)),
      await upload(id, `${token.slice(0, -1)}=`, randomBytes(10)),
      await upload(id, `${token}A`, randomBytes(10)),
    ];
    for (const res of refusals)
      expect(await answer(res)).toEqual([403, { code: 'blob_not_reserved' }]);
    // None of them spent the reservation.
    expect((await upload(id, token, randomBytes(10))).status).toBe(201);
  });

  it('refuses an upload to an id never reserved or malformed, and an empty body', async () => {
    const token = randomBytes(32).toString('base64url');
    for (const id of [randomBytes(16).toString('base64url'), 'short', 'A'.repeat(23)]) {
      expect(await answer(await upload(id, token, randomBytes(10)))).toEqual([
        403,
        { code: 'blob_not_reserved' },
      ]);
    }
    const reserved = await reserve();
    expect(await answer(await upload(reserved.id, reserved.token, new Uint8Array(0)))).toEqual([
      400,
      { code: 'blob_empty' },
    ]);
    expect((await upload(reserved.id, reserved.token, randomBytes(1))).status).toBe(201);
  });

  it('gives the same 404 for an id never stored, expired and malformed', async () => {
    const { id, token } = await reserve();
    await upload(id, token, randomBytes(10));
    const never = await fetch(`${relay.url}${BLOBS_PATH}/${randomBytes(16).toString('base64url')}`);
    const malformed = await fetch(`${relay.url}${BLOBS_PATH}/not-an-id`);
    now += relay.config.storeLimits.queueTtlSeconds * 1000 + 1_000;
    try {
      const expired = await fetch(`${relay.url}${BLOBS_PATH}/${id}`);
      const bodies = await Promise.all([never, malformed, expired].map((r) => answer(r)));
      expect(bodies).toEqual([
        [404, { code: 'no_blob' }],
        [404, { code: 'no_blob' }],
        [404, { code: 'no_blob' }],
      ]);
    } finally {
      now = Date.now();
    }
  });

  it('refuses an upload after the reservation expired', async () => {
    const { id, token } = await reserve();
    now += 11 * 60 * 1000;
    try {
      expect(await answer(await upload(id, token, randomBytes(10)))).toEqual([
        403,
        { code: 'blob_not_reserved' },
      ]);
    } finally {
      now = Date.now();
    }
  });

  it('answers other methods with 405 and Allow, and the bare path with 404', async () => {
    const { id, token } = await reserve();
    for (const method of ['POST', 'DELETE', 'PATCH']) {
      const res = await upload(id, token, randomBytes(10), method);
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe('GET, HEAD, PUT');
      expect(await res.json()).toEqual({ code: 'method_not_allowed' });
    }
    expect((await fetch(`${relay.url}${BLOBS_PATH}/${id}`)).status).toBe(404);
    expect((await fetch(`${relay.url}${BLOBS_PATH}`)).status).toBe(404);
    expect((await upload(id, token, randomBytes(10))).status).toBe(201);
  });
});
