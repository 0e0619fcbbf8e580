/**
 * The case-state reducer: the merge rule of each field, the bounds, idempotence and
 * commutativity. The convergence of replicas under random delivery is case-state.property.test.ts.
 */
import { describe, expect, it } from '@jest/globals';
import { deviceOf, idOf } from '@passage/testing/conversation-fixtures';
import {
  applyCaseEvent,
  encodeCaseState,
  initialCaseState,
  presentTags,
  type CaseState,
} from './case-state.js';
import { MAX_NOTES_PER_CASE, MAX_TAGS_PER_CASE } from './limits.js';
import type { CaseEvent, CaseOp } from './messages.js';

const CASE = deviceOf(0xc0);
const A = deviceOf(0x0a);
const B = deviceOf(0x0b);

let serial = 0;
/** An event of `op` at wall `wallMs` (counter, device and id can be given). */
function ev(
  op: CaseOp,
  wallMs: number,
  options: { counter?: number; device?: string; id?: string } = {},
): CaseEvent {
  return {
    v: 1,
    type: 'case_event',
    id: options.id ?? idOf(++serial % 256),
    ts: wallMs,
    case: CASE,
    hlc: { wallMs, counter: options.counter ?? 0, device: options.device ?? A },
    op,
  };
}

/** Applies events in order; every one must be accepted. */
function run(events: readonly CaseEvent[], from: CaseState = initialCaseState(CASE)): CaseState {
  return events.reduce((state, event) => {
    const r = applyCaseEvent(state, event);
    if (!r.ok) throw new Error(`refused: ${r.error.code}`);
    return r.state;
  }, from);
}

/** The state after `events` in every order of the given list and its reverse must agree. */
function bothWays(events: readonly CaseEvent[]): CaseState {
  const forward = run(events);
  expect(encodeCaseState(run([...events].reverse()))).toBe(encodeCaseState(forward));
  return forward;
}

const status = (s: 'screening' | 'in_progress' | 'closed') =>
  ({ kind: 'status', status: s }) as const;

describe('case state: registers', () => {
  it('starts new, normal, unassigned, shown nothing, no check-in, no spam, no duress', () => {
    const s = initialCaseState(CASE);
    expect(s.status.value).toBe('new');
    expect(s.priority.value).toBe('normal');
    expect(s.assignee.value).toBeUndefined();
    expect(s.shownStatus.value).toBeUndefined();
    expect(s.checkInHours.value).toBeUndefined();
    expect(s.spam.value).toBe('none');
    expect(s.duress).toBeUndefined();
    expect(presentTags(s)).toEqual([]);
    expect(s.notes).toEqual([]);
  });

  it('keeps the later write of a register whatever the order of arrival', () => {
    const s = bothWays([ev(status('screening'), 100), ev(status('closed'), 200)]);
    expect(s.status.value).toBe('closed');
  });

  it('orders writes of one millisecond by counter, then device id', () => {
    expect(
      bothWays([ev(status('closed'), 5, { counter: 1 }), ev(status('screening'), 5)]).status.value,
    ).toBe('closed');
    expect(
      bothWays([ev(status('closed'), 5, { device: A }), ev(status('screening'), 5, { device: B })])
        .status.value,
    ).toBe('screening');
  });

  it('orders two writes with one HLC (a faulty device) by id, then by op', () => {
    const low = ev(status('closed'), 5, { id: idOf(1) });
    const high = ev(status('screening'), 5, { id: idOf(2) });
    expect(bothWays([low, high]).status.value).toBe('screening');
    const sameId = ev(status('in_progress'), 5, { id: idOf(2) });
    // "in_progress" sorts before "screening" in the canonical op.
    expect(bothWays([high, sameId]).status.value).toBe('screening');
  });

  it('keeps the last write of priority, assignee, shown status, check-in and spam', () => {
    const s = bothWays([
      ev({ kind: 'priority', priority: 'urgent' }, 1),
      ev({ kind: 'priority', priority: 'low' }, 2),
      ev({ kind: 'assignee', device: B }, 1),
      ev({ kind: 'assignee' }, 2),
      ev({ kind: 'shown_status', status: 'in_progress' }, 1),
      ev({ kind: 'shown_status' }, 3),
      ev({ kind: 'check_in', hours: 24 }, 4),
      ev({ kind: 'check_in' }, 3),
      ev({ kind: 'spam', mark: 'blocked' }, 1),
      ev({ kind: 'spam', mark: 'none' }, 2),
    ]);
    expect(s.priority.value).toBe('low');
    expect(s.assignee.value).toBeUndefined();
    expect(s.shownStatus.value).toBeUndefined();
    expect(s.checkInHours.value).toBe(24);
    expect(s.spam.value).toBe('none');
  });

  it('lets a spam block be lifted by a later write (a wrongly blocked person is reachable again)', () => {
    expect(
      bothWays([ev({ kind: 'spam', mark: 'blocked' }, 1), ev({ kind: 'spam', mark: 'none' }, 9)])
        .spam.value,
    ).toBe('none');
  });
});

describe('case state: tags, notes, duress', () => {
  it('keeps one last-writer-wins register per tag', () => {
    const s = bothWays([
      ev({ kind: 'tag', tag: 'medical', present: true }, 1),
      ev({ kind: 'tag', tag: 'legal', present: true }, 2),
      ev({ kind: 'tag', tag: 'medical', present: false }, 3),
      ev({ kind: 'tag', tag: 'Зелёный', present: true }, 4),
    ]);
    expect(presentTags(s)).toEqual(['legal', 'Зелёный']);
  });

  it('does not let a late removal that is older than the add remove the tag', () => {
    const add = ev({ kind: 'tag', tag: 'medical', present: true }, 10);
    const staleRemove = ev({ kind: 'tag', tag: 'medical', present: false }, 9);
    expect(presentTags(run([add, staleRemove]))).toEqual(['medical']);
  });

  it('keeps a tag named like an Object.prototype member as a plain tag', () => {
    const s = bothWays([
      ev({ kind: 'tag', tag: '__proto__', present: true }, 1),
      ev({ kind: 'tag', tag: 'constructor', present: true }, 2),
    ]);
    expect(presentTags(s)).toEqual(['__proto__', 'constructor']);
  });

  it('appends notes in HLC order, whatever the order of arrival, each once', () => {
    const n1 = ev({ kind: 'note', text: 'first' }, 1, { device: B });
    const n2 = ev({ kind: 'note', text: 'second' }, 2);
    const n3 = ev({ kind: 'note', text: 'third' }, 2, { device: B });
    const s = run([n3, n1, n2, n1, n3]);
    expect(s.notes.map((n) => n.text)).toEqual(['first', 'second', 'third']);
    expect(s.notes.map((n) => n.author)).toEqual([B, A, B]);
    expect(encodeCaseState(run([n1, n2, n3]))).toBe(encodeCaseState(s));
  });

  it('keeps one note for one id even when a faulty device sends two texts under it', () => {
    const first = ev({ kind: 'note', text: 'one' }, 1, { id: idOf(50) });
    const other = ev({ kind: 'note', text: 'two' }, 2, { id: idOf(50) });
    const s = bothWays([first, other]);
    expect(s.notes.map((n) => n.text)).toEqual(['two']);
  });

  it('keeps the duress mark for good, stamped by its first mark', () => {
    const early = ev({ kind: 'duress' }, 5);
    const late = ev({ kind: 'duress' }, 50, { device: B });
    const s = bothWays([late, early, ev({ kind: 'spam', mark: 'none' }, 99)]);
    expect(s.duress?.hlc.wallMs).toBe(5);
  });

  it('has no event that clears the duress mark', () => {
    const marked = run([ev({ kind: 'duress' }, 5)]);
    const ops: CaseOp[] = [
      status('closed'),
      { kind: 'spam', mark: 'none' },
      { kind: 'shown_status' },
      { kind: 'tag', tag: 'duress', present: false },
    ];
    const after = run(
      ops.map((op, i) => ev(op, 100 + i)),
      marked,
    );
    expect(after.duress).toEqual(marked.duress);
  });
});

describe('case state: bounds', () => {
  const tags = (n: number) =>
    Array.from({ length: n }, (_, i) => ev({ kind: 'tag', tag: `t${i}`, present: true }, i + 1));

  it(`takes MAX_TAGS_PER_CASE tags and refuses one more (case_limit), state unchanged`, () => {
    const full = run(tags(MAX_TAGS_PER_CASE));
    expect(full.tags.size).toBe(MAX_TAGS_PER_CASE);
    const r = applyCaseEvent(full, ev({ kind: 'tag', tag: 'one_more', present: true }, 1e6));
    expect(r).toEqual({ ok: false, error: { code: 'case_limit' } });
  });

  it('still changes a tag it holds at MAX_TAGS_PER_CASE', () => {
    const full = run(tags(MAX_TAGS_PER_CASE));
    const r = applyCaseEvent(full, ev({ kind: 'tag', tag: 't0', present: false }, 1e6));
    expect(r.ok && presentTags(r.state).includes('t0')).toBe(false);
    expect(r.ok).toBe(true);
  });

  const notes = (n: number) =>
    Array.from({ length: n }, (_, i) =>
      ev({ kind: 'note', text: `n${i}` }, i + 1, {
        id: idOf(i % 256),
        counter: Math.floor(i / 256),
      }),
    );

  it(`takes MAX_NOTES_PER_CASE notes and refuses one more (case_limit)`, () => {
    // Distinct ids: the fixture's idOf has 256 values, so build ids from the index.
    const events = notes(MAX_NOTES_PER_CASE).map((e, i) => ({
      ...e,
      id: `${'A'.repeat(18)}${i.toString(36).padStart(3, '0')}A`,
    }));
    const full = run(events);
    expect(full.notes).toHaveLength(MAX_NOTES_PER_CASE);
    const r = applyCaseEvent(full, ev({ kind: 'note', text: 'more' }, 1e6, { id: idOf(255) }));
    expect(r).toEqual({ ok: false, error: { code: 'case_limit' } });
    // A duplicate of a held note is still accepted (and changes nothing).
    const again = applyCaseEvent(full, events[0]!);
    expect(again).toEqual({ ok: true, state: full, changed: false });
  });

  it('refuses an event of another case as a bug of the caller', () => {
    expect(() => applyCaseEvent(initialCaseState(B), ev(status('closed'), 1))).toThrow(RangeError);
  });
});

describe('case state: idempotence and commutativity', () => {
  const events = [
    ev(status('screening'), 3),
    ev({ kind: 'tag', tag: 'x', present: true }, 4),
    ev({ kind: 'note', text: 'n' }, 5),
    ev({ kind: 'duress' }, 6),
    ev({ kind: 'assignee', device: B }, 7),
  ];

  it.each(events.map((e) => [e.op.kind, e] as const))(
    'applying a %s event twice changes nothing the second time',
    (_kind, event) => {
      const once = run([event]);
      const twice = applyCaseEvent(once, event);
      expect(twice).toEqual({ ok: true, state: once, changed: false });
    },
  );

  it('gives one state for every order of a set of events', () => {
    const orders = [
      [0, 1, 2, 3, 4],
      [4, 3, 2, 1, 0],
      [2, 0, 4, 1, 3],
      [1, 4, 0, 3, 2],
    ];
    const states = orders.map((o) => encodeCaseState(run(o.map((i) => events[i]!))));
    expect(new Set(states).size).toBe(1);
  });

  it('encodes different states differently', () => {
    expect(encodeCaseState(run([events[0]!]))).not.toBe(encodeCaseState(run([events[1]!])));
    expect(encodeCaseState(run([events[0]!]))).not.toBe(encodeCaseState(initialCaseState(CASE)));
  });
});
