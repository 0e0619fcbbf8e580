/**
 * The messages between a page and the codename Web Worker (derive-worker.ts), and their parsers.
 * Each side parses what it receives (`unknown` until parsed, exact keys); nothing is cast.
 *
 * Page → worker: `derive` (what the person typed, or a new codename).
 * Worker → page: `derived` (the codename's keys, ADR 0007), `failed` (a stable code).
 */
import { MAX_CODENAME_INPUT_LENGTH } from '@passage/shared/crypto/codename';

export const CODENAME_WORKER_PROTOCOL = 1;

/** Bytes of each key the worker answers with (Ed25519 seed, X25519 secret, mailbox key). */
export const CODENAME_KEY_BYTES = 32;

export const CodenameWorkerErrorCode = {
  /** The input is not a codename (an unknown word, too few words, too long). */
  INVALID: 'invalid_codename',
  /** The worker got a message that is not a `derive`. */
  BAD_MESSAGE: 'codename_worker_bad_message',
  /** The worker could not be started, or died (script error, out of memory, the CSP). */
  CRASHED: 'codename_worker_crashed',
  /** The worker answered with something that is not one of its messages. */
  BAD_ANSWER: 'codename_worker_bad_answer',
} as const;
export type CodenameWorkerErrorCode =
  (typeof CodenameWorkerErrorCode)[keyof typeof CodenameWorkerErrorCode];

export interface DeriveMessage {
  readonly v: typeof CODENAME_WORKER_PROTOCOL;
  readonly t: 'derive';
  readonly id: number;
  readonly codename: string;
}

export type WorkerAnswer =
  | {
      readonly v: typeof CODENAME_WORKER_PROTOCOL;
      readonly t: 'derived';
      readonly id: number;
      readonly signingSeed: Uint8Array;
      readonly x25519Secret: Uint8Array;
      readonly mailboxKey: Uint8Array;
      /** The crypto backend that derived them ('libsodium' or 'noble'). */
      readonly backend: string;
      /** Time spent deriving, in ms. */
      readonly ms: number;
    }
  | {
      readonly v: typeof CODENAME_WORKER_PROTOCOL;
      readonly t: 'failed';
      readonly id: number | null;
      readonly code: CodenameWorkerErrorCode;
    };

type Fields = Record<string, unknown>;

function fields(input: unknown): Fields | undefined {
  return typeof input === 'object' && input !== null && !Array.isArray(input)
    ? (input as Fields)
    : undefined;
}

function hasExactly(r: Fields, keys: readonly string[]): boolean {
  const own = Object.keys(r);
  return own.length === keys.length && keys.every((k) => Object.hasOwn(r, k));
}

function isId(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function isKey(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array && value.length === CODENAME_KEY_BYTES;
}

/** The id of a message, if it has one that parses. */
export function idOf(input: unknown): number | null {
  const r = fields(input);
  return r !== undefined && isId(r['id']) ? r['id'] : null;
}

/** Parses what the page posted. */
export function parseDerive(input: unknown): DeriveMessage | undefined {
  const r = fields(input);
  if (r === undefined || !hasExactly(r, ['v', 't', 'id', 'codename'])) return undefined;
  const { v, t, id, codename } = r;
  if (v !== CODENAME_WORKER_PROTOCOL || t !== 'derive' || !isId(id)) return undefined;
  if (typeof codename !== 'string' || codename.length > MAX_CODENAME_INPUT_LENGTH) return undefined;
  return { v: CODENAME_WORKER_PROTOCOL, t: 'derive', id, codename };
}

const CODES = new Set<string>(Object.values(CodenameWorkerErrorCode));

/** Parses what the worker posted. */
export function parseAnswer(input: unknown): WorkerAnswer | undefined {
  const r = fields(input);
  if (r === undefined || r['v'] !== CODENAME_WORKER_PROTOCOL) return undefined;
  const v = CODENAME_WORKER_PROTOCOL;
  if (r['t'] === 'derived') {
    const keys = ['v', 't', 'id', 'signingSeed', 'x25519Secret', 'mailboxKey', 'backend', 'ms'];
    const { id, signingSeed, x25519Secret, mailboxKey, backend, ms } = r;
    if (!hasExactly(r, keys) || !isId(id) || !isKey(signingSeed) || !isKey(x25519Secret)) {
      return undefined;
    }
    if (!isKey(mailboxKey) || (backend !== 'libsodium' && backend !== 'noble')) return undefined;
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) return undefined;
    return { v, t: 'derived', id, signingSeed, x25519Secret, mailboxKey, backend, ms };
  }
  if (r['t'] === 'failed') {
    const { id, code } = r;
    if (!hasExactly(r, ['v', 't', 'id', 'code']) || !(id === null || isId(id))) return undefined;
    if (typeof code !== 'string' || !CODES.has(code)) return undefined;
    return { v, t: 'failed', id, code: code as CodenameWorkerErrorCode };
  }
  return undefined;
}
