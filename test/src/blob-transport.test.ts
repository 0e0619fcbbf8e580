/**
 * The client core's fetch blob transport against the relay's real blob endpoints (an in-process
 * relay, so that a test can make reservations in its store directly, with any lifetime): every
 * refusal the relay gives maps to its stable code, a spent token is replaced by a new reservation,
 * an overloaded relay is tried again after a back-off, and the network's own failures (a closed
 * port, a server that never answers) are retryable codes of their own.
 */
import { createHash } from 'node:crypto';
import { request, type ClientRequest } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  AttachmentError,
  AttachmentErrorCode,
  fetchBlobTransport,
  systemClock,
  type BlobTransport,
} from '@passage/shared/client/index';
import { uploadBlob, type BlobReservation } from '@passage/shared/client/blob-transport';
import { MAX_BLOB_BYTES } from '@passage/shared/protocol/limits';
import { startInProcessRelay, type InProcessRelay } from '@passage/testing/in-process';
import { freePort } from '@passage/testing/ports';

let relay: InProcessRelay;
let blobs: BlobTransport;

beforeAll(async () => {
  relay = await startInProcessRelay();
  blobs = fetchBlobTransport({ baseUrl: relay.url });
});

afterAll(() => relay.stop());

const random = (n: number) =>
  new Uint8Array(Array.from({ length: n }, () => (Math.random() * 256) | 0));
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64url');

/** A reservation made in the relay's store, as `blob.reserve` makes one. */
async function reserve(ttlMs = 60_000): Promise<BlobReservation> {
  const id = b64(random(16));
  const token = b64(random(32));
  const hash = createHash('sha256').update(Buffer.from(token, 'base64url')).digest('base64url');
  expect(await relay.store.reserveBlob(id, hash, ttlMs)).toBe(true);
  return { id, token, exp: Date.now() + ttlMs };
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(AttachmentError);
    return (error as AttachmentError).code;
  }
  return 'no error';
}

describe('fetch blob transport against the relay', () => {
  it('uploads with a reservation and downloads the same bytes, with progress', async () => {
    const r = await reserve();
    const bytes = random(300_000);
    const up: number[] = [];
    await blobs.put(r.id, r.token, bytes, (e) => up.push(e.bytes));
    expect(up).toEqual([0, bytes.length]);
    const down: { bytes: number; total: number | undefined }[] = [];
    expect(await blobs.get(r.id, (e) => down.push(e))).toEqual(bytes);
    expect(down.at(-1)).toEqual({ bytes: bytes.length, total: bytes.length });
    // Streamed: progress came in more than one step, and only grew.
    expect(down.length).toBeGreaterThan(1);
    expect(down.map((d) => d.bytes)).toEqual([...down.map((d) => d.bytes)].sort((a, b) => a - b));
  });

  it('refuses a used token with blob_not_reserved (retryable)', async () => {
    const r = await reserve();
    await blobs.put(r.id, r.token, random(10));
    let error: unknown;
    await blobs.put(r.id, r.token, random(10)).catch((e: unknown) => (error = e));
    expect(error).toMatchObject({ code: AttachmentErrorCode.BLOB_NOT_RESERVED, retryable: true });
  });

  it('refuses a wrong token and an expired reservation with blob_not_reserved', async () => {
    const r = await reserve();
    expect(await codeOf(blobs.put(r.id, b64(random(32)), random(10)))).toBe(
      AttachmentErrorCode.BLOB_NOT_RESERVED,
    );
    const expiring = await reserve(1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await codeOf(blobs.put(expiring.id, expiring.token, random(10)))).toBe(
      AttachmentErrorCode.BLOB_NOT_RESERVED,
    );
    // Neither stored anything.
    expect(await codeOf(blobs.get(expiring.id))).toBe(AttachmentErrorCode.NO_BLOB);
  });

  it('refuses an empty body with blob_empty and keeps the reservation', async () => {
    const r = await reserve();
    expect(await codeOf(blobs.put(r.id, r.token, new Uint8Array(0)))).toBe(
      AttachmentErrorCode.BLOB_EMPTY,
    );
    await blobs.put(r.id, r.token, random(5));
  });

  it('refuses a body one byte over MAX_BLOB_BYTES with blob_too_large, not retryable', async () => {
    const r = await reserve();
    let error: unknown;
    await blobs
      .put(r.id, r.token, new Uint8Array(MAX_BLOB_BYTES + 1))
      .catch((e: unknown) => (error = e));
    expect(error).toMatchObject({ code: AttachmentErrorCode.BLOB_TOO_LARGE, retryable: false });
  });

  it('answers no_blob for an unknown and a malformed id, not retryable', async () => {
    let error: unknown;
    await blobs.get(b64(random(16))).catch((e: unknown) => (error = e));
    expect(error).toMatchObject({ code: AttachmentErrorCode.NO_BLOB, retryable: false });
    expect(await codeOf(blobs.get('not an id'))).toBe(AttachmentErrorCode.NO_BLOB);
  });

  it('does not read a blob past the bound it is given (blob_too_large)', async () => {
    const r = await reserve();
    await blobs.put(r.id, r.token, random(5_000));
    expect(await codeOf(blobs.get(r.id, undefined, 4_999))).toBe(
      AttachmentErrorCode.BLOB_TOO_LARGE,
    );
    expect((await blobs.get(r.id, undefined, 5_000)).length).toBe(5_000);
  });
});

describe('retries against the relay', () => {
  const retry = { clock: systemClock(), random: () => 0.5, initialDelayMs: 100 };

  it('takes a new reservation when the token was spent, and stores the blob under it', async () => {
    const spent = await reserve();
    await blobs.put(spent.id, spent.token, random(10));
    const fresh = await reserve();
    const handed = [spent, fresh];
    let asked = 0;
    const bytes = random(1_000);
    const id = await uploadBlob({
      reserve: () => Promise.resolve(handed[asked++]!),
      transport: blobs,
      blob: bytes,
      retry,
    });
    expect([id, asked]).toEqual([fresh.id, 2]);
    expect(await blobs.get(fresh.id)).toEqual(bytes);
  });

  it('gives up after MAX attempts when every reservation is refused', async () => {
    let asked = 0;
    const code = await codeOf(
      uploadBlob({
        reserve: () => (
          asked++,
          Promise.resolve({ id: b64(random(16)), token: b64(random(32)), exp: 0 })
        ),
        transport: blobs,
        blob: random(10),
        retry: { ...retry, maxAttempts: 3, initialDelayMs: 10 },
      }),
    );
    expect([code, asked]).toEqual([AttachmentErrorCode.BLOB_NOT_RESERVED, 3]);
  });

  it('answers overloaded while the upload slots are taken, and the retry succeeds once they are free', async () => {
    // MAX_CONCURRENT_BLOB_UPLOADS (8) uploads whose bodies never finish hold every slot.
    const held: ClientRequest[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await reserve();
      const req = request(`${relay.url}/v1/blobs/${r.id}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${r.token}`, 'content-length': '1000' },
      });
      req.on('error', () => undefined);
      req.write(Buffer.alloc(10));
      held.push(req);
    }
    const r = await reserve();
    // Wait until the relay has every slot taken (the bodies are being read).
    for (let i = 0; ; i++) {
      const probe = await reserve();
      const code = await codeOf(blobs.put(probe.id, probe.token, random(10)));
      if (code === AttachmentErrorCode.OVERLOADED) break;
      if (i > 100) throw new Error('the slots were never all taken');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const tries: string[] = [];
    const watched: BlobTransport = {
      put: async (...args) => {
        try {
          await blobs.put(...args);
          tries.push('stored');
        } catch (error) {
          tries.push((error as AttachmentError).code);
          // The slots come free while the client backs off.
          for (const req of held) req.destroy();
          throw error;
        }
      },
      get: (...args) => blobs.get(...args),
    };
    const bytes = random(2_000);
    await uploadBlob({ reserve: () => Promise.resolve(r), transport: watched, blob: bytes, retry });
    expect(tries[0]).toBe(AttachmentErrorCode.OVERLOADED);
    expect(tries.at(-1)).toBe('stored');
    expect(await blobs.get(r.id)).toEqual(bytes);
  });
});

describe('the network’s own failures', () => {
  it('reports a closed port as blob_network (retryable)', async () => {
    const port = await freePort();
    const nowhere = fetchBlobTransport({ baseUrl: `http://127.0.0.1:${port}` });
    let error: unknown;
    await nowhere.get(b64(random(16))).catch((e: unknown) => (error = e));
    expect(error).toMatchObject({ code: AttachmentErrorCode.NETWORK, retryable: true });
  });

  it('aborts a download that makes no progress with blob_timeout (retryable)', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as { port: number };
    try {
      const stalled = fetchBlobTransport({
        baseUrl: `http://127.0.0.1:${port}`,
        stallTimeoutMs: 200,
      });
      let error: unknown;
      await stalled.get(b64(random(16))).catch((e: unknown) => (error = e));
      expect(error).toMatchObject({ code: AttachmentErrorCode.TIMEOUT, retryable: true });
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});
