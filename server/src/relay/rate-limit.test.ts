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

  it('reports full only once it has refilled', () => {
    const bucket = new TokenBucket(1, 2, 0);
    bucket.take(0);
    expect(bucket.isFull(0)).toBe(false);
    expect(bucket.isFull(999)).toBe(false);
    expect(bucket.isFull(1000)).toBe(true);
  });
});

describe('KeyedRateLimiter', () => {
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
