/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`): total self time per function, so a
 * profile of the relay under load can be read in a terminal and quoted in a report.
 * Run as `node bench/dist/cpuprofile.js <file.cpuprofile> [top]`.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: {
    readonly functionName: string;
    readonly url: string;
    readonly lineNumber: number;
  };
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** One function's share of the profile. */
export interface SelfTime {
  readonly name: string;
  readonly where: string;
  readonly selfMs: number;
  readonly percent: number;
}

function shortUrl(url: string): string {
  const i = url.indexOf('node_modules/');
  if (i >= 0) return url.slice(i + 'node_modules/'.length);
  const j = url.lastIndexOf('/dist/');
  if (j >= 0) return url.slice(url.lastIndexOf('/', j - 1) + 1);
  return url.replace(/^file:\/\//, '');
}

/** The `top` functions by self time, over all samples of the profile. */
export function summariseProfile(path: string, top = 25): SelfTime[] {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  for (const n of profile.nodes) byId.set(n.id, n);
  const selfUs = new Map<string, { name: string; where: string; us: number }>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!);
    const dt = profile.timeDeltas[i] ?? 0;
    if (!node) continue;
    total += dt;
    const { functionName, url, lineNumber } = node.callFrame;
    const name = functionName || '(anonymous)';
    const where = url ? `${shortUrl(url)}:${lineNumber + 1}` : '';
    const key = `${name}@${where}`;
    const entry = selfUs.get(key) ?? { name, where, us: 0 };
    entry.us += dt;
    selfUs.set(key, entry);
  }
  return [...selfUs.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map((e) => ({
      name: e.name,
      where: e.where,
      selfMs: e.us / 1000,
      percent: total > 0 ? (100 * e.us) / total : 0,
    }));
}

/** Which part of the stack a sample belongs to, from its script URL. */
function category(name: string, url: string): string {
  if (name === '(idle)' || name === '(garbage collector)' || name === '(program)') return name;
  if (url === '') return '(native: syscalls, builtins)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith('node:')) return 'node internals';
  const ws = /\/(shared|server|bench|client)\/dist\//.exec(url);
  if (ws) return `@passage/${ws[1]!}`;
  return 'other';
}

/** Self time grouped by part of the stack (relay code, protocol, ws, redis client, GC, …). */
export function summariseByCategory(path: string): SelfTime[] {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  for (const n of profile.nodes) byId.set(n.id, n);
  const us = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!);
    const dt = profile.timeDeltas[i] ?? 0;
    if (!node) continue;
    total += dt;
    const key = category(node.callFrame.functionName, node.callFrame.url);
    us.set(key, (us.get(key) ?? 0) + dt);
  }
  return [...us.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([name, t]) => ({
      name,
      where: '',
      selfMs: t / 1000,
      percent: total > 0 ? (100 * t) / total : 0,
    }));
}

/** Formats a summary as aligned text lines. */
export function formatSummary(rows: readonly SelfTime[]): string {
  return rows
    .map(
      (r) =>
        `${r.percent.toFixed(1).padStart(5)}%  ${r.selfMs.toFixed(0).padStart(7)} ms  ${r.name}  ${r.where}`,
    )
    .join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = process.argv[2];
  if (file === undefined) {
    process.stderr.write('usage: node bench/dist/cpuprofile.js <file.cpuprofile> [top]\n');
    process.exit(2);
  }
  process.stdout.write(formatSummary(summariseByCategory(file)) + '\n\n');
  process.stdout.write(formatSummary(summariseProfile(file, Number(process.argv[3] ?? 25))) + '\n');
}
