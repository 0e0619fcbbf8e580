/**
 * What a client is told when the store fails: one wire error per store error code. The table is
 * total over `StoreErrorCode` (the compiler refuses a missing or an extra code), so a new store
 * failure cannot reach a client as anything but a code chosen for it here.
 */
import { ErrorCode } from '@passage/shared/protocol/errors';
import { StoreError, type StoreErrorCode } from '../store/store.js';

/** The wire error code for each store failure. */
export const WIRE_ERROR_OF_STORE_ERROR = {
  unavailable: ErrorCode.UNAVAILABLE,
  overloaded: ErrorCode.OVERLOADED,
  mailbox_full: ErrorCode.MAILBOX_FULL,
  prekeys_full: ErrorCode.PREKEYS_FULL,
} as const satisfies Readonly<Record<StoreErrorCode, ErrorCode>>;

/**
 * The wire error code for a store failure, or undefined when `err` is not a `StoreError` with
 * one of the codes above (a bug, answered `internal` and logged).
 */
export function wireErrorOf(err: unknown): ErrorCode | undefined {
  if (!(err instanceof StoreError)) return undefined;
  // Own keys only: a code forged past the type (say 'toString') must not find Object's.
  const code: string = err.code;
  return Object.hasOwn(WIRE_ERROR_OF_STORE_ERROR, code)
    ? WIRE_ERROR_OF_STORE_ERROR[code as StoreErrorCode]
    : undefined;
}
