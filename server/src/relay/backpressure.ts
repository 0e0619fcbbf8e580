/**
 * Backpressure between the store and the sockets: when store operations pile up (the store is
 * behind), the relay stops reading from the sockets that feed it instead of answering
 * `overloaded`; when the pile has shrunk, it reads again. TCP then pushes back on the clients,
 * whose sends wait in their own socket buffers, not in the relay's memory.
 *
 * The signal is the number of store operations the relay has started and not yet seen finish
 * (every operation is bracketed by `opStarted`/`opFinished`), for every store alike. Two
 * watermarks give hysteresis: reading pauses once the count reaches `pauseAt` and resumes once it
 * has fallen to `resumeAt`. A connection is paused the next time a frame arrives from it while
 * the gate is shut, so only sockets that actually send are touched, and each at most once per
 * episode. A frame already read is still handled (it is in memory already): how far the count can
 * pass `pauseAt` is bounded by what the connections had already read, at most one socket read
 * (64 KiB) per connection. The store's own hard bound (`MAX_PENDING_STORE_OPS`) sits far above
 * for that, and `overloaded` is left for a store that is really full.
 */
import type { LoadCounters } from './load-report.js';

/** A connection whose reading can be paused; the relay's Connection. */
export interface Pausable {
  /** Stops reading from the socket (frames already read are still handled). */
  pauseReading(): void;
  /** Reads again. */
  resumeReading(): void;
}

/** The watermarks, in store operations started and not yet finished. */
export interface BackpressureLimits {
  /** Reading pauses when this many operations are pending. */
  readonly pauseAt: number;
  /** Reading resumes when no more than this many are pending; below `pauseAt`. */
  readonly resumeAt: number;
}

export class Backpressure {
  readonly #pauseAt: number;
  readonly #resumeAt: number;
  readonly #counters: LoadCounters;
  #pending = 0;
  #engaged = false;
  #engagedSinceMs = 0;
  /** Connections paused in this episode; resumed together when it ends. */
  readonly #paused = new Set<Pausable>();

  constructor(limits: BackpressureLimits, counters: LoadCounters) {
    if (
      !Number.isSafeInteger(limits.pauseAt) ||
      !Number.isSafeInteger(limits.resumeAt) ||
      limits.resumeAt < 0 ||
      limits.pauseAt <= limits.resumeAt
    ) {
      throw new RangeError('backpressure: need integers 0 <= resumeAt < pauseAt');
    }
    this.#pauseAt = limits.pauseAt;
    this.#resumeAt = limits.resumeAt;
    this.#counters = counters;
  }

  /** Store operations started and not yet finished. */
  get pending(): number {
    return this.#pending;
  }

  /** True while the store is behind and reading is paused. */
  get engaged(): boolean {
    return this.#engaged;
  }

  /** Connections whose reading is paused now. */
  get pausedCount(): number {
    return this.#paused.size;
  }

  opStarted(): void {
    const pending = ++this.#pending;
    if (pending > this.#counters.maxPending) this.#counters.maxPending = pending;
    if (!this.#engaged && pending >= this.#pauseAt) {
      this.#engaged = true;
      this.#engagedSinceMs = performance.now();
      this.#counters.pauseEpisodes += 1;
      this.#counters.notePause(pending);
    }
  }

  opFinished(): void {
    const pending = --this.#pending;
    if (this.#engaged && pending <= this.#resumeAt) this.#release();
  }

  /**
   * Called for every frame read from `connection`, before it is handled: while the store is
   * behind, the connection stops reading (this frame is still handled).
   */
  onFrame(connection: Pausable): void {
    if (!this.#engaged || this.#paused.has(connection)) return;
    this.#paused.add(connection);
    this.#counters.pausedConnections += 1;
    connection.pauseReading();
  }

  /** A connection closed: nothing to resume for it. */
  forget(connection: Pausable): void {
    this.#paused.delete(connection);
  }

  #release(): void {
    this.#engaged = false;
    this.#counters.pausedMs += performance.now() - this.#engagedSinceMs;
    const paused = [...this.#paused];
    this.#paused.clear();
    for (const connection of paused) connection.resumeReading();
  }
}
