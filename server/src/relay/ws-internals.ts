/**
 * The one place the relay reads a private field of `ws`. `ws` exposes no figure for what its
 * receiver holds of a message that has not completed, and the input budget (io-budget.ts) needs
 * exactly that. Everything else the relay needs from the socket under a WebSocket (cork, 'drain',
 * 'data') it takes from the socket of the `upgrade` event, which is public (relay.ts).
 *
 * ws-internals.test.ts pins these fields on the installed `ws` (ws 8, `lib/receiver.js`): it
 * fails if an upgrade renames or retypes one of them, instead of the budget silently reading 0.
 */
import type { WebSocket } from 'ws';

/**
 * Bytes counted for every buffer object `ws` keeps for an unfinished message, besides its
 * payload: a Buffer view plus its backing store's bookkeeping. Deliberately high, so that a
 * message trickled in tiny pieces is charged for what it really costs.
 */
export const PER_BUFFER_OVERHEAD_BYTES = 256;

/** The fields of a `ws` Receiver that say what it holds (ws 8, `lib/receiver.js`). */
export interface ReceiverInternals {
  /** Received bytes not yet parsed into frames. */
  readonly _bufferedBytes: number;
  /** Payload bytes of the fragments of the current, unfinished message. */
  readonly _messageLength: number;
  readonly _buffers: readonly unknown[];
  readonly _fragments: readonly unknown[];
}

/** The receiver of `ws`, or undefined when it has none (closed) or it is not an object. */
export function receiverOf(ws: WebSocket): Partial<ReceiverInternals> | undefined {
  const r = (ws as unknown as { _receiver?: Partial<ReceiverInternals> | null })._receiver;
  return typeof r === 'object' && r !== null ? r : undefined;
}

/**
 * What `ws` holds right now for messages of this socket that have not completed: unparsed bytes
 * plus the fragments of an unfinished message, each buffer charged its overhead. 0 when the
 * receiver cannot be read.
 */
export function unfinishedInputBytes(ws: WebSocket): number {
  const r = receiverOf(ws);
  if (r === undefined) return 0;
  const buffers = (r._buffers?.length ?? 0) + (r._fragments?.length ?? 0);
  return (r._bufferedBytes ?? 0) + (r._messageLength ?? 0) + buffers * PER_BUFFER_OVERHEAD_BYTES;
}
