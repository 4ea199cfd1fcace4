/** The literal memory shared by all sessions of a process: reservations, waiting, order. */
import { describe, expect, it } from 'vitest';
import { LiteralBudget } from '../src/literal-budget.js';

describe('LiteralBudget', () => {
  it('grants what fits and refuses what never can', async () => {
    const budget = new LiteralBudget(100);
    expect(await budget.reserve(60, 0)).toBe(true);
    expect(await budget.reserve(40, 0)).toBe(true);
    expect(budget.used).toBe(100);
    expect(await budget.reserve(101, 1_000)).toBe(false);
  });

  it('lets a waiter in when memory is released, and gives up after the wait', async () => {
    const budget = new LiteralBudget(100);
    await budget.reserve(80, 0);
    const waiting = budget.reserve(50, 5_000);
    const tooLate = budget.reserve(90, 20);
    expect(await tooLate).toBe(false);
    budget.release(80);
    expect(await waiting).toBe(true);
    expect(budget.used).toBe(50);
  });

  it('serves waiters in order, so a large one is not starved by small ones', async () => {
    const budget = new LiteralBudget(100);
    await budget.reserve(60, 0);
    const order: string[] = [];
    const large = budget.reserve(90, 5_000).then((ok) => order.push(`large ${ok}`));
    // Fits now, but waits behind the large one.
    const small = budget.reserve(10, 5_000).then((ok) => order.push(`small ${ok}`));
    budget.release(60);
    await large;
    budget.release(90);
    await small;
    expect(order).toEqual(['large true', 'small true']);
    expect(budget.used).toBe(10);
  });
});
