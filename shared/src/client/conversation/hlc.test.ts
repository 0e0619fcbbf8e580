/**
 * The hybrid logical clock: monotonic on one device, after everything it received, close to the
 * wall clock, with a total order, and with the bound on a peer running ahead.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  HLC_ZERO,
  compareHlc,
  hlcReceive,
  hlcStateOf,
  hlcTick,
  type Hlc,
  type HlcState,
} from './hlc.js';
import { MAX_HLC_AHEAD_MS, MAX_HLC_COUNTER } from './limits.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);

describe('hybrid logical clock', () => {
  it('takes the wall clock when it is ahead, and counts within one millisecond', () => {
    const t1 = hlcTick(HLC_ZERO, 1000, A);
    expect(t1).toEqual({ wallMs: 1000, counter: 0, device: A });
    const t2 = hlcTick(hlcStateOf(t1), 1000, A);
    expect(t2).toEqual({ wallMs: 1000, counter: 1, device: A });
    expect(hlcTick(hlcStateOf(t2), 1001.7, A)).toEqual({ wallMs: 1001, counter: 0, device: A });
  });

  it('never goes backwards when the wall clock does', () => {
    const t1 = hlcTick(HLC_ZERO, 5000, A);
    const t2 = hlcTick(hlcStateOf(t1), 10, A);
    expect(t2).toEqual({ wallMs: 5000, counter: 1, device: A });
  });

  it('treats a wall clock that is not a number as 0 (and still moves on)', () => {
    const s = hlcStateOf(hlcTick(HLC_ZERO, 100, A));
    expect(hlcTick(s, Number.NaN, A)).toEqual({ wallMs: 100, counter: 1, device: A });
    expect(hlcTick(s, -5, A)).toEqual({ wallMs: 100, counter: 1, device: A });
  });

  it('moves the wall time on by 1 ms when the counter reaches MAX_HLC_COUNTER', () => {
    const s: HlcState = { wallMs: 1000, counter: MAX_HLC_COUNTER - 1 };
    expect(hlcTick(s, 1000, A)).toEqual({ wallMs: 1000, counter: MAX_HLC_COUNTER, device: A });
    const full: HlcState = { wallMs: 1000, counter: MAX_HLC_COUNTER };
    expect(hlcTick(full, 1000, A)).toEqual({ wallMs: 1001, counter: 0, device: A });
  });

  it('orders every event after the ones it received', () => {
    const remote: Hlc = { wallMs: 2000, counter: 7, device: B };
    const r = hlcReceive(HLC_ZERO, remote, 1000);
    expect(r).toEqual({ ok: true, state: { wallMs: 2000, counter: 8 } });
    if (!r.ok) return;
    expect(compareHlc(hlcTick(r.state, 1000, A), remote)).toBe(1);
  });

  it('merges equal wall times by the larger counter', () => {
    const r = hlcReceive(
      { wallMs: 3000, counter: 2 },
      { wallMs: 3000, counter: 5, device: B },
      3000,
    );
    expect(r).toEqual({ ok: true, state: { wallMs: 3000, counter: 6 } });
    const own = hlcReceive(
      { wallMs: 3000, counter: 9 },
      { wallMs: 2000, counter: 5, device: B },
      100,
    );
    expect(own).toEqual({ ok: true, state: { wallMs: 3000, counter: 10 } });
    const wall = hlcReceive(
      { wallMs: 3000, counter: 9 },
      { wallMs: 2000, counter: 5, device: B },
      4000,
    );
    expect(wall).toEqual({ ok: true, state: { wallMs: 4000, counter: 0 } });
  });

  it('takes a peer exactly MAX_HLC_AHEAD_MS ahead and refuses one 1 ms further', () => {
    const now = 1_000_000;
    const at = (wallMs: number): Hlc => ({ wallMs, counter: 0, device: B });
    expect(hlcReceive(HLC_ZERO, at(now + MAX_HLC_AHEAD_MS), now).ok).toBe(true);
    expect(hlcReceive(HLC_ZERO, at(now + MAX_HLC_AHEAD_MS + 1), now)).toEqual({
      ok: false,
      aheadMs: MAX_HLC_AHEAD_MS + 1,
    });
  });

  it('refuses a clock in the far future, and is not moved by it', () => {
    const state: HlcState = { wallMs: 500, counter: 3 };
    const r = hlcReceive(state, { wallMs: 2 ** 48 - 1, counter: 0, device: B }, 1000);
    expect(r.ok).toBe(false);
    expect(hlcTick(state, 1000, A)).toEqual({ wallMs: 1000, counter: 0, device: A });
  });

  it('breaks ties on the device id, and equal only for equal timestamps', () => {
    const a: Hlc = { wallMs: 1, counter: 1, device: A };
    expect(compareHlc(a, { ...a, device: B })).toBe(-1);
    expect(compareHlc({ ...a, device: B }, a)).toBe(1);
    expect(compareHlc(a, { ...a })).toBe(0);
    expect(compareHlc(a, { ...a, counter: 0 })).toBe(1);
    expect(compareHlc(a, { ...a, wallMs: 2, counter: 0 })).toBe(-1);
  });

  it('is monotonic and stays within the bound of the wall clock over any run', () => {
    const step = fc.oneof(
      fc.record({ kind: fc.constant('tick' as const), dt: fc.integer({ min: -50, max: 50 }) }),
      fc.record({
        kind: fc.constant('receive' as const),
        dt: fc.integer({ min: -50, max: 50 }),
        skew: fc.integer({ min: -5000, max: 2 * MAX_HLC_AHEAD_MS }),
        counter: fc.integer({ min: 0, max: MAX_HLC_COUNTER }),
      }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        let now = 10_000_000;
        let state = HLC_ZERO;
        let last: Hlc | undefined;
        let maxWall = 0;
        for (const s of steps) {
          now += s.dt;
          maxWall = Math.max(maxWall, now);
          if (s.kind === 'tick') {
            const t = hlcTick(state, now, A);
            if (last !== undefined) expect(compareHlc(t, last)).toBe(1);
            last = t;
            state = hlcStateOf(t);
          } else {
            const remote = { wallMs: now + s.skew, counter: s.counter, device: B };
            const r = hlcReceive(state, remote, now);
            if (!r.ok) {
              expect(s.skew).toBeGreaterThan(MAX_HLC_AHEAD_MS);
              continue;
            }
            const t = hlcTick(r.state, now, A);
            expect(compareHlc(t, remote)).toBe(1);
            if (last !== undefined) expect(compareHlc(t, last)).toBe(1);
            last = t;
            state = hlcStateOf(t);
          }
          // Never further ahead of the furthest wall clock seen than the bound (+1 ms for a
          // counter that overflowed).
          expect(state.wallMs).toBeLessThanOrEqual(maxWall + MAX_HLC_AHEAD_MS + 1);
        }
      }),
      { numRuns: 300 },
    );
  });
});
