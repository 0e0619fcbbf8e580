import { describe, expect, it } from '@jest/globals';
import { createLogger } from '../log.js';
import { LoadCounters } from './load-report.js';

function setup() {
  const lines: string[] = [];
  const load = new LoadCounters(
    createLogger({ level: 'info', destination: { write: (s) => lines.push(s) } }),
  );
  return { load, lines, parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('LoadCounters', () => {
  it('writes nothing for a quiet interval', () => {
    const { load, lines } = setup();
    load.report(60_000);
    expect(lines).toEqual([]);
  });

  it('logs the first overloaded answer of an interval at once and counts the rest', () => {
    const { load, parsed } = setup();
    for (let i = 0; i < 100; i++) load.noteShed();
    expect(parsed()).toHaveLength(1);
    expect(parsed()[0]).toMatchObject({ level: 40, event: 'store_overloaded' });
    expect(load.shed).toBe(100);
  });

  it('logs the first given-up ack of an interval at once and counts retries silently', () => {
    const { load, parsed } = setup();
    load.noteAckRetry();
    load.noteAckRetry();
    expect(parsed()).toHaveLength(0);
    load.noteAckAbandoned();
    load.noteAckAbandoned();
    expect(parsed().map((l) => l['event'])).toEqual(['ack_abandoned']);
  });

  it('logs the first ack bug of an interval at once at error, counts the rest, and says so in the summary at warn', () => {
    const { load, parsed } = setup();
    load.noteAckBug(new TypeError('bug'));
    load.noteAckBug(new TypeError('bug'));
    expect(parsed()).toHaveLength(1);
    expect(parsed()[0]).toMatchObject({ level: 50, event: 'ack_bug' });
    expect(load.ackBugs).toBe(2);
    load.report(60_000);
    expect(parsed().at(-1)).toMatchObject({ level: 40, event: 'load_report', ackBugs: 2 });
    // A new interval logs its first one again.
    load.noteAckBug(new TypeError('bug'));
    expect(parsed().filter((l) => l['event'] === 'ack_bug')).toHaveLength(2);
    expect(load.totals().ackBugs).toBe(3);
  });

  it('summarises an active interval in one line of counts, at warn when messages were refused', () => {
    const { load, parsed } = setup();
    load.noteShed();
    load.noteAckRetry();
    load.pauseEpisodes = 2;
    load.pausedConnections = 7;
    load.maxPending = 1500;
    load.report(60_000);
    const summary = parsed().at(-1);
    expect(summary).toMatchObject({
      level: 40,
      event: 'load_report',
      durationMs: 60_000,
      pauses: 2,
      pausedConnections: 7,
      maxPending: 1500,
      shed: 1,
      ackRetries: 1,
      ackAbandoned: 0,
    });
  });

  it('summarises pauses alone at info', () => {
    const { load, parsed } = setup();
    load.pauseEpisodes = 1;
    load.report(60_000);
    expect(parsed().at(-1)).toMatchObject({ level: 30, event: 'load_report', pauses: 1 });
  });

  it('says once that load is back to normal after an active interval, then nothing', () => {
    const { load, parsed } = setup();
    load.noteShed();
    load.report(60_000);
    const before = parsed().length;
    load.report(60_000);
    load.report(60_000);
    expect(parsed().slice(before)).toEqual([
      expect.objectContaining({ level: 30, event: 'load_normal' }),
    ]);
  });

  it('starts each interval from zero and keeps totals since start', () => {
    const { load } = setup();
    load.noteShed();
    load.maxPending = 9;
    load.report(60_000);
    expect(load.shed).toBe(0);
    load.noteShed();
    load.maxPending = 3;
    expect(load.totals()).toMatchObject({ shed: 2, maxPending: 9 });
  });
});
