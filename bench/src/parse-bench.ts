/**
 * Micro-benchmark of client frame parsing: `npx tsc -b && node bench/dist/parse-bench.js`.
 *
 * Compares, in ns per frame, the relay's `parseClientFrame` (hand-written fast path for `send`
 * and `ack`, zod for the rest) with `parseClientFrameReference` (zod alone), and `JSON.parse`
 * alone as the floor both share. Cases: a `send` with a 1 KiB envelope, an `ack` of 16 ids, and
 * a `send` with a malformed id (which the fast path hands to zod, so it should cost the same as
 * zod alone). Each figure is the median of several rounds after a warm-up; variants run
 * interleaved in each round so that they share the machine's noise.
 */
import { toBase64url } from '@passage/shared/protocol/base64url';
import { parseClientFrame, parseClientFrameReference } from '@passage/shared/protocol/parse';

const ROUNDS = 9;
const ITERATIONS_PER_ROUND = 100_000;
const WARMUP_ITERATIONS = 50_000;
/** Distinct frames per case, so no result can be cached across iterations. */
const DISTINCT_FRAMES = 64;

function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (seed * 131 + i * 7) & 0xff;
  return out;
}

function sendFrames(validId: boolean): string[] {
  return Array.from({ length: DISTINCT_FRAMES }, (_, i) =>
    JSON.stringify({
      v: 1,
      t: 'send',
      rid: i,
      to: toBase64url(bytes(32, i)),
      id: validId ? toBase64url(bytes(16, i)) : toBase64url(bytes(16, i)) + 'A',
      env: toBase64url(bytes(1024, i)),
    }),
  );
}

function ackFrames(): string[] {
  return Array.from({ length: DISTINCT_FRAMES }, (_, i) =>
    JSON.stringify({
      v: 1,
      t: 'ack',
      ids: Array.from({ length: 16 }, (_, j) => toBase64url(bytes(16, i * 16 + j))),
    }),
  );
}

type Parser = (text: string) => unknown;

const PARSERS: Readonly<Record<string, Parser>> = {
  'JSON.parse only': (text) => JSON.parse(text) as unknown,
  'zod (reference)': parseClientFrameReference,
  'fast path': parseClientFrame,
};

/** Keeps results observable so that the loop cannot be optimised away. */
let sink = 0;

function run(parse: Parser, frames: readonly string[], iterations: number): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) {
    const result = parse(frames[i % frames.length]!);
    if (result !== undefined) sink++;
  }
  return Number(process.hrtime.bigint() - start) / iterations;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const CASES: Readonly<Record<string, readonly string[]>> = {
  'send, 1 KiB envelope': sendFrames(true),
  'ack, 16 ids': ackFrames(),
  'send, malformed id (rejected)': sendFrames(false),
};

// Check that every case parses as intended before timing it.
for (const [name, frames] of Object.entries(CASES)) {
  const expectOk = !name.includes('rejected');
  for (const text of frames) {
    const fast = parseClientFrame(text);
    if (
      fast.ok !== expectOk ||
      JSON.stringify(fast) !== JSON.stringify(parseClientFrameReference(text))
    ) {
      throw new Error(`parse-bench: case "${name}" does not parse as expected`);
    }
  }
}

const lines: string[] = [
  `node ${process.version}; ns per frame, median of ${ROUNDS} rounds of ${ITERATIONS_PER_ROUND} frames`,
  '',
];
for (const [name, frames] of Object.entries(CASES)) {
  for (const parse of Object.values(PARSERS)) run(parse, frames, WARMUP_ITERATIONS);
  const times = new Map<string, number[]>(Object.keys(PARSERS).map((p) => [p, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [parserName, parse] of Object.entries(PARSERS)) {
      times.get(parserName)!.push(run(parse, frames, ITERATIONS_PER_ROUND));
    }
  }
  const ns = new Map([...times].map(([p, xs]) => [p, median(xs)]));
  const zod = ns.get('zod (reference)')!;
  const fast = ns.get('fast path')!;
  const json = ns.get('JSON.parse only')!;
  lines.push(`${name} (${frames[0]!.length} bytes of JSON)`);
  for (const [p, value] of ns) lines.push(`  ${p.padEnd(18)} ${value.toFixed(0).padStart(7)} ns`);
  lines.push(
    `  validation beyond JSON.parse: zod ${(zod - json).toFixed(0)} ns, fast ${(fast - json).toFixed(0)} ns; ` +
      `whole parse ${(zod / fast).toFixed(2)}x faster`,
  );
  lines.push('');
}
lines.push(`(sink ${sink})`);
process.stdout.write(lines.join('\n') + '\n');
