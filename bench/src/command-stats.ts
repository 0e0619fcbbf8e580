/**
 * Where redis-server's time went: INFO commandstats parsed, and shown per message. Used by the
 * relay bench (its Redis target) and the store bench. A script's own line (evalsha) includes
 * the commands it called, which are also listed.
 */

/** One command's line of INFO commandstats. */
export interface CommandStat {
  readonly name: string;
  readonly calls: number;
  readonly usec: number;
}

/** The `cmdstat_…` lines of an INFO commandstats reply, the most time first. */
export function parseCommandStats(info: string): CommandStat[] {
  const rows: CommandStat[] = [];
  for (const line of info.split(/\r?\n/)) {
    const m = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line);
    if (m !== null) rows.push({ name: m[1]!, calls: Number(m[2]), usec: Number(m[3]) });
  }
  return rows.sort((a, b) => b.usec - a.usec);
}

/** The `limit` costliest commands, one line each: µs, calls and µs per call, per message. */
export function formatCommandStats(
  stats: readonly CommandStat[],
  messages: number,
  prefix: string,
  limit = 14,
): string {
  const per = Math.max(1, messages);
  return stats
    .slice(0, limit)
    .map(
      (r) =>
        `${prefix}${r.name.padEnd(22)} ${(r.usec / per).toFixed(2).padStart(7)} µs/msg ` +
        `${(r.calls / per).toFixed(3).padStart(7)} calls/msg ${(r.usec / Math.max(1, r.calls)).toFixed(1).padStart(7)} µs/call`,
    )
    .join('\n');
}
