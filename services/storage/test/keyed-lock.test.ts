import { describe, expect, it } from 'vitest';
import { KeyedLock } from '../src/db/keyed-lock.js';

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('KeyedLock', () => {
  it('runs critical sections of one key one at a time, in arrival order', async () => {
    const lock = new KeyedLock();
    let counter = 0;
    const seen: number[] = [];
    // A read-modify-write with an await in the middle: without the lock, these would interleave.
    await Promise.all(
      Array.from({ length: 50 }, () =>
        lock.run('mailbox-1', async () => {
          const read = counter;
          await tick(1);
          counter = read + 1;
          seen.push(counter);
        }),
      ),
    );
    expect(counter).toBe(50);
    expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(lock.size).toBe(0);
  });

  it('lets different keys proceed concurrently', async () => {
    const lock = new KeyedLock();
    const order: string[] = [];
    await Promise.all([
      lock.run('a', async () => {
        await tick(30);
        order.push('a');
      }),
      lock.run('b', async () => {
        await tick(1);
        order.push('b');
      }),
    ]);
    expect(order).toEqual(['b', 'a']);
  });

  it('releases the key when a holder throws', async () => {
    const lock = new KeyedLock();
    await expect(lock.run('k', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(lock.run('k', () => Promise.resolve(7))).resolves.toBe(7);
    expect(lock.size).toBe(0);
  });

  it('reports a key held too long, how long and how many wait behind it', async () => {
    const lock = new KeyedLock();
    let release!: () => void;
    const holding = lock.run('db:mailbox-1', () => new Promise<void>((r) => (release = r)));
    const behind = [lock.run('db:mailbox-1', async () => {}), lock.run('db:mailbox-1', async () => {})];
    await lock.run('db:mailbox-2', () => tick(1));
    await tick(60);
    expect(lock.heldLongerThan(10_000)).toEqual([]);
    const held = lock.heldLongerThan(50);
    expect(held).toHaveLength(1);
    expect(held[0]?.key).toBe('db:mailbox-1');
    expect(held[0]?.heldMs).toBeGreaterThanOrEqual(50);
    expect(held[0]?.waiting).toBe(2);
    release();
    await Promise.all([holding, ...behind]);
    expect(lock.heldLongerThan(0)).toEqual([]);
    expect(lock.size).toBe(0);
  });
});
