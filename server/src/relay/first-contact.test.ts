/**
 * First contact on the real relay (in-process, MemoryStore): a connection's first `send` to a
 * mailbox needs a solved proof-of-work challenge, and one admission carries a bounded share of
 * sends (admission.ts, ADR 0011). The harness turns proof-of-work off for other tests; these
 * turn it on.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { toBase64url } from '@passage/shared/protocol/base64url';
import { ErrorCode } from '@passage/shared/protocol/errors';
import { parsePowChallenge, solvePow, verifyPow, type PowChallenge } from '@passage/shared/pow/pow';
import { ClientPool } from '@passage/testing/client-pool';
import { startInProcessRelay, type InProcessRelay } from '@passage/testing/in-process';
import { envelope, messageId, type TestClient } from '@passage/testing/test-client';

jest.setTimeout(60_000);

const clients = new ClientPool();
afterEach(() => clients.closeAll());

const SHARE = 5;
const POW_ENV = {
  POW_BITS: '6',
  POW_MAX_BITS: '12',
  POW_SENDS_PER_ADMISSION: String(SHARE),
  POW_TARGET_ADMISSIONS_PER_MINUTE: '1000',
  POW_ADMISSIONS_PER_MINUTE: '100000',
  MAX_INVALID_FRAMES: '1000',
} as const;

let rid = 100;

/** Sends one envelope and returns the answer to this very frame (`stored` or `error`). */
async function send(from: TestClient, to: string, id = messageId()) {
  const r = ++rid;
  from.send({ v: 1, t: 'send', rid: r, to, id, env: envelope() });
  const answer = await from.nextOf(['stored', 'error']);
  expect(answer.rid).toBe(r);
  return answer;
}

const randomMailbox = () => toBase64url(randomBytes(32));
const sha256 = (data: Uint8Array): Uint8Array => createHash('sha256').update(data).digest();

/** A candidate solution that does not meet the challenge's difficulty. */
function failing(challenge: PowChallenge): Uint8Array {
  for (let i = 0; ; i++) {
    const candidate = new Uint8Array(8);
    new DataView(candidate.buffer).setUint32(4, i);
    try {
      verifyPow(challenge, candidate, sha256, Date.now());
    } catch {
      return candidate;
    }
  }
}

describe('first contact', () => {
  let relay: InProcessRelay;
  beforeAll(async () => {
    relay = await startInProcessRelay({ env: POW_ENV });
  });
  afterAll(() => relay.stop());

  it('regression: an anonymous connection stores envelopes for a mailbox without paying', async () => {
    // Before: one connection filled the embedded store in 8.5 s by sending to mailboxes it never
    // proved anything for. Now the first send to each mailbox needs a proof.
    const stranger = await clients.connect(relay);
    for (let i = 0; i < 3; i++) {
      const answer = await send(stranger, randomMailbox());
      expect(answer).toMatchObject({ t: 'error', code: ErrorCode.POW_REQUIRED, retryable: false });
    }
  });

  it('stores and delivers a send once the connection is admitted to the mailbox', async () => {
    const owner = await clients.online(relay);
    const contact = await clients.connect(relay);
    const admitted = await contact.admit(owner.mailbox!);
    expect(admitted).toMatchObject({ t: 'pow.admitted', to: owner.mailbox, sends: SHARE });
    const id = messageId();
    expect(await send(contact, owner.mailbox!, id)).toMatchObject({ t: 'stored', id });
    expect(await owner.next('deliver')).toMatchObject({ id });
  });

  it(`stores ${SHARE} envelopes per admission, refuses one more, and a new proof renews it`, async () => {
    const to = randomMailbox();
    const contact = await clients.connect(relay);
    await contact.admit(to);
    for (let i = 0; i < SHARE; i++) expect((await send(contact, to)).t).toBe('stored');
    expect(await send(contact, to)).toMatchObject({ code: ErrorCode.POW_REQUIRED });
    await contact.admit(to);
    expect((await send(contact, to)).t).toBe('stored');
  });

  it('does not count a resend of a stored id against the share', async () => {
    const to = randomMailbox();
    const contact = await clients.connect(relay);
    await contact.admit(to);
    const id = messageId();
    for (let i = 0; i < SHARE + 2; i++) expect(await send(contact, to, id)).toMatchObject({ id });
    for (let i = 0; i < SHARE - 1; i++) expect((await send(contact, to)).t).toBe('stored');
  });

  it('does not carry an admission over to another connection or another mailbox', async () => {
    const to = randomMailbox();
    const first = await clients.connect(relay);
    await first.admit(to);
    const second = await clients.connect(relay);
    expect(await send(second, to)).toMatchObject({ code: ErrorCode.POW_REQUIRED });
    expect(await send(first, randomMailbox())).toMatchObject({ code: ErrorCode.POW_REQUIRED });
  });

  it('answers pow_required alike for a mailbox that exists and one that does not', async () => {
    const owner = await clients.online(relay);
    const probe = await clients.connect(relay);
    const real = await send(probe, owner.mailbox!);
    const fake = await send(probe, randomMailbox());
    expect({ ...real, rid: 0 }).toEqual({ ...fake, rid: 0 });
  });

  it('refuses a solution for a nonce it did not issue, a wrong one, and one answered twice', async () => {
    const to = randomMailbox();
    const client = await clients.connect(relay);
    const solveWith = (r: number, nonce: string, solution: Uint8Array) =>
      client.send({ v: 1, t: 'pow.solve', rid: r, nonce, solution: toBase64url(solution) });

    solveWith(7, toBase64url(randomBytes(16)), randomBytes(8));
    expect(await client.nextError()).toMatchObject({ rid: 7, code: ErrorCode.POW_FAILED });

    client.send({ v: 1, t: 'pow.request', rid: 8, to });
    const offered = await client.next('pow.challenge');
    if (offered.t !== 'pow.challenge') throw new Error('unreachable');
    const challenge = parsePowChallenge(offered.challenge);
    const right = solvePow(challenge, sha256, { nowMs: Date.now() });
    solveWith(9, offered.challenge.nonce, failing(challenge));
    expect(await client.nextError()).toMatchObject({ rid: 9, code: ErrorCode.POW_FAILED });
    // Spent by the failed attempt: even the right solution no longer opens it.
    solveWith(10, offered.challenge.nonce, right);
    expect(await client.nextError()).toMatchObject({ rid: 10, code: ErrorCode.POW_FAILED });
    expect(await send(client, to)).toMatchObject({ code: ErrorCode.POW_REQUIRED });

    const admitted = await client.admit(to, 11);
    expect(admitted.rid).toBe(11);
  });

  it('does not let a connection that has not paid spend the mailbox send rate', async () => {
    const limited = await startInProcessRelay({
      env: { ...POW_ENV, MAILBOX_SEND_BURST: '3', MAILBOX_SENDS_PER_SECOND: '1' },
    });
    try {
      const owner = await clients.online(limited);
      const stranger = await clients.connect(limited);
      for (let i = 0; i < 20; i++) {
        expect(await send(stranger, owner.mailbox!)).toMatchObject({
          code: ErrorCode.POW_REQUIRED,
        });
      }
      const contact = await clients.connect(limited);
      await contact.admit(owner.mailbox!);
      expect((await send(contact, owner.mailbox!)).t).toBe('stored');
    } finally {
      await clients.closeAll();
      await limited.stop();
    }
  });

  it('raises the difficulty for a mailbox admitted past its nominal rate', async () => {
    const busy = await startInProcessRelay({
      env: { ...POW_ENV, POW_BITS: '2', POW_TARGET_ADMISSIONS_PER_MINUTE: '2' },
    });
    try {
      const to = randomMailbox();
      const client = await clients.connect(busy);
      const bits: number[] = [];
      for (let i = 0; i < 5; i++) {
        client.send({ v: 1, t: 'pow.request', rid: 50 + i, to });
        const offered = await client.next('pow.challenge');
        if (offered.t === 'pow.challenge') bits.push(offered.challenge.bits);
        await client.admit(to, 60 + i);
      }
      // Admissions 0, 1, 2 (at the nominal 2), 3 (one past: +1), 4 (+2 from 4 = 2 × 2).
      expect(bits).toEqual([2, 2, 2, 3, 4]);
    } finally {
      await clients.closeAll();
      await busy.stop();
    }
  });

  it('tells the owner, and only the owner, that its mailbox draws likely spam', async () => {
    const busy = await startInProcessRelay({
      env: { ...POW_ENV, POW_BITS: '2', POW_TARGET_ADMISSIONS_PER_MINUTE: '2' },
    });
    try {
      const owner = await clients.online(busy);
      const status = async (r: number) => {
        owner.send({ v: 1, t: 'firstcontact.status', rid: r });
        return owner.next('firstcontact.count');
      };
      expect(await status(1)).toMatchObject({ admissions: 0, bits: 2, likelySpam: false });
      const stranger = await clients.connect(busy);
      for (let i = 0; i < 2; i++) await stranger.admit(owner.mailbox!, 10 + i);
      expect(await status(2)).toMatchObject({ admissions: 2, bits: 2, likelySpam: false });
      await stranger.admit(owner.mailbox!, 12);
      expect(await status(3)).toMatchObject({ admissions: 3, bits: 3, likelySpam: true });
      // Not before auth: no one learns another mailbox's signal.
      stranger.send({ v: 1, t: 'firstcontact.status', rid: 4 });
      expect(await stranger.nextError()).toMatchObject({
        rid: 4,
        code: ErrorCode.NOT_AUTHENTICATED,
      });
    } finally {
      await clients.closeAll();
      await busy.stop();
    }
  });

  it('sends without any proof when POW_BITS is 0', async () => {
    const open = await startInProcessRelay({ env: { ...POW_ENV, POW_BITS: '0' } });
    try {
      const client = await clients.connect(open);
      expect((await send(client, randomMailbox())).t).toBe('stored');
    } finally {
      await clients.closeAll();
      await open.stop();
    }
  });
});
