/**
 * The per-connection byte rate (`CONN_BYTES_PER_SECOND`, `CONN_BYTE_BURST`) on the real relay:
 * what one connection may make the relay read, parse and store per second, whatever the frame
 * count. Frames are padded with JSON whitespace to exact sizes.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { ErrorCode } from '@passage/shared/protocol/errors';
import { MAX_FRAME_BYTES } from '@passage/shared/protocol/limits';
import { ClientPool } from '@passage/testing/client-pool';
import { startInProcessRelay, type InProcessRelay } from '@passage/testing/in-process';
import { envelope, messageId, type TestClient } from '@passage/testing/test-client';

jest.setTimeout(60_000);

const clients = new ClientPool();
afterEach(() => clients.closeAll());

const BURST = 100_000;

/** A ping frame of exactly `bytes` bytes (JSON allows trailing whitespace). */
function ping(rid: number, bytes: number): string {
  const text = JSON.stringify({ v: 1, t: 'ping', rid });
  if (text.length > bytes) throw new RangeError('too small for a ping');
  return text + ' '.repeat(bytes - text.length);
}

async function answerTo(client: TestClient, rid: number) {
  const answer = await client.nextOf(['pong', 'stored', 'error']);
  expect(answer.rid).toBe(rid);
  return answer;
}

describe('per-connection byte rate', () => {
  let relay: InProcessRelay;
  beforeAll(async () => {
    // 1 byte a second: nothing refills within a test.
    relay = await startInProcessRelay({
      env: { CONN_BYTES_PER_SECOND: '1', CONN_BYTE_BURST: String(BURST) },
    });
  });
  afterAll(() => relay.stop());

  it('regression: a connection could send maximal frames at its whole frame rate; now bytes up to exactly the burst pass and the next frame is refused', async () => {
    const client = await clients.connect(relay);
    client.sendRaw(ping(1, MAX_FRAME_BYTES));
    expect((await answerTo(client, 1)).t).toBe('pong');
    client.sendRaw(ping(2, BURST - MAX_FRAME_BYTES));
    expect((await answerTo(client, 2)).t).toBe('pong');
    client.sendRaw(ping(3, 30));
    expect(await answerTo(client, 3)).toMatchObject({ code: ErrorCode.RATE_LIMITED });
  });

  it('refuses a frame one byte past the burst, and stores nothing for a refused send', async () => {
    const client = await clients.connect(relay);
    client.sendRaw(ping(1, MAX_FRAME_BYTES));
    expect((await answerTo(client, 1)).t).toBe('pong');
    client.sendRaw(ping(2, BURST - MAX_FRAME_BYTES + 1));
    expect(await answerTo(client, 2)).toMatchObject({ code: ErrorCode.RATE_LIMITED });
    // The refused frame took nothing: exactly what is left still passes.
    client.sendRaw(ping(4, BURST - MAX_FRAME_BYTES));
    expect((await answerTo(client, 4)).t).toBe('pong');
    const owner = await clients.online(relay);
    client.send({ v: 1, t: 'send', rid: 3, to: owner.mailbox, id: messageId(), env: envelope() });
    expect(await answerTo(client, 3)).toMatchObject({ code: ErrorCode.RATE_LIMITED });
    await owner.roundTrip();
    expect(owner.pending.filter((f) => f.t === 'deliver')).toEqual([]);
  });

  it('counts each connection on its own', async () => {
    const a = await clients.connect(relay);
    a.sendRaw(ping(1, MAX_FRAME_BYTES));
    expect((await answerTo(a, 1)).t).toBe('pong');
    a.sendRaw(ping(2, BURST - MAX_FRAME_BYTES + 1));
    expect(await answerTo(a, 2)).toMatchObject({ code: ErrorCode.RATE_LIMITED });
    const b = await clients.connect(relay);
    b.sendRaw(ping(1, MAX_FRAME_BYTES));
    expect((await answerTo(b, 1)).t).toBe('pong');
    b.sendRaw(ping(2, BURST - MAX_FRAME_BYTES));
    expect((await answerTo(b, 2)).t).toBe('pong');
  });
});

describe('regression: a byte-rate refusal spent a frame-rate token as well', () => {
  let relay: InProcessRelay;
  beforeAll(async () => {
    // Three frames and MAX_FRAME_BYTES bytes at once, and next to nothing refills in a test.
    relay = await startInProcessRelay({
      env: {
        CONN_FRAMES_PER_SECOND: '1',
        CONN_FRAME_BURST: '3',
        CONN_BYTES_PER_SECOND: '1',
        CONN_BYTE_BURST: String(MAX_FRAME_BYTES),
      },
    });
  });
  afterAll(() => relay.stop());

  it('leaves the frame rate untouched when the byte rate refuses a frame', async () => {
    const client = await clients.connect(relay);
    client.sendRaw(ping(1, MAX_FRAME_BYTES - 100));
    expect((await answerTo(client, 1)).t).toBe('pong');
    // 200 bytes against the 100 left: refused for bytes; it must not cost one of the two frames.
    client.sendRaw(ping(2, 200));
    expect(await answerTo(client, 2)).toMatchObject({ code: ErrorCode.RATE_LIMITED });
    client.sendRaw(ping(3, 30));
    expect((await answerTo(client, 3)).t).toBe('pong');
    client.sendRaw(ping(4, 30));
    expect((await answerTo(client, 4)).t).toBe('pong');
    // And now the frame rate is spent: the next small frame is refused.
    client.sendRaw(ping(5, 30));
    expect(await answerTo(client, 5)).toMatchObject({ code: ErrorCode.RATE_LIMITED });
  });
});
