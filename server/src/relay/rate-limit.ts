/**
 * Token buckets for the relay's rate limits. Time is passed in (milliseconds from any monotonic
 * clock) so that the arithmetic is testable without waiting, and so that the hot path reads the
 * clock once per frame.
 */

/** A token bucket: `ratePerSecond` tokens refill continuously, up to `burst`. */
export class TokenBucket {
  #tokens: number;
  #updatedMs: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    nowMs: number,
  ) {
    this.#tokens = burst;
    this.#updatedMs = nowMs;
  }

  /**
   * Takes `cost` tokens (one by default; bytes for a byte rate) if there are that many; false
   * means the caller is over its rate, and nothing is taken. A cost above `burst` never passes.
   */
  take(nowMs: number, cost = 1): boolean {
    const elapsed = nowMs - this.#updatedMs;
    if (elapsed > 0) {
      this.#tokens = Math.min(this.burst, this.#tokens + (elapsed * this.ratePerSecond) / 1000);
      this.#updatedMs = nowMs;
    }
    if (this.#tokens < cost) return false;
    this.#tokens -= cost;
    return true;
  }

  /** True when the bucket is full again, i.e. forgetting it changes nothing. */
  isFull(nowMs: number): boolean {
    const elapsed = Math.max(0, nowMs - this.#updatedMs);
    return this.#tokens + (elapsed * this.ratePerSecond) / 1000 >= this.burst;
  }
}

/**
 * One token bucket per key (a target mailbox), with a bound on how many keys are tracked so
 * that someone writing to millions of random mailboxes cannot grow memory without limit. When
 * full, the least recently used key is forgotten; a forgotten key starts again with a full
 * bucket, which only ever errs towards letting a sender through.
 */
export class KeyedRateLimiter {
  // Map iteration order is insertion order; re-inserting on use keeps it least-recent first.
  readonly #buckets = new Map<string, TokenBucket>();

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    private readonly maxKeys: number,
  ) {}

  /** Takes one token for `key`; false means the key is over its rate. */
  take(key: string, nowMs: number): boolean {
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      if (this.#buckets.size >= this.maxKeys) this.#evict(nowMs);
      bucket = new TokenBucket(this.ratePerSecond, this.burst, nowMs);
    } else {
      this.#buckets.delete(key);
    }
    this.#buckets.set(key, bucket);
    return bucket.take(nowMs);
  }

  /** Number of keys tracked now. */
  get size(): number {
    return this.#buckets.size;
  }

  /** Forgets buckets that have refilled (they carry no state); called from a periodic timer. */
  sweep(nowMs: number): void {
    for (const [key, bucket] of this.#buckets) {
      if (bucket.isFull(nowMs)) this.#buckets.delete(key);
    }
  }

  #evict(nowMs: number): void {
    // Prefer forgetting a refilled bucket among the oldest few; otherwise the oldest one.
    let oldest: string | undefined;
    let scanned = 0;
    for (const [key, bucket] of this.#buckets) {
      oldest ??= key;
      if (bucket.isFull(nowMs)) {
        this.#buckets.delete(key);
        return;
      }
      if (++scanned >= 8) break;
    }
    if (oldest !== undefined) this.#buckets.delete(oldest);
  }
}
