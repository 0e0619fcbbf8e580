/**
 * The history hand-off: a new device given the parts of another device ends with equal case
 * states and transcripts (random case sets), parts within the message bounds, only roster
 * devices answered; and every part the receiver must refuse.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { arbCaseOp, arbProse, deviceOf, idOf } from '@passage/testing/conversation-fixtures';
import { toBase64url } from '../protocol/base64url.js';
import { utf8Encode } from '../org/utf8.js';
import type { RandomSource } from '../crypto/primitives.js';
import { CaseReplica } from './conversation/case-replica.js';
import { encodeCaseState } from './conversation/case-state.js';
import { MAX_CONVERSATION_MESSAGE_BYTES, MAX_SYNC_ITEMS } from './conversation/limits.js';
import {
  encodeConversationMessage,
  type CaseEvent,
  type CaseOp,
  type SyncResponseMessage,
} from './conversation/messages.js';
import {
  CaseTranscripts,
  HandoffErrorCode as H,
  HandoffReceiver,
  MAX_OPEN_HANDOFF_REQUESTS,
  buildHandoff,
  caseStateEvents,
  type HandoffSource,
  type TranscriptItem,
} from './handoff.js';

const NOW = 1_750_000_000_000;
const CASES = [deviceOf(0xc0), deviceOf(0xc1), deviceOf(0xc2), deviceOf(0xc3)];
const TEAM = [deviceOf(0x0a), deviceOf(0x0b), deviceOf(0x0c)];
const OLD = TEAM[0]!;
const NEW = deviceOf(0x0f);
const ROSTER = [...TEAM, NEW];

/** A deterministic random source (ids of parts only). */
function counterRandom(): RandomSource {
  let n = 0;
  return {
    bytes: (k) => {
      const b = new Uint8Array(k);
      new DataView(b.buffer).setUint32(0, ++n);
      return b;
    },
    uniform: (bound) => n++ % bound,
  };
}

function source(device: string): HandoffSource {
  return { replica: new CaseReplica(device), transcripts: new CaseTranscripts() };
}

const event = (
  caseId: string,
  op: CaseOp,
  i: number,
  device = TEAM[i % TEAM.length]!,
): CaseEvent => ({
  v: 1,
  type: 'case_event',
  id: uniqueId(1, i),
  ts: NOW - 10_000 + i,
  case: caseId,
  hlc: { wallMs: NOW - 10_000 + (i % 50), counter: i, device },
  op,
});

const contactText = (i: number, body: string): TranscriptItem => ({
  from: 'contact',
  message: { v: 1, type: 'text', id: uniqueId(2, i), ts: NOW - i, body },
});
const teamText = (caseId: string, i: number, body: string): TranscriptItem => ({
  from: TEAM[i % TEAM.length]!,
  message: {
    v: 1,
    type: 'text',
    id: uniqueId(3, i),
    ts: NOW - 2 * i,
    body,
    case: caseId,
  },
});
/** A message id unique per (kind, number). */
function uniqueId(kind: number, i: number): string {
  const b = new Uint8Array(16);
  b[0] = kind;
  new DataView(b.buffer).setUint32(1, i);
  return toBase64url(b);
}

/** Delivers every part to a receiver, in order; returns the refusals (none expected). */
function deliver(receiver: HandoffReceiver, parts: readonly SyncResponseMessage[], from = OLD) {
  return parts
    .map((part) => receiver.receive(part, { from: 'team', device: from }, NOW))
    .filter((o) => !o.ok);
}

function sameCase(a: HandoffSource, b: HandoffSource, caseId: string): void {
  expect(encodeCaseState(b.replica.state(caseId))).toBe(encodeCaseState(a.replica.state(caseId)));
  expect(b.transcripts.items(caseId)).toEqual(a.transcripts.items(caseId));
}

const arbCaseSet = fc.array(
  fc.record({
    caseIndex: fc.integer({ min: 0, max: CASES.length - 1 }),
    ops: fc.array(arbCaseOp, { maxLength: 12 }),
    texts: fc.array(fc.tuple(fc.boolean(), arbProse(10_000)), { maxLength: 12 }),
  }),
  { maxLength: 6 },
);

describe('handing off', () => {
  it('gives the new device equal case states and transcripts (random case sets)', () => {
    fc.assert(
      fc.property(arbCaseSet, (cases) => {
        const old = source(OLD);
        let i = 0;
        for (const c of cases) {
          const caseId = CASES[c.caseIndex]!;
          for (const op of c.ops) old.replica.receive(event(caseId, op, i++), NOW);
          for (const [fromContact, body] of c.texts) {
            const item = fromContact ? contactText(i++, body) : teamText(caseId, i++, body);
            old.transcripts.add(caseId, item);
          }
        }
        const fresh = source(NEW);
        const receiver = new HandoffReceiver(fresh);
        const request = receiver.request(counterRandom(), NOW);
        const { parts, omitted } = buildHandoff(old, {
          request,
          requester: NEW,
          roster: ROSTER,
          self: OLD,
          random: counterRandom(),
          nowMs: NOW,
        });
        expect(omitted).toBe(0);
        expect(deliver(receiver, parts)).toEqual([]);
        const open = CASES.filter(
          (c) =>
            (old.replica.caseIds().includes(c) || old.transcripts.caseIds().includes(c)) &&
            old.replica.state(c).status.value !== 'closed',
        );
        expect(receiver.completedCases(request.id).sort()).toEqual(open.sort());
        for (const caseId of open) sameCase(old, fresh, caseId);
        for (const caseId of CASES.filter((c) => !open.includes(c))) {
          expect(fresh.replica.caseIds()).not.toContain(caseId);
          expect(fresh.transcripts.items(caseId)).toEqual([]);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('rebuilds a state from its events in any order (caseStateEvents)', () => {
    fc.assert(
      fc.property(fc.array(arbCaseOp, { maxLength: 30 }), fc.integer(), (ops, seed) => {
        const a = new CaseReplica(OLD);
        ops.forEach((op, i) => a.receive(event(CASES[0]!, op, i), NOW));
        const events = caseStateEvents(a.state(CASES[0]!));
        const shuffled = events
          .map((e, i) => ({ e, k: (i * 7919 + seed) % 104_729 }))
          .sort((x, y) => x.k - y.k)
          .map((x) => x.e);
        const b = new CaseReplica(NEW);
        for (const e of shuffled) b.receive(e, NOW);
        expect(encodeCaseState(b.state(CASES[0]!))).toBe(encodeCaseState(a.state(CASES[0]!)));
      }),
      { numRuns: 100 },
    );
  });

  it('splits a long transcript into parts of at most MAX_SYNC_ITEMS items that fit a message', () => {
    const old = source(OLD);
    for (let i = 0; i < 700; i++) old.transcripts.add(CASES[0]!, contactText(i, 'ok'));
    for (let i = 0; i < 30; i++)
      old.transcripts.add(CASES[0]!, teamText(CASES[0]!, i, 'я'.repeat(9_000)));
    const fresh = source(NEW);
    const receiver = new HandoffReceiver(fresh);
    const request = receiver.request(counterRandom(), NOW);
    const options = {
      request,
      requester: NEW,
      roster: ROSTER,
      self: OLD,
      random: counterRandom(),
      nowMs: NOW,
    };
    const { parts } = buildHandoff(old, options);
    expect(parts.length).toBeGreaterThan(3);
    expect(parts.map((p) => p.part)).toEqual(parts.map((_, i) => i));
    expect(parts.map((p) => p.last)).toEqual(parts.map((_, i) => i === parts.length - 1));
    for (const part of parts) {
      expect(part.items.length).toBeLessThanOrEqual(MAX_SYNC_ITEMS);
      expect(encodeConversationMessage(part).length).toBeLessThanOrEqual(
        MAX_CONVERSATION_MESSAGE_BYTES,
      );
    }
    expect(parts.some((p) => p.items.length === MAX_SYNC_ITEMS)).toBe(true);
    expect(deliver(receiver, parts)).toEqual([]);
    sameCase(old, fresh, CASES[0]!);
  });

  it('gives a case with nothing to carry one empty last part, and leaves closed cases out', () => {
    const old = source(OLD);
    old.replica.receive(event(CASES[1]!, { kind: 'status', status: 'closed' }, 1), NOW);
    old.replica.receive(event(CASES[2]!, { kind: 'tag', tag: 'x', present: false }, 2), NOW);
    old.transcripts.add(CASES[1]!, contactText(3, 'gone'));
    const { parts } = buildHandoff(old, {
      request: { v: 1, type: 'sync_request', id: idOf(1), ts: NOW },
      requester: NEW,
      roster: ROSTER,
      self: OLD,
      random: counterRandom(),
      nowMs: NOW,
      include: (s) => s.status.value !== 'closed',
    });
    expect(parts.map((p) => [p.case, p.part, p.last])).toEqual([[CASES[2], 0, true]]);
    const empty = source(OLD);
    empty.transcripts.add(CASES[3]!, contactText(1, 'hi'));
    const fresh = source(NEW);
    const r = new HandoffReceiver(fresh);
    const req = r.request(counterRandom(), NOW);
    const built = buildHandoff(empty, {
      request: req,
      requester: NEW,
      roster: ROSTER,
      self: OLD,
      random: counterRandom(),
      nowMs: NOW,
    });
    expect(deliver(r, built.parts)).toEqual([]);
    sameCase(empty, fresh, CASES[3]!);
  });

  it('takes the answers of two devices, each in its own order, and keeps one copy of each item', () => {
    const a = source(TEAM[0]!);
    const b = source(TEAM[1]!);
    for (const s of [a, b]) {
      s.replica.receive(event(CASES[0]!, { kind: 'priority', priority: 'urgent' }, 1), NOW);
      s.transcripts.add(CASES[0]!, contactText(1, 'same'));
    }
    b.transcripts.add(CASES[0]!, contactText(2, 'only b'));
    a.transcripts.add(CASES[0]!, contactText(2, 'only b'));
    const fresh = source(NEW);
    const receiver = new HandoffReceiver(fresh);
    const request = receiver.request(counterRandom(), NOW);
    const build = (s: HandoffSource, self: string) =>
      buildHandoff(s, {
        request,
        requester: NEW,
        roster: ROSTER,
        self,
        random: counterRandom(),
        nowMs: NOW,
      }).parts;
    expect(deliver(receiver, build(a, TEAM[0]!), TEAM[0])).toEqual([]);
    expect(deliver(receiver, build(b, TEAM[1]!), TEAM[1])).toEqual([]);
    sameCase(a, fresh, CASES[0]!);
  });

  it('omits (and counts) an item too large to travel even alone', () => {
    const old = source(OLD);
    // An intake as large as a message may be: valid alone, too large with a part around it.
    const intake = (lastChars: number) => ({
      v: 1 as const,
      type: 'intake' as const,
      id: idOf(9),
      ts: NOW,
      profileVersion: 1,
      answers: Array.from({ length: 8 }, (_, i) => ({
        field: `f${i}`,
        text: 'ж'.repeat(i < 7 ? 4_000 : lastChars),
      })),
    });
    // Each further letter is 2 bytes: fill up to the bound exactly (or one byte short).
    const chars =
      1 +
      Math.floor(
        (MAX_CONVERSATION_MESSAGE_BYTES - encodeConversationMessage(intake(1)).length) / 2,
      );
    expect(encodeConversationMessage(intake(chars)).length).toBeGreaterThan(
      MAX_CONVERSATION_MESSAGE_BYTES - 2,
    );
    old.transcripts.add(CASES[0]!, { from: 'contact', message: intake(chars) });
    old.transcripts.add(CASES[0]!, contactText(1, 'small'));
    const { parts, omitted } = buildHandoff(old, {
      request: { v: 1, type: 'sync_request', id: idOf(1), ts: NOW },
      requester: NEW,
      roster: ROSTER,
      self: OLD,
      random: counterRandom(),
      nowMs: NOW,
    });
    expect(omitted).toBe(1);
    expect(parts.flatMap((p) => p.items).map((i) => i.message.type)).toEqual(['text']);
  });
});

describe('refusing', () => {
  const request = { v: 1 as const, type: 'sync_request' as const, id: idOf(1), ts: NOW };
  const base = { request, roster: ROSTER, self: OLD, random: counterRandom(), nowMs: NOW };

  function setup() {
    const old = source(OLD);
    for (let i = 0; i < 600; i++) old.transcripts.add(CASES[0]!, contactText(i, 'hello'));
    old.transcripts.add(CASES[1]!, contactText(1, 'other case'));
    const fresh = source(NEW);
    const receiver = new HandoffReceiver(fresh);
    const req = receiver.request(counterRandom(), NOW);
    const { parts } = buildHandoff(old, { ...base, request: req, requester: NEW });
    const ofCase = (c: string) => parts.filter((p) => p.case === c);
    return { receiver, req, parts, ofCase, fresh };
  }
  const team = { from: 'team' as const, device: OLD };

  it('refuses to hand off to a device that is not in the roster (a removed device)', () => {
    expect(() => buildHandoff(source(OLD), { ...base, requester: deviceOf(0x99) })).toThrow(
      expect.objectContaining({ code: H.NOT_IN_ROSTER }),
    );
  });

  it('refuses to hand off to itself', () => {
    expect(() => buildHandoff(source(OLD), { ...base, requester: OLD })).toThrow(
      expect.objectContaining({ code: H.NOT_IN_ROSTER }),
    );
  });

  it('refuses an answer to no open request, and to a closed one', () => {
    const { receiver, req, parts } = setup();
    const stray = { ...parts[0]!, request: idOf(77) };
    expect(receiver.receive(stray, team, NOW)).toMatchObject({
      ok: false,
      code: H.UNKNOWN_REQUEST,
    });
    receiver.close(req.id);
    expect(receiver.receive(parts[0]!, team, NOW)).toMatchObject({
      ok: false,
      code: H.UNKNOWN_REQUEST,
    });
  });

  it('refuses a part before its predecessor, and the case’s later parts from that sender', () => {
    const { receiver, ofCase, fresh } = setup();
    const [p0, p1, p2] = ofCase(CASES[0]!);
    expect(receiver.receive(p1!, team, NOW)).toMatchObject({ ok: false, code: H.OUT_OF_ORDER });
    expect(receiver.receive(p0!, team, NOW)).toMatchObject({ ok: false, code: H.OUT_OF_ORDER });
    expect(receiver.receive(p2!, team, NOW)).toMatchObject({ ok: false, code: H.OUT_OF_ORDER });
    expect(fresh.transcripts.items(CASES[0]!)).toEqual([]);
  });

  it('refuses a part given twice', () => {
    const { receiver, ofCase } = setup();
    const [p0] = ofCase(CASES[0]!);
    expect(receiver.receive(p0!, team, NOW)).toMatchObject({ ok: true });
    expect(receiver.receive(p0!, team, NOW)).toMatchObject({ ok: false, code: H.OUT_OF_ORDER });
  });

  it('refuses a part after the last one', () => {
    const { receiver, ofCase } = setup();
    const [only] = ofCase(CASES[1]!);
    expect(receiver.receive(only!, team, NOW)).toMatchObject({ ok: true, caseDone: true });
    const again = { ...only!, part: 1, last: true };
    expect(receiver.receive(again, team, NOW)).toMatchObject({ ok: false, code: H.AFTER_LAST });
  });

  it('refuses a part from a contact', () => {
    const { receiver, parts } = setup();
    expect(receiver.receive(parts[0]!, { from: 'contact' }, NOW)).toMatchObject({
      ok: false,
      code: H.WRONG_ORIGIN,
    });
  });

  it('refuses a part whose case event names another device than its item', () => {
    const { receiver, req } = setup();
    const e = event(CASES[2]!, { kind: 'status', status: 'screening' }, 1, TEAM[1]);
    const part: SyncResponseMessage = {
      v: 1,
      type: 'sync_response',
      id: idOf(50),
      ts: NOW,
      request: req.id,
      case: CASES[2]!,
      part: 0,
      last: true,
      items: [{ from: TEAM[2]!, message: e }],
    };
    expect(receiver.receive(part, team, NOW)).toMatchObject({ ok: false, code: H.WRONG_ORIGIN });
  });

  it('refuses a part with a team item of another case', () => {
    const { receiver, req } = setup();
    const part: SyncResponseMessage = {
      v: 1,
      type: 'sync_response',
      id: idOf(50),
      ts: NOW,
      request: req.id,
      case: CASES[2]!,
      part: 0,
      last: true,
      items: [teamText(CASES[3]!, 1, 'elsewhere')],
    };
    expect(receiver.receive(part, team, NOW)).toMatchObject({ ok: false, code: H.WRONG_ORIGIN });
  });

  it('refuses bytes past MAX_CONVERSATION_MESSAGE_BYTES unread', () => {
    const { receiver } = setup();
    const bytes = new Uint8Array(MAX_CONVERSATION_MESSAGE_BYTES + 1).fill(0x20);
    expect(receiver.receiveBytes(bytes, team, NOW)).toEqual({
      ok: false,
      code: H.NOT_A_PART,
      detail: 'msg_too_large',
    });
  });

  it('refuses bytes that are not JSON', () => {
    const { receiver } = setup();
    expect(receiver.receiveBytes(utf8Encode('{not json'), team, NOW)).toMatchObject({
      ok: false,
      code: H.NOT_A_PART,
      detail: 'msg_not_json',
    });
  });

  it('refuses a part of MAX_SYNC_ITEMS + 1 items (malformed)', () => {
    const { receiver, req } = setup();
    const items = Array.from({ length: MAX_SYNC_ITEMS + 1 }, (_, i) => contactText(i, 'x'));
    const part = {
      v: 1,
      type: 'sync_response',
      id: idOf(50),
      ts: NOW,
      request: req.id,
      case: CASES[2]!,
      part: 0,
      last: true,
      items,
    };
    const canonical = utf8Encode(canonicalize(part));
    expect(receiver.receiveBytes(canonical, team, NOW)).toMatchObject({
      ok: false,
      code: H.NOT_A_PART,
      detail: 'msg_malformed',
    });
  });

  it('refuses a hand-off inside a hand-off (malformed)', () => {
    const { receiver, req } = setup();
    const part = {
      v: 1,
      type: 'sync_response',
      id: idOf(50),
      ts: NOW,
      request: req.id,
      case: CASES[2]!,
      part: 0,
      last: true,
      items: [{ from: OLD, message: { v: 1, type: 'sync_request', id: idOf(3), ts: NOW } }],
    };
    expect(receiver.receiveBytes(utf8Encode(canonicalize(part)), team, NOW)).toMatchObject({
      ok: false,
      code: H.NOT_A_PART,
      detail: 'msg_malformed',
    });
  });

  it('refuses another message type as a part', () => {
    const { receiver } = setup();
    expect(
      receiver.receive({ v: 1, type: 'sync_request', id: idOf(3), ts: NOW }, team, NOW),
    ).toMatchObject({
      ok: false,
      code: H.NOT_A_PART,
    });
  });

  it('opens at most MAX_OPEN_HANDOFF_REQUESTS requests', () => {
    const r = new HandoffReceiver(source(NEW));
    const random = counterRandom();
    for (let i = 0; i < MAX_OPEN_HANDOFF_REQUESTS; i++) r.request(random, NOW);
    expect(() => r.request(random, NOW)).toThrow(expect.objectContaining({ code: H.LIMIT }));
  });

  it('refuses a case past its case bound', () => {
    const old = source(OLD);
    old.transcripts.add(CASES[0]!, contactText(1, 'a'));
    old.transcripts.add(CASES[1]!, contactText(2, 'b'));
    const r = new HandoffReceiver(source(NEW), 1);
    const req = r.request(counterRandom(), NOW);
    const { parts } = buildHandoff(old, { ...base, request: req, requester: NEW });
    expect(r.receive(parts[0]!, team, NOW)).toMatchObject({ ok: true });
    expect(r.receive(parts[1]!, team, NOW)).toMatchObject({ ok: false, code: H.LIMIT });
  });
});

/** Canonical JSON (sorted keys, no white space), as the conversation encoder writes it. */
function canonicalize(x: unknown): string {
  if (Array.isArray(x)) return `[${x.map(canonicalize).join(',')}]`;
  if (x !== null && typeof x === 'object') {
    const o = x as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalize(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(x);
}
