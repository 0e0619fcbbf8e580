import { describe, expect, it } from '@jest/globals';
import { createLogger } from '../log.js';
import { Backpressure, type Pausable } from './backpressure.js';
import { LoadCounters } from './load-report.js';

class FakeConnection implements Pausable {
  paused = false;
  pauses = 0;
  pauseReading(): void {
    this.paused = true;
    this.pauses++;
  }
  resumeReading(): void {
    this.paused = false;
  }
}

function setup(pauseAt = 4, resumeAt = 2) {
  const lines: string[] = [];
  const load = new LoadCounters(
    createLogger({ level: 'info', destination: { write: (s) => lines.push(s) } }),
  );
  const gate = new Backpressure({ pauseAt, resumeAt }, load);
  return { gate, load, lines };
}

function start(gate: Backpressure, n: number): void {
  for (let i = 0; i < n; i++) gate.opStarted();
}

function finish(gate: Backpressure, n: number): void {
  for (let i = 0; i < n; i++) gate.opFinished();
}

describe('Backpressure', () => {
  it('does not pause a connection below the pause watermark', () => {
    const { gate } = setup();
    const c = new FakeConnection();
    start(gate, 3);
    gate.onFrame(c);
    expect(c.paused).toBe(false);
    expect(gate.engaged).toBe(false);
  });

  it('pauses a connection that sends a frame once pending reaches the pause watermark', () => {
    const { gate, load } = setup();
    const c = new FakeConnection();
    start(gate, 4);
    expect(gate.engaged).toBe(true);
    gate.onFrame(c);
    expect(c.paused).toBe(true);
    expect(gate.pausedCount).toBe(1);
    expect(load.pauseEpisodes).toBe(1);
    expect(load.pausedConnections).toBe(1);
  });

  it('pauses each connection once per episode however many frames it had already read', () => {
    const { gate } = setup();
    const c = new FakeConnection();
    start(gate, 4);
    for (let i = 0; i < 10; i++) gate.onFrame(c);
    expect(c.pauses).toBe(1);
  });

  it('leaves connections that send nothing alone', () => {
    const { gate } = setup();
    const quiet = new FakeConnection();
    start(gate, 5);
    expect(quiet.paused).toBe(false);
  });

  it('keeps reading paused above the resume watermark (hysteresis)', () => {
    const { gate } = setup();
    const c = new FakeConnection();
    start(gate, 4);
    gate.onFrame(c);
    finish(gate, 1); // 3 pending: below pauseAt, above resumeAt
    expect(c.paused).toBe(true);
    expect(gate.engaged).toBe(true);
  });

  it('resumes every paused connection once pending falls to the resume watermark', () => {
    const { gate, load } = setup();
    const a = new FakeConnection();
    const b = new FakeConnection();
    start(gate, 4);
    gate.onFrame(a);
    gate.onFrame(b);
    finish(gate, 2);
    expect(a.paused).toBe(false);
    expect(b.paused).toBe(false);
    expect(gate.engaged).toBe(false);
    expect(gate.pausedCount).toBe(0);
    expect(load.pausedMs).toBeGreaterThanOrEqual(0);
    // A frame now is read normally.
    gate.onFrame(a);
    expect(a.paused).toBe(false);
  });

  it('does not resume a connection that closed while paused', () => {
    const { gate } = setup();
    const c = new FakeConnection();
    start(gate, 4);
    gate.onFrame(c);
    gate.forget(c);
    finish(gate, 4);
    expect(c.paused).toBe(true);
  });

  it('counts a second episode and the most pending at once', () => {
    const { gate, load } = setup();
    start(gate, 6);
    finish(gate, 4);
    start(gate, 2);
    expect(load.pauseEpisodes).toBe(2);
    expect(load.maxPending).toBe(6);
  });

  it('logs the first pause of an interval at warn, without identifiers, and not every pause', () => {
    const { gate, load, lines } = setup();
    for (let i = 0; i < 5; i++) {
      start(gate, 4);
      finish(gate, 4);
    }
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 40, event: 'store_behind', pending: 4 });
    load.report(60_000);
    start(gate, 4);
    expect(lines.filter((l) => l.includes('store_behind'))).toHaveLength(2);
  });

  it.each([
    [4, 4],
    [4, 5],
    [0, 0],
    [4, -1],
    [4.5, 2],
  ])('refuses watermarks pauseAt=%d resumeAt=%d', (pauseAt, resumeAt) => {
    expect(() => setup(pauseAt, resumeAt)).toThrow(RangeError);
  });

  it('accepts resumeAt one below pauseAt', () => {
    expect(() => setup(4, 3)).not.toThrow();
  });
});
