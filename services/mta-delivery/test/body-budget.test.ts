/** The byte budget for bodies in memory: never over capacity, first come first served, no starvation. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteBudget } from '../src/body-budget.js';

const tick = () => new Promise((r) => setImmediate(r));

describe('ByteBudget', () => {
  it('admits while it fits, queues the rest in order, and admits them as bytes come back', async () => {
    const budget = new ByteBudget(100);
    const order: string[] = [];
    const a = await budget.acquire(60);
    const waitB = budget.acquire(50).then((r) => (order.push('b'), r));
    const waitC = budget.acquire(10).then((r) => (order.push('c'), r));
    await tick();
    // c would fit, but b came first: no overtaking, so a large job is never starved by small ones.
    expect(order).toEqual([]);
    expect(budget.waiters).toBe(2);
    a();
    const [b, c] = await Promise.all([waitB, waitC]);
    expect(order).toEqual(['b', 'c']);
    expect(budget.bytesInUse).toBe(60);
    b();
    c();
    c(); // a second release is a no-op
    expect(budget.bytesInUse).toBe(0);
    expect(budget.peak).toBe(60);
  });

  it('runs a job larger than the whole budget alone', async () => {
    const budget = new ByteBudget(100);
    const small = await budget.acquire(10);
    let bigIn = false;
    const big = budget.acquire(500).then((r) => ((bigIn = true), r));
    await tick();
    expect(bigIn).toBe(false);
    small();
    const releaseBig = await big;
    let afterIn = false;
    const after = budget.acquire(1).then((r) => ((afterIn = true), r));
    await tick();
    expect(afterIn).toBe(false);
    releaseBig();
    (await after)();
    expect(budget.bytesInUse).toBe(0);
  });

  it('never holds more than its capacity unless one job alone is larger (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({ cost: fc.integer({ min: 0, max: 150 }), holdTicks: fc.integer({ min: 0, max: 3 }) }),
          {
            maxLength: 30,
          },
        ),
        async (jobs) => {
          const budget = new ByteBudget(100);
          let held = 0;
          let holders = 0;
          let violation = '';
          await Promise.all(
            jobs.map(async ({ cost, holdTicks }) => {
              const release = await budget.acquire(cost);
              held += cost;
              holders += 1;
              if (held > 100 && holders > 1) violation = `${held} bytes held by ${holders} jobs`;
              for (let i = 0; i < holdTicks; i++) await tick();
              held -= cost;
              holders -= 1;
              release();
            }),
          );
          expect(violation).toBe('');
          expect(budget.bytesInUse).toBe(0);
          expect(budget.waiters).toBe(0);
        },
      ),
      { seed: 20261206, numRuns: 200 },
    );
  });
});
