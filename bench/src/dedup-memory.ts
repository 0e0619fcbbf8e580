/**
 * Bytes of Redis memory per remembered (acknowledged) message id, measured on a redis-server this
 * script starts on a free loopback port (no persistence): for each workload, a fresh server,
 * `used_memory` from `INFO memory` before and after enqueueing and acknowledging the ids through
 * RedisStore, divided by the ids acknowledged (main dict and expires dict included); and
 * `MEMORY USAGE` of one key that remembers ids, per id it holds (the key's own bytes only); and
 * Redis's CPU time (`INFO cpu`) per id enqueued and acknowledged (batched as the relay does: the
 * enqueues and acks of one event-loop turn go as one script call each).
 *
 *   node bench/dist/dedup-memory.js [--ids=100000]
 *
 * Envelopes are 64 base64url characters (they are deleted by the ack; only the ids stay), ids
 * are 16 random bytes (22 characters) and mailbox ids 32 (43 characters), as on the wire. The
 * dedup window and the queue TTL are an hour, far longer than the run, so nothing expires.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, Socket } from 'node:net';
import { RedisStore } from '@passage/server/store/redis';
import { MAX_DEDUP_IDS_PER_MAILBOX, type StoreLimits } from '@passage/server/store/store';

const LIMITS: StoreLimits = {
  queueTtlSeconds: 3_600,
  maxQueuedPerMailbox: 100_000,
  dedupTtlSeconds: 3_600,
  maxDedupIdsPerMailbox: MAX_DEDUP_IDS_PER_MAILBOX,
  prekeyTtlSeconds: 3_600,
  maxOneTimePrekeys: 100,
};

/** Ids enqueued (and then acknowledged) concurrently, and per ack call. */
const CHUNK = 1_000;
const ACK_CHUNK = 256;

function flag(name: string, fallback: number): number {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  const value = arg === undefined ? fallback : Number(arg.slice(name.length + 3));
  if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`--${name}: bad value`);
  return value;
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** One RESP command over a fresh socket; returns the reply's text (integer or bulk string). */
async function command(port: number, args: readonly string[]): Promise<string> {
  const socket = new Socket();
  socket.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  let request = `*${args.length}\r\n`;
  for (const a of args) request += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
  socket.write(request);
  let data = Buffer.alloc(0);
  try {
    for (;;) {
      const [chunk] = (await once(socket, 'data')) as [Buffer];
      data = Buffer.concat([data, chunk]);
      const text = data.toString('utf8');
      const eol = text.indexOf('\r\n');
      if (eol < 0) continue;
      const head = text.slice(0, eol);
      if (head.startsWith('-')) throw new Error(`redis: ${head}`);
      if (head.startsWith(':') || head.startsWith('+')) return head.slice(1);
      if (head === '$-1') return '';
      if (head.startsWith('$')) {
        const length = Number(head.slice(1));
        if (data.length >= eol + 2 + length + 2) {
          return data.subarray(eol + 2, eol + 2 + length).toString('utf8');
        }
        continue;
      }
      throw new Error('redis: unexpected reply');
    }
  } finally {
    socket.destroy();
  }
}

async function usedMemory(port: number): Promise<number> {
  const info = await command(port, ['INFO', 'memory']);
  const match = /^used_memory:(\d+)/m.exec(info);
  if (match === null) throw new Error('INFO memory: no used_memory');
  return Number(match[1]);
}

/** Redis's CPU time so far (user + system), in µs. */
async function redisCpuMicros(port: number): Promise<number> {
  const info = await command(port, ['INFO', 'cpu']);
  const user = /^used_cpu_user:([\d.]+)/m.exec(info);
  const sys = /^used_cpu_sys:([\d.]+)/m.exec(info);
  if (user === null || sys === null) throw new Error('INFO cpu: no used_cpu_user/sys');
  return (Number(user[1]) + Number(sys[1])) * 1e6;
}

async function startRedis(): Promise<{ port: number; stop: () => Promise<void> }> {
  const port = await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  for (let i = 0; ; i += 1) {
    try {
      if ((await command(port, ['PING'])) === 'PONG') break;
    } catch {
      // not listening yet
    }
    if (i > 200) throw new Error('redis-server did not start');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    port,
    stop: async () => {
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

const logger = { info: () => {}, warn: () => {}, error: () => {} };

interface Row {
  readonly workload: string;
  readonly acked: number;
  readonly bytesPerAckedId: number;
  readonly keys: number;
  readonly sampleBytesPerId: number;
  readonly redisCpuMicrosPerId: number;
}

/** Enqueues and acknowledges `perMailbox` ids in each of `mailboxes` mailboxes on a fresh Redis. */
async function measure(mailboxes: number, perMailbox: number): Promise<Row> {
  const redis = await startRedis();
  const store = new RedisStore({ limits: LIMITS, logger, url: `redis://127.0.0.1:${redis.port}` });
  try {
    await store.start(10_000);
    const env = randomBytes(48).toString('base64url');
    const boxes = Array.from({ length: mailboxes }, () => randomBytes(32).toString('base64url'));
    // Let the connection settle (scripts loaded, client buffers allocated) before the baseline.
    await store.enqueue(randomBytes(32).toString('base64url'), 'warmup', env);
    const before = await usedMemory(redis.port);
    const cpuBefore = await redisCpuMicros(redis.port);
    for (const mb of boxes) {
      for (let start = 0; start < perMailbox; start += CHUNK) {
        const ids = Array.from({ length: Math.min(CHUNK, perMailbox - start) }, () =>
          randomBytes(16).toString('base64url'),
        );
        await Promise.all(ids.map((id) => store.enqueue(mb, id, env)));
        const acks: Promise<void>[] = [];
        for (let i = 0; i < ids.length; i += ACK_CHUNK) {
          acks.push(store.ack(mb, ids.slice(i, i + ACK_CHUNK)));
        }
        await Promise.all(acks);
      }
    }
    const cpuAfter = await redisCpuMicros(redis.port);
    const after = await usedMemory(redis.port);
    const keys = Number(await command(redis.port, ['DBSIZE']));
    // The first key found that remembers ids of the first mailbox, as MEMORY USAGE counts it,
    // per id it holds (a tombstone key holds one; a set holds its cardinality).
    let sampleBytesPerId = 0;
    let cursor = '0';
    const pattern = `passage:v1:{${boxes[0] ?? ''}}:q`;
    do {
      const reply = await scan(redis.port, cursor, pattern);
      cursor = reply.cursor;
      const key = reply.keys[0];
      if (key !== undefined) {
        const type = await command(redis.port, ['TYPE', key]);
        const held = type === 'zset' ? Number(await command(redis.port, ['ZCARD', key])) : 1;
        const usage = Number(await command(redis.port, ['MEMORY', 'USAGE', key, 'SAMPLES', '0']));
        sampleBytesPerId = usage / held;
        break;
      }
    } while (cursor !== '0');
    const acked = mailboxes * perMailbox;
    return {
      workload: `${mailboxes.toLocaleString('en')} mailboxes × ${perMailbox.toLocaleString('en')} ids`,
      acked,
      bytesPerAckedId: (after - before) / acked,
      keys,
      sampleBytesPerId,
      redisCpuMicrosPerId: (cpuAfter - cpuBefore) / acked,
    };
  } finally {
    await store.close();
    await redis.stop();
  }
}

/** SCAN over its own RESP parsing (an array reply), enough for this script. */
async function scan(
  port: number,
  cursor: string,
  pattern: string,
): Promise<{ cursor: string; keys: string[] }> {
  const socket = new Socket();
  socket.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const args = ['SCAN', cursor, 'MATCH', pattern, 'COUNT', '10000'];
  let request = `*${args.length}\r\n`;
  for (const a of args) request += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
  socket.write(request);
  let text = '';
  try {
    for (;;) {
      const [chunk] = (await once(socket, 'data')) as [Buffer];
      text += chunk.toString('utf8');
      const lines = text.split('\r\n');
      // *2, $n, cursor, *k, then k pairs of $n and key.
      if (lines.length < 5) continue;
      const count = Number((lines[3] ?? '*0').slice(1));
      if (lines.length < 5 + 2 * count) continue;
      const keys: string[] = [];
      for (let i = 0; i < count; i += 1) keys.push(lines[5 + 2 * i] ?? '');
      return { cursor: lines[2] ?? '0', keys };
    }
  } finally {
    socket.destroy();
  }
}

async function main(): Promise<void> {
  const total = flag('ids', 100_000);
  const rows: Row[] = [];
  rows.push(await measure(1, total));
  rows.push(await measure(100, Math.max(1, Math.floor(total / 100))));
  rows.push(await measure(Math.max(1, Math.floor(total / 10)), 10));
  const lines = [
    '| workload | acknowledged | used_memory per id | keys | MEMORY USAGE per id (one key) | Redis CPU per enqueue + ack |',
    '|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.workload} | ${r.acked.toLocaleString('en')} | ${r.bytesPerAckedId.toFixed(1)} | ` +
        `${r.keys.toLocaleString('en')} | ${r.sampleBytesPerId.toFixed(1)} | ` +
        `${r.redisCpuMicrosPerId.toFixed(1)} µs |`,
    ),
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

await main();
