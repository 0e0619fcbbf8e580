/**
 * What the conversation-message and case-state tests build again and again: one valid sample of
 * every message type, fixed ids, and fast-check arbitraries of valid messages and case events.
 */
import fc from 'fast-check';
import {
  CASE_PRIORITIES,
  CASE_STATUSES,
  CONTACT_STATUSES,
  SPAM_MARKS,
  type CaseEvent,
  type CaseOp,
  type ConversationMessage,
  type IntakeAnswer,
  type MessageType,
  type SyncItem,
} from '@passage/shared/client/conversation/messages';
import { MAX_ATTACHMENT_BYTES } from '@passage/shared/client/conversation/limits';
import { toBase64url } from '@passage/shared/protocol/base64url';
import { hasForbiddenCharacters } from '@passage/shared/org/profile';

/** A fixed message id from one byte: 16 copies of `n`. */
export function idOf(n: number): string {
  return toBase64url(new Uint8Array(16).fill(n));
}

/** A fixed device id from one byte (64 hex characters). */
export function deviceOf(n: number): string {
  return n.toString(16).padStart(2, '0').repeat(32);
}

/** The case of the samples: its contact's device id. */
export const SAMPLE_CASE = deviceOf(0xc0);
/** The team device of the samples. */
export const SAMPLE_DEVICE = deviceOf(0xd1);
export const SAMPLE_TS = 1_750_000_000_000;

const common = (n: number) => ({ v: 1 as const, id: idOf(n), ts: SAMPLE_TS });

/** One valid message of each type, fresh each call (tests edit them). */
export function sampleMessages(): Record<MessageType, ConversationMessage> {
  const event: CaseEvent = {
    ...common(6),
    type: 'case_event',
    case: SAMPLE_CASE,
    hlc: { wallMs: SAMPLE_TS, counter: 0, device: SAMPLE_DEVICE },
    op: { kind: 'status', status: 'screening' },
  };
  return {
    text: { ...common(1), type: 'text', body: 'Привет.\nI need help.' },
    intake: {
      ...common(2),
      type: 'intake',
      profileVersion: 1,
      answers: [
        { field: 'safe_now', choices: ['no'] },
        { field: 'danger', text: 'They took my phone.' },
      ],
    },
    receipt: { ...common(3), type: 'receipt', case: SAMPLE_CASE, kind: 'read', ids: [idOf(1)] },
    attachment: {
      ...common(4),
      type: 'attachment',
      blob: idOf(40),
      key: toBase64url(new Uint8Array(32).fill(41)),
      digest: toBase64url(new Uint8Array(32).fill(42)),
      size: 1234,
      mediaType: 'image/jpeg',
      fileName: 'passport.jpg',
    },
    status_notice: { ...common(5), type: 'status_notice', case: SAMPLE_CASE, status: 'received' },
    case_event: event,
    sync_request: { ...common(7), type: 'sync_request' },
    sync_response: {
      ...common(8),
      type: 'sync_response',
      request: idOf(7),
      case: SAMPLE_CASE,
      part: 0,
      last: true,
      items: [
        { from: 'contact', message: { ...common(1), type: 'text', body: 'Hello' } },
        { from: SAMPLE_DEVICE, message: event },
      ],
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Arbitraries

export const arbId = fc.uint8Array({ minLength: 16, maxLength: 16 }).map(toBase64url);
export const arbDevice = fc
  .uint8Array({ minLength: 32, maxLength: 32 })
  .map((b) => [...b].map((x) => x.toString(16).padStart(2, '0')).join(''));
const arbBytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map(toBase64url);
const arbTs = fc.integer({ min: 0, max: 2 ** 48 - 1 });

function hasControls(s: string): boolean {
  return [...s].some((c) => {
    const n = c.charCodeAt(0);
    return n !== 0x0a && n !== 0x09 && (n <= 0x1f || (n >= 0x7f && n <= 0x9f));
  });
}

/** Free text: any graphemes (so any language), not blank, no controls but line feed and tab. */
export const arbProse = (max: number) =>
  fc
    .string({ unit: 'grapheme', minLength: 1, maxLength: Math.min(max, 40) })
    .filter((s) => s.length <= max && s.trim().length > 0 && !hasControls(s));

/** A label: no controls, no bidirectional overrides, trimmed. */
export const arbLabel = (max: number) =>
  fc
    .string({ unit: 'grapheme', minLength: 1, maxLength: Math.min(max, 20) })
    .filter((s) => s.length <= max && !hasForbiddenCharacters(s) && s.trim() === s);

const arbQid = fc.stringMatching(/^[a-z][a-z0-9_]{0,10}$/);

export const arbCaseOp: fc.Arbitrary<CaseOp> = fc.oneof(
  fc.constantFrom(...CASE_STATUSES).map((status) => ({ kind: 'status' as const, status })),
  fc.constantFrom(...CASE_PRIORITIES).map((priority) => ({ kind: 'priority' as const, priority })),
  fc
    .option(arbDevice, { nil: undefined })
    .map((device) =>
      device === undefined ? { kind: 'assignee' as const } : { kind: 'assignee' as const, device },
    ),
  fc
    .record({ tag: arbLabel(32), present: fc.boolean() })
    .map((r) => ({ kind: 'tag' as const, ...r })),
  arbProse(4000).map((text) => ({ kind: 'note' as const, text })),
  fc
    .option(fc.constantFrom(...CONTACT_STATUSES), { nil: undefined })
    .map((status) =>
      status === undefined
        ? { kind: 'shown_status' as const }
        : { kind: 'shown_status' as const, status },
    ),
  fc
    .option(fc.integer({ min: 1, max: 720 }), { nil: undefined })
    .map((hours) =>
      hours === undefined ? { kind: 'check_in' as const } : { kind: 'check_in' as const, hours },
    ),
  fc.constant({ kind: 'duress' as const }),
  fc.constantFrom(...SPAM_MARKS).map((mark) => ({ kind: 'spam' as const, mark })),
);

const arbCaseEvent: fc.Arbitrary<CaseEvent> = fc.record({
  v: fc.constant(1 as const),
  type: fc.constant('case_event' as const),
  id: arbId,
  ts: arbTs,
  case: arbDevice,
  hlc: fc.record({
    wallMs: arbTs,
    counter: fc.integer({ min: 0, max: 0xffff }),
    device: arbDevice,
  }),
  op: arbCaseOp,
});

const arbAnswer: fc.Arbitrary<IntakeAnswer> = fc.oneof(
  fc.record({ field: arbQid, text: arbProse(4000) }),
  fc.record({
    field: arbQid,
    choices: fc.uniqueArray(arbQid, { minLength: 1, maxLength: 4 }),
  }),
);

const withCase = <T extends object>(arb: fc.Arbitrary<T>) =>
  fc
    .tuple(arb, fc.option(arbDevice, { nil: undefined }))
    .map(([m, c]) => (c === undefined ? m : { ...m, case: c }));

const base = { v: fc.constant(1 as const), id: arbId, ts: arbTs };

/** Any valid message but the history hand-off (what a hand-off may carry). */
export const arbItemMessage: fc.Arbitrary<SyncItem['message']> = fc.oneof(
  withCase(fc.record({ ...base, type: fc.constant('text' as const), body: arbProse(10_000) })),
  fc.record({
    ...base,
    type: fc.constant('intake' as const),
    profileVersion: fc.integer({ min: 1, max: 0xffff_ffff }),
    answers: fc.uniqueArray(arbAnswer, { maxLength: 5, selector: (a) => a.field }),
  }),
  withCase(
    fc.record({
      ...base,
      type: fc.constant('receipt' as const),
      kind: fc.constantFrom('delivered' as const, 'read' as const),
      ids: fc.uniqueArray(arbId, { minLength: 1, maxLength: 5 }),
    }),
  ),
  withCase(
    fc.record({
      ...base,
      type: fc.constant('attachment' as const),
      blob: arbId,
      key: arbBytes32,
      digest: arbBytes32,
      size: fc.integer({ min: 1, max: MAX_ATTACHMENT_BYTES }),
      mediaType: fc.constantFrom('image/jpeg', 'application/pdf', 'audio/ogg', 'text/plain'),
      fileName: arbLabel(255).filter((s) => !/[/\\]/.test(s) && s !== '.' && s !== '..'),
    }),
  ),
  withCase(
    fc.record({
      ...base,
      type: fc.constant('status_notice' as const),
      status: fc.constantFrom(...CONTACT_STATUSES),
    }),
  ),
  arbCaseEvent,
);

/** Any valid message. */
export const arbConversationMessage: fc.Arbitrary<ConversationMessage> = fc.oneof(
  arbItemMessage,
  fc.record({ ...base, type: fc.constant('sync_request' as const) }),
  fc.record({
    ...base,
    type: fc.constant('sync_response' as const),
    request: arbId,
    case: arbDevice,
    part: fc.integer({ min: 0, max: 10_000 }),
    last: fc.boolean(),
    items: fc.array(
      fc.record({
        from: fc.oneof(fc.constant('contact' as const), arbDevice),
        message: arbItemMessage,
      }),
      { maxLength: 3 },
    ),
  }),
);
