/**
 * Bounds, across all connections, on what the relay holds for others: bytes of messages that
 * have started to arrive but are not complete yet (input), and bytes written to sockets that the
 * peers have not read yet (output). Per connection, `ws` bounds the input (`maxPayload`,
 * `maxFragments`, `maxBufferedChunks`) and the outbox bounds the output (MAX_BUFFERED_BYTES,
 * SLOW_CONSUMER_BYTES); these bound the sums, which otherwise grow with the number of sockets.
 */
/** A connection as the input budget sees it. */
export interface InputHolder {
  /**
   * True while the relay itself has stopped reading from the connection (backpressure): what it
   * holds then cannot complete, and that is not the client's doing.
   */
  readonly readingPaused: boolean;
  /** Drops the connection at once (no close handshake). Must not throw. */
  dropForInput(): void;
}

/**
 * The unfinished input of every connection, and its bound. When the sum passes the bound, the
 * connection holding the most is dropped (and then the next, until the sum is under it): an
 * attacker's connections hold large unfinished messages for long, a real client's hold a few
 * KiB for a round trip, so the largest holder is the attacker's far more often than not, and one
 * process cannot keep the budget to itself by arriving first.
 *
 * A connection the relay has paused is never the one dropped: its message cannot complete while
 * the relay does not read it. Its bytes still count (they are in memory), so while the pause
 * lasts the others have that much less room; what a paused connection holds is bounded by what
 * it had when it was paused (at most one socket read past its last complete frame), and the
 * pause ends when the store catches up. Over the bound with only paused holders, nobody is
 * dropped until one of them is read again.
 */
export class InputBudget {
  readonly #maxBytes: number;
  readonly #held = new Map<InputHolder, number>();
  #total = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** Bytes held now, over all connections. */
  get total(): number {
    return this.#total;
  }

  /** Records that `holder` holds `bytes` now (0 when it closed or its message completed). */
  update(holder: InputHolder, bytes: number): void {
    if (!this.#set(holder, bytes)) return;
    while (this.#total > this.#maxBytes) {
      let largest: InputHolder | undefined;
      let most = 0;
      for (const [h, b] of this.#held) {
        if (b > most && !h.readingPaused) {
          most = b;
          largest = h;
        }
      }
      if (largest === undefined) return;
      this.#set(largest, 0);
      largest.dropForInput();
    }
  }

  #set(holder: InputHolder, bytes: number): boolean {
    const before = this.#held.get(holder) ?? 0;
    if (bytes === before) return false;
    if (bytes === 0) this.#held.delete(holder);
    else this.#held.set(holder, bytes);
    this.#total += bytes - before;
    return true;
  }
}

/** Deliveries resume once the total falls to this fraction of the bound. */
const OUTPUT_LOW_WATER = 0.75;

/**
 * The unsent output of every connection, and its bound. Each outbox reports its socket's unsent
 * bytes whenever it writes, uncorks, drains or ticks; over the bound, no connection takes a new
 * delivery (they wait in the store) until the total has fallen to the low water mark, when the
 * waiting deliveries resume. Answers to a client's own requests are not held back (each socket
 * has its own hard bound, SLOW_CONSUMER_BYTES). A socket whose last bytes left without a
 * 'drain' is counted high until its next write or tick: the total errs towards holding back.
 */
export class OutputBudget {
  readonly #maxBytes: number;
  readonly #waiting = new Set<() => void>();
  #total = 0;
  #wakeScheduled = false;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** Unsent bytes now, over all connections, as last reported. */
  get total(): number {
    return this.#total;
  }

  /** True while the total is over the bound: no new deliveries. */
  get over(): boolean {
    return this.#total > this.#maxBytes;
  }

  /** A socket's unsent bytes changed by `delta`. */
  change(delta: number): void {
    this.#total += delta;
    if (
      delta < 0 &&
      this.#waiting.size > 0 &&
      !this.#wakeScheduled &&
      this.#total <= this.#maxBytes * OUTPUT_LOW_WATER
    ) {
      // Not from inside the write or drain that lowered the total: the deliveries it wakes
      // write again.
      this.#wakeScheduled = true;
      setImmediate(this.#wake);
    }
  }

  /** Calls `resume` once, when the total has fallen to the low water mark. */
  wait(resume: () => void): void {
    this.#waiting.add(resume);
  }

  /** Forgets a waiter (its connection closed). */
  forget(resume: () => void): void {
    this.#waiting.delete(resume);
  }

  readonly #wake = (): void => {
    this.#wakeScheduled = false;
    if (this.over) return;
    const waiting = [...this.#waiting];
    this.#waiting.clear();
    for (const resume of waiting) resume();
  };
}
