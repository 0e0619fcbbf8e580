/**
 * What a relay reads out of Redis for a connection: only what the connection can take. Issue 7
 * §4 measured that every auth read the oldest 256 envelopes whatever the socket could take (up
 * to ~22 MB per auth of a full mailbox), so that 20 auths on sockets that read nothing pulled
 * 427 MiB out of Redis and pushed it past its memory limit. Here several connections of the
 * owner of a full mailbox authenticate and stop reading, and Redis's own count of the bytes it
 * sent (INFO stats, total_net_output_bytes) bounds what the relay pulled for them.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { createClient } from 'redis';
import { PROTOCOL_VERSION } from '@passage/shared/protocol/limits';
import { ClientPool } from '@passage/testing/client-pool';
import { envelope, identity, messageId } from '@passage/testing/test-client';
import { startRedis, type RedisServer } from '@passage/testing/redis';
import { startRelay, stopAllRelays, type RelayProcess } from '@passage/testing/relay-process';

const v = PROTOCOL_VERSION;
const clients = new ClientPool();

/**
 * The relay's MAX_INFLIGHT here, and the envelopes queued: one window. Larger than the default
 * (256) so that a window (48 MB) is well above what the kernel's socket buffers take for a
 * reader that does not read (about 5 MB on loopback), which the relay cannot tell from a
 * reader that reads.
 */
const WINDOW = 1_000;
/** Bytes of each envelope's text (base64url of 36,000 bytes): a large padded bucket. */
const ENVELOPE_BYTES = 36_000;
/** How long a reader waits for one more delivery before it counts the stream as ended, in ms. */
const QUIET_MS = 2_000;

function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1);
}
/** Connections of the mailbox's owner that authenticate and then read nothing. */
const AUTHS = 4;

/** Bytes of the INFO replies this test read (counted in Redis's output too). */
let infoBytes = 0;

/** Bytes Redis has written to its clients since it started. */
async function redisOutputBytes(url: string): Promise<number> {
  const client = createClient({ url });
  await client.connect();
  try {
    const info = await client.info('stats');
    // The bulk reply: its text, a `$<length>` header and two line ends.
    infoBytes += Buffer.byteLength(info) + 16;
    const match = /total_net_output_bytes:(\d+)/.exec(info);
    if (match === null) throw new Error('INFO stats has no total_net_output_bytes');
    return Number(match[1]);
  } finally {
    client.destroy();
  }
}

/** Waits until Redis's output count has not moved for `quietMs` (the relay's refills ended). */
async function outputAtRest(url: string, quietMs = 1_000): Promise<number> {
  let last = await redisOutputBytes(url);
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, quietMs));
    const now = await redisOutputBytes(url);
    // The INFO reply itself is a few kB; anything a refill read is an envelope or more.
    if (now - last < ENVELOPE_BYTES) return now;
    last = now;
  }
}

afterEach(() => clients.closeAll());

describe('a relay on Redis reads for a connection only what it can take', () => {
  let redis: RedisServer;
  let relay: RelayProcess;
  beforeAll(async () => {
    redis = await startRedis();
    relay = await startRelay({
      REDIS_URL: redis.url,
      MAX_INFLIGHT: String(WINDOW),
      MAX_WINDOW_PER_MAILBOX: String(WINDOW),
      CONN_FRAMES_PER_SECOND: '10000',
      CONN_FRAME_BURST: '10000',
      MAILBOX_SENDS_PER_SECOND: '10000',
      MAILBOX_SEND_BURST: '10000',
      // The window is sent in one go (36 MB): this test is about reads, not the byte rate.
      CONN_BYTES_PER_SECOND: '1000000000',
      CONN_BYTE_BURST: '1000000000',
    });
  }, 60_000);
  afterAll(async () => {
    await stopAllRelays();
    await redis?.stop();
  });

  it('regression: every auth of a full mailbox read a whole window of envelopes out of Redis, whatever the socket could take', async () => {
    const owner = identity();
    const sender = await clients.connect(relay);
    for (let i = 0; i < WINDOW; i += 1) {
      sender.send({
        v,
        t: 'send',
        rid: i + 1,
        to: owner.mailbox,
        id: messageId(),
        env: envelope(ENVELOPE_BYTES),
      });
    }
    for (let i = 0; i < WINDOW; i += 1) expect((await sender.next()).t).toBe('stored');
    const envelopeText = envelope(ENVELOPE_BYTES).length;

    const before = await outputAtRest(redis.url);
    infoBytes = 0;
    const readers = [];
    for (let i = 0; i < AUTHS; i += 1) {
      const reader = await clients.connect(relay);
      await reader.authenticate(owner);
      reader.pauseReading();
      readers.push(reader);
    }
    const pulled = (await outputAtRest(redis.url)) - before - infoBytes;

    // What the relay wrote into those sockets: freeze Redis (no refill can read more), let
    // every reader read, and count the envelope text it receives until nothing more comes.
    redis.freeze();
    let received = 0;
    try {
      await Promise.all(
        readers.map(async (reader) => {
          reader.resumeReading();
          for (;;) {
            const frame = await reader.next('deliver', QUIET_MS).catch(() => undefined);
            if (frame === undefined) return;
            if (frame.t === 'deliver') received += frame.env.length;
          }
        }),
      );
    } finally {
      redis.thaw();
    }

    // Before the cursor, each auth pulled a whole window (48 MB; 192 MB for the four) and the
    // sockets took what the kernel's buffers hold for a reader that does not read (a few MB).
    // Now the relay reads only what it then writes: the envelopes the readers received, plus
    // the ids listed with each page (under 5 % with 1 MiB of socket room per page) and at most
    // one envelope per connection left unsent at the end of a page.
    const window = WINDOW * envelopeText;
    process.stdout.write(
      `refill: ${AUTHS} auths of a mailbox of ${WINDOW} × ${envelopeText} B pulled ` +
        `${mib(pulled)} MiB out of Redis and wrote ${mib(received)} MiB into the sockets ` +
        `(a whole window is ${mib(window)} MiB per auth)\n`,
    );
    expect(received).toBeGreaterThan(0);
    expect(pulled).toBeLessThanOrEqual(received * 1.05 + AUTHS * 2 * envelopeText);
  }, 120_000);
});
