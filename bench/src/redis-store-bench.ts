/**
 * `npm run bench:redis-store`: redis-server CPU per message for the RedisStore alone, without a
 * relay or sockets in the way, so a change to the Lua scripts or the key layout can be compared
 * run against run. It starts its own redis-server on a free port, then repeats, for `rounds`
 * rounds: every one of `mailboxes` online mailboxes (subscribed, as a connected recipient is)
 * receives `perRound` 2,048-byte envelopes, all enqueued at once (the store batches them per
 * event-loop turn, as under load), then every one of them is acknowledged at once. A first round
 * warms up and is not counted. Reported: redis-server CPU µs per message (from /proc; enqueue and
 * ack together, as a delivered message costs), and where that time goes (INFO commandstats).
 *
 * Flags: --mailboxes (default 1,000), --per-round (2), --rounds (40), --envelope-bytes (2,048),
 * --store-module (another build's server/dist/store/redis.js, to compare two builds).
 * Writes bench-results/redis-store.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { RedisStore as BuiltRedisStore } from '@passage/server/store/redis';
import { MAX_DEDUP_IDS_PER_MAILBOX } from '@passage/server/store/store';
import { redisCommand, startRedis } from '@passage/testing/redis';
import { formatCommandStats, parseCommandStats } from './command-stats.js';
import { cpuMicros } from './procfs.js';

interface Params {
  readonly mailboxes: number;
  readonly perRound: number;
  readonly rounds: number;
  readonly envelopeBytes: number;
  readonly storeModule: string | undefined;
}

function parseParams(argv: readonly string[]): Params {
  const values = new Map<string, string>();
  for (const arg of argv) {
    const m = /^--([a-z-]+)=(.*)$/.exec(arg);
    if (m === null) throw new Error(`unknown argument ${arg}`);
    values.set(m[1] as string, m[2] as string);
  }
  const int = (name: string, fallback: number): number => {
    const text = values.get(name);
    values.delete(name);
    if (text === undefined) return fallback;
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer`);
    return n;
  };
  const params = {
    mailboxes: int('mailboxes', 1_000),
    perRound: int('per-round', 2),
    rounds: int('rounds', 40),
    envelopeBytes: int('envelope-bytes', 2_048),
    storeModule: values.get('store-module'),
  };
  values.delete('store-module');
  if (values.size > 0) throw new Error(`unknown flag --${[...values.keys()][0]}`);
  return params;
}

function say(line: string): void {
  process.stdout.write(line + '\n');
}

function id(): string {
  return randomBytes(16).toString('base64url');
}

async function main(): Promise<void> {
  const p = parseParams(process.argv.slice(2));
  const redis = await startRedis();
  const logger = { info: () => undefined, warn: () => undefined, error: () => undefined };
  const RedisStore =
    p.storeModule === undefined
      ? BuiltRedisStore
      : ((await import(p.storeModule)) as { RedisStore: typeof BuiltRedisStore }).RedisStore;
  const store = new RedisStore({
    url: redis.url,
    logger,
    limits: {
      queueTtlSeconds: 7 * 86_400,
      maxQueuedPerMailbox: 10_000,
      dedupTtlSeconds: 7 * 86_400,
      maxDedupIdsPerMailbox: MAX_DEDUP_IDS_PER_MAILBOX,
      prekeyTtlSeconds: 30 * 86_400,
      maxOneTimePrekeys: 200,
    },
  });
  try {
    await store.start(5_000);
    const mailboxes = Array.from({ length: p.mailboxes }, () =>
      randomBytes(32).toString('base64url'),
    );
    for (const mb of mailboxes) await store.subscribe(mb);
    const env = randomBytes(Math.ceil((p.envelopeBytes * 3) / 4))
      .toString('base64url')
      .slice(0, p.envelopeBytes);
    const round = async (): Promise<void> => {
      const sent = mailboxes.map((mb) => ({ mb, ids: Array.from({ length: p.perRound }, id) }));
      await Promise.all(sent.flatMap(({ mb, ids }) => ids.map((i) => store.enqueue(mb, i, env))));
      await Promise.all(sent.map(({ mb, ids }) => store.ack(mb, ids)));
    };
    await round();
    const pid = redis.pid();
    if (pid === undefined) throw new Error('redis-server has no pid');
    await redisCommand(redis.url, ['CONFIG', 'RESETSTAT']);
    const cpu0 = cpuMicros(pid);
    const t0 = performance.now();
    for (let r = 0; r < p.rounds; r += 1) await round();
    const elapsedMs = performance.now() - t0;
    const redisUs = cpuMicros(pid) - cpu0;
    const stats = parseCommandStats(
      String(await redisCommand(redis.url, ['INFO', 'commandstats'])),
    );
    const messages = p.rounds * p.mailboxes * p.perRound;
    const perMsg = redisUs / messages;
    say(
      `redis-store: ${messages} messages (${p.mailboxes} mailboxes × ${p.perRound} × ${p.rounds} rounds), ` +
        `${((messages * 1000) / elapsedMs).toFixed(0)} msgs/s, redis-server ${perMsg.toFixed(1)} µs CPU/msg`,
    );
    say(formatCommandStats(stats, messages, '  ', 16));
    mkdirSync('bench-results', { recursive: true });
    writeFileSync(
      'bench-results/redis-store.json',
      JSON.stringify(
        { params: p, messages, redisCpuUsPerMsg: perMsg, commandStats: stats },
        null,
        2,
      ) + '\n',
    );
  } finally {
    await store.close();
    await redis.stop();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`redis-store bench failed: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
