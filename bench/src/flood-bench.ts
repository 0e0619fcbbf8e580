/**
 * `npm run bench:flood`: legitimate pairs talking through a relay, once alone and once while one
 * anonymous client floods at its maximum (testing/src/flood.ts). Reports each run's latency
 * percentiles, the p99 ratio (flood / no flood; issue 7 §3 asks for ≤ 2), lost and duplicated
 * messages and what the flooder got stored, and writes bench-results/flood-<store>.json. Exits 1
 * if a legitimate message was lost (the assertion; latency is reported, not asserted).
 *
 * The flooder runs on a worker thread (flood-worker.ts): its proofs-of-work are synchronous, and
 * on the legitimate clients' thread they delayed those clients by the flooder's CPU.
 *
 * Each run gets a fresh relay process with the relay's default settings, proof-of-work on
 * (POW_BITS=10), and with --store=redis a fresh redis-server.
 *
 * Flags: --pairs=N (100), --messages=N per pair (50), --interval-ms=N between a pair's sends
 * (100), --store=memory|redis (memory).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import {
  quantile,
  runFlood,
  type FloodResult,
  type FlooderHandle,
  type FlooderStats,
  type FlooderTask,
} from '@passage/testing/flood';
import { startRedis, type RedisServer } from '@passage/testing/redis';
import { startRelay, stopAllRelays } from '@passage/testing/relay-process';

function flag(name: string, fallback: number): number {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  const value = arg === undefined ? fallback : Number(arg.slice(name.length + 3));
  if (!Number.isInteger(value) || value <= 0) throw new Error(`--${name} takes a positive integer`);
  return value;
}

const PAIRS = flag('pairs', 100);
const MESSAGES = flag('messages', 50);
const INTERVAL_MS = flag('interval-ms', 100);
const STORE = process.argv.find((a) => a.startsWith('--store='))?.slice(8) ?? 'memory';
if (STORE !== 'memory' && STORE !== 'redis') throw new Error('--store is memory or redis');

/** The flooder on its own thread (flood-worker.ts), so its CPU does not delay the legitimate clients. */
function startWorkerFlooder(task: FlooderTask): FlooderHandle {
  const worker = new Worker(new URL('./flood-worker.js', import.meta.url), { workerData: task });
  const done = new Promise<FlooderStats>((resolve, reject) => {
    worker.once('message', (stats: FlooderStats) => resolve(stats));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`flood worker exited with ${code}`)));
  });
  return {
    stop() {
      worker.postMessage('stop');
      return done;
    },
  };
}

async function run(flood: boolean): Promise<FloodResult> {
  let redis: RedisServer | undefined;
  const env: Record<string, string> = { POW_BITS: '10', LOG_LEVEL: 'warn' };
  if (STORE === 'redis') {
    redis = await startRedis();
    env['REDIS_URL'] = redis.url;
  }
  const relay = await startRelay(env, { readyLog: null });
  try {
    return await runFlood({
      wsUrl: relay.wsUrl,
      pairs: PAIRS,
      messagesPerPair: MESSAGES,
      intervalMs: INTERVAL_MS,
      flood,
      startFlooder: startWorkerFlooder,
    });
  } finally {
    await stopAllRelays();
    await redis?.stop();
  }
}

function summary(result: FloodResult) {
  const l = result.latenciesMs;
  return {
    sent: result.sent,
    lost: result.lost,
    duplicates: result.duplicates,
    retries: result.retries,
    refused: result.refused,
    p50Ms: quantile(l, 0.5),
    p99Ms: quantile(l, 0.99),
    maxMs: l[l.length - 1] ?? NaN,
    flooder: result.flooder,
    durationMs: Math.round(result.durationMs),
  };
}

async function main(): Promise<void> {
  const quiet = summary(await run(false));
  const flooded = summary(await run(true));
  const ratio = flooded.p99Ms / quiet.p99Ms;
  const ms = (n: number) => n.toFixed(1).padStart(9);
  const f = flooded.flooder;
  const lines = [
    `flood bench, ${STORE} store: ${PAIRS} pairs × ${MESSAGES} messages, one every ${INTERVAL_MS} ms`,
    `${'run'.padEnd(9)} ${'p50 ms'.padStart(9)} ${'p99 ms'.padStart(9)} ${'max ms'.padStart(9)}  lost  dup  retries`,
    ...[
      ['no flood', quiet],
      ['flood', flooded],
    ].map(
      ([name, r]) =>
        `${(name as string).padEnd(9)} ${ms((r as typeof quiet).p50Ms)} ${ms((r as typeof quiet).p99Ms)} ${ms((r as typeof quiet).maxMs)} ${String((r as typeof quiet).lost).padStart(5)} ${String((r as typeof quiet).duplicates).padStart(4)} ${String((r as typeof quiet).retries).padStart(8)}`,
    ),
    `p99 ratio (flood / no flood): ${ratio.toFixed(2)} (target ≤ 2)`,
    `legitimate sends refused (then resent): no flood ${JSON.stringify(quiet.refused)}, flood ${JSON.stringify(flooded.refused)}`,
    `flooder (own thread): ${f.connections} connections, ${f.admissions} admissions (${(f.solveMs / 1000).toFixed(1)} s solving), ${f.sent} sends, ${f.stored} stored ` +
      `(${(f.storedBytesPerSecond / 1024).toFixed(0)} KiB/s of envelopes), refused ${JSON.stringify(f.refused)}`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
  const out = new URL('../../bench-results/', import.meta.url);
  mkdirSync(out, { recursive: true });
  writeFileSync(
    new URL(`flood-${STORE}.json`, out),
    JSON.stringify(
      {
        store: STORE,
        pairs: PAIRS,
        messages: MESSAGES,
        intervalMs: INTERVAL_MS,
        node: process.version,
        noFlood: quiet,
        flood: flooded,
        p99Ratio: ratio,
      },
      null,
      2,
    ) + '\n',
  );
  if (quiet.lost > 0 || flooded.lost > 0) {
    process.stderr.write('FAIL: legitimate messages were lost\n');
    process.exitCode = 1;
  }
}

await main();
