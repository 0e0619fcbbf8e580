/**
 * Token buckets for the relay's rate limits. Time is passed in (milliseconds from any monotonic
 * clock) so that the arithmetic is testable without waiting, and so that the hot path reads the
 * clock once per frame.
 */

/**
 * A token bucket: `ratePerSecond` tokens refill continuously, up to `burst`. It starts full,
 * or empty when `startEmpty` (see KeyedRateLimiter).
 */
export class TokenBucket {
  #tokens: number;
  #updatedMs: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    nowMs: number,
    startEmpty = false,
  ) {
    this.#tokens = startEmpty ? 0 : burst;
    this.#updatedMs = nowMs;
  }

  /**
   * Takes `cost` tokens (one by default; bytes for a byte rate) if there are that many; false
   * means the caller is over its rate, and nothing is taken. A cost above `burst` never passes.
   * With a negative `floor` the bucket may go into debt down to it (fair-share.ts lets a sender
   * below its share borrow); refill pays the debt back before anyone else gets a token.
   */
  take(nowMs: number, cost = 1, floor = 0): boolean {
    const elapsed = nowMs - this.#updatedMs;
    if (elapsed > 0) {
      this.#tokens = Math.min(this.burst, this.#tokens + (elapsed * this.ratePerSecond) / 1000);
      this.#updatedMs = nowMs;
    }
    if (this.#tokens - cost < floor) return false;
    this.#tokens -= cost;
    return true;
  }

  /**
   * True when `cost` tokens could be taken now; takes nothing. With {@link take} it lets a
   * caller that checks two buckets refuse without spending from either.
   */
  has(nowMs: number, cost = 1): boolean {
    const elapsed = Math.max(0, nowMs - this.#updatedMs);
    return Math.min(this.burst, this.#tokens + (elapsed * this.ratePerSecond) / 1000) >= cost;
  }

  /** Milliseconds until `cost` tokens could be taken (0 if they can now; Infinity past the burst). */
  msUntil(nowMs: number, cost = 1): number {
    if (cost > this.burst) return Infinity;
    const elapsed = Math.max(0, nowMs - this.#updatedMs);
    const tokens = Math.min(this.burst, this.#tokens + (elapsed * this.ratePerSecond) / 1000);
    return tokens >= cost ? 0 : ((cost - tokens) * 1000) / this.ratePerSecond;
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
 * full, a refilled bucket among the least recently used is forgotten (that changes nothing),
 * else the least recently used one.
 *
 * Forgetting must not err in the attacker's favour: an attacker who flushes the tracker with
 * other keys would otherwise get a fresh burst for the key they target after every flush (a
 * device's 100 one-time prekeys drained in 45 s instead of 14 minutes). So once a bucket that
 * had not refilled was forgotten, every key the tracker does not know starts **empty** until
 * any bucket forgotten then would have refilled (`burst / ratePerSecond` later): the unknown
 * key may be the forgotten one. Without that pressure, an unknown key starts full as before.
 * Under pressure a first request for a new key therefore waits one token's time
 * (`1 / ratePerSecond`): 10 ms for sends at the default rate, 10 s for prekey fetches.
 */
export class KeyedRateLimiter {
  // Map iteration order is insertion order; re-inserting on use keeps it least-recent first.
  readonly #buckets = new Map<string, TokenBucket>();
  /** Until when (ms) an unknown key starts empty, because a draining bucket was forgotten. */
  #startEmptyUntilMs = -Infinity;
  /** How long a bucket at its deepest (`-maxDebt`) takes to refill, in ms. */
  readonly #refillMs: number;

  /**
   * `maxDebt` is the deepest any caller lets a bucket go (the `floor` of {@link take} is never
   * below `-maxDebt`); a forgotten bucket may have been that deep, so it counts in how long
   * unknown keys start empty.
   */
  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    private readonly maxKeys: number,
    private readonly maxDebt = 0,
  ) {
    this.#refillMs = ((burst + maxDebt) / ratePerSecond) * 1000;
  }

  /**
   * Takes one token for `key`; false means the key is over its rate. `floor` (0 or negative,
   * at least `-maxDebt`) lets this take put the bucket into debt down to it.
   */
  take(key: string, nowMs: number, floor = 0): boolean {
    if (floor < -this.maxDebt || floor > 0) throw new RangeError('floor out of range');
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      if (this.#buckets.size >= this.maxKeys) this.#evict(nowMs);
      const startEmpty = nowMs < this.#startEmptyUntilMs;
      bucket = new TokenBucket(this.ratePerSecond, this.burst, nowMs, startEmpty);
    } else {
      this.#buckets.delete(key);
    }
    this.#buckets.set(key, bucket);
    return bucket.take(nowMs, 1, floor);
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
    if (oldest === undefined) return;
    // This bucket still had state: from now on an unknown key may be this one.
    this.#buckets.delete(oldest);
    this.#startEmptyUntilMs = Math.max(this.#startEmptyUntilMs, nowMs + this.#refillMs);
  }
}
