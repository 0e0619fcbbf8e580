/**
 * One coordinator device's copy of the team's case states: its hybrid logical clock, the state
 * of each case, and the events held back because their clock ran too far ahead of this device's.
 * It makes the device's own case events (stamped by its clock) and takes in its peers'. The
 * merge itself is case-state.ts; this adds the clock, the bounds and the held-back events.
 *
 * In memory; the client core persists `snapshot()`-equivalent state through its storage. All
 * times are passed in (the injected clock), so tests are deterministic.
 */
import { ConversationError, ConversationErrorCode, DropCounts } from './errors.js';
import {
  applyCaseEvent,
  compareStamps,
  initialCaseState,
  stampOf,
  type CaseState,
} from './case-state.js';
import { HLC_ZERO, hlcReceive, hlcStateOf, hlcTick, type HlcState } from './hlc.js';
import {
  CONVERSATION_VERSION,
  MAX_CASES_PER_REPLICA,
  MAX_DEFERRED_CASE_EVENTS,
  MAX_HLC_AHEAD_MS,
} from './limits.js';
import type { CaseEvent, CaseOp } from './messages.js';

/** What became of a received event. */
export type ReceiveOutcome =
  /** It changed the case's state. */
  | 'applied'
  /** It was applied and changed nothing (a duplicate, or a write older than the one held). */
  | 'unchanged'
  /** Its clock is too far ahead of ours; it is held back and tried again by `retryDeferred`. */
  | 'deferred'
  /** Refused by a bound of the state (`case_limit`); counted. */
  | 'refused';

export interface CaseReplicaOptions {
  /** How far ahead of our clock a peer's HLC may run (default `MAX_HLC_AHEAD_MS`). */
  readonly maxAheadMs?: number;
}

export class CaseReplica {
  private clock: HlcState = HLC_ZERO;
  private readonly cases = new Map<string, CaseState>();
  private deferred: CaseEvent[] = [];
  /** Refused and held-back events, by code. */
  readonly drops = new DropCounts();
  private readonly maxAheadMs: number;

  /** `device` is this device's id: the device every HLC it makes names. */
  constructor(
    readonly device: string,
    options: CaseReplicaOptions = {},
  ) {
    this.maxAheadMs = options.maxAheadMs ?? MAX_HLC_AHEAD_MS;
  }

  /** The state of `caseId` (the initial state for a case no event has touched). */
  state(caseId: string): CaseState {
    return this.cases.get(caseId) ?? initialCaseState(caseId);
  }

  /** The cases with a state, in no particular order. */
  caseIds(): string[] {
    return [...this.cases.keys()];
  }

  /** Events held back, oldest clock first. */
  deferredCount(): number {
    return this.deferred.length;
  }

  /** The clock's state (to persist with the case states). */
  clockState(): HlcState {
    return this.clock;
  }

  /**
   * Makes, applies and returns a case event of this device (to fan out to the team). `id` is the
   * new message id (`newConversationId`).
   *
   * @throws ConversationError('case_limit') when the change would pass a bound of the state.
   */
  change(caseId: string, op: CaseOp, id: string, nowMs: number): CaseEvent {
    const hlc = hlcTick(this.clock, nowMs, this.device);
    const event: CaseEvent = {
      v: CONVERSATION_VERSION,
      type: 'case_event',
      id,
      ts: Math.max(0, Math.floor(nowMs)),
      case: caseId,
      hlc,
      op,
    };
    if (this.apply(event) === 'refused') {
      throw new ConversationError(ConversationErrorCode.CASE_LIMIT);
    }
    this.clock = hlcStateOf(hlc);
    return event;
  }

  /**
   * Takes in a peer's case event, already decoded and checked for its origin (`checkOrigin`).
   * An event whose clock is more than the bound ahead of `nowMs` is held back, not lost.
   */
  receive(event: CaseEvent, nowMs: number): ReceiveOutcome {
    return this.take(event, nowMs, false);
  }

  private take(event: CaseEvent, nowMs: number, retry: boolean): ReceiveOutcome {
    const clock = hlcReceive(this.clock, event.hlc, nowMs, this.maxAheadMs);
    if (!clock.ok) return this.defer(event, retry);
    this.clock = clock.state;
    return this.apply(event);
  }

  /** Tries the held-back events again at `nowMs`; returns how many were taken in. */
  retryDeferred(nowMs: number): number {
    const waiting = this.deferred;
    this.deferred = [];
    let taken = 0;
    for (const event of waiting) {
      if (this.take(event, nowMs, true) !== 'deferred') taken++;
    }
    return taken;
  }

  private defer(event: CaseEvent, retry: boolean): ReceiveOutcome {
    // Counted once, when it is first held back, not at every retry.
    if (!retry) this.drops.add(ConversationErrorCode.CLOCK_AHEAD);
    const stamp = stampOf(event);
    if (this.deferred.some((e) => compareStamps(stampOf(e), stamp) === 0)) return 'deferred';
    this.deferred.push(event);
    this.deferred.sort((a, b) => compareStamps(stampOf(a), stampOf(b)));
    if (this.deferred.length > MAX_DEFERRED_CASE_EVENTS) {
      // The furthest ahead goes: it is the one least likely to be a clock a little fast.
      const dropped = this.deferred.pop()!;
      this.drops.add(ConversationErrorCode.CASE_LIMIT);
      if (dropped === event) return 'refused';
    }
    return 'deferred';
  }

  private apply(event: CaseEvent): ReceiveOutcome {
    const current = this.cases.get(event.case);
    if (current === undefined && this.cases.size >= MAX_CASES_PER_REPLICA) {
      this.drops.add(ConversationErrorCode.CASE_LIMIT);
      return 'refused';
    }
    const result = applyCaseEvent(current ?? initialCaseState(event.case), event);
    if (!result.ok) {
      this.drops.add(result.error.code);
      return 'refused';
    }
    this.cases.set(event.case, result.state);
    return result.changed ? 'applied' : 'unchanged';
  }
}
