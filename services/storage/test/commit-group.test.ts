// GroupedWrites: partitions' delivery batches that wait for a running commit go together in the
// next one, at most `concurrency` commits at once, each submitter getting its own results back.
import { describe, expect, it } from 'vitest';
import { GroupedWrites } from '../src/delivery/commit-group.js';

/** A write whose calls are recorded and finished by the test. */
function controlledWrite() {
  const calls: { items: readonly string[]; finish: (error?: Error) => void }[] = [];
  let running = 0;
  let mostAtOnce = 0;
  const write = (items: readonly string[]): Promise<string[]> => {
    running++;
    mostAtOnce = Math.max(mostAtOnce, running);
    return new Promise((resolve, reject) => {
      calls.push({
        items,
        finish: (error) => {
          running--;
          if (error === undefined) resolve(items.map((i) => `${i}!`));
          else reject(error);
        },
      });
    });
  };
  return { write, calls, mostAtOnce: () => mostAtOnce };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('GroupedWrites', () => {
  it('writes what waits for a running write together, and answers each submitter its own results', async () => {
    const w = controlledWrite();
    const group = new GroupedWrites(w.write, 1);
    const first = group.submit(['a1', 'a2']);
    await tick();
    const second = group.submit(['b1']);
    const third = group.submit(['c1', 'c2', 'c3']);
    await tick();
    expect(w.calls.map((c) => c.items)).toEqual([['a1', 'a2']]);
    w.calls[0]?.finish();
    expect(await first).toEqual(['a1!', 'a2!']);
    await tick();
    expect(w.calls.map((c) => c.items)).toEqual([
      ['a1', 'a2'],
      ['b1', 'c1', 'c2', 'c3'],
    ]);
    w.calls[1]?.finish();
    expect(await second).toEqual(['b1!']);
    expect(await third).toEqual(['c1!', 'c2!', 'c3!']);
    expect(w.mostAtOnce()).toBe(1);
  });

  it('runs at most `concurrency` writes at once and never splits a submission past maxItems', async () => {
    const w = controlledWrite();
    const group = new GroupedWrites(w.write, 2, 3);
    const results = [group.submit(['a']), group.submit(['b']), group.submit(['c', 'd']), group.submit(['e'])];
    await tick();
    expect(w.calls.map((c) => c.items)).toEqual([['a'], ['b']]);
    w.calls[0]?.finish();
    await tick();
    // c,d and e would be 3 items: one write.
    expect(w.calls.map((c) => c.items)).toEqual([['a'], ['b'], ['c', 'd', 'e']]);
    w.calls[1]?.finish();
    w.calls[2]?.finish();
    expect(await Promise.all(results)).toEqual([['a!'], ['b!'], ['c!', 'd!'], ['e!']]);
    expect(w.mostAtOnce()).toBe(2);
  });

  it('fails every submitter of a write that fails, and goes on with the next', async () => {
    const w = controlledWrite();
    const group = new GroupedWrites(w.write, 1);
    const first = group.submit(['a']);
    await tick();
    const second = group.submit(['b']);
    const third = group.submit(['c']);
    w.calls[0]?.finish();
    await first;
    await tick();
    w.calls[1]?.finish(new Error('database is locked'));
    await expect(second).rejects.toThrow('database is locked');
    await expect(third).rejects.toThrow('database is locked');
    const fourth = group.submit(['d']);
    await tick();
    w.calls[2]?.finish();
    expect(await fourth).toEqual(['d!']);
    expect(await group.submit([])).toEqual([]);
  });
});
