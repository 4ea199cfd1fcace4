import { describe, expect, it } from 'vitest';
import { DirectoryCache } from '../src/directory/cache.js';

/** A load the test settles by hand, counting how often it ran. */
function deferredLoad<T>(): {
  load: () => Promise<T>;
  resolve: (value: T) => void;
  reject: (error: Error) => void;
  calls: () => number;
} {
  let calls = 0;
  let settle: { resolve: (value: T) => void; reject: (error: Error) => void } | undefined;
  return {
    load: () => {
      calls += 1;
      return new Promise<T>((resolve, reject) => {
        settle = { resolve, reject };
      });
    },
    resolve: (value) => settle?.resolve(value),
    reject: (error) => settle?.reject(error),
    calls: () => calls,
  };
}

describe('DirectoryCache', () => {
  it('answers a repeated lookup from memory, and concurrent misses share one load', async () => {
    const cache = new DirectoryCache();
    const d = deferredLoad<string>();
    const first = cache.get('address', 'a@x.test', d.load);
    const second = cache.get('address', 'a@x.test', d.load);
    d.resolve('entry');
    expect(await first).toBe('entry');
    expect(await second).toBe('entry');
    expect(await cache.get('address', 'a@x.test', d.load)).toBe('entry');
    expect(d.calls()).toBe(1);
    // Kinds are separate key spaces.
    const other = cache.get('domain', 'a@x.test', () => Promise.resolve('domain'));
    expect(await other).toBe('domain');
  });

  it('keeps domains and addresses for maxAgeMs, users (usage) for usageMaxAgeMs', async () => {
    let now = 1_000;
    const cache = new DirectoryCache({ maxAgeMs: 60_000, usageMaxAgeMs: 2_000, now: () => now });
    let loads = 0;
    const load = (): Promise<number> => Promise.resolve((loads += 1));
    expect(await cache.get('user', 'u1', load)).toBe(1);
    expect(await cache.get('address', 'a', load)).toBe(2);
    now += 2_000;
    expect(await cache.get('user', 'u1', load)).toBe(1);
    now += 1;
    expect(await cache.get('user', 'u1', load)).toBe(3);
    expect(await cache.get('address', 'a', load)).toBe(2);
    now += 60_000;
    expect(await cache.get('address', 'a', load)).toBe(4);
  });

  it('drops everything on invalidate, and never keeps a load that was under way then', async () => {
    const cache = new DirectoryCache();
    const stale = deferredLoad<string>();
    const before = cache.get('address', 'a@x.test', stale.load);
    cache.invalidate();
    // A lookup after the change must not get the answer read before it.
    const fresh = deferredLoad<string>();
    const after = cache.get('address', 'a@x.test', fresh.load);
    expect(fresh.calls()).toBe(1);
    stale.resolve('old');
    fresh.resolve('new');
    expect(await before).toBe('old');
    expect(await after).toBe('new');
    expect(await cache.get('address', 'a@x.test', () => Promise.resolve('reloaded'))).toBe('new');

    // A load that settles after an invalidation is not stored either.
    const slow = deferredLoad<string>();
    const pending = cache.get('domain', 'x.test', slow.load);
    cache.invalidate();
    slow.resolve('before the change');
    await pending;
    expect(await cache.get('domain', 'x.test', () => Promise.resolve('after the change'))).toBe(
      'after the change',
    );
  });

  it('does not keep a failed load', async () => {
    const cache = new DirectoryCache();
    const failing = deferredLoad<string>();
    const answer = cache.get('domain', 'x.test', failing.load);
    failing.reject(new Error('database down'));
    await expect(answer).rejects.toThrow('database down');
    expect(await cache.get('domain', 'x.test', () => Promise.resolve('back'))).toBe('back');
  });

  it('stays within maxEntries', async () => {
    const cache = new DirectoryCache({ maxEntries: 3 });
    for (let i = 0; i < 10; i += 1) await cache.get('address', `a${i}`, () => Promise.resolve(i));
    expect(cache.size).toBeLessThanOrEqual(3);
  });
});
