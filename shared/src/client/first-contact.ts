/**
 * First contact pays (docs/protocol.md "Proof-of-work for first contact", ADR 0011): before a
 * connection's first `send` to a mailbox, or when the relay answers `pow_required`, the client
 * asks for a challenge (`pow.request`), solves it with the injected solver, and answers
 * (`pow.solve`) until `pow.admitted`. Admission belongs to the connection: after a reconnect
 * the next send to the mailbox pays again.
 *
 * The solver is a port: a page passes the Web Worker solver of client/src/pow (the main thread
 * stays free), Node passes `inlinePowSolver` below (shared/src/pow, in slices that yield to the
 * clock between them, with progress).
 */
import { fromBase64url, toBase64url } from '../protocol/base64url.js';
import type { FrameOf } from '../protocol/frames.js';
import { PROTOCOL_VERSION } from '../protocol/limits.js';
import type { Sha256 } from '../protocol/sha256.js';
import { parsePowChallenge, solvePow, PowError, type PowChallengeWire } from '../pow/pow.js';
import type { Connection } from './connection.js';
import { ClientError, ClientErrorCode, RelayError } from './errors.js';
import type { Clock } from './transport.js';

/** What a solver found: the solution as base64url, as `pow.solve` carries it. */
export interface PowSolution {
  readonly solution: string;
}

/**
 * Solves the relay's challenge (unparsed wire form: the solver parses it strictly itself) and
 * reports the hashes tried so far. Rejects when it cannot (bad, expired or too hard challenge).
 */
export type PowSolver = (
  challenge: PowChallengeWire,
  onProgress: (attempts: number) => void,
) => Promise<PowSolution>;

/** Hashes per slice of the inline solver, between which it yields and reports progress. */
export const INLINE_POW_SLICE = 16_384;

/**
 * The solver for Node (and tests): shared/src/pow's `solvePow`, in slices of
 * `INLINE_POW_SLICE` hashes from a random start, each slice a clock turn of its own.
 */
export function inlinePowSolver(options: {
  readonly sha256: Sha256;
  readonly clock: Clock;
  readonly randomBytes: (n: number) => Uint8Array;
}): PowSolver {
  const { sha256, clock, randomBytes } = options;
  return async (wire, onProgress) => {
    const challenge = parsePowChallenge(wire);
    const start = randomBytes(8);
    const view = new DataView(start.buffer, start.byteOffset, 8);
    for (let attempts = 0; ; attempts += INLINE_POW_SLICE) {
      try {
        const solution = solvePow(challenge, sha256, {
          nowMs: clock.now(),
          start,
          maxAttempts: INLINE_POW_SLICE,
        });
        onProgress(attempts);
        return { solution: toBase64url(solution) };
      } catch (error) {
        if (!(error instanceof PowError) || error.code !== 'pow_exhausted') throw error;
      }
      // Next slice: advance the 64-bit counter by one slice (low half carries into the high).
      const low = view.getUint32(4) + INLINE_POW_SLICE;
      view.setUint32(4, low >>> 0);
      if (low > 0xffff_ffff) view.setUint32(0, (view.getUint32(0) + 1) >>> 0);
      onProgress(attempts + INLINE_POW_SLICE);
      await new Promise<void>((resolve) => clock.setTimeout(resolve, 0));
    }
  };
}

/**
 * Most admissions one connection runs at once. The relay keeps a few challenges open per
 * connection (`MAX_OPEN_POW_CHALLENGES`, 4) and forgets the oldest past them, so a client that
 * asked for more at once (a coordinator's device answering many contacts after a reconnect)
 * would get `pow_failed` for the forgotten ones, and enough of those close the connection
 * (4003). The rest wait their turn.
 */
export const MAX_CONCURRENT_ADMISSIONS = 2;

/** Admissions running and waiting, per connection. */
const slots = new WeakMap<Connection, { running: number; waiting: (() => void)[] }>();

async function acquire(connection: Connection): Promise<() => void> {
  let s = slots.get(connection);
  if (s === undefined) {
    s = { running: 0, waiting: [] };
    slots.set(connection, s);
  }
  const state = s;
  if (state.running >= MAX_CONCURRENT_ADMISSIONS) {
    await new Promise<void>((resolve) => state.waiting.push(resolve));
  } else {
    state.running++;
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const next = state.waiting.shift();
    if (next !== undefined) next();
    else state.running--;
  };
}

/** Progress of one admission, for a UI. */
export interface PowProgress {
  readonly to: string;
  readonly bits: number;
  readonly attempts: number;
}

/**
 * Gets this connection admitted to `to`: `pow.request`, solve, `pow.solve`. A `pow_failed`
 * answer (an expired or lost challenge) asks for a fresh challenge, up to `attempts` times.
 *
 * @throws RelayError from the relay, ClientError('pow_unsolved') when the solver fails or the
 *   relay's challenge is for another mailbox, ClientError from the connection.
 */
export async function admit(
  connection: Connection,
  to: string,
  solver: PowSolver,
  onProgress: (progress: PowProgress) => void,
  attempts = 3,
): Promise<FrameOf<'pow.admitted'>> {
  const release = await acquire(connection);
  try {
    return await admitNow(connection, to, solver, onProgress, attempts);
  } finally {
    release();
  }
}

async function admitNow(
  connection: Connection,
  to: string,
  solver: PowSolver,
  onProgress: (progress: PowProgress) => void,
  attempts: number,
): Promise<FrameOf<'pow.admitted'>> {
  for (let attempt = 1; ; attempt++) {
    const offered = await connection.request(
      { v: PROTOCOL_VERSION, t: 'pow.request', to },
      'pow.challenge',
    );
    const wire = offered.challenge;
    if (wire.to !== to) throw new ClientError(ClientErrorCode.UNEXPECTED_REPLY);
    let solved: PowSolution;
    try {
      // Parsed here too, so that a challenge the relay should not send never reaches a solver.
      parsePowChallenge(wire);
      solved = await solver(wire, (n) => onProgress({ to, bits: wire.bits, attempts: n }));
    } catch (error) {
      throw new ClientError(ClientErrorCode.POW_UNSOLVED, { cause: error });
    }
    if (fromBase64url(solved.solution)?.length !== 8) {
      throw new ClientError(ClientErrorCode.POW_UNSOLVED);
    }
    try {
      const admitted = await connection.request(
        { v: PROTOCOL_VERSION, t: 'pow.solve', nonce: wire.nonce, solution: solved.solution },
        'pow.admitted',
      );
      if (admitted.to !== to) throw new ClientError(ClientErrorCode.UNEXPECTED_REPLY);
      return admitted;
    } catch (error) {
      if (error instanceof RelayError && error.code === 'pow_failed' && attempt < attempts) {
        continue;
      }
      throw error;
    }
  }
}
