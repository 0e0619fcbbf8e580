/**
 * Micro-benchmark of client frame parsing: `npx tsc -b && node bench/dist/parse-bench.js`.
 *
 * Compares, in ns per frame, the relay's `parseClientFrame` (hand-written fast path for `send`
 * and `ack`, zod for the rest) with `parseClientFrameReference` (zod alone), and `JSON.parse`
 * alone as the floor both share. Cases: a `send` with a 1 KiB envelope, a `send` with a 64 KiB
 * envelope, an `ack` of 16 ids, a `send` with a malformed id (which the fast path hands to zod,
 * so it should cost the same as zod alone), and hostile frame-sized texts that both parsers
 * refuse by counting structural characters before JSON.parse (for them, "JSON.parse only" is
 * what the relay paid before that check). Each figure is the median of several rounds after a
 * warm-up; variants run interleaved in each round so that they share the machine's noise.
 */
import { toBase64url } from '@passage/shared/protocol/base64url';
import { MAX_FRAME_BYTES } from '@passage/shared/protocol/limits';
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

function sendFrames(validId: boolean, envelopeBytes = 1024): string[] {
  return Array.from({ length: DISTINCT_FRAMES }, (_, i) =>
    JSON.stringify({
      v: 1,
      t: 'send',
      rid: i,
      to: toBase64url(bytes(32, i)),
      id: validId ? toBase64url(bytes(16, i)) : toBase64url(bytes(16, i)) + 'A',
      env: toBase64url(bytes(envelopeBytes, i)),
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

/** Frame-sized texts that cost JSON.parse far more than a valid frame of the same size. */
function hostileFrames(kind: 'nested' | 'keys' | 'numbers'): string[] {
  return Array.from({ length: 4 }, (_, i) => {
    switch (kind) {
      case 'nested': {
        const depth = (MAX_FRAME_BYTES >> 1) - i;
        return '['.repeat(depth) + ']'.repeat(depth);
      }
      case 'keys': {
        const keys = Array.from({ length: 9_000 }, (_, k) => `"k${k + i}":1`).join(',');
        return `{"v":1,"t":"ping","rid":1,${keys}}`;
      }
      case 'numbers':
        return `{"v":1,"t":"ack","ids":[${new Array<string>(47_000 + i).fill('0').join(',')}]}`;
    }
  });
}

type Parser = (text: string) => unknown;

const PARSERS: Readonly<Record<string, Parser>> = {
  'JSON.parse only': (text) => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return null;
    }
  },
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
  'send, 64 KiB envelope': sendFrames(true, 65_536).slice(0, 8),
  'nested 49,000 deep (rejected)': hostileFrames('nested'),
  'object of 9,000 keys (rejected)': hostileFrames('keys'),
  'ack of 47,000 numbers (rejected)': hostileFrames('numbers'),
};

/** Above this many characters a frame costs tens of microseconds or more. */
const LARGE_FRAME_CHARS = 10_000;

/** Fewer iterations for frames that cost tens of microseconds or more. */
function iterationsFor(frames: readonly string[], base: number): number {
  return frames[0]!.length > LARGE_FRAME_CHARS ? Math.max(50, base / 1_000) : base;
}

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
  `node ${process.version}; ns per frame, median of ${ROUNDS} rounds of ${ITERATIONS_PER_ROUND} ` +
    `frames (${iterationsFor(['x'.repeat(LARGE_FRAME_CHARS + 1)], ITERATIONS_PER_ROUND)} for frames over ${LARGE_FRAME_CHARS} characters)`,
  '',
];
for (const [name, frames] of Object.entries(CASES)) {
  const warmup = iterationsFor(frames, WARMUP_ITERATIONS);
  const iterations = iterationsFor(frames, ITERATIONS_PER_ROUND);
  for (const parse of Object.values(PARSERS)) run(parse, frames, warmup);
  const times = new Map<string, number[]>(Object.keys(PARSERS).map((p) => [p, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [parserName, parse] of Object.entries(PARSERS)) {
      times.get(parserName)!.push(run(parse, frames, iterations));
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
