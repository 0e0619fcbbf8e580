/**
 * Proof-of-work for first contact (docs/protocol.md, "Proof-of-work for first contact"; ADR
 * 0011). The relay issues a challenge — a random nonce, a difficulty in leading zero
 * bits, an expiry and the mailbox it is for — and an anonymous sender finds an 8-byte solution
 * such that
 *
 *   SHA-256("passage/v1/pow" ‖ 0x00 ‖ version ‖ bits ‖ expiry (u64 BE, ms) ‖ nonce ‖ mailbox ‖ solution)
 *
 * starts with `bits` zero bits. Verifying is one hash; solving takes 2^bits hashes on average.
 *
 * The module is pure and synchronous, with SHA-256 as a parameter (`protocol/sha256.ts`): the
 * relay passes Node's, a page the pure-JS one from the crypto layer, in a Web Worker so that
 * solving does not block the page. Single use of a nonce and the binding to a connection are
 * the relay's: it remembers the challenges it issued on a connection and forgets each once
 * answered or expired.
 */
import { fromBase64url, toBase64url } from '../protocol/base64url.js';
import {
  MAILBOX_ID_BYTES,
  POW_MAX_BITS,
  POW_MAX_TTL_MS,
  POW_MIN_BITS,
  POW_NONCE_BYTES,
  POW_SOLUTION_BYTES,
  POW_VERSION,
} from '../protocol/limits.js';
import { asciiBytes, digestWith, type Sha256 } from '../protocol/sha256.js';

/** Domain label hashed first, so a proof is never a hash of anything else. */
export const POW_LABEL = 'passage/v1/pow';
// The wire constants live with the protocol's other limits (the frames that carry a challenge
// need them, and the protocol layer imports nothing outside itself).
export {
  POW_MAX_BITS,
  POW_MAX_TTL_MS,
  POW_MIN_BITS,
  POW_NONCE_BYTES,
  POW_SOLUTION_BYTES,
  POW_VERSION,
} from '../protocol/limits.js';
/** Default bound on the hashes one `solvePow` call tries before giving up (2^36). */
export const POW_DEFAULT_MAX_ATTEMPTS = 2 ** 36;

/** Stable codes of proof-of-work failures. */
export const PowErrorCode = {
  /** The challenge is not a well-formed version-1 challenge (wrong keys, types, lengths, range). */
  BAD_CHALLENGE: 'pow_bad_challenge',
  /** The challenge's version is not one this code knows. */
  UNSUPPORTED_VERSION: 'pow_unsupported_version',
  /** The challenge has expired, or its expiry lies further ahead than `POW_MAX_TTL_MS`. */
  EXPIRED: 'pow_expired',
  /** The solution is not `POW_SOLUTION_BYTES` bytes. */
  BAD_SOLUTION: 'pow_bad_solution',
  /** The solution's hash does not start with the asked number of zero bits. */
  INSUFFICIENT: 'pow_insufficient',
  /** `solvePow` tried its whole attempt budget without a solution. */
  EXHAUSTED: 'pow_exhausted',
} as const;
export type PowErrorCode = (typeof PowErrorCode)[keyof typeof PowErrorCode];

/** A proof-of-work failure: `code` is stable, the message generic. */
export class PowError extends Error {
  override readonly name = 'PowError';
  constructor(
    readonly code: PowErrorCode,
    options?: { cause?: unknown },
  ) {
    super(`proof-of-work failed: ${code}`, options);
  }
}

/** A parsed challenge. Byte fields are raw bytes. */
export interface PowChallenge {
  readonly v: typeof POW_VERSION;
  /** The relay's random nonce, `POW_NONCE_BYTES` bytes. */
  readonly nonce: Uint8Array;
  /** Difficulty: leading zero bits, `POW_MIN_BITS` … `POW_MAX_BITS`. */
  readonly bits: number;
  /** Expiry, Unix time in ms. */
  readonly exp: number;
  /** The mailbox id the proof is for (a proof for one mailbox does not open another). */
  readonly to: Uint8Array;
}

/** A challenge's wire form: base64url byte fields. */
export interface PowChallengeWire {
  readonly v: number;
  readonly nonce: string;
  readonly bits: number;
  readonly exp: number;
  readonly to: string;
}

const CHALLENGE_KEYS = ['bits', 'exp', 'nonce', 'to', 'v'];
const LABEL_PREFIX = asciiBytes(POW_LABEL + '\0');
/** Offsets in the hashed input: label ‖ v ‖ bits ‖ exp ‖ nonce ‖ to ‖ solution. */
const HEADER_BYTES = LABEL_PREFIX.length + 1 + 1 + 8;
const SOLUTION_OFFSET = HEADER_BYTES + POW_NONCE_BYTES + MAILBOX_ID_BYTES;
const INPUT_BYTES = SOLUTION_OFFSET + POW_SOLUTION_BYTES;

function bytesOf(value: unknown, length: number): Uint8Array {
  if (typeof value !== 'string') throw new PowError(PowErrorCode.BAD_CHALLENGE);
  const bytes = fromBase64url(value);
  if (bytes === undefined || bytes.length !== length) {
    throw new PowError(PowErrorCode.BAD_CHALLENGE);
  }
  return bytes;
}

function checkRanges(bits: unknown, exp: unknown): void {
  if (
    !Number.isInteger(bits) ||
    (bits as number) < POW_MIN_BITS ||
    (bits as number) > POW_MAX_BITS
  ) {
    throw new PowError(PowErrorCode.BAD_CHALLENGE);
  }
  if (!Number.isSafeInteger(exp) || (exp as number) < 0) {
    throw new PowError(PowErrorCode.BAD_CHALLENGE);
  }
}

/**
 * Parses a challenge from untrusted input (the relay's frame on the client; a stored challenge
 * on the relay): the version first, then exactly the five keys, canonical base64url of the exact
 * lengths, integer difficulty in range, a safe non-negative integer expiry.
 *
 * @throws PowError('pow_unsupported_version' | 'pow_bad_challenge')
 */
export function parsePowChallenge(input: unknown): PowChallenge {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new PowError(PowErrorCode.BAD_CHALLENGE);
  }
  const record = input as Record<string, unknown>;
  if (!Object.hasOwn(record, 'v') || typeof record['v'] !== 'number') {
    throw new PowError(PowErrorCode.BAD_CHALLENGE);
  }
  if (record['v'] !== POW_VERSION) throw new PowError(PowErrorCode.UNSUPPORTED_VERSION);
  const keys = Object.keys(record).sort();
  if (keys.length !== CHALLENGE_KEYS.length || keys.some((k, i) => k !== CHALLENGE_KEYS[i])) {
    throw new PowError(PowErrorCode.BAD_CHALLENGE);
  }
  checkRanges(record['bits'], record['exp']);
  return {
    v: POW_VERSION,
    nonce: bytesOf(record['nonce'], POW_NONCE_BYTES),
    bits: record['bits'] as number,
    exp: record['exp'] as number,
    to: bytesOf(record['to'], MAILBOX_ID_BYTES),
  };
}

/** The wire form of a challenge (what the relay sends). */
export function encodePowChallenge(challenge: PowChallenge): PowChallengeWire {
  return {
    v: challenge.v,
    nonce: toBase64url(challenge.nonce),
    bits: challenge.bits,
    exp: challenge.exp,
    to: toBase64url(challenge.to),
  };
}

/**
 * A new challenge for the relay to issue. `nonce` comes from the caller's CSPRNG.
 *
 * @throws PowError('pow_bad_challenge') on an out-of-range difficulty, ttl or wrong lengths.
 */
export function createPowChallenge(options: {
  readonly nonce: Uint8Array;
  readonly bits: number;
  readonly to: Uint8Array;
  readonly nowMs: number;
  readonly ttlMs: number;
}): PowChallenge {
  const { nonce, bits, to, nowMs, ttlMs } = options;
  if (!Number.isInteger(ttlMs) || ttlMs < 1 || ttlMs > POW_MAX_TTL_MS) {
    throw new PowError(PowErrorCode.BAD_CHALLENGE);
  }
  const exp = nowMs + ttlMs;
  checkRanges(bits, exp);
  if (nonce.length !== POW_NONCE_BYTES || to.length !== MAILBOX_ID_BYTES) {
    throw new PowError(PowErrorCode.BAD_CHALLENGE);
  }
  return { v: POW_VERSION, nonce: nonce.slice(), bits, exp, to: to.slice() };
}

/** The hashed input with a zero solution; the solver rewrites the last 8 bytes in place. */
function powInput(challenge: PowChallenge): Uint8Array {
  const input = new Uint8Array(INPUT_BYTES);
  input.set(LABEL_PREFIX, 0);
  let at = LABEL_PREFIX.length;
  input[at++] = challenge.v;
  input[at++] = challenge.bits;
  // exp < 2^53, so its high 32 bits fit a u32 without loss.
  const view = new DataView(input.buffer);
  view.setUint32(at, Math.floor(challenge.exp / 2 ** 32));
  view.setUint32(at + 4, challenge.exp % 2 ** 32);
  at += 8;
  input.set(challenge.nonce, at);
  input.set(challenge.to, at + POW_NONCE_BYTES);
  return input;
}

/** True when `digest` starts with at least `bits` zero bits. */
export function hasLeadingZeroBits(digest: Uint8Array, bits: number): boolean {
  const whole = Math.floor(bits / 8);
  for (let i = 0; i < whole; i++) if (digest[i] !== 0) return false;
  const rest = bits % 8;
  if (rest === 0) return true;
  return (digest[whole] ?? 0xff) >>> (8 - rest) === 0;
}

function checkTime(challenge: PowChallenge, nowMs: number): void {
  if (challenge.exp <= nowMs || challenge.exp - nowMs > POW_MAX_TTL_MS) {
    throw new PowError(PowErrorCode.EXPIRED);
  }
}

/**
 * Finds a solution: counts up from a start value (the caller's random bytes, so two solvers of
 * one challenge do not race over the same candidates) and returns the first that meets the
 * difficulty. Synchronous: run it in a Web Worker in a page.
 *
 * @throws PowError('pow_expired') if the challenge is expired or lies too far ahead;
 *   PowError('pow_exhausted') after `maxAttempts` hashes without a solution.
 */
export function solvePow(
  challenge: PowChallenge,
  sha256: Sha256,
  options: { readonly nowMs: number; readonly start?: Uint8Array; readonly maxAttempts?: number },
): Uint8Array {
  checkTime(challenge, options.nowMs);
  const maxAttempts = options.maxAttempts ?? POW_DEFAULT_MAX_ATTEMPTS;
  const input = powInput(challenge);
  if (options.start !== undefined) {
    if (options.start.length !== POW_SOLUTION_BYTES) throw new PowError(PowErrorCode.BAD_SOLUTION);
    input.set(options.start, SOLUTION_OFFSET);
  }
  const view = new DataView(input.buffer);
  // The counter is the solution read as two u32 halves; carrying from the low half into the
  // high one makes it a 64-bit counter that wraps, so any start value works.
  let high = view.getUint32(SOLUTION_OFFSET);
  let low = view.getUint32(SOLUTION_OFFSET + 4);
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    if (hasLeadingZeroBits(digestWith(sha256, input), challenge.bits)) {
      return input.slice(SOLUTION_OFFSET);
    }
    low = (low + 1) >>> 0;
    if (low === 0) high = (high + 1) >>> 0;
    view.setUint32(SOLUTION_OFFSET, high);
    view.setUint32(SOLUTION_OFFSET + 4, low);
  }
  throw new PowError(PowErrorCode.EXHAUSTED);
}

/**
 * Checks a solution: one hash. The relay calls it with a challenge it issued on this
 * connection, and forgets that challenge afterwards whatever the result.
 *
 * @throws PowError('pow_expired' | 'pow_bad_solution' | 'pow_insufficient')
 */
export function verifyPow(
  challenge: PowChallenge,
  solution: Uint8Array,
  sha256: Sha256,
  nowMs: number,
): void {
  checkTime(challenge, nowMs);
  if (!(solution instanceof Uint8Array) || solution.length !== POW_SOLUTION_BYTES) {
    throw new PowError(PowErrorCode.BAD_SOLUTION);
  }
  const input = powInput(challenge);
  input.set(solution, SOLUTION_OFFSET);
  if (!hasLeadingZeroBits(digestWith(sha256, input), challenge.bits)) {
    throw new PowError(PowErrorCode.INSUFFICIENT);
  }
}
