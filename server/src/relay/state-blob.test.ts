/**
 * The mailbox's state blob and attachment reservations through a real in-process relay: only the
 * authenticated owner reaches its state; compare-and-set on the generation; one answer for "none"
 * whatever the reason (never stored, deleted, another mailbox: a wrong codename); a create and a
 * reservation need a solved proof-of-work on the connection; reservations are bounded per
 * connection. The store's side (expiry, atomicity, both stores) is store.contract.ts.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { toBase64url } from '@passage/shared/protocol/base64url';
import { ErrorCode } from '@passage/shared/protocol/errors';
import type { FrameOf } from '@passage/shared/protocol/frames';
import {
  MAX_BLOB_RESERVATIONS_PER_CONNECTION,
  MAX_STATE_BLOB_BYTES,
} from '@passage/shared/protocol/limits';
import { ClientPool } from '@passage/testing/client-pool';
import { startInProcessRelay, type InProcessRelay } from '@passage/testing/in-process';
import { identity, type TestClient, type TestIdentity } from '@passage/testing/test-client';

jest.setTimeout(60_000);

const clients = new ClientPool();
afterEach(() => clients.closeAll());

const b64 = (n: number, fill = 1) => toBase64url(new Uint8Array(n).fill(fill));
let rid = 100;

async function put(client: TestClient, blob: string, ifGeneration: number) {
  const r = ++rid;
  client.send({ v: 1, t: 'state.put', rid: r, blob, ifGeneration });
  const answer = await client.nextOf(['state.stored', 'error']);
  expect(answer.rid).toBe(r);
  return answer;
}

async function get(client: TestClient): Promise<FrameOf<'state.blob'> | FrameOf<'error'>> {
  const r = ++rid;
  client.send({ v: 1, t: 'state.get', rid: r });
  const answer = await client.nextOf(['state.blob', 'error']);
  expect(answer.rid).toBe(r);
  return answer;
}

async function generationOf(answer: Promise<{ t: string }>): Promise<number> {
  const frame = await answer;
  if (frame.t !== 'state.stored') throw new Error(`not stored: ${JSON.stringify(frame)}`);
  return (frame as FrameOf<'state.stored'>).generation;
}

/** Strips the rid, which differs by request, so answers can be compared. */
const withoutRid = (frame: { rid?: number | undefined }) => ({ ...frame, rid: 0 });

describe('state blob frames (proof-of-work off)', () => {
  let relay: InProcessRelay;
  beforeAll(async () => {
    relay = await startInProcessRelay();
  });
  afterAll(() => relay.stop());

  it('creates, reads, replaces by generation and deletes the owner’s state', async () => {
    const client = await clients.online(relay);
    const first = b64(300, 3);
    const g1 = await generationOf(put(client, first, 0));
    expect(await get(client)).toMatchObject({ t: 'state.blob', blob: first, generation: g1 });
    const second = b64(400, 4);
    const g2 = await generationOf(put(client, second, g1));
    expect(g2).not.toBe(g1);
    expect(await get(client)).toMatchObject({ blob: second, generation: g2 });
    client.send({ v: 1, t: 'state.delete', rid: 7 });
    expect(await client.nextOf(['state.deleted', 'error'])).toEqual({
      v: 1,
      t: 'state.deleted',
      rid: 7,
    });
    expect(await get(client)).toMatchObject({ blob: null, generation: 0 });
  });

  it('refuses a stale put with state_conflict and keeps the newer state', async () => {
    const who = identity();
    const tabA = await clients.online(relay, who);
    const tabB = await clients.online(relay, who);
    const g1 = await generationOf(put(tabA, b64(10, 1), 0));
    const newer = b64(10, 2);
    await generationOf(put(tabB, newer, g1));
    const stale = await put(tabA, b64(10, 3), g1);
    expect(stale).toMatchObject({ t: 'error', code: ErrorCode.STATE_CONFLICT, retryable: false });
    expect(await get(tabA)).toMatchObject({ blob: newer });
    // A second create on a held state conflicts too.
    expect(await put(tabB, b64(10, 5), 0)).toMatchObject({ code: ErrorCode.STATE_CONFLICT });
  });

  it('gives one answer for a mailbox that never stored, one that deleted, and another mailbox (a wrong codename)', async () => {
    const owner = await clients.online(relay);
    await generationOf(put(owner, b64(50), 0));
    const wrong = await clients.online(relay);
    const never = withoutRid(await get(wrong));
    const deleted = await clients.online(relay);
    await generationOf(put(deleted, b64(50), 0));
    deleted.send({ v: 1, t: 'state.delete', rid: 1 });
    await deleted.next('state.deleted');
    expect(withoutRid(await get(deleted))).toEqual(never);
    expect(never).toEqual({ v: 1, t: 'state.blob', rid: 0, blob: null, generation: 0 });
    // And deleting what is not there answers as deleting what is.
    wrong.send({ v: 1, t: 'state.delete', rid: 2 });
    expect(await wrong.next('state.deleted')).toEqual({ v: 1, t: 'state.deleted', rid: 2 });
  });

  it('keeps a state of exactly MAX_STATE_BLOB_BYTES, and refuses one byte more with state_too_large', async () => {
    const client = await clients.online(relay);
    const max = b64(MAX_STATE_BLOB_BYTES, 9);
    const g = await generationOf(put(client, max, 0));
    expect(await get(client)).toMatchObject({ blob: max, generation: g });
    const over = await put(client, b64(MAX_STATE_BLOB_BYTES + 1, 9), g);
    expect(over).toMatchObject({ code: ErrorCode.STATE_TOO_LARGE });
    expect(await get(client)).toMatchObject({ blob: max, generation: g });
  });

  it('refuses every state frame before auth, storing nothing', async () => {
    const client = await clients.connect(relay);
    await client.nonce();
    for (const frame of [
      { v: 1, t: 'state.put', rid: 1, blob: b64(4), ifGeneration: 0 },
      { v: 1, t: 'state.get', rid: 2 },
      { v: 1, t: 'state.delete', rid: 3 },
      { v: 1, t: 'blob.reserve', rid: 4 },
    ]) {
      client.send(frame);
      expect(await client.nextError()).toMatchObject({
        rid: frame.rid,
        code: ErrorCode.NOT_AUTHENTICATED,
      });
    }
  });

  it('refuses malformed state frames with bad_frame and the rid', async () => {
    const client = await clients.online(relay);
    for (const frame of [
      { v: 1, t: 'state.put', rid: 1, blob: b64(4) },
      { v: 1, t: 'state.put', rid: 2, blob: '', ifGeneration: 0 },
      { v: 1, t: 'state.put', rid: 3, blob: b64(4), ifGeneration: -1 },
      { v: 1, t: 'state.get', rid: 4, mailbox: b64(32) },
    ]) {
      client.send(frame);
      expect(await client.nextError()).toMatchObject({ rid: frame.rid, code: ErrorCode.BAD_FRAME });
    }
    expect(await get(client)).toMatchObject({ blob: null });
  });

  it('reserves uploads with fresh ids and tokens, at most MAX_BLOB_RESERVATIONS_PER_CONNECTION', async () => {
    const client = await clients.online(relay);
    const seen = new Set<string>();
    for (let i = 0; i < MAX_BLOB_RESERVATIONS_PER_CONNECTION; i++) {
      client.send({ v: 1, t: 'blob.reserve', rid: i });
      const answer = await client.next('blob.reserved');
      if (answer.t !== 'blob.reserved') throw new Error('not reserved');
      expect(answer.exp).toBeGreaterThan(Date.now());
      seen.add(answer.id).add(answer.token);
    }
    expect(seen.size).toBe(2 * MAX_BLOB_RESERVATIONS_PER_CONNECTION);
    client.send({ v: 1, t: 'blob.reserve', rid: 99 });
    expect(await client.nextError()).toMatchObject({
      rid: 99,
      code: ErrorCode.BLOB_RESERVATIONS_SPENT,
    });
  });
});

describe('state blob frames with proof-of-work on', () => {
  let relay: InProcessRelay;
  beforeAll(async () => {
    relay = await startInProcessRelay({ env: { POW_BITS: '1', POW_MAX_BITS: '2' } });
  });
  afterAll(() => relay.stop());

  it('refuses a create and a reservation before a solved challenge with pow_required, storing nothing', async () => {
    const client = await clients.online(relay);
    expect(await put(client, b64(20), 0)).toMatchObject({ code: ErrorCode.POW_REQUIRED });
    client.send({ v: 1, t: 'blob.reserve', rid: 5 });
    expect(await client.nextError()).toMatchObject({ rid: 5, code: ErrorCode.POW_REQUIRED });
    expect(await get(client)).toMatchObject({ blob: null });
  });

  it('answers pow_required for a create whether or not a state is held (no oracle)', async () => {
    const who: TestIdentity = identity();
    const paid = await clients.online(relay, who);
    await paid.admit(paid.mailbox!);
    await generationOf(put(paid, b64(20), 0));
    const unpaid = await clients.online(relay, who);
    const held = withoutRid(await put(unpaid, b64(20), 0));
    const fresh = await clients.online(relay);
    expect(withoutRid(await put(fresh, b64(20), 0))).toEqual(held);
  });

  it('creates and reserves after a solved challenge for any mailbox; replacing needs none', async () => {
    const who = identity();
    const client = await clients.online(relay, who);
    await client.admit(identity().mailbox);
    const g = await generationOf(put(client, b64(20), 0));
    client.send({ v: 1, t: 'blob.reserve', rid: 6 });
    expect(await client.next('blob.reserved')).toMatchObject({ rid: 6 });
    const other = await clients.online(relay, who);
    await generationOf(put(other, b64(21), g));
  });
});
