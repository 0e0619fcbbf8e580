/**
 * `npm run bench:pow`: what proof-of-work costs. Solving on the pure-JS path (the noble SHA-256
 * a page without WebAssembly uses) per difficulty, once with the JIT and once under
 * `node --jitless` (the npm script runs both; Tor Browser at "Safer" also turns the JIT off),
 * and verifying on the relay's path (Node's SHA-256) in µs. Prints a table and writes
 * bench-results/pow-<mode>.json.
 *
 * Each difficulty is solved for random challenges until the time budget is spent (at least
 * `MIN_SOLVES` times): a solve takes 2^bits hashes on average but varies widely (geometric), so
 * the mean and the hashes per second are the figures to read, the p95 the tail a contact sees.
 *
 * Flags: --max-bits=N (default 20, 16 with --jitless), --budget-ms=N per difficulty.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { sha256 as nobleSha256 } from '@passage/shared/crypto/noble';
import { createPowChallenge, solvePow, verifyPow, POW_NONCE_BYTES } from '@passage/shared/pow/pow';

const JITLESS = process.execArgv.includes('--jitless');
const MODE = JITLESS ? 'jitless' : 'jit';
const MIN_SOLVES = 5;
const MAX_SOLVES = 200;
const VERIFY_RUNS = 20_000;

function flag(name: string, fallback: number): number {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  const value = arg === undefined ? fallback : Number(arg.slice(name.length + 3));
  if (!Number.isInteger(value) || value <= 0) throw new Error(`--${name} takes a positive integer`);
  return value;
}

const MAX_BITS = flag('max-bits', JITLESS ? 16 : 20);
const BUDGET_MS = flag('budget-ms', JITLESS ? 20_000 : 10_000);

const nodeSha256 = (data: Uint8Array): Uint8Array => createHash('sha256').update(data).digest();

function newChallenge(bits: number, nowMs: number): ReturnType<typeof createPowChallenge> {
  return createPowChallenge({
    nonce: randomBytes(POW_NONCE_BYTES),
    bits,
    to: randomBytes(32),
    nowMs,
    ttlMs: 10 * 60 * 1000,
  });
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
}

interface SolveRow {
  readonly bits: number;
  readonly solves: number;
  readonly meanMs: number;
  readonly medianMs: number;
  readonly p95Ms: number;
  readonly hashesPerSecond: number;
}

function benchSolve(bits: number): SolveRow {
  const times: number[] = [];
  let hashes = 0;
  let total = 0;
  while (times.length < MAX_SOLVES && (times.length < MIN_SOLVES || total < BUDGET_MS)) {
    const now = Date.now();
    const challenge = newChallenge(bits, now);
    // Count the hashes: the solver starts at the given value and counts up by one.
    const start = new Uint8Array(8);
    const t0 = performance.now();
    const solution = solvePow(challenge, nobleSha256, { nowMs: now, start });
    const ms = performance.now() - t0;
    const view = new DataView(solution.buffer, solution.byteOffset, 8);
    hashes += view.getUint32(0) * 2 ** 32 + view.getUint32(4) + 1;
    times.push(ms);
    total += ms;
  }
  const sorted = [...times].sort((a, b) => a - b);
  return {
    bits,
    solves: times.length,
    meanMs: total / times.length,
    medianMs: percentile(sorted, 0.5),
    p95Ms: percentile(sorted, 0.95),
    hashesPerSecond: hashes / (total / 1000),
  };
}

function benchVerify(sha256: (d: Uint8Array) => Uint8Array): number {
  const now = Date.now();
  const challenge = newChallenge(8, now);
  const solution = solvePow(challenge, sha256, { nowMs: now });
  for (let i = 0; i < 1000; i++) verifyPow(challenge, solution, sha256, now);
  const t0 = performance.now();
  for (let i = 0; i < VERIFY_RUNS; i++) verifyPow(challenge, solution, sha256, now);
  return ((performance.now() - t0) * 1000) / VERIFY_RUNS;
}

function main(): void {
  const rows: SolveRow[] = [];
  for (let bits = 8; bits <= MAX_BITS; bits += 2) rows.push(benchSolve(bits));
  const verifyNodeUs = benchVerify(nodeSha256);
  const verifyNobleUs = benchVerify(nobleSha256);
  const fmt = (n: number, d = 1): string => n.toFixed(d).padStart(10);
  const lines = [
    `proof-of-work solve, pure-JS SHA-256 (noble), ${MODE}`,
    `${'bits'.padStart(4)} ${'solves'.padStart(6)} ${'mean ms'.padStart(10)} ${'median ms'.padStart(10)} ${'p95 ms'.padStart(10)} ${'hash/s'.padStart(10)}`,
    ...rows.map(
      (r) =>
        `${String(r.bits).padStart(4)} ${String(r.solves).padStart(6)} ${fmt(r.meanMs)} ${fmt(r.medianMs)} ${fmt(r.p95Ms)} ${fmt(r.hashesPerSecond, 0)}`,
    ),
    `verify (one hash + checks): ${verifyNodeUs.toFixed(2)} µs with node:crypto, ${verifyNobleUs.toFixed(2)} µs with noble (${MODE})`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
  const out = new URL('../../bench-results/', import.meta.url);
  mkdirSync(out, { recursive: true });
  writeFileSync(
    new URL(`pow-${MODE}.json`, out),
    JSON.stringify(
      { mode: MODE, node: process.version, rows, verifyNodeUs, verifyNobleUs },
      null,
      2,
    ) + '\n',
  );
}

main();
