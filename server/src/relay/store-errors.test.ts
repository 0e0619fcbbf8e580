import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { ErrorCode, RETRYABLE_CODES } from '@passage/shared/protocol/errors';
import { StoreError, type StoreErrorCode } from '../store/store.js';
import { WIRE_ERROR_OF_STORE_ERROR, wireErrorOf } from './store-errors.js';

const storeDir = new URL('../store/', import.meta.url);

/** Every code the stores' sources construct a StoreError with. */
function codesThrownByStores(): Set<string> {
  const codes = new Set<string>();
  for (const name of readdirSync(storeDir)) {
    if (!name.endsWith('.ts') || name.endsWith('.test.ts')) continue;
    const source = readFileSync(new URL(name, storeDir), 'utf8');
    for (const m of source.matchAll(/new StoreError\('([a-z_]+)'/g)) codes.add(m[1]!);
  }
  return codes;
}

describe('store error → wire error table', () => {
  it('maps each store failure to the wire code of the same name', () => {
    expect(WIRE_ERROR_OF_STORE_ERROR).toEqual({
      unavailable: ErrorCode.UNAVAILABLE,
      overloaded: ErrorCode.OVERLOADED,
      mailbox_full: ErrorCode.MAILBOX_FULL,
      prekeys_full: ErrorCode.PREKEYS_FULL,
    });
    for (const [code, wire] of Object.entries(WIRE_ERROR_OF_STORE_ERROR)) {
      expect(wireErrorOf(new StoreError(code as StoreErrorCode))).toBe(wire);
    }
  });

  it('has a row for every code the stores throw', () => {
    const thrown = codesThrownByStores();
    expect(thrown.size).toBeGreaterThan(0);
    expect([...thrown].sort()).toEqual(Object.keys(WIRE_ERROR_OF_STORE_ERROR).sort());
  });

  it('keeps the retryability store.ts documents: all but prekeys_full may be retried', () => {
    const retryable = Object.entries(WIRE_ERROR_OF_STORE_ERROR)
      .filter(([, wire]) => RETRYABLE_CODES.has(wire))
      .map(([code]) => code);
    expect(retryable.sort()).toEqual(['mailbox_full', 'overloaded', 'unavailable']);
  });

  it('gives nothing for an error that is not a StoreError, whatever its code', () => {
    expect(wireErrorOf(new Error('unavailable'))).toBeUndefined();
    expect(wireErrorOf(Object.assign(new Error('x'), { code: 'unavailable' }))).toBeUndefined();
    expect(wireErrorOf({ code: 'overloaded' })).toBeUndefined();
    expect(wireErrorOf('mailbox_full')).toBeUndefined();
    expect(wireErrorOf(undefined)).toBeUndefined();
  });

  it('gives nothing for a StoreError whose code is not in the table', () => {
    for (const code of ['teapot', '', 'toString', '__proto__', 'hasOwnProperty', 'UNAVAILABLE']) {
      expect(wireErrorOf(new StoreError(code as StoreErrorCode))).toBeUndefined();
    }
  });
});
