/**
 * A hybrid logical clock (Kulkarni, Demirbas et al., "Logical Physical Clocks", 2014): a
 * timestamp is the wall time in ms, a counter, and the device that made it. It never goes
 * backwards on one device, it stays close to the wall clock, and every event a device makes
 * after receiving another device's event orders after it, so "last writer wins" means the last
 * write the writer could have seen. Ties between devices break on the device id, so every pair of
 * timestamps is ordered the same way on every replica.
 *
 * The clock's state is a plain value and every step is a pure function: the caller persists the
 * state with whatever the step changed (one transaction).
 *
 * A peer's timestamp more than `MAX_HLC_AHEAD_MS` ahead of this device's clock is refused (the
 * caller holds the event back): without the bound one device with a clock set to the year 3000
 * would win every register for ever and drag every replica's clock along with it.
 */
import { MAX_HLC_AHEAD_MS, MAX_HLC_COUNTER, MAX_TIMESTAMP_MS } from './limits.js';

/** A timestamp of the clock. `device` is the device id (64 lower-case hex, `PublicIdentity.id`). */
export interface Hlc {
  readonly wallMs: number;
  readonly counter: number;
  readonly device: string;
}

/** What a device keeps of its clock between steps: the last timestamp it made or saw. */
export interface HlcState {
  readonly wallMs: number;
  readonly counter: number;
}

/** The state of a clock that has never ticked. */
export const HLC_ZERO: HlcState = Object.freeze({ wallMs: 0, counter: 0 });

/** Orders two timestamps: wall time, then counter, then device id. 0 only for equal ones. */
export function compareHlc(a: Hlc, b: Hlc): number {
  if (a.wallMs !== b.wallMs) return a.wallMs < b.wallMs ? -1 : 1;
  if (a.counter !== b.counter) return a.counter < b.counter ? -1 : 1;
  return a.device < b.device ? -1 : a.device > b.device ? 1 : 0;
}

/** A counter past its bound moves the wall time on by 1 ms (still monotonic, still unique). */
function normalise(wallMs: number, counter: number): HlcState {
  if (counter > MAX_HLC_COUNTER) return { wallMs: wallMs + 1, counter: 0 };
  return { wallMs, counter };
}

/** Reads the wall clock as a whole number of ms in [0, MAX_TIMESTAMP_MS]. */
function wall(nowMs: number): number {
  if (!Number.isFinite(nowMs) || nowMs < 0) return 0;
  return Math.min(Math.floor(nowMs), MAX_TIMESTAMP_MS);
}

/**
 * The timestamp of a new local event (a send), and the clock's next state: later than anything
 * the clock made or saw, and at least the wall clock.
 */
export function hlcTick(state: HlcState, nowMs: number, device: string): Hlc {
  const physical = wall(nowMs);
  const next =
    physical > state.wallMs
      ? { wallMs: physical, counter: 0 }
      : normalise(state.wallMs, state.counter + 1);
  return { ...next, device };
}

/** The result of receiving a peer's timestamp: the clock's next state, or a refusal. */
export type HlcReceive =
  | { readonly ok: true; readonly state: HlcState }
  | { readonly ok: false; readonly aheadMs: number };

/**
 * Takes in a peer's timestamp: the next state is at least the peer's, so the next local event
 * orders after it. A timestamp more than `maxAheadMs` ahead of the wall clock is refused and the
 * state is unchanged.
 */
export function hlcReceive(
  state: HlcState,
  remote: Hlc,
  nowMs: number,
  maxAheadMs: number = MAX_HLC_AHEAD_MS,
): HlcReceive {
  const physical = wall(nowMs);
  const aheadMs = remote.wallMs - physical;
  if (aheadMs > maxAheadMs) return { ok: false, aheadMs };
  const wallMs = Math.max(state.wallMs, remote.wallMs, physical);
  let counter: number;
  if (wallMs === state.wallMs && wallMs === remote.wallMs) {
    counter = Math.max(state.counter, remote.counter) + 1;
  } else if (wallMs === state.wallMs) {
    counter = state.counter + 1;
  } else if (wallMs === remote.wallMs) {
    counter = remote.counter + 1;
  } else {
    counter = 0;
  }
  return { ok: true, state: normalise(wallMs, counter) };
}

/** The state a clock is in after making or seeing `at` (what the caller stores). */
export function hlcStateOf(at: Hlc): HlcState {
  return { wallMs: at.wallMs, counter: at.counter };
}
