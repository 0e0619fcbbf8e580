/**
 * A device's replica: its own changes are stamped after everything it received, a peer's event
 * too far ahead is held back (not lost) until the clock catches up, and every bound.
 */
import { describe, expect, it } from '@jest/globals';
import { deviceOf, idOf } from '@passage/testing/conversation-fixtures';
import { CaseReplica } from './case-replica.js';
import { compareHlc } from './hlc.js';
import { isConversationError } from './errors.js';
import {
  MAX_CASES_PER_REPLICA,
  MAX_DEFERRED_CASE_EVENTS,
  MAX_HLC_AHEAD_MS,
  MAX_TAGS_PER_CASE,
} from './limits.js';
import type { CaseEvent } from './messages.js';

const CASE = deviceOf(0xc0);
const A = deviceOf(0x0a);
const B = deviceOf(0x0b);
const NOW = 1_750_000_000_000;

/** An event from B, `aheadMs` ahead of NOW. */
function fromB(
  aheadMs: number,
  n = 1,
  op: CaseEvent['op'] = { kind: 'status', status: 'closed' },
): CaseEvent {
  return {
    v: 1,
    type: 'case_event',
    id: idOf(n % 256),
    ts: NOW,
    case: CASE,
    hlc: { wallMs: NOW + aheadMs, counter: Math.floor(n / 256), device: B },
    op,
  };
}

/** A distinct id for the n-th event (beyond idOf's 256). */
const nthId = (n: number) => `${'A'.repeat(16)}${n.toString(36).padStart(5, 'A')}A`;

describe('case replica', () => {
  it('applies its own change and stamps it with its own device', () => {
    const r = new CaseReplica(A);
    const e = r.change(CASE, { kind: 'priority', priority: 'high' }, idOf(1), NOW);
    expect(e.hlc).toEqual({ wallMs: NOW, counter: 0, device: A });
    expect(e).toMatchObject({ v: 1, type: 'case_event', case: CASE, ts: NOW });
    expect(r.state(CASE).priority.value).toBe('high');
  });

  it('stamps its next change after an event it received, even with its clock behind', () => {
    const r = new CaseReplica(A);
    const received = fromB(30_000);
    expect(r.receive(received, NOW)).toBe('applied');
    const mine = r.change(CASE, { kind: 'status', status: 'in_progress' }, idOf(2), NOW);
    expect(compareHlc(mine.hlc, received.hlc)).toBe(1);
    // So the later decision wins, although this device's wall clock is 30 s behind.
    expect(r.state(CASE).status.value).toBe('in_progress');
  });

  it('reports a duplicate as unchanged', () => {
    const r = new CaseReplica(A);
    expect(r.receive(fromB(0), NOW)).toBe('applied');
    expect(r.receive(fromB(0), NOW)).toBe('unchanged');
  });

  it('applies an event MAX_HLC_AHEAD_MS ahead and holds back one 1 ms further', () => {
    const r = new CaseReplica(A);
    expect(r.receive(fromB(MAX_HLC_AHEAD_MS, 1), NOW)).toBe('applied');
    expect(r.receive(fromB(MAX_HLC_AHEAD_MS + 1, 2), NOW)).toBe('deferred');
    expect(r.deferredCount()).toBe(1);
    expect(r.drops.get('case_clock_ahead')).toBe(1);
  });

  it('neither applies a held-back event nor lets it move its clock', () => {
    const r = new CaseReplica(A);
    r.receive(fromB(10 * MAX_HLC_AHEAD_MS), NOW);
    expect(r.state(CASE).status.value).toBe('new');
    const mine = r.change(CASE, { kind: 'status', status: 'screening' }, idOf(3), NOW);
    expect(mine.hlc.wallMs).toBe(NOW);
  });

  it('applies held-back events once its clock is within the bound, and counts each once', () => {
    const r = new CaseReplica(A);
    r.receive(fromB(2 * MAX_HLC_AHEAD_MS), NOW);
    expect(r.retryDeferred(NOW + MAX_HLC_AHEAD_MS - 1)).toBe(0);
    expect(r.deferredCount()).toBe(1);
    expect(r.retryDeferred(NOW + MAX_HLC_AHEAD_MS)).toBe(1);
    expect(r.deferredCount()).toBe(0);
    expect(r.state(CASE).status.value).toBe('closed');
    expect(r.drops.get('case_clock_ahead')).toBe(1);
  });

  it('holds a duplicate of a held-back event once', () => {
    const r = new CaseReplica(A);
    r.receive(fromB(2 * MAX_HLC_AHEAD_MS), NOW);
    r.receive(fromB(2 * MAX_HLC_AHEAD_MS), NOW);
    expect(r.deferredCount()).toBe(1);
  });

  it(`holds MAX_DEFERRED_CASE_EVENTS events back and drops the furthest ahead past it`, () => {
    const r = new CaseReplica(A);
    for (let i = 0; i < MAX_DEFERRED_CASE_EVENTS; i++) {
      expect(r.receive({ ...fromB(MAX_HLC_AHEAD_MS + 1 + i, i), id: nthId(i) }, NOW)).toBe(
        'deferred',
      );
    }
    expect(r.deferredCount()).toBe(MAX_DEFERRED_CASE_EVENTS);
    expect(r.drops.get('case_limit')).toBe(0);
    // One more, further ahead than all: it is the one dropped.
    const furthest = { ...fromB(100 * MAX_HLC_AHEAD_MS, 9999), id: nthId(9999) };
    expect(r.receive(furthest, NOW)).toBe('refused');
    expect(r.deferredCount()).toBe(MAX_DEFERRED_CASE_EVENTS);
    expect(r.drops.get('case_limit')).toBe(1);
    // One more, nearer than all: it is held and the furthest held goes.
    expect(r.receive({ ...fromB(MAX_HLC_AHEAD_MS + 1, 10_000), id: nthId(10_000) }, NOW)).toBe(
      'deferred',
    );
    expect(r.deferredCount()).toBe(MAX_DEFERRED_CASE_EVENTS);
    expect(r.drops.get('case_limit')).toBe(2);
  });

  it('refuses its own change past a bound with case_limit, and applies nothing', () => {
    const r = new CaseReplica(A);
    for (let i = 0; i < MAX_TAGS_PER_CASE; i++) {
      r.change(CASE, { kind: 'tag', tag: `t${i}`, present: true }, nthId(i), NOW);
    }
    let error: unknown;
    try {
      r.change(CASE, { kind: 'tag', tag: 'more', present: true }, nthId(999), NOW);
    } catch (e) {
      error = e;
    }
    expect(isConversationError(error, 'case_limit')).toBe(true);
    expect(r.state(CASE).tags.has('more')).toBe(false);
  });

  it(`holds MAX_CASES_PER_REPLICA cases and refuses an event of one more`, () => {
    const r = new CaseReplica(A);
    const caseOf = (i: number) => i.toString(16).padStart(64, '0');
    for (let i = 0; i < MAX_CASES_PER_REPLICA; i++) {
      expect(r.receive({ ...fromB(0), case: caseOf(i) }, NOW)).toBe('applied');
    }
    expect(r.caseIds()).toHaveLength(MAX_CASES_PER_REPLICA);
    expect(r.receive({ ...fromB(0), case: caseOf(MAX_CASES_PER_REPLICA) }, NOW)).toBe('refused');
    expect(r.drops.get('case_limit')).toBe(1);
    // A case it holds still takes events.
    expect(
      r.receive({ ...fromB(1, 3, { kind: 'priority', priority: 'low' }), case: caseOf(0) }, NOW),
    ).toBe('applied');
  });
});
