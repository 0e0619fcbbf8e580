import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { isCanonicalBase64url, toBase64url } from './base64url.js';
import { ErrorCode } from './errors.js';
import { fastParseClientFrame } from './fast-parse.js';
import { AckFrame, SendFrame } from './frames.js';
import { MAX_ACK_IDS, MAX_ENVELOPE_BYTES, MAX_REQUEST_ID } from './limits.js';
import { parseClientFrame, parseClientFrameReference, type ParseResult } from './parse.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

const b64 = (n: number, fill = 1) => toBase64url(new Uint8Array(n).fill(fill));
const MAILBOX = b64(32, 2);
const MSG_ID = b64(16, 3);
const ENV = b64(100, 4);
const str = (s: string) => JSON.stringify(s);

/**
 * Both parsers on one text. They must give the same result, down to the error's code, rid and
 * detail, and -0 versus 0 (toStrictEqual uses Object.is); the key order must match too, since
 * it shows in anything that re-serialises the frame.
 */
function bothParsers(text: string): ParseResult<unknown> {
  const fast = parseClientFrame(text);
  const reference = parseClientFrameReference(text);
  expect(fast).toStrictEqual(reference);
  expect(JSON.stringify(fast)).toBe(JSON.stringify(reference));
  return reference;
}

/**
 * The fast path's own contract, on what JSON.parse made of the text: it returns the frame
 * exactly when zod accepts a `send` or `ack`, and undefined for everything else.
 */
function fastPathExact(text: string, reference: ParseResult<unknown>): void {
  // Refused by the structure bounds before JSON.parse (parse.ts): the fast path is never asked.
  if (!reference.ok && reference.error.detail === 'structure') return;
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return; // Not JSON: the fast path is never asked.
  }
  const fast = fastParseClientFrame(data);
  const t = reference.ok ? (reference.value as { t: string }).t : undefined;
  if (reference.ok && (t === 'send' || t === 'ack')) {
    expect(fast).toStrictEqual(reference.value);
    expect(JSON.stringify(fast)).toBe(JSON.stringify(reference.value));
  } else {
    expect(fast).toBeUndefined();
  }
}

function expectSame(text: string): ParseResult<unknown> {
  const reference = bothParsers(text);
  fastPathExact(text, reference);
  return reference;
}

function expectRejected(text: string, code: ErrorCode, rid?: number): void {
  const result = expectSame(text);
  expect(result.ok).toBe(false);
  if (result.ok) return;
  expect(result.error.code).toBe(code);
  expect(result.error.rid).toBe(rid);
}

function expectAcceptedByFastPath(text: string): void {
  const result = expectSame(text);
  expect(result.ok).toBe(true);
  expect(fastParseClientFrame(JSON.parse(text))).toBeDefined();
}

/** JSON text of an object from [key, value text] pairs, keeping order and duplicates. */
function objectText(entries: readonly (readonly [string, string])[], ws = ''): string {
  return `{${ws}${entries.map(([k, v]) => `${str(k)}${ws}:${ws}${v}`).join(`${ws},${ws}`)}${ws}}`;
}

const SEND: [string, string][] = [
  ['v', '1'],
  ['t', '"send"'],
  ['rid', '7'],
  ['to', str(MAILBOX)],
  ['id', str(MSG_ID)],
  ['env', str(ENV)],
];
const ACK: [string, string][] = [
  ['v', '1'],
  ['t', '"ack"'],
  ['ids', `[${str(MSG_ID)}]`],
];

function withField(base: [string, string][], key: string, value: string): string {
  return objectText(base.map(([k, v]) => [k, k === key ? value : v]));
}

function without(base: [string, string][], key: string): string {
  return objectText(base.filter(([k]) => k !== key));
}

/** `s` with its last character changed so that the spare low bits are not zero. */
function nonCanonicalTail(s: string): string {
  return s.slice(0, -1) + 'B';
}

describe('fastParseClientFrame: accepts exactly what zod accepts', () => {
  it('accepts a valid send and returns a fresh frame with the keys in schema order', () => {
    const text = objectText([...SEND].reverse());
    expectAcceptedByFastPath(text);
    const data = JSON.parse(text) as object;
    const fast = fastParseClientFrame(data);
    expect(fast).not.toBe(data);
    expect(Object.keys(fast!)).toEqual(['v', 't', 'rid', 'to', 'id', 'env']);
  });

  it('accepts a send at every limit: rid 0 and MAX_REQUEST_ID, 1-byte and maximal envelopes', () => {
    expectAcceptedByFastPath(withField(SEND, 'rid', '0'));
    expectAcceptedByFastPath(withField(SEND, 'rid', String(MAX_REQUEST_ID)));
    expectAcceptedByFastPath(withField(SEND, 'env', str(b64(1))));
    expectAcceptedByFastPath(withField(SEND, 'env', str(b64(MAX_ENVELOPE_BYTES))));
  });

  it('accepts numbers spelled in any JSON way that means the same integer', () => {
    expectAcceptedByFastPath(withField(withFieldEntries(SEND, 'v', '1.0'), 'rid', '7e0'));
    expectAcceptedByFastPath(withField(SEND, 'rid', '-0'));
  });

  it('accepts an ack of one id and of MAX_ACK_IDS ids, returning a copy of the array', () => {
    expectAcceptedByFastPath(objectText(ACK));
    const ids = Array.from({ length: MAX_ACK_IDS }, (_, i) => b64(16, i));
    const text = withField(ACK, 'ids', JSON.stringify(ids));
    expectAcceptedByFastPath(text);
    const data = JSON.parse(text) as { ids: string[] };
    const fast = fastParseClientFrame(data);
    expect(fast).toStrictEqual({ v: 1, t: 'ack', ids });
    expect(fast && fast.t === 'ack' && fast.ids).not.toBe(data.ids);
  });

  it('accepts a frame with whitespace, unicode escapes and a repeated key whose last value is valid', () => {
    expectAcceptedByFastPath(objectText(SEND, ' \n\t'));
    const escaped = '"\\u0073\\u0065nd"'; // "send"
    expectAcceptedByFastPath(withField(SEND, 't', escaped));
    expectAcceptedByFastPath(objectText([['rid', '"x"'], ...SEND]));
  });
});

function withFieldEntries(base: [string, string][], key: string, value: string) {
  return base.map(([k, v]): [string, string] => [k, k === key ? value : v]);
}

describe('fastParseClientFrame: leaves every invalid frame to zod, which rejects it', () => {
  it('rejects a send with an own __proto__ key (as JSON.parse creates it)', () => {
    expectRejected(objectText([...SEND, ['__proto__', '{}']]), ErrorCode.BAD_FRAME, 7);
    expectRejected(objectText([...SEND, ['__proto__', '{"extra":1}']]), ErrorCode.BAD_FRAME, 7);
    expectRejected(objectText([...ACK, ['__proto__', 'null']]), ErrorCode.BAD_FRAME);
  });

  it.each([['constructor'], ['toString'], ['hasOwnProperty'], ['extra'], [''], ['V'], ['ids']])(
    'rejects a send with the unknown key %p',
    (key) => {
      expectRejected(objectText([...SEND, [key, '1']]), ErrorCode.BAD_FRAME, 7);
    },
  );

  it.each([['constructor'], ['rid'], ['env'], ['id']])('rejects an ack with the key %p', (key) => {
    // An ack carries no rid, but the error echoes a valid one, as for any frame.
    const result = expectSame(objectText([...ACK, [key, '1']]));
    expect(result.ok).toBe(false);
  });

  it.each(SEND.map(([k]) => [k]))('rejects a send without %p', (key) => {
    const result = expectSame(without(SEND, key));
    expect(result.ok).toBe(false);
  });

  it('rejects an ack without ids, and an ack whose ids are empty, one too many, or not an array', () => {
    expectRejected(without(ACK, 'ids'), ErrorCode.BAD_FRAME);
    expectRejected(withField(ACK, 'ids', '[]'), ErrorCode.BAD_FRAME);
    const tooMany = Array.from({ length: MAX_ACK_IDS + 1 }, () => MSG_ID);
    expectRejected(withField(ACK, 'ids', JSON.stringify(tooMany)), ErrorCode.BAD_FRAME);
    expectRejected(withField(ACK, 'ids', str(MSG_ID)), ErrorCode.BAD_FRAME);
    expectRejected(withField(ACK, 'ids', `{"0":${str(MSG_ID)}}`), ErrorCode.BAD_FRAME);
    expectRejected(withField(ACK, 'ids', 'null'), ErrorCode.BAD_FRAME);
  });

  it('rejects an ack with one bad id among good ones', () => {
    for (const bad of [
      str(b64(15)),
      str(b64(17)),
      str(nonCanonicalTail(MSG_ID)),
      str(MSG_ID + '='),
      `[${str(MSG_ID)}]`,
      '1',
      'null',
    ]) {
      expectRejected(withField(ACK, 'ids', `[${str(MSG_ID)},${bad}]`), ErrorCode.BAD_FRAME);
    }
  });

  it('rejects other versions as unsupported and non-integer versions as bad frames', () => {
    expectRejected(withField(SEND, 'v', '2'), ErrorCode.UNSUPPORTED_VERSION, 7);
    expectRejected(withField(SEND, 'v', '0'), ErrorCode.UNSUPPORTED_VERSION, 7);
    expectRejected(withField(ACK, 'v', '-1'), ErrorCode.UNSUPPORTED_VERSION);
    expectRejected(withField(SEND, 'v', '"1"'), ErrorCode.BAD_FRAME, 7);
    expectRejected(withField(SEND, 'v', '1.5'), ErrorCode.BAD_FRAME, 7);
    expectRejected(withField(SEND, 'v', 'true'), ErrorCode.BAD_FRAME, 7);
    expectRejected(withField(SEND, 'v', '1e400'), ErrorCode.BAD_FRAME, 7);
    expectRejected(without(ACK, 'v'), ErrorCode.BAD_FRAME);
  });

  it('rejects a send whose type is spelled differently or missing', () => {
    expectRejected(withField(SEND, 't', '"Send"'), ErrorCode.UNKNOWN_TYPE, 7);
    expectRejected(withField(SEND, 't', '"send "'), ErrorCode.UNKNOWN_TYPE, 7);
    expectRejected(withField(SEND, 't', '["send"]'), ErrorCode.BAD_FRAME, 7);
    expectRejected(withField(SEND, 't', '"ack"'), ErrorCode.BAD_FRAME, 7);
    expectRejected(withField(ACK, 't', '"send"'), ErrorCode.BAD_FRAME);
  });

  it.each([
    ['-1'],
    [String(MAX_REQUEST_ID + 1)],
    ['1.5'],
    ['"7"'],
    ['1e400'],
    ['null'],
    ['[7]'],
    ['9007199254740993'],
  ])('rejects a send with request id %s', (rid) => {
    expectRejected(withField(SEND, 'rid', rid), ErrorCode.BAD_FRAME);
  });

  it('rejects a send to a mailbox id one character short or long, padded, or non-canonical', () => {
    expectRejected(withField(SEND, 'to', str(MAILBOX.slice(0, -1))), ErrorCode.BAD_FRAME, 7);
    expectRejected(withField(SEND, 'to', str(MAILBOX + 'A')), ErrorCode.BAD_FRAME, 7);
    expectRejected(withField(SEND, 'to', str(MAILBOX + '=')), ErrorCode.BAD_FRAME, 7);
    expectRejected(withField(SEND, 'to', str(nonCanonicalTail(MAILBOX))), ErrorCode.BAD_FRAME, 7);
    expectRejected(withField(SEND, 'to', str(b64(31))), ErrorCode.BAD_FRAME, 7);
    expectRejected(withField(SEND, 'to', str(b64(33))), ErrorCode.BAD_FRAME, 7);
    expectRejected(withField(SEND, 'to', `[${str(MAILBOX)}]`), ErrorCode.BAD_FRAME, 7);
  });

  it('rejects a send whose message id is off by a byte, uses the standard alphabet, or is not canonical', () => {
    expectRejected(withField(SEND, 'id', str(b64(15))), ErrorCode.BAD_FRAME, 7);
    expectRejected(withField(SEND, 'id', str(b64(17))), ErrorCode.BAD_FRAME, 7);
    const std = b64(16, 0xfb).replace(/-/g, '+').replace(/_/g, '/');
    expectRejected(withField(SEND, 'id', str(std)), ErrorCode.BAD_FRAME, 7);
    expectRejected(withField(SEND, 'id', str(nonCanonicalTail(MSG_ID))), ErrorCode.BAD_FRAME, 7);
    expectRejected(withField(SEND, 'id', '{}'), ErrorCode.BAD_FRAME, 7);
  });

  it('rejects an envelope one byte over the limit with its own code and the rid', () => {
    expectRejected(
      withField(SEND, 'env', str(b64(MAX_ENVELOPE_BYTES + 1))),
      ErrorCode.ENVELOPE_TOO_LARGE,
      7,
    );
  });

  it('rejects an envelope that is empty, one character, padded, non-canonical or not a string', () => {
    expectRejected(withField(SEND, 'env', '""'), ErrorCode.BAD_FRAME, 7);
    expectRejected(withField(SEND, 'env', '"Z"'), ErrorCode.BAD_FRAME, 7);
    expectRejected(withField(SEND, 'env', str(b64(1) + '==')), ErrorCode.BAD_FRAME, 7);
    expectRejected(withField(SEND, 'env', '"Zh"'), ErrorCode.BAD_FRAME, 7);
    expectRejected(withField(SEND, 'env', str('é' + ENV.slice(1))), ErrorCode.BAD_FRAME, 7);
    expectRejected(withField(SEND, 'env', '12'), ErrorCode.BAD_FRAME, 7);
  });

  it('rejects a frame whose repeated key has a valid first value and an invalid last one', () => {
    expectRejected(objectText([...SEND, ['rid', '-1']]), ErrorCode.BAD_FRAME);
    expectRejected(objectText([...SEND, ['env', '""']]), ErrorCode.BAD_FRAME, 7);
    expectRejected(objectText([...ACK, ['ids', '[]']]), ErrorCode.BAD_FRAME);
  });

  it('rejects JSON that is not an object, and text that is not JSON', () => {
    expectRejected(`[${objectText(SEND)}]`, ErrorCode.BAD_FRAME);
    expectRejected('null', ErrorCode.BAD_FRAME);
    expectRejected(str(objectText(SEND)), ErrorCode.BAD_FRAME);
    expectRejected(objectText(SEND).slice(0, -1), ErrorCode.BAD_FRAME);
    expectRejected(`${objectText(SEND)}x`, ErrorCode.BAD_FRAME);
  });

  it('does not accept a key that zod would see up the prototype chain', () => {
    // JSON.parse never builds such an object, but zod's strict objects enumerate with
    // for...in, so the fast path does too.
    const send = Object.assign(
      Object.create({ extra: 1 }) as object,
      JSON.parse(objectText(SEND)) as object,
    );
    expect(SendFrame.safeParse(send).success).toBe(false);
    expect(fastParseClientFrame(send)).toBeUndefined();
    const ack = Object.assign(
      Object.create({ extra: 1 }) as object,
      JSON.parse(objectText(ACK)) as object,
    );
    expect(AckFrame.safeParse(ack).success).toBe(false);
    expect(fastParseClientFrame(ack)).toBeUndefined();
  });
});

/**
 * The per-character definition that `isCanonicalBase64url` (a regular expression plus a table of
 * last characters) must match: every character in the alphabet, no length of 1 mod 4, and the
 * spare low bits of the last character zero.
 */
function isCanonicalBase64urlByLoop(s: string): boolean {
  const rem = s.length % 4;
  if (rem === 1) return false;
  for (let i = 0; i < s.length; i++) {
    if (!ALPHABET.includes(s.charAt(i))) return false;
  }
  if (rem === 0) return true;
  const last = ALPHABET.indexOf(s.charAt(s.length - 1));
  return rem === 2 ? (last & 0x0f) === 0 : (last & 0x03) === 0;
}

describe('isCanonicalBase64url: the same answer as a per-character loop', () => {
  // The alphabet plus what a non-canonical spelling is made of: padding, the standard
  // alphabet, whitespace, a non-ASCII letter, a lone surrogate and a control character.
  const CHARS = [...ALPHABET, '=', '+', '/', ' ', '\n', 'é', '\ud800', '\u0000'];

  it('agrees on every string of up to three characters over the alphabet and its near misses', () => {
    let disagreements = 0;
    let canonical = 0;
    const check = (s: string) => {
      const expected = isCanonicalBase64urlByLoop(s);
      if (isCanonicalBase64url(s) !== expected) disagreements++;
      if (expected) canonical++;
    };
    check('');
    for (const a of CHARS) {
      check(a);
      for (const b of CHARS) {
        check(a + b);
        for (const c of CHARS) check(a + b + c);
      }
    }
    expect(disagreements).toBe(0);
    // 1 + 4 * 64 two-character and 16 * 64 * 64 three-character canonical strings.
    expect(canonical).toBe(1 + 4 * 64 + 16 * 64 * 64);
  });

  it('agrees on longer strings, canonical or not', () => {
    const text = fc.oneof(
      b64Bytes(0, 200),
      corrupted(b64Bytes(1, 200)),
      b64Chars(0, 80),
      fc.string({ unit: fc.constantFrom(...CHARS), maxLength: 40 }),
      fc.string({ unit: 'grapheme', maxLength: 20 }),
    );
    fc.assert(
      fc.property(text, (s) => {
        expect(isCanonicalBase64url(s)).toBe(isCanonicalBase64urlByLoop(s));
      }),
      { numRuns: 5000 },
    );
  });

  it('accepts a canonical envelope of MAX_ENVELOPE_BYTES', () => {
    expect(isCanonicalBase64url(b64(MAX_ENVELOPE_BYTES, 0xfe))).toBe(true);
  });

  it('rejects padding, the standard alphabet, spare bits, a stray character and a final newline', () => {
    expect(isCanonicalBase64url('AA==')).toBe(false);
    expect(isCanonicalBase64url('+/+/')).toBe(false);
    expect(isCanonicalBase64url('AB')).toBe(false);
    expect(isCanonicalBase64url('AAB')).toBe(false);
    expect(isCanonicalBase64url('AAAA\n')).toBe(false);
    expect(isCanonicalBase64url('AAA\n')).toBe(false);
    expect(isCanonicalBase64url('A')).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------
// The differential property: the fast path plus zod, against zod alone, on mutated frames.

const b64Bytes = (minLength: number, maxLength: number) =>
  fc.uint8Array({ minLength, maxLength }).map(toBase64url);
/** Strings over the base64url alphabet: valid lengths or not, canonical or not. */
const b64Chars = (minLength: number, maxLength: number) =>
  fc.string({ unit: fc.constantFrom(...ALPHABET), minLength, maxLength });

/** Spells some characters of a string as \uXXXX escapes: the same string after JSON.parse. */
const jsonString = (s: fc.Arbitrary<string>): fc.Arbitrary<string> =>
  fc.tuple(s, fc.array(fc.nat(), { maxLength: 3 })).map(([value, positions]) => {
    if (positions.length === 0 || value.length === 0) return str(value);
    const at = new Set(positions.map((p) => p % value.length));
    let out = '"';
    for (let i = 0; i < value.length; i++) {
      const c = value.charCodeAt(i);
      out += at.has(i)
        ? `\\u${c.toString(16).padStart(4, '0')}`
        : JSON.stringify(value[i]!).slice(1, -1);
    }
    return out + '"';
  });

/** A valid string with one character inserted, replaced or appended. */
const corrupted = (valid: fc.Arbitrary<string>) =>
  fc
    .tuple(
      valid,
      fc.nat(),
      fc.constantFrom('=', '+', '/', ' ', 'é', '\u0000', '\ud800', '.', 'A', 'B', '_', '€'),
      fc.constantFrom('insert', 'replace', 'append'),
    )
    .map(([s, pos, ch, how]) => {
      const i = s.length === 0 ? 0 : pos % s.length;
      if (how === 'insert') return s.slice(0, i) + ch + s.slice(i);
      if (how === 'replace') return s.slice(0, i) + ch + s.slice(i + 1);
      return s + ch;
    });

const NUMBER_TEXTS = [
  '0',
  '-0',
  '1',
  '1.0',
  '1e0',
  '10e-1',
  '0.1e1',
  '2',
  '-1',
  '1.5',
  '0.5',
  String(MAX_REQUEST_ID),
  `${MAX_REQUEST_ID}.0`,
  String(MAX_REQUEST_ID + 1),
  '2147483646.9999999999',
  '9007199254740993',
  '1e400',
  '-1e400',
  '1E1',
];
const numberText = fc.oneof(
  fc.constantFrom(...NUMBER_TEXTS),
  fc.integer().map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => JSON.stringify(x)),
);
const otherText = fc.oneof(
  fc.constantFrom('null', 'true', 'false', '[]', '{}', '""', '"1"', '"send"', '"ack"', '[1]'),
  fc.json({ maxDepth: 2 }),
);

const validRid = fc.integer({ min: 0, max: MAX_REQUEST_ID }).map(String);
const validTo = b64Bytes(32, 32);
const validId = b64Bytes(16, 16);
const validEnv = b64Bytes(1, 1100);
// Large envelopes are built once: generating 64 KiB of random bytes per run would dominate.
const BIG_ENVELOPES = [MAX_ENVELOPE_BYTES - 1, MAX_ENVELOPE_BYTES, MAX_ENVELOPE_BYTES + 1].map(
  (n) => b64(n, n & 0xff),
);

const idsText = (id: fc.Arbitrary<string>, min: number, max: number) =>
  fc
    .tuple(fc.array(id, { minLength: min, maxLength: max }), fc.constantFrom('', ' ', '\n'))
    .map(([ids, ws]) => `[${ws}${ids.join(`${ws},${ws}`)}${ws}]`);

const idText = fc.oneof(
  { weight: 8, arbitrary: jsonString(validId) },
  { weight: 1, arbitrary: jsonString(b64Bytes(15, 17)) },
  { weight: 1, arbitrary: jsonString(b64Chars(21, 23)) },
  { weight: 1, arbitrary: jsonString(corrupted(validId)) },
  { weight: 1, arbitrary: fc.oneof(numberText, otherText) },
);

/** The value text of each field: usually valid, otherwise a near miss or another type. */
const FIELD_TEXT = {
  v: fc.oneof({ weight: 12, arbitrary: fc.constant('1') }, numberText, otherText),
  rid: fc.oneof({ weight: 10, arbitrary: validRid }, numberText, otherText),
  to: fc.oneof(
    { weight: 10, arbitrary: jsonString(validTo) },
    jsonString(b64Bytes(31, 33)),
    jsonString(b64Chars(42, 44)),
    jsonString(corrupted(validTo)),
    validTo.map((s) => `[${str(s)}]`),
    otherText,
  ),
  id: fc.oneof(
    { weight: 5, arbitrary: idText },
    idText.map((s) => `[${s}]`),
  ),
  env: fc.oneof(
    { weight: 12, arbitrary: jsonString(validEnv) },
    fc.constantFrom(...BIG_ENVELOPES).map(str),
    jsonString(b64Chars(0, 5)),
    jsonString(corrupted(validEnv)),
    validEnv.map((s) => `{"env":${str(s)}}`),
    numberText,
    otherText,
  ),
  ids: fc.oneof(
    { weight: 10, arbitrary: idsText(idText, 1, 20) },
    idsText(jsonString(validId), 0, 3),
    idsText(jsonString(validId), MAX_ACK_IDS - 1, MAX_ACK_IDS + 1),
    jsonString(validId),
    otherText,
  ),
};

const typeText = (t: string) =>
  fc.oneof(
    { weight: 15, arbitrary: fc.constant(str(t)) },
    fc.constantFrom('"send"', '"ack"', '"ping"', '"Send"', '"ack "', '"__proto__"', '"toString"'),
    fc.constant('"\\u0061ck"'),
    otherText,
  );

const EXTRA_KEYS = [
  'extra',
  '__proto__',
  'constructor',
  'toString',
  'hasOwnProperty',
  'valueOf',
  '',
  'V',
  'env ',
  'é',
  'v',
  't',
  'rid',
  'to',
  'id',
  'env',
  'ids',
];
const anyFieldText = fc.oneof(...Object.values(FIELD_TEXT), numberText, otherText);

type Entry = readonly [string, string];
type Mutation =
  | { readonly op: 'drop'; readonly at: number }
  | { readonly op: 'add'; readonly at: number; readonly key: string; readonly value: string }
  | { readonly op: 'swap'; readonly a: number; readonly b: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('drop' as const), at: fc.nat() }),
  fc.record({
    op: fc.constant('add' as const),
    at: fc.nat(),
    key: fc.constantFrom(...EXTRA_KEYS),
    value: anyFieldText,
  }),
  fc.record({ op: fc.constant('swap' as const), a: fc.nat(), b: fc.nat() }),
);

function mutate(entries: Entry[], mutations: readonly Mutation[]): Entry[] {
  const out = [...entries];
  for (const m of mutations) {
    if (m.op === 'drop' && out.length > 0) out.splice(m.at % out.length, 1);
    if (m.op === 'add') out.splice(m.at % (out.length + 1), 0, [m.key, m.value]);
    if (m.op === 'swap' && out.length > 0) {
      const a = m.a % out.length;
      const b = m.b % out.length;
      [out[a], out[b]] = [out[b]!, out[a]!];
    }
  }
  return out;
}

const WHITESPACE = ['', '', '', '', ' ', '\n', '\t', '\r\n', '  '];

/** Renders entries as JSON text with varied whitespace between every token. */
function render(entries: readonly Entry[], ws: readonly string[]): string {
  let n = 0;
  const w = () => ws[n++ % ws.length]!;
  const members = entries.map(([k, v]) => `${w()}${str(k)}${w()}:${w()}${v}${w()}`);
  return `${w()}{${members.join(',')}${members.length === 0 ? w() : ''}}${w()}`;
}

const sendEntries: fc.Arbitrary<Entry[]> = fc
  .tuple(FIELD_TEXT.v, typeText('send'), FIELD_TEXT.rid, FIELD_TEXT.to, FIELD_TEXT.id)
  .chain(([v, t, rid, to, id]) =>
    FIELD_TEXT.env.map((env): Entry[] => [
      ['v', v],
      ['t', t],
      ['rid', rid],
      ['to', to],
      ['id', id],
      ['env', env],
    ]),
  );
const ackEntries: fc.Arbitrary<Entry[]> = fc
  .tuple(FIELD_TEXT.v, typeText('ack'), FIELD_TEXT.ids)
  .map(([v, t, ids]): Entry[] => [
    ['v', v],
    ['t', t],
    ['ids', ids],
  ]);

/** A send or ack frame as JSON text, mutated at the field, structure and text level. */
const mutatedFrameText: fc.Arbitrary<string> = fc
  .tuple(
    fc.oneof(sendEntries, ackEntries),
    fc.oneof(
      { weight: 3, arbitrary: fc.constant([] as Mutation[]) },
      fc.array(mutation, { minLength: 1, maxLength: 3 }),
    ),
    fc.array(fc.constantFrom(...WHITESPACE), { minLength: 1, maxLength: 16 }),
    fc.oneof(
      { weight: 30, arbitrary: fc.constant('as is') },
      fc.constantFrom('in an array', 'truncated', 'trailing garbage'),
    ),
  )
  .map(([entries, mutations, ws, wrap]) => {
    const text = render(mutate(entries, mutations), ws);
    if (wrap === 'in an array') return `[${text}]`;
    if (wrap === 'truncated') return text.slice(0, -2);
    if (wrap === 'trailing garbage') return `${text},`;
    return text;
  });

describe('parseClientFrame against the zod reference (differential)', () => {
  it('gives the same result as zod alone for mutated send and ack frames', () => {
    const outcomes = new Map<string, number>();
    fc.assert(
      fc.property(mutatedFrameText, (text) => {
        const reference = expectSame(text);
        const outcome = reference.ok
          ? `accepted ${(reference.value as { t: string }).t}`
          : reference.error.code;
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
      }),
      { numRuns: 8000 },
    );
    // The generator must reach both sides of every decision, or the comparison proves little.
    expect(outcomes.get('accepted send') ?? 0).toBeGreaterThan(400);
    expect(outcomes.get('accepted ack') ?? 0).toBeGreaterThan(400);
    expect(outcomes.get(ErrorCode.BAD_FRAME) ?? 0).toBeGreaterThan(400);
    for (const code of [
      ErrorCode.UNSUPPORTED_VERSION,
      ErrorCode.UNKNOWN_TYPE,
      ErrorCode.ENVELOPE_TOO_LARGE,
    ]) {
      expect(outcomes.get(code) ?? 0).toBeGreaterThan(0);
    }
  });

  it('gives the same result as zod alone for arbitrary objects over the frame keys', () => {
    const looseObject = fc
      .array(fc.tuple(fc.constantFrom(...EXTRA_KEYS), anyFieldText), { maxLength: 7 })
      .chain((entries) =>
        fc
          .array(fc.constantFrom(...WHITESPACE), { minLength: 1, maxLength: 8 })
          .map((ws) => render(entries, ws)),
      );
    fc.assert(
      fc.property(looseObject, (text) => {
        expectSame(text);
      }),
      { numRuns: 3000 },
    );
  });

  it('gives the same result as zod alone for arbitrary JSON and arbitrary text', () => {
    fc.assert(
      fc.property(fc.oneof(fc.json(), fc.string()), (text) => {
        expectSame(text);
      }),
      { numRuns: 2000 },
    );
  });
});
