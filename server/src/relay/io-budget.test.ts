import { describe, expect, it } from '@jest/globals';
import { InputBudget, type InputHolder } from './io-budget.js';

class Holder implements InputHolder {
  readingPaused = false;
  dropped = 0;
  dropForInput(): void {
    this.dropped++;
  }
}

describe('InputBudget', () => {
  it('drops nothing at exactly the bound', () => {
    const budget = new InputBudget(100);
    const a = new Holder();
    const b = new Holder();
    budget.update(a, 60);
    budget.update(b, 40);
    expect(budget.total).toBe(100);
    expect(a.dropped + b.dropped).toBe(0);
  });

  it('drops the largest holder one byte past the bound, and forgets what it held', () => {
    const budget = new InputBudget(100);
    const a = new Holder();
    const b = new Holder();
    budget.update(a, 60);
    budget.update(b, 41);
    expect(a.dropped).toBe(1);
    expect(b.dropped).toBe(0);
    expect(budget.total).toBe(41);
  });

  it('drops holders largest first until the total is under the bound', () => {
    const budget = new InputBudget(100);
    const [a, b, c] = [new Holder(), new Holder(), new Holder()];
    budget.update(a, 50);
    budget.update(b, 45);
    budget.update(c, 5);
    budget.update(c, 120);
    expect([a.dropped, b.dropped, c.dropped]).toEqual([0, 0, 1]);
    expect(budget.total).toBe(95);
  });

  it('regression: dropped a holder the relay had paused; now drops the largest one that is read', () => {
    const budget = new InputBudget(100);
    const paused = new Holder();
    const other = new Holder();
    budget.update(paused, 70);
    paused.readingPaused = true;
    budget.update(other, 40);
    expect(paused.dropped).toBe(0);
    expect(other.dropped).toBe(1);
    expect(budget.total).toBe(70);
  });

  it('drops nobody while only paused holders are over the bound, and the largest once it is read again', () => {
    const budget = new InputBudget(100);
    const a = new Holder();
    const b = new Holder();
    a.readingPaused = true;
    b.readingPaused = true;
    budget.update(a, 60);
    budget.update(b, 50);
    expect(a.dropped + b.dropped).toBe(0);
    expect(budget.total).toBe(110);
    a.readingPaused = false;
    budget.update(b, 51);
    expect(a.dropped).toBe(1);
    expect(b.dropped).toBe(0);
    expect(budget.total).toBe(51);
  });

  it('forgets a holder whose message completed or that closed (0 bytes)', () => {
    const budget = new InputBudget(100);
    const a = new Holder();
    budget.update(a, 80);
    budget.update(a, 0);
    expect(budget.total).toBe(0);
    const b = new Holder();
    budget.update(b, 100);
    expect(b.dropped).toBe(0);
  });
});
