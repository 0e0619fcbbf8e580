import { describe, expect, it } from '@jest/globals';
import { KeyedRateLimiter, TokenBucket } from './rate-limit.js';

describe('TokenBucket', () => {
  it('allows a burst, then refuses until time refills a token', () => {
    const bucket = new TokenBucket(2, 3, 0);
    expect([bucket.take(0), bucket.take(0), bucket.take(0)]).toEqual([true, true, true]);
    expect(bucket.take(0)).toBe(false);
    expect(bucket.take(499)).toBe(false);
    expect(bucket.take(500)).toBe(true);
    expect(bucket.take(500)).toBe(false);
  });

  it('takes a cost of several tokens up to the burst, and refuses one past it taking nothing', () => {
    const bucket = new TokenBucket(1000, 100, 0);
    expect(bucket.take(0, 60)).toBe(true);
    expect(bucket.take(0, 41)).toBe(false); // one past what is left: nothing taken
    expect(bucket.take(0, 40)).toBe(true); // exactly what is left
    expect(bucket.take(0, 1)).toBe(false);
    expect(bucket.take(100, 100)).toBe(true); // refilled to the burst
    expect(new TokenBucket(1000, 100, 0).take(1_000_000, 101)).toBe(false); // never past burst
  });

  it('never refills above the burst', () => {
    const bucket = new TokenBucket(100, 2, 0);
    expect(bucket.take(1_000_000)).toBe(true);
    expect(bucket.take(1_000_000)).toBe(true);
    expect(bucket.take(1_000_000)).toBe(false);
  });

  it('ignores a clock that goes backwards', () => {
    const bucket = new TokenBucket(1, 1, 1000);
    expect(bucket.take(1000)).toBe(true);
    expect(bucket.take(0)).toBe(false);
    expect(bucket.take(1000)).toBe(false);
  });

  it('says whether a cost could be taken without taking it, at the token count and one past it', () => {
    const bucket = new TokenBucket(1, 10, 0);
    expect(bucket.has(0, 10)).toBe(true);
    expect(bucket.has(0, 11)).toBe(false);
    expect(bucket.has(0, 10)).toBe(true);
    expect(bucket.take(0, 10)).toBe(true);
    expect(bucket.has(0)).toBe(false);
    expect(bucket.has(999)).toBe(false);
    expect(bucket.has(1_000)).toBe(true);
    // A look does not move the clock: the refill is still counted from the last take.
    expect(bucket.take(1_000)).toBe(true);
    expect(bucket.take(1_000)).toBe(false);
  });

  it('reports full only once it has refilled', () => {
    const bucket = new TokenBucket(1, 2, 0);
    bucket.take(0);
    expect(bucket.isFull(0)).toBe(false);
    expect(bucket.isFull(999)).toBe(false);
    expect(bucket.isFull(1000)).toBe(true);
  });
});

describe('TokenBucket debt', () => {
  it('goes into debt down to the floor it is given, and no further', () => {
    const bucket = new TokenBucket(10, 2, 0);
    expect([bucket.take(0), bucket.take(0)]).toEqual([true, true]);
    expect(bucket.take(0)).toBe(false); // no floor: empty means refused
    expect([bucket.take(0, 1, -2), bucket.take(0, 1, -2)]).toEqual([true, true]);
    expect(bucket.take(0, 1, -2)).toBe(false); // at the floor
  });

  it('pays a debt back before it gives a token to a take without a floor', () => {
    const bucket = new TokenBucket(10, 2, 0);
    bucket.take(0, 2);
    bucket.take(0, 2, -2); // two tokens of debt
    expect(bucket.take(299)).toBe(false); // -2 + 2.99
    expect(bucket.take(300)).toBe(true); // -2 + 3
    expect(bucket.isFull(300)).toBe(false);
  });
});

describe('KeyedRateLimiter', () => {
  it('refuses a floor below its maxDebt, or above zero', () => {
    const limiter = new KeyedRateLimiter(1, 2, 10, 2);
    expect(() => limiter.take('a', 0, -3)).toThrow(RangeError);
    expect(() => limiter.take('a', 0, 1)).toThrow(RangeError);
    expect(() => new KeyedRateLimiter(1, 2, 10).take('a', 0, -1)).toThrow(RangeError);
    expect(limiter.take('a', 0, -2)).toBe(true);
  });

  it('starts unknown keys empty for as long as a forgotten bucket in debt takes to refill', () => {
    const inDebt = () => {
      const limiter = new KeyedRateLimiter(1, 2, 1, 2);
      limiter.take('a', 0);
      limiter.take('a', 0);
      limiter.take('a', 0, -2); // 'a' is one token in debt
      expect(limiter.take('b', 0)).toBe(false); // 'a' forgotten
      return limiter;
    };
    // Burst plus debt: 4 s at one a second.
    expect(inDebt().take('c', 3_999)).toBe(false);
    expect(inDebt().take('c', 4_000)).toBe(true);
  });

  it('limits each key on its own', () => {
    const limiter = new KeyedRateLimiter(1, 1, 10);
    expect(limiter.take('a', 0)).toBe(true);
    expect(limiter.take('a', 0)).toBe(false);
    expect(limiter.take('b', 0)).toBe(true);
  });

  it('never tracks more than its bound', () => {
    const limiter = new KeyedRateLimiter(1, 1, 100);
    for (let i = 0; i < 10_000; i++) limiter.take(`k${i}`, 0);
    expect(limiter.size).toBeLessThanOrEqual(100);
  });

  it('evicts the least recently used key, keeping a key that stays in use', () => {
    const limiter = new KeyedRateLimiter(1, 1, 3);
    limiter.take('hot', 0);
    for (let i = 0; i < 50; i++) {
      limiter.take(`cold${i}`, 0);
      // Used again every round, so never the least recent: still limited.
      expect(limiter.take('hot', 0)).toBe(false);
    }
  });

  it('forgets refilled buckets on sweep and keeps draining ones', () => {
    const limiter = new KeyedRateLimiter(1, 1, 10);
    limiter.take('a', 0);
    limiter.take('b', 900);
    limiter.sweep(1000);
    expect(limiter.size).toBe(1);
    expect(limiter.take('b', 1000)).toBe(false);
  });
});

describe('regression: prekey drain by flushing the fetch-rate tracker', () => {
  // The defaults: 6 fetches a minute, 16 at once; a small tracker so that flushing is cheap.
  const RATE_PER_SECOND = 6 / 60;
  const BURST = 16;
  const ONE_TIME_PREKEYS = 100;
  /** The intended pace: the burst at once, then one per 1 / rate seconds. */
  const INTENDED_SECONDS = (ONE_TIME_PREKEYS - BURST) / RATE_PER_SECOND;

  /** Seconds an attacker needs to take `ONE_TIME_PREKEYS` tokens for 'victim', flushing the
   * tracker with `flush` fresh keys after every attempt, one attempt a second. */
  function secondsToDrain(flush: number): number {
    const limiter = new KeyedRateLimiter(RATE_PER_SECOND, BURST, 16);
    let taken = 0;
    let fresh = 0;
    // One second past the intended pace is enough to see whether it was beaten.
    for (let s = 0; s <= INTENDED_SECONDS + 1; s++) {
      const now = s * 1000;
      // As fast as the relay lets it: every attempt it can make this second.
      while (limiter.take('victim', now)) if (++taken >= ONE_TIME_PREKEYS) return s;
      for (let i = 0; i < flush; i++) limiter.take(`other${fresh++}`, now);
    }
    return Infinity;
  }

  it('does not let 100 one-time prekeys drain faster than the intended pace when flushed with other mailbox ids', () => {
    expect(secondsToDrain(17)).toBeGreaterThanOrEqual(INTENDED_SECONDS);
    expect(secondsToDrain(100)).toBeGreaterThanOrEqual(INTENDED_SECONDS);
  });

  it('drains at exactly the intended pace without flushing', () => {
    // 840 s, or 841 where floating-point refill lands just short of a token.
    expect(secondsToDrain(0)).toBeGreaterThanOrEqual(INTENDED_SECONDS);
    expect(secondsToDrain(0)).toBeLessThanOrEqual(INTENDED_SECONDS + 1);
  });

  it('starts an unknown key empty while a forgotten bucket could still be draining', () => {
    const limiter = new KeyedRateLimiter(1, 2, 1);
    expect(limiter.take('a', 0)).toBe(true);
    // 'a' (not refilled) is forgotten for 'b': an unknown key now starts empty for 2 s.
    expect(limiter.take('b', 0)).toBe(false);
    expect(limiter.take('a', 500)).toBe(false);
    expect(limiter.take('c', 1_999)).toBe(false);
  });

  it('starts an unknown key full once every forgotten bucket would have refilled', () => {
    const limiter = new KeyedRateLimiter(1, 2, 1);
    limiter.take('a', 0);
    limiter.take('b', 0);
    expect(limiter.take('c', 2_000)).toBe(true);
    expect(limiter.take('c', 2_000)).toBe(true);
    expect(limiter.take('c', 2_000)).toBe(false);
  });

  it('starts an unknown key full when only refilled buckets were forgotten', () => {
    const limiter = new KeyedRateLimiter(1, 2, 1);
    limiter.take('a', 0);
    // By 5 s 'a' has refilled: forgetting it for 'b' changes nothing.
    expect(limiter.take('b', 5_000)).toBe(true);
    expect(limiter.take('b', 5_000)).toBe(true);
  });
});
