/**
 * The shared state of one case, as every coordinator device computes it from the case events it
 * has received. The merge rule of each field makes the state a function of the SET of events, so
 * devices that received the same events, in any order, any number of times, hold equal states
 * (ADR 0015, docs/conversation.md):
 *
 * - status, priority, assignee, shown status, check-in interval, spam mark: last writer wins, by
 *   the event's hybrid logical clock (hlc.ts), then its id, then its canonical op (so that even
 *   two events with one HLC and one id, which only a faulty device makes, order the same way
 *   everywhere);
 * - tags: one last-writer-wins register per tag (present or removed);
 * - internal notes: append-only, deduplicated by event id, ordered by HLC;
 * - duress: sticky; the first mark (in HLC order) stays and nothing clears it.
 *
 * Every transition is a pure function that returns a new state; nothing is changed in place.
 */
import { canonicalJson } from '../../org/profile.js';
import { ConversationErrorCode, type ConversationFailure } from './errors.js';
import { compareHlc, type Hlc } from './hlc.js';
import { MAX_NOTES_PER_CASE, MAX_TAGS_PER_CASE } from './limits.js';
import type { CaseEvent, CasePriority, CaseStatus, ContactStatus, SpamMark } from './messages.js';

/** What orders two writes: the event's HLC, its id, and its canonical op. */
export interface Stamp {
  readonly hlc: Hlc;
  readonly event: string;
  readonly op: string;
}

/** A last-writer-wins register: its value and the write that set it (none: the default). */
export interface Register<T> {
  readonly value: T;
  readonly stamp?: Stamp;
}

/** An internal note: never shown to the contact. */
export interface CaseNote {
  /** The id of the case event that added it. */
  readonly id: string;
  /** The device that wrote it (its HLC's device). */
  readonly author: string;
  readonly hlc: Hlc;
  readonly text: string;
  /** Its stamp, for deduplicating two notes with one id. */
  readonly stamp: Stamp;
}

export interface CaseState {
  /** The case: its contact's device id. */
  readonly case: string;
  readonly status: Register<CaseStatus>;
  readonly priority: Register<CasePriority>;
  /** The coordinator device assigned, or undefined. */
  readonly assignee: Register<string | undefined>;
  /** What the contact is shown of the case, or undefined for nothing. */
  readonly shownStatus: Register<ContactStatus | undefined>;
  /** Hours between welfare check-ins, or undefined for none. */
  readonly checkInHours: Register<number | undefined>;
  readonly spam: Register<SpamMark>;
  /** The first duress mark, if any (sticky). */
  readonly duress?: Stamp;
  /** Tag registers, present and removed, by tag. */
  readonly tags: ReadonlyMap<string, Register<boolean>>;
  /** Notes in HLC order. */
  readonly notes: readonly CaseNote[];
}

/** The state of a case no event has touched. */
export function initialCaseState(caseId: string): CaseState {
  return {
    case: caseId,
    status: { value: 'new' },
    priority: { value: 'normal' },
    assignee: { value: undefined },
    shownStatus: { value: undefined },
    checkInHours: { value: undefined },
    spam: { value: 'none' },
    tags: new Map(),
    notes: [],
  };
}

/** Orders two stamps; 0 only for the same write. */
export function compareStamps(a: Stamp, b: Stamp): number {
  const byHlc = compareHlc(a.hlc, b.hlc);
  if (byHlc !== 0) return byHlc;
  if (a.event !== b.event) return a.event < b.event ? -1 : 1;
  return a.op < b.op ? -1 : a.op > b.op ? 1 : 0;
}

/** The stamp of an event. */
export function stampOf(event: CaseEvent): Stamp {
  return { hlc: event.hlc, event: event.id, op: canonicalJson(event.op) };
}

/** `register` after a write of `value` at `stamp`: the later write wins. */
function write<T>(register: Register<T>, value: T, stamp: Stamp): Register<T> {
  if (register.stamp !== undefined && compareStamps(stamp, register.stamp) <= 0) return register;
  return { value, stamp };
}

type RegisterField = 'status' | 'priority' | 'assignee' | 'shownStatus' | 'checkInHours' | 'spam';

/** `state` with `register` in `field`: the same object when the register did not change, so
 * that a duplicate or an older write reports `changed: false`. */
function withRegister<K extends RegisterField>(
  state: CaseState,
  field: K,
  register: CaseState[K],
): CaseState {
  return register === state[field] ? state : { ...state, [field]: register };
}

/** The result of applying an event: the new state (the same object when nothing changed). */
export type ApplyResult =
  | { readonly ok: true; readonly state: CaseState; readonly changed: boolean }
  | { readonly ok: false; readonly error: ConversationFailure };

const limit: ApplyResult = { ok: false, error: { code: ConversationErrorCode.CASE_LIMIT } };

/**
 * Applies one case event (already decoded and checked for its origin) to the state of its case.
 * Idempotent (applying an event twice changes nothing the second time) and commutative (any
 * order of a set of events gives one state). An event that would take a tag or note past its
 * bound is refused with `case_limit` and the state is unchanged.
 *
 * @throws RangeError when the event is for another case (a bug of the caller, which routes).
 */
export function applyCaseEvent(state: CaseState, event: CaseEvent): ApplyResult {
  if (event.case !== state.case) throw new RangeError('applyCaseEvent: event of another case');
  const stamp = stampOf(event);
  const op = event.op;
  let next: CaseState;
  switch (op.kind) {
    case 'status':
      next = withRegister(state, 'status', write(state.status, op.status, stamp));
      break;
    case 'priority':
      next = withRegister(state, 'priority', write(state.priority, op.priority, stamp));
      break;
    case 'assignee':
      next = withRegister(state, 'assignee', write(state.assignee, op.device, stamp));
      break;
    case 'shown_status':
      next = withRegister(state, 'shownStatus', write(state.shownStatus, op.status, stamp));
      break;
    case 'check_in':
      next = withRegister(state, 'checkInHours', write(state.checkInHours, op.hours, stamp));
      break;
    case 'spam':
      next = withRegister(state, 'spam', write(state.spam, op.mark, stamp));
      break;
    case 'duress':
      // Sticky: the earliest mark stays, whatever arrives later.
      next =
        state.duress !== undefined && compareStamps(state.duress, stamp) <= 0
          ? state
          : { ...state, duress: stamp };
      break;
    case 'tag': {
      const current = state.tags.get(op.tag);
      if (current === undefined && state.tags.size >= MAX_TAGS_PER_CASE) return limit;
      const register = write(current ?? { value: false }, op.present, stamp);
      next =
        register === current
          ? state
          : { ...state, tags: new Map(state.tags).set(op.tag, register) };
      break;
    }
    case 'note': {
      const note: CaseNote = {
        id: event.id,
        author: event.hlc.device,
        hlc: event.hlc,
        text: op.text,
        stamp,
      };
      const same = state.notes.findIndex((n) => n.id === event.id);
      if (same >= 0) {
        // One id, two notes: only a faulty device makes them; the later stamp wins everywhere.
        if (compareStamps(stamp, state.notes[same]!.stamp) <= 0) {
          next = state;
          break;
        }
      } else if (state.notes.length >= MAX_NOTES_PER_CASE) {
        return limit;
      }
      const notes = state.notes.filter((n) => n.id !== event.id);
      const at = notes.findIndex((n) => compareStamps(stamp, n.stamp) < 0);
      notes.splice(at < 0 ? notes.length : at, 0, note);
      next = { ...state, notes };
      break;
    }
  }
  return { ok: true, state: next, changed: next !== state };
}

/** The present tags, sorted. */
export function presentTags(state: CaseState): string[] {
  return [...state.tags]
    .filter(([, r]) => r.value)
    .map(([tag]) => tag)
    .sort();
}

/**
 * The canonical encoding of a state: two states are equal exactly when their encodings are. Every
 * register with the write that set it, tags sorted, notes in order.
 */
export function encodeCaseState(state: CaseState): string {
  const register = <T>(r: Register<T>) => ({ value: r.value, stamp: r.stamp });
  return canonicalJson({
    case: state.case,
    status: register(state.status),
    priority: register(state.priority),
    assignee: register(state.assignee),
    shownStatus: register(state.shownStatus),
    checkInHours: register(state.checkInHours),
    spam: register(state.spam),
    duress: state.duress,
    tags: [...state.tags]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([tag, r]) => ({ tag, ...register(r) })),
    notes: state.notes.map((n) => ({ id: n.id, author: n.author, text: n.text, stamp: n.stamp })),
  });
}
