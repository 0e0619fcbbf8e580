/**
 * Convergence of the shared case state, by property: replicas that receive the same events in
 * random interleavings, with duplicates and delays (including events held back because their
 * clock ran ahead), end with equal states, compared by their canonical encoding. Plus
 * idempotence and commutativity of single events on random states.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { arbCaseOp, deviceOf, idOf } from '@passage/testing/conversation-fixtures';
import { CaseReplica } from './case-replica.js';
import { applyCaseEvent, encodeCaseState, initialCaseState, type CaseState } from './case-state.js';
import { MAX_HLC_AHEAD_MS } from './limits.js';
import type { CaseEvent, CaseOp } from './messages.js';

const CASES = [deviceOf(0xc0), deviceOf(0xc1)];
const DEVICES = [deviceOf(0x0a), deviceOf(0x0b), deviceOf(0x0c)];

/** Ops over a small vocabulary of tags, so that writes to one tag meet. */
const arbOp: fc.Arbitrary<CaseOp> = fc.oneof(
  { weight: 4, arbitrary: arbCaseOp },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('tag' as const),
      tag: fc.constantFrom('medical', 'legal', 'shelter'),
      present: fc.boolean(),
    }),
  },
);

/**
 * Events with clocks from a small range (so that wall times, counters and devices tie), and ids
 * from a small space (so that a faulty device's reuse of an id is covered too).
 */
const arbEvent: fc.Arbitrary<CaseEvent> = fc.record({
  v: fc.constant(1 as const),
  type: fc.constant('case_event' as const),
  id: fc.integer({ min: 0, max: 40 }).map(idOf),
  ts: fc.constant(0),
  case: fc.constant(CASES[0]!),
  hlc: fc.record({
    wallMs: fc.integer({ min: 0, max: 5 }),
    counter: fc.integer({ min: 0, max: 2 }),
    device: fc.constantFrom(...DEVICES),
  }),
  op: arbOp,
});

function run(events: readonly CaseEvent[]): CaseState {
  return events.reduce((s, e) => {
    const r = applyCaseEvent(s, e);
    if (!r.ok) throw new Error(r.error.code);
    return r.state;
  }, initialCaseState(CASES[0]!));
}

/** A delivery order of `n` events: each at least once, some again, shuffled. */
const arbDelivery = (n: number) =>
  fc
    .tuple(
      fc.array(fc.integer({ min: 0, max: Math.max(0, n - 1) }), { maxLength: n }),
      fc.array(fc.double({ noNaN: true }), { minLength: 2 * n, maxLength: 2 * n }),
    )
    .map(([again, keys]) => {
      const order = [...Array.from({ length: n }, (_, i) => i), ...(n > 0 ? again : [])];
      return order
        .map((index, i) => ({ index, key: keys[i] ?? 0 }))
        .sort((a, b) => a.key - b.key)
        .map((x) => x.index);
    });

describe('case state converges', () => {
  it('to one state on every replica, whatever the order and the duplicates', () => {
    const scenario = fc
      .array(arbEvent, { minLength: 1, maxLength: 40 })
      .chain((events) =>
        fc.tuple(
          fc.constant(events),
          fc.array(arbDelivery(events.length), { minLength: 4, maxLength: 4 }),
        ),
      );
    fc.assert(
      fc.property(scenario, ([events, deliveries]) => {
        const states = deliveries.map((order) =>
          encodeCaseState(run(order.map((i) => events[i]!))),
        );
        expect(new Set(states).size).toBe(1);
      }),
      { numRuns: 300 },
    );
  });

  it('on devices that make changes, receive them late, twice, and with clocks far apart', () => {
    type Step =
      | {
          readonly kind: 'make';
          readonly device: number;
          readonly caseIndex: number;
          readonly op: CaseOp;
        }
      | { readonly kind: 'deliver'; readonly pick: number; readonly to: number }
      | { readonly kind: 'again'; readonly pick: number; readonly to: number }
      | { readonly kind: 'wait'; readonly ms: number }
      | { readonly kind: 'retry'; readonly device: number };
    const arbStep: fc.Arbitrary<Step> = fc.oneof(
      {
        weight: 4,
        arbitrary: fc.record({
          kind: fc.constant('make' as const),
          device: fc.nat(2),
          caseIndex: fc.nat(1),
          op: arbOp,
        }),
      },
      {
        weight: 5,
        arbitrary: fc.record({
          kind: fc.constant('deliver' as const),
          pick: fc.nat(),
          to: fc.nat(2),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({
          kind: fc.constant('again' as const),
          pick: fc.nat(),
          to: fc.nat(2),
        }),
      },
      {
        weight: 2,
        arbitrary: fc.record({
          kind: fc.constant('wait' as const),
          ms: fc.integer({ min: 0, max: 30_000 }),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({ kind: fc.constant('retry' as const), device: fc.nat(2) }),
      },
    );
    // Each device's clock is off by up to twice the bound, so some events are held back.
    const arbSkews = fc.array(
      fc.integer({ min: -2 * MAX_HLC_AHEAD_MS, max: 2 * MAX_HLC_AHEAD_MS }),
      {
        minLength: 3,
        maxLength: 3,
      },
    );
    const scenario = fc.record({
      skews: arbSkews,
      steps: fc.array(arbStep, { maxLength: 80 }),
      finalKeys: fc.array(fc.double({ noNaN: true }), { minLength: 3 * 80, maxLength: 3 * 80 }),
    });

    let heldBack = 0;
    fc.assert(
      fc.property(scenario, ({ skews, steps, finalKeys }) => {
        const replicas = DEVICES.map((d) => new CaseReplica(d));
        let now = 1_750_000_000_000;
        let nextId = 0;
        const sent: CaseEvent[] = [];
        /** Events not yet delivered to each replica (a replica has its own events already). */
        const pending: CaseEvent[][] = [[], [], []];
        let deferredSeen = 0;
        const clock = (i: number) => now + skews[i]!;

        for (const step of steps) {
          if (step.kind === 'make') {
            const id = idOf(0).slice(0, 16).concat((nextId++).toString(36).padStart(5, 'A'), 'A');
            const event = replicas[step.device]!.change(
              CASES[step.caseIndex]!,
              step.op,
              id,
              clock(step.device),
            );
            sent.push(event);
            pending.forEach((list, i) => i !== step.device && list.push(event));
          } else if (step.kind === 'deliver' && pending[step.to]!.length > 0) {
            const list = pending[step.to]!;
            const [event] = list.splice(step.pick % list.length, 1);
            if (replicas[step.to]!.receive(event!, clock(step.to)) === 'deferred') deferredSeen++;
          } else if (step.kind === 'again' && sent.length > 0) {
            // A duplicate of anything sent (its own, or one delivered before, or not yet).
            replicas[step.to]!.receive(sent[step.pick % sent.length]!, clock(step.to));
          } else if (step.kind === 'wait') {
            now += step.ms;
          } else if (step.kind === 'retry') {
            replicas[step.device]!.retryDeferred(clock(step.device));
          }
        }

        // Everything still in flight arrives, in a random order; then every clock catches up.
        pending.forEach((list, to) => {
          list
            .map((event, i) => ({ event, key: finalKeys[(to * 80 + i) % finalKeys.length]! }))
            .sort((a, b) => a.key - b.key)
            .forEach(({ event }) => replicas[to]!.receive(event, clock(to)));
        });
        now += 10 * MAX_HLC_AHEAD_MS;
        replicas.forEach((r, i) => r.retryDeferred(clock(i)));

        for (const r of replicas) expect(r.deferredCount()).toBe(0);
        for (const c of CASES) {
          const states = replicas.map((r) => encodeCaseState(r.state(c)));
          expect(new Set(states).size).toBe(1);
        }
        heldBack += deferredSeen;
      }),
      { numRuns: 200 },
    );
    // The scenarios did hold events back (the clocks are far enough apart), so the test covers
    // the deferral path and not only direct delivery.
    expect(heldBack).toBeGreaterThan(0);
  });
});

describe('case state: single events on random states', () => {
  const arbState = fc.array(arbEvent, { maxLength: 20 }).map(run);

  it('is idempotent: an event applied twice is the event applied once', () => {
    fc.assert(
      fc.property(arbState, arbEvent, (state, event) => {
        const once = applyCaseEvent(state, event);
        if (!once.ok) return;
        const twice = applyCaseEvent(once.state, event);
        expect(twice.ok && twice.changed).toBe(false);
        expect(twice.ok && encodeCaseState(twice.state)).toBe(encodeCaseState(once.state));
      }),
      { numRuns: 500 },
    );
  });

  it('is commutative: two events in either order give one state', () => {
    fc.assert(
      fc.property(arbState, arbEvent, arbEvent, (state, a, b) => {
        const ab = [a, b].reduce((s, e) => {
          const r = applyCaseEvent(s, e);
          return r.ok ? r.state : s;
        }, state);
        const ba = [b, a].reduce((s, e) => {
          const r = applyCaseEvent(s, e);
          return r.ok ? r.state : s;
        }, state);
        expect(encodeCaseState(ab)).toBe(encodeCaseState(ba));
      }),
      { numRuns: 500 },
    );
  });
});
