import { describe, expect, it } from '@jest/globals';
import { MAX_CODENAME_INPUT_LENGTH } from '@passage/shared/crypto/codename';
import { CODENAME_WORKER_PROTOCOL as v, idOf, parseAnswer, parseDerive } from './messages.js';

const key = () => new Uint8Array(32).fill(7);
const derived = () => ({
  v,
  t: 'derived',
  id: 1,
  signingSeed: key(),
  x25519Secret: key(),
  mailboxKey: key(),
  backend: 'libsodium',
  ms: 12.5,
});

describe('parseDerive', () => {
  it('takes a derive message', () => {
    expect(parseDerive({ v, t: 'derive', id: 3, codename: 'a b c' })).toEqual({
      v,
      t: 'derive',
      id: 3,
      codename: 'a b c',
    });
  });

  it('takes input at the length bound', () => {
    const codename = 'x'.repeat(MAX_CODENAME_INPUT_LENGTH);
    expect(parseDerive({ v, t: 'derive', id: 0, codename })?.codename).toBe(codename);
  });

  it.each<[string, unknown]>([
    ['not an object', 'derive'],
    ['null', null],
    ['an array', [v, 'derive', 1, 'a']],
    ['another version', { v: 2, t: 'derive', id: 1, codename: 'a' }],
    ['another type', { v, t: 'solve', id: 1, codename: 'a' }],
    ['a negative id', { v, t: 'derive', id: -1, codename: 'a' }],
    ['a fractional id', { v, t: 'derive', id: 1.5, codename: 'a' }],
    ['a codename that is not a string', { v, t: 'derive', id: 1, codename: 7 }],
    [
      'input one past the bound',
      { v, t: 'derive', id: 1, codename: 'x'.repeat(MAX_CODENAME_INPUT_LENGTH + 1) },
    ],
    ['an extra key', { v, t: 'derive', id: 1, codename: 'a', more: 1 }],
    ['a missing key', { v, t: 'derive', id: 1 }],
  ])('refuses %s', (_name, input) => {
    expect(parseDerive(input)).toBeUndefined();
  });

  it('finds the id of a message that does not parse, where it has one', () => {
    expect(idOf({ v: 9, id: 4 })).toBe(4);
    expect(idOf({ id: 'x' })).toBeNull();
    expect(idOf(undefined)).toBeNull();
  });
});

describe('parseAnswer', () => {
  it('takes derived keys', () => {
    expect(parseAnswer(derived())).toEqual(derived());
  });

  it('takes a failure, with or without an id', () => {
    expect(parseAnswer({ v, t: 'failed', id: 1, code: 'invalid_codename' })?.t).toBe('failed');
    expect(parseAnswer({ v, t: 'failed', id: null, code: 'codename_worker_bad_message' })?.t).toBe(
      'failed',
    );
  });

  it.each<[string, Record<string, unknown>]>([
    ['a short key', { ...derived(), signingSeed: new Uint8Array(31) }],
    ['a long key', { ...derived(), mailboxKey: new Uint8Array(33) }],
    ['a key that is not bytes', { ...derived(), x25519Secret: [1, 2, 3] }],
    ['an unknown backend', { ...derived(), backend: 'wasm' }],
    ['a negative time', { ...derived(), ms: -1 }],
    ['a time that is not finite', { ...derived(), ms: Number.POSITIVE_INFINITY }],
    ['an extra key', { ...derived(), extra: true }],
    ['another version', { ...derived(), v: 2 }],
    ['an unknown type', { ...derived(), t: 'done' }],
  ])('refuses derived keys with %s', (_name, input) => {
    expect(parseAnswer(input)).toBeUndefined();
  });

  it.each<[string, unknown]>([
    ['an unknown code', { v, t: 'failed', id: 1, code: 'pow_expired' }],
    ['a code that is not a string', { v, t: 'failed', id: 1, code: 1 }],
    ['a bad id', { v, t: 'failed', id: 'one', code: 'invalid_codename' }],
    ['no code', { v, t: 'failed', id: 1 }],
    ['not an object', 'failed'],
  ])('refuses a failure with %s', (_name, input) => {
    expect(parseAnswer(input)).toBeUndefined();
  });
});
