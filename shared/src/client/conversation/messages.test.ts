/**
 * Conversation messages: every type round-trips; every malformed message is dropped with its
 * code and nothing throws; every bound at the limit and one past; the routing table and the
 * origin rules. Negative tests outnumber positive ones by far (the counts are in the report of
 * the change that added this file, and `it.each` tables below name each case).
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  SAMPLE_CASE,
  SAMPLE_DEVICE,
  arbConversationMessage,
  deviceOf,
  idOf,
  sampleMessages,
} from '@passage/testing/conversation-fixtures';
import { MAX_PADDED_DATA_BYTES, pad, unpad } from '../../crypto/padding.js';
import { toBase64url } from '../../protocol/base64url.js';
import { MAX_QUESTIONNAIRE_FIELDS, MAX_TEXT_ANSWER_CHARS } from '../../org/limits.js';
import { canonicalJson } from '../../org/profile.js';
import { utf8Encode } from '../../org/utf8.js';
import {
  ConversationErrorCode,
  isConversationError,
  type ConversationErrorCode as Code,
} from './errors.js';
import {
  MAX_ATTACHMENT_BYTES,
  MAX_CHECK_IN_HOURS,
  MAX_CONVERSATION_MESSAGE_BYTES,
  MAX_FILE_NAME_CHARS,
  MAX_HLC_COUNTER,
  MAX_MEDIA_TYPE_CHARS,
  MAX_NOTE_CHARS,
  MAX_RECEIPT_IDS,
  MAX_SYNC_ITEMS,
  MAX_SYNC_PARTS,
  MAX_TAG_CHARS,
  MAX_TEXT_CHARS,
  MAX_TIMESTAMP_MS,
} from './limits.js';
import {
  MESSAGE_TYPES,
  checkOrigin,
  decodeConversationMessage,
  encodeConversationMessage,
  mayBeSentByContact,
  mayBeSentToContact,
  newConversationId,
  type ConversationMessage,
  type MessageType,
} from './messages.js';

type Json = Record<string, unknown>;

/** The sample of `type` as a plain object, changed by `edit` (on a deep copy). */
function edited(type: MessageType, edit: (m: Json) => void): Json {
  const m = structuredClone(sampleMessages()[type]) as unknown as Json;
  edit(m);
  return m;
}

/** Canonical JSON of any JSON value, null included (so only the change under test is wrong). */
function canonicalAny(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalAny).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Json)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalAny(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

const bytesOf = (value: unknown) => utf8Encode(canonicalAny(value));

function codeOf(value: unknown): Code | 'ok' {
  const result = decodeConversationMessage(bytesOf(value));
  return result.ok ? 'ok' : result.error.code;
}

const M = ConversationErrorCode.MALFORMED;
const S = (n: number) => 'x'.repeat(n);
const b64 = (n: number) => toBase64url(new Uint8Array(n).fill(7));

describe('conversation messages: round trip', () => {
  it.each(MESSAGE_TYPES)('encodes and decodes a %s message to the same value', (type) => {
    const message = sampleMessages()[type];
    const result = decodeConversationMessage(encodeConversationMessage(message));
    expect(result).toEqual({ ok: true, message });
  });

  it('round-trips any valid message, and its encoding is canonical (one per message)', () => {
    fc.assert(
      fc.property(arbConversationMessage, (message) => {
        const bytes = encodeConversationMessage(message);
        const result = decodeConversationMessage(bytes);
        expect(result).toEqual({ ok: true, message });
        if (result.ok) expect(encodeConversationMessage(result.message)).toEqual(bytes);
      }),
      { numRuns: 300 },
    );
  });

  it('makes 128-bit random ids that the schema accepts', () => {
    let n = 0;
    const random = { bytes: (k: number) => new Uint8Array(k).fill(++n), uniform: () => 0 };
    const id = newConversationId(random);
    expect(id).toHaveLength(22);
    expect(codeOf(edited('text', (m) => (m['id'] = id)))).toBe('ok');
  });

  it('fits every message it encodes into the ratchet padding', () => {
    const body = 'я'.repeat(MAX_TEXT_CHARS);
    const bytes = encodeConversationMessage({
      ...sampleMessages().text,
      body,
    } as ConversationMessage);
    expect(unpad(pad(bytes))).toEqual(bytes);
    expect(MAX_CONVERSATION_MESSAGE_BYTES).toBe(MAX_PADDED_DATA_BYTES);
  });
});

describe('conversation messages: structure', () => {
  const text = canonicalJson(sampleMessages().text);

  it.each<[string, Uint8Array, Code]>([
    ['bytes that are not UTF-8', Uint8Array.from([0x7b, 0xff, 0x7d]), 'msg_not_json'],
    ['an overlong UTF-8 form', Uint8Array.from([0xc0, 0xaf]), 'msg_not_json'],
    ['UTF-8 that is not JSON', utf8Encode('{"v":1,'), 'msg_not_json'],
    ['empty bytes', new Uint8Array(0), 'msg_not_json'],
    ['a byte-order mark before the JSON', utf8Encode(`\ufeff${text}`), 'msg_not_json'],
    ['a JSON array', utf8Encode('[1]'), 'msg_malformed'],
    ['JSON null', utf8Encode('null'), 'msg_malformed'],
    ['a JSON string', utf8Encode('"text"'), 'msg_malformed'],
    ['a JSON number', utf8Encode('1'), 'msg_malformed'],
    ['white space between the fields', utf8Encode(text.replace(',', ', ')), 'msg_not_canonical'],
    ['a trailing line feed', utf8Encode(`${text}\n`), 'msg_not_canonical'],
    [
      'keys out of order',
      utf8Encode(text.replace(/^\{("body":"[^"]*"),(.*)\}$/, '{$2,$1}')),
      'msg_not_canonical',
    ],
    ['a duplicate key', utf8Encode(text.replace('{', '{"v":1,')), 'msg_not_canonical'],
    ['a needless escape', utf8Encode(text.replace('I need', 'I n\\u0065ed')), 'msg_not_canonical'],
  ])('drops %s', (_name, bytes, code) => {
    const result = decodeConversationMessage(bytes);
    expect(result.ok ? 'ok' : result.error.code).toBe(code);
  });

  it('decodes a message of exactly MAX_CONVERSATION_MESSAGE_BYTES and drops one byte more', () => {
    const empty = bytesOf({ ...sampleMessages().text, body: '' }).length;
    const atLimit = {
      ...sampleMessages().text,
      body: 'x'.repeat(MAX_CONVERSATION_MESSAGE_BYTES - empty),
    };
    // The body bound is in characters; this message is past it but within the byte bound, so the
    // byte check is what the next one trips first.
    expect(bytesOf(atLimit).length).toBe(MAX_CONVERSATION_MESSAGE_BYTES);
    expect(codeOf(atLimit)).toBe(M);
    const over = { ...atLimit, body: `${atLimit.body}x` };
    expect(codeOf(over)).toBe('msg_too_large');
  });

  it('refuses to encode a message past the byte bound (msg_too_large)', () => {
    const items = Array.from({ length: 7 }, (_, i) => ({
      from: 'contact',
      message: { ...sampleMessages().text, id: idOf(i), body: 'я'.repeat(MAX_TEXT_CHARS) },
    }));
    const message = { ...sampleMessages().sync_response, items } as ConversationMessage;
    expect(() => encodeConversationMessage(message)).toThrow(
      expect.objectContaining({ code: 'msg_too_large' }),
    );
  });

  it('refuses to encode an invalid message (msg_malformed, with the path)', () => {
    let error: unknown;
    try {
      encodeConversationMessage({ ...sampleMessages().text, body: '' } as ConversationMessage);
    } catch (e) {
      error = e;
    }
    expect(isConversationError(error, ConversationErrorCode.MALFORMED)).toBe(true);
    expect((error as { detail?: string }).detail).toBe('body');
  });

  it('never throws at arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const result = decodeConversationMessage(bytes);
        expect(typeof result.ok).toBe('boolean');
      }),
      { numRuns: 500 },
    );
  });

  it('never throws at arbitrary JSON, and accepts none of it', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(codeOf(value)).not.toBe('ok');
      }),
      { numRuns: 500 },
    );
  });

  it('drops any valid message with one unknown field added', () => {
    fc.assert(
      fc.property(
        arbConversationMessage,
        fc.constantFrom('extra', 'body2', 'zz', '__proto__x'),
        (m, key) => {
          expect(codeOf({ ...m, [key]: 1 })).toBe(M);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('conversation messages: fields every message has', () => {
  const cases: [string, (m: Json) => void, Code][] = [
    ['v 2', (m) => (m['v'] = 2), 'msg_unsupported_version'],
    ['v 0', (m) => (m['v'] = 0), 'msg_unsupported_version'],
    ['v as a string', (m) => (m['v'] = '1'), M],
    ['v 1.5', (m) => (m['v'] = 1.5), M],
    ['no v', (m) => delete m['v'], M],
    ['no type', (m) => delete m['type'], M],
    ['a numeric type', (m) => (m['type'] = 3), M],
    ['an unknown type', (m) => (m['type'] = 'typing'), 'msg_unknown_type'],
    ['type "__proto__"', (m) => (m['type'] = '__proto__'), 'msg_unknown_type'],
    ['type "toString"', (m) => (m['type'] = 'toString'), 'msg_unknown_type'],
    ['no id', (m) => delete m['id'], M],
    ['an id of 15 bytes', (m) => (m['id'] = b64(15)), M],
    ['an id of 17 bytes', (m) => (m['id'] = b64(17)), M],
    ['an id with padding', (m) => (m['id'] = `${b64(16)}==`), M],
    ['an id in standard base64', (m) => (m['id'] = `${b64(16).slice(0, 20)}+/`), M],
    ['an id with non-zero spare bits', (m) => (m['id'] = `${b64(16).slice(0, 21)}B`), M],
    ['a numeric id', (m) => (m['id'] = 7), M],
    ['no ts', (m) => delete m['ts'], M],
    ['a negative ts', (m) => (m['ts'] = -1), M],
    ['a fractional ts', (m) => (m['ts'] = 1.5), M],
    ['ts past MAX_TIMESTAMP_MS', (m) => (m['ts'] = MAX_TIMESTAMP_MS + 1), M],
    ['ts as a string', (m) => (m['ts'] = '1'), M],
    ['an unknown field', (m) => (m['extra'] = true), M],
  ];
  const all = MESSAGE_TYPES.flatMap((type) =>
    cases.map(([name, edit, code]) => [type, name, edit, code] as const),
  );

  it.each(all)('drops a %s message with %s', (type, _name, edit, code) => {
    expect(codeOf(edited(type, edit))).toBe(code);
  });

  it.each(MESSAGE_TYPES)('accepts a %s message with ts 0 and ts MAX_TIMESTAMP_MS', (type) => {
    expect(codeOf(edited(type, (m) => (m['ts'] = 0)))).toBe('ok');
    expect(codeOf(edited(type, (m) => (m['ts'] = MAX_TIMESTAMP_MS)))).toBe('ok');
  });
});

describe('conversation messages: each type', () => {
  const ok = 'ok' as const;
  const table: [MessageType, string, (m: Json) => void, Code | 'ok'][] = [
    // text
    ['text', 'a body of MAX_TEXT_CHARS', (m) => (m['body'] = S(MAX_TEXT_CHARS)), ok],
    ['text', 'a body of MAX_TEXT_CHARS + 1', (m) => (m['body'] = S(MAX_TEXT_CHARS + 1)), M],
    ['text', 'an empty body', (m) => (m['body'] = ''), M],
    ['text', 'a blank body', (m) => (m['body'] = ' \n\t '), M],
    ['text', 'a NUL in the body', (m) => (m['body'] = 'a\u0000b'), M],
    ['text', 'a C1 control in the body', (m) => (m['body'] = 'a\u0085b'), M],
    ['text', 'a lone surrogate in the body', (m) => (m['body'] = 'a\ud800b'), M],
    ['text', 'a numeric body', (m) => (m['body'] = 5), M],
    ['text', 'no body', (m) => delete m['body'], M],
    ['text', 'a right-to-left mark in the body', (m) => (m['body'] = 'שלום \u200f!'), ok],
    ['text', 'a case', (m) => (m['case'] = SAMPLE_CASE), ok],
    ['text', 'a case in upper-case hex', (m) => (m['case'] = SAMPLE_CASE.toUpperCase()), M],
    ['text', 'a case of 63 hex digits', (m) => (m['case'] = SAMPLE_CASE.slice(1)), M],
    ['text', 'a null case', (m) => (m['case'] = null), M],
    // intake
    ['intake', 'no answers', (m) => (m['answers'] = []), ok],
    ['intake', 'profileVersion 0', (m) => (m['profileVersion'] = 0), M],
    ['intake', 'profileVersion 2^32', (m) => (m['profileVersion'] = 2 ** 32), M],
    ['intake', 'a fractional profileVersion', (m) => (m['profileVersion'] = 1.5), M],
    ['intake', 'no profileVersion', (m) => delete m['profileVersion'], M],
    ['intake', 'answers that are not an array', (m) => (m['answers'] = {}), M],
    [
      'intake',
      `${MAX_QUESTIONNAIRE_FIELDS + 1} answers`,
      (m) =>
        (m['answers'] = Array.from({ length: MAX_QUESTIONNAIRE_FIELDS + 1 }, (_, i) => ({
          field: `f${i}`,
          text: 'a',
        }))),
      M,
    ],
    [
      'intake',
      'an answer with both text and choices',
      (m) => (m['answers'] = [{ field: 'a', text: 'x', choices: ['b'] }]),
      M,
    ],
    ['intake', 'an answer with neither', (m) => (m['answers'] = [{ field: 'a' }]), M],
    [
      'intake',
      'an answer with an unknown key',
      (m) => (m['answers'] = [{ field: 'a', text: 'x', y: 1 }]),
      M,
    ],
    ['intake', 'an empty choice list', (m) => (m['answers'] = [{ field: 'a', choices: [] }]), M],
    ['intake', 'a choice twice', (m) => (m['answers'] = [{ field: 'a', choices: ['b', 'b'] }]), M],
    [
      'intake',
      'two answers to one field',
      (m) =>
        (m['answers'] = [
          { field: 'a', text: 'x' },
          { field: 'a', text: 'y' },
        ]),
      M,
    ],
    ['intake', 'a field id in upper case', (m) => (m['answers'] = [{ field: 'A', text: 'x' }]), M],
    [
      'intake',
      'a choice id with a dash',
      (m) => (m['answers'] = [{ field: 'a', choices: ['b-c'] }]),
      M,
    ],
    [
      'intake',
      `a text answer of MAX_TEXT_ANSWER_CHARS + 1`,
      (m) => (m['answers'] = [{ field: 'a', text: S(MAX_TEXT_ANSWER_CHARS + 1) }]),
      M,
    ],
    ['intake', 'a blank text answer', (m) => (m['answers'] = [{ field: 'a', text: '  ' }]), M],
    ['intake', 'a case (a contact never names one)', (m) => (m['case'] = SAMPLE_CASE), M],
    // receipt
    ['receipt', 'kind delivered', (m) => (m['kind'] = 'delivered'), ok],
    [
      'receipt',
      `MAX_RECEIPT_IDS ids`,
      (m) =>
        (m['ids'] = Array.from({ length: MAX_RECEIPT_IDS }, (_, i) =>
          toBase64url(Uint8Array.of(i >> 8, i & 255, ...new Uint8Array(14))),
        )),
      ok,
    ],
    [
      'receipt',
      `MAX_RECEIPT_IDS + 1 ids`,
      (m) =>
        (m['ids'] = Array.from({ length: MAX_RECEIPT_IDS + 1 }, (_, i) =>
          toBase64url(Uint8Array.of(i >> 8, i & 255, ...new Uint8Array(14))),
        )),
      M,
    ],
    ['receipt', 'kind seen', (m) => (m['kind'] = 'seen'), M],
    ['receipt', 'no kind', (m) => delete m['kind'], M],
    ['receipt', 'no ids', (m) => (m['ids'] = []), M],
    ['receipt', 'an id twice', (m) => (m['ids'] = [idOf(1), idOf(1)]), M],
    ['receipt', 'a bad id', (m) => (m['ids'] = ['abc']), M],
    // attachment
    ['attachment', `size MAX_ATTACHMENT_BYTES`, (m) => (m['size'] = MAX_ATTACHMENT_BYTES), ok],
    [
      'attachment',
      `size MAX_ATTACHMENT_BYTES + 1`,
      (m) => (m['size'] = MAX_ATTACHMENT_BYTES + 1),
      M,
    ],
    ['attachment', 'size 0', (m) => (m['size'] = 0), M],
    ['attachment', 'a fractional size', (m) => (m['size'] = 10.5), M],
    ['attachment', 'a key of 31 bytes', (m) => (m['key'] = b64(31)), M],
    ['attachment', 'a key of 33 bytes', (m) => (m['key'] = b64(33)), M],
    ['attachment', 'a digest of 16 bytes', (m) => (m['digest'] = b64(16)), M],
    ['attachment', 'no digest', (m) => delete m['digest'], M],
    ['attachment', 'a blob id of 32 bytes', (m) => (m['blob'] = b64(32)), M],
    ['attachment', 'a media type in upper case', (m) => (m['mediaType'] = 'Image/JPEG'), M],
    ['attachment', 'a media type without a subtype', (m) => (m['mediaType'] = 'image'), M],
    [
      'attachment',
      'a media type with parameters',
      (m) => (m['mediaType'] = 'text/plain; charset=utf-8'),
      M,
    ],
    [
      'attachment',
      `a media type of MAX_MEDIA_TYPE_CHARS`,
      (m) => (m['mediaType'] = `a/${S(MAX_MEDIA_TYPE_CHARS - 2)}`),
      ok,
    ],
    [
      'attachment',
      `a media type of MAX_MEDIA_TYPE_CHARS + 1`,
      (m) => (m['mediaType'] = `a/${S(MAX_MEDIA_TYPE_CHARS - 1)}`),
      M,
    ],
    [
      'attachment',
      `a file name of MAX_FILE_NAME_CHARS`,
      (m) => (m['fileName'] = S(MAX_FILE_NAME_CHARS)),
      ok,
    ],
    [
      'attachment',
      `a file name of MAX_FILE_NAME_CHARS + 1`,
      (m) => (m['fileName'] = S(MAX_FILE_NAME_CHARS + 1)),
      M,
    ],
    ['attachment', 'a file name with a slash', (m) => (m['fileName'] = '../etc/passwd'), M],
    ['attachment', 'a file name with a backslash', (m) => (m['fileName'] = 'a\\b.txt'), M],
    ['attachment', 'the file name ..', (m) => (m['fileName'] = '..'), M],
    [
      'attachment',
      'a right-to-left override in the file name',
      (m) => (m['fileName'] = 'photo\u202egpj.exe'),
      M,
    ],
    ['attachment', 'a line feed in the file name', (m) => (m['fileName'] = 'a\nb'), M],
    ['attachment', 'a file name with a leading space', (m) => (m['fileName'] = ' a.jpg'), M],
    ['attachment', 'an empty file name', (m) => (m['fileName'] = ''), M],
    // status notice
    ['status_notice', 'status closed', (m) => (m['status'] = 'closed'), ok],
    ['status_notice', 'a triage status (screening)', (m) => (m['status'] = 'screening'), M],
    ['status_notice', 'no status', (m) => delete m['status'], M],
    // case event
    ['case_event', 'no case', (m) => delete m['case'], M],
    ['case_event', 'no hlc', (m) => delete m['hlc'], M],
    [
      'case_event',
      `counter MAX_HLC_COUNTER`,
      (m) => ((m['hlc'] as Json)['counter'] = MAX_HLC_COUNTER),
      ok,
    ],
    [
      'case_event',
      `counter MAX_HLC_COUNTER + 1`,
      (m) => ((m['hlc'] as Json)['counter'] = MAX_HLC_COUNTER + 1),
      M,
    ],
    ['case_event', 'a negative counter', (m) => ((m['hlc'] as Json)['counter'] = -1), M],
    [
      'case_event',
      `wallMs past MAX_TIMESTAMP_MS`,
      (m) => ((m['hlc'] as Json)['wallMs'] = MAX_TIMESTAMP_MS + 1),
      M,
    ],
    [
      'case_event',
      'an hlc device that is not an id',
      (m) => ((m['hlc'] as Json)['device'] = 'me'),
      M,
    ],
    ['case_event', 'an hlc with an unknown key', (m) => ((m['hlc'] as Json)['node'] = 1), M],
    ['case_event', 'no op', (m) => delete m['op'], M],
    ['case_event', 'an unknown op kind', (m) => (m['op'] = { kind: 'colour' }), M],
    [
      'case_event',
      'an op with an unknown key',
      (m) => (m['op'] = { kind: 'status', status: 'new', by: 'x' }),
      M,
    ],
    ['case_event', 'status done', (m) => (m['op'] = { kind: 'status', status: 'done' }), M],
    [
      'case_event',
      'priority critical',
      (m) => (m['op'] = { kind: 'priority', priority: 'critical' }),
      M,
    ],
    [
      'case_event',
      'priority urgent',
      (m) => (m['op'] = { kind: 'priority', priority: 'urgent' }),
      ok,
    ],
    [
      'case_event',
      'an assignee',
      (m) => (m['op'] = { kind: 'assignee', device: SAMPLE_DEVICE }),
      ok,
    ],
    ['case_event', 'no assignee (unassigned)', (m) => (m['op'] = { kind: 'assignee' }), ok],
    ['case_event', 'a null assignee', (m) => (m['op'] = { kind: 'assignee', device: null }), M],
    [
      'case_event',
      'an assignee that is not a device id',
      (m) => (m['op'] = { kind: 'assignee', device: 'anna' }),
      M,
    ],
    [
      'case_event',
      `a tag of MAX_TAG_CHARS`,
      (m) => (m['op'] = { kind: 'tag', tag: S(MAX_TAG_CHARS), present: true }),
      ok,
    ],
    [
      'case_event',
      `a tag of MAX_TAG_CHARS + 1`,
      (m) => (m['op'] = { kind: 'tag', tag: S(MAX_TAG_CHARS + 1), present: true }),
      M,
    ],
    ['case_event', 'an empty tag', (m) => (m['op'] = { kind: 'tag', tag: '', present: true }), M],
    [
      'case_event',
      'a tag with a bidirectional isolate',
      (m) => (m['op'] = { kind: 'tag', tag: 'a\u2066b', present: true }),
      M,
    ],
    [
      'case_event',
      'a tag with a trailing space',
      (m) => (m['op'] = { kind: 'tag', tag: 'a ', present: true }),
      M,
    ],
    ['case_event', 'a tag without present', (m) => (m['op'] = { kind: 'tag', tag: 'a' }), M],
    [
      'case_event',
      'a tag with present "yes"',
      (m) => (m['op'] = { kind: 'tag', tag: 'a', present: 'yes' }),
      M,
    ],
    [
      'case_event',
      `a note of MAX_NOTE_CHARS`,
      (m) => (m['op'] = { kind: 'note', text: S(MAX_NOTE_CHARS) }),
      ok,
    ],
    [
      'case_event',
      `a note of MAX_NOTE_CHARS + 1`,
      (m) => (m['op'] = { kind: 'note', text: S(MAX_NOTE_CHARS + 1) }),
      M,
    ],
    ['case_event', 'an empty note', (m) => (m['op'] = { kind: 'note', text: '' }), M],
    [
      'case_event',
      'a shown status',
      (m) => (m['op'] = { kind: 'shown_status', status: 'waiting_for_you' }),
      ok,
    ],
    [
      'case_event',
      'a shown triage status',
      (m) => (m['op'] = { kind: 'shown_status', status: 'screening' }),
      M,
    ],
    [
      'case_event',
      `a check-in of MAX_CHECK_IN_HOURS`,
      (m) => (m['op'] = { kind: 'check_in', hours: MAX_CHECK_IN_HOURS }),
      ok,
    ],
    [
      'case_event',
      `a check-in of MAX_CHECK_IN_HOURS + 1`,
      (m) => (m['op'] = { kind: 'check_in', hours: MAX_CHECK_IN_HOURS + 1 }),
      M,
    ],
    ['case_event', 'a check-in of 0 hours', (m) => (m['op'] = { kind: 'check_in', hours: 0 }), M],
    [
      'case_event',
      'a check-in of 1.5 hours',
      (m) => (m['op'] = { kind: 'check_in', hours: 1.5 }),
      M,
    ],
    ['case_event', 'a duress mark', (m) => (m['op'] = { kind: 'duress' }), ok],
    [
      'case_event',
      'a duress mark with a value',
      (m) => (m['op'] = { kind: 'duress', on: false }),
      M,
    ],
    ['case_event', 'a spam block', (m) => (m['op'] = { kind: 'spam', mark: 'blocked' }), ok],
    ['case_event', 'a spam mark "ham"', (m) => (m['op'] = { kind: 'spam', mark: 'ham' }), M],
    ['case_event', 'a spam mark as a boolean', (m) => (m['op'] = { kind: 'spam', mark: true }), M],
    // history hand-off
    ['sync_request', 'a case', (m) => (m['case'] = SAMPLE_CASE), M],
    ['sync_response', 'no items', (m) => (m['items'] = []), ok],
    [
      'sync_response',
      `MAX_SYNC_ITEMS items`,
      (m) => (m['items'] = Array.from({ length: MAX_SYNC_ITEMS }, () => (m['items'] as Json[])[0])),
      ok,
    ],
    [
      'sync_response',
      `MAX_SYNC_ITEMS + 1 items`,
      (m) =>
        (m['items'] = Array.from({ length: MAX_SYNC_ITEMS + 1 }, () => (m['items'] as Json[])[0])),
      M,
    ],
    ['sync_response', `part MAX_SYNC_PARTS`, (m) => (m['part'] = MAX_SYNC_PARTS), ok],
    ['sync_response', `part MAX_SYNC_PARTS + 1`, (m) => (m['part'] = MAX_SYNC_PARTS + 1), M],
    ['sync_response', 'a negative part', (m) => (m['part'] = -1), M],
    ['sync_response', 'no last', (m) => delete m['last'], M],
    ['sync_response', 'a bad request id', (m) => (m['request'] = 'x'), M],
    ['sync_response', 'no case', (m) => delete m['case'], M],
    [
      'sync_response',
      'a hand-off inside a hand-off',
      (m) => (m['items'] = [{ from: SAMPLE_DEVICE, message: sampleMessages().sync_request }]),
      M,
    ],
    [
      'sync_response',
      'an item from "team"',
      (m) => (m['items'] = [{ from: 'team', message: sampleMessages().text }]),
      M,
    ],
    [
      'sync_response',
      'an item of an unknown type',
      (m) =>
        (m['items'] = [{ from: 'contact', message: { ...sampleMessages().text, type: 'typing' } }]),
      M,
    ],
    [
      'sync_response',
      'an invalid item',
      (m) => (m['items'] = [{ from: 'contact', message: { ...sampleMessages().text, body: '' } }]),
      M,
    ],
    [
      'sync_response',
      'an item with an unknown key',
      (m) => (m['items'] = [{ from: 'contact', message: sampleMessages().text, at: 1 }]),
      M,
    ],
  ];

  it.each(table)('%s with %s', (type, _name, edit, code) => {
    expect(codeOf(edited(type, edit))).toBe(code);
  });

  it('names the failing field of a malformed message (a path, never a value)', () => {
    const result = decodeConversationMessage(
      bytesOf(edited('attachment', (m) => (m['fileName'] = 'a/b'))),
    );
    expect(result).toEqual({ ok: false, error: { code: M, detail: 'fileName' } });
  });
});

describe('conversation messages: who may send what', () => {
  it.each<[MessageType, boolean, boolean]>([
    ['text', true, true],
    ['intake', false, true],
    ['receipt', true, true],
    ['attachment', true, true],
    ['status_notice', true, false],
    ['case_event', false, false],
    ['sync_request', false, false],
    ['sync_response', false, false],
  ])('%s: to a contact %s, from a contact %s', (type, toContact, fromContact) => {
    expect(mayBeSentToContact(type)).toBe(toContact);
    expect(mayBeSentByContact(type)).toBe(fromContact);
  });

  it.each(['typing', '__proto__', 'constructor', 'hasOwnProperty', ''])(
    'never routes the unknown type %j to or from a contact',
    (type) => {
      expect(mayBeSentToContact(type)).toBe(false);
      expect(mayBeSentByContact(type)).toBe(false);
    },
  );

  it('never lets a case event or a note reach a contact, whatever its op', () => {
    fc.assert(
      fc.property(arbConversationMessage, (m) => {
        if (m.type === 'case_event' || m.type.startsWith('sync_')) {
          expect(mayBeSentToContact(m.type)).toBe(false);
        }
      }),
    );
  });

  const team = { from: 'team', device: SAMPLE_DEVICE } as const;
  const contact = { from: 'contact' } as const;
  const s = sampleMessages();
  const W = ConversationErrorCode.WRONG_ORIGIN;
  const originOf = (m: unknown, o: typeof team | typeof contact) =>
    checkOrigin(m as ConversationMessage, o)?.code ?? 'ok';

  it.each<[string, unknown, typeof team | typeof contact, Code | 'ok']>([
    ['a contact text without a case', s.text, contact, 'ok'],
    ['a contact intake', s.intake, contact, 'ok'],
    ['a team text with its case', { ...s.text, case: SAMPLE_CASE }, team, 'ok'],
    ['a team case event with its own HLC device', s.case_event, team, 'ok'],
    ['a team hand-off', s.sync_response, team, 'ok'],
    ['a team hand-off request', s.sync_request, team, 'ok'],
    ['a contact text that names a case', { ...s.text, case: SAMPLE_CASE }, contact, W],
    ['a contact receipt that names a case', s.receipt, contact, W],
    ['a contact case event', s.case_event, contact, W],
    ['a contact status notice', { ...s.status_notice, case: undefined }, contact, W],
    ['a contact hand-off request', s.sync_request, contact, W],
    ['a contact hand-off', s.sync_response, contact, W],
    ['a team text without a case', s.text, team, W],
    ['a team attachment without a case', s.attachment, team, W],
    ['a team intake', s.intake, team, W],
    [
      'a team case event whose HLC names another device',
      { ...s.case_event, hlc: { ...(s.case_event as { hlc: object }).hlc, device: deviceOf(9) } },
      team,
      W,
    ],
    [
      'a hand-off with a contact item that names a case',
      {
        ...s.sync_response,
        items: [{ from: 'contact', message: { ...s.text, case: SAMPLE_CASE } }],
      },
      team,
      W,
    ],
    [
      'a hand-off with a case event "from the contact"',
      { ...s.sync_response, items: [{ from: 'contact', message: s.case_event }] },
      team,
      W,
    ],
    [
      'a hand-off with a case event of another device than its item names',
      { ...s.sync_response, items: [{ from: deviceOf(9), message: s.case_event }] },
      team,
      W,
    ],
    [
      'a hand-off with an item of another case',
      {
        ...s.sync_response,
        items: [{ from: SAMPLE_DEVICE, message: { ...s.text, case: deviceOf(0xee) } }],
      },
      team,
      W,
    ],
    [
      'a hand-off with a team item without a case',
      { ...s.sync_response, items: [{ from: SAMPLE_DEVICE, message: s.text }] },
      team,
      W,
    ],
  ])('%s', (_name, message, origin, code) => {
    expect(originOf(message, origin)).toBe(code);
  });

  it.each<[MessageType, Code | 'ok']>([
    ['text', 'ok'],
    ['receipt', 'ok'],
    ['attachment', 'ok'],
    ['status_notice', 'ok'],
    ['case_event', W],
    ['sync_request', W],
    ['sync_response', W],
  ])('a contact device receiving a team %s: %s', (type, code) => {
    const message = { ...s[type], case: SAMPLE_CASE } as ConversationMessage;
    expect(checkOrigin(message, team, 'contact')?.code ?? 'ok').toBe(code);
  });

  it('drops an intake a team device sends to a contact', () => {
    expect(checkOrigin(s.intake, team, 'contact')?.code).toBe(W);
  });
});
