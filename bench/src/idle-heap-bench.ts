/**
 * `npm run bench:idle`: what one idle authenticated connection costs the relay, measured on the
 * JavaScript heap rather than the process's RSS (the relay bench's idle phase,
 * relay-bench.ts, reads RSS, which allocator and GC timing make noisy to a KiB or two per
 * connection). The relay runs in this process (MemoryStore, LOG_LEVEL=warn) with `--expose-gc`;
 * the clients run in a forked child (this file with `--client`), so that only the relay's
 * objects are counted. Reports, per connection, the growth of heapUsed, of external +
 * arrayBuffers (the sockets' buffers) and of RSS between a full GC before and after.
 *
 * Flags: --conns=N (5,000); --store=redis runs the relay on the Redis store, against a
 * redis-server of its own on a free port (its memory is Redis's, not counted here). IDLE_HEAP_SNAPSHOTS=<dir> also writes heap snapshots before and
 * after (before.heapsnapshot, after.heapsnapshot) to compare by constructor in DevTools.
 */
import { fork } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeHeapSnapshot } from 'node:v8';
import WebSocket from 'ws';
import { toBase64url } from '@passage/shared/protocol/base64url';
import { WS_SUBPROTOCOL } from '@passage/shared/protocol/limits';
import { authChallengeMessage } from '@passage/shared/protocol/mailbox';
import { startInProcessRelay } from '@passage/testing/in-process';
import { startRedis, type RedisServer } from '@passage/testing/redis';
import { identity } from '@passage/testing/test-client';

const CONNS = Number(
  process.argv.find((a) => a.startsWith('--conns='))?.slice('--conns='.length) ?? 5_000,
);
if (!Number.isInteger(CONNS) || CONNS <= 0) throw new Error('--conns takes a positive integer');
const STORE =
  process.argv.find((a) => a.startsWith('--store='))?.slice('--store='.length) ?? 'memory';
if (STORE !== 'memory' && STORE !== 'redis') throw new Error('--store takes memory or redis');

/** The child: opens and authenticates `CONNS` connections, says so, and holds them. */
async function client(url: string): Promise<void> {
  const sockets: WebSocket[] = [];
  const open = async () => {
    const who = identity();
    const ws = new WebSocket(url, WS_SUBPROTOCOL, { perMessageDeflate: false });
    sockets.push(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('error', reject);
      ws.on('message', (data) => {
        const frame = JSON.parse((data as Buffer).toString()) as Record<string, unknown>;
        if (frame['t'] === 'challenge') {
          const nonce = Buffer.from(frame['nonce'] as string, 'base64url');
          ws.send(
            JSON.stringify({
              v: 1,
              t: 'auth',
              rid: 1,
              pk: toBase64url(who.publicKey),
              sig: toBase64url(who.sign(authChallengeMessage(nonce))),
            }),
          );
        } else if (frame['t'] === 'authed') {
          resolve();
        } else if (frame['t'] === 'error') {
          reject(new Error(String(frame['code'])));
        }
      });
    });
  };
  for (let i = 0; i < CONNS; i += 200) {
    await Promise.all(Array.from({ length: Math.min(200, CONNS - i) }, open));
  }
  process.send?.('ready');
  await new Promise(() => {}); // held until the parent kills this process
}

function gcAndRead(): NodeJS.MemoryUsage {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with node --expose-gc');
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage();
}

async function main(): Promise<void> {
  const redis: RedisServer | undefined = STORE === 'redis' ? await startRedis() : undefined;
  const relay = await startInProcessRelay({
    env: {
      ...(redis === undefined ? {} : { REDIS_URL: redis.url }),
      LOG_LEVEL: 'warn',
      MAX_CONNECTIONS: String(CONNS + 100),
      MAX_UNAUTHENTICATED_CONNECTIONS: String(CONNS + 100),
    },
  });
  try {
    await sleep(500);
    const before = gcAndRead();
    const snapshots = process.env['IDLE_HEAP_SNAPSHOTS'];
    if (snapshots !== undefined) writeHeapSnapshot(`${snapshots}/before.heapsnapshot`);
    const child = fork(new URL(import.meta.url), ['--client', relay.wsUrl, `--conns=${CONNS}`], {
      execArgv: [],
    });
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (code) => reject(new Error(`client exited with ${code}`)));
    });
    await sleep(1_000);
    const after = gcAndRead();
    if (snapshots !== undefined) writeHeapSnapshot(`${snapshots}/after.heapsnapshot`);
    const kib = (a: number, b: number) => ((a - b) / 1024 / CONNS).toFixed(2);
    process.stdout.write(
      `idle authenticated connections: ${CONNS} (${STORE} store, in-process relay, after full GC)\n` +
        `  heapUsed              ${kib(after.heapUsed, before.heapUsed)} KiB/conn\n` +
        `  external+arrayBuffers ${kib(after.external + after.arrayBuffers, before.external + before.arrayBuffers)} KiB/conn\n` +
        `  rss                   ${kib(after.rss, before.rss)} KiB/conn\n`,
    );
    child.kill();
  } finally {
    await relay.stop(0);
    await redis?.stop();
  }
}

if (process.argv.includes('--client')) {
  await client(process.argv[process.argv.indexOf('--client') + 1]!);
} else {
  await main();
}
