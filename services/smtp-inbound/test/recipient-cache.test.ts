/** The in-memory Directory answers (recipient-cache.ts): what is kept, for how long, what drops it. */
import { describe, expect, it } from 'vitest';
import type { DomainOwnership, RecipientResolution } from '../src/directory.js';
import { RecipientCache, watchDirectoryChanges, type DirectoryChangeSource } from '../src/recipient-cache.js';

const fits: RecipientResolution = { kind: 'users', users: [{ userId: 'u1', overQuota: false }] };
const full: RecipientResolution = { kind: 'over-quota' };
const unknown: RecipientResolution = { kind: 'not-found' };

function setup() {
  let clock = 1_000_000;
  const cache = new RecipientCache({ maxAgeMs: 30_000, usageMaxAgeMs: 1_000, now: () => clock });
  const asked: string[] = [];
  const lookup = (address: string, size: number, answer: RecipientResolution) =>
    cache.recipient(address, size, () => {
      asked.push(`${address}/${size}`);
      return Promise.resolve(answer);
    });
  return { cache, asked, lookup, advance: (ms: number) => (clock += ms) };
}

describe('RecipientCache', () => {
  it('keeps an answer that does not depend on usage for maxAgeMs, compared case-insensitively', async () => {
    const { asked, lookup, advance } = setup();
    expect(await lookup('Nobody@Example.test', 0, unknown)).toEqual(unknown);
    advance(29_000);
    expect(await lookup('nobody@example.test', 5_000, fits)).toEqual(unknown);
    expect(asked).toEqual(['Nobody@Example.test/0']);
    advance(2_000);
    expect(await lookup('nobody@example.test', 0, fits)).toEqual(fits);
    expect(asked).toHaveLength(2);
  });

  it('keeps an answer about usage only for usageMaxAgeMs', async () => {
    const { asked, lookup, advance } = setup();
    await lookup('a@x.test', 0, fits);
    advance(900);
    await lookup('a@x.test', 0, fits);
    expect(asked).toHaveLength(1);
    advance(200);
    await lookup('a@x.test', 0, full);
    expect(asked).toHaveLength(2);
  });

  it('reuses room for a size only for smaller or equal sizes, and a full mailbox only for the same size', async () => {
    const { asked, lookup } = setup();
    await lookup('a@x.test', 10_000, fits);
    expect(await lookup('a@x.test', 5_000, full)).toEqual(fits);
    expect(await lookup('a@x.test', 20_000, full)).toEqual(full);
    expect(await lookup('a@x.test', 20_000, fits)).toEqual(full);
    // A full mailbox for 20,000 octets may have room for fewer: asked again.
    expect(await lookup('a@x.test', 100, fits)).toEqual(fits);
    expect(asked).toEqual(['a@x.test/10000', 'a@x.test/20000', 'a@x.test/100']);
  });

  it('reuses an answer with some users over quota only for the same size', async () => {
    const { asked, lookup } = setup();
    const partly: RecipientResolution = {
      kind: 'users',
      users: [
        { userId: 'u1', overQuota: true },
        { userId: 'u2', overQuota: false },
      ],
    };
    await lookup('list@x.test', 10_000, partly);
    expect(await lookup('list@x.test', 10_000, fits)).toEqual(partly);
    expect(await lookup('list@x.test', 100, fits)).toEqual(fits);
    expect(asked).toHaveLength(2);
  });

  it('never keeps an unavailable answer or a failed lookup', async () => {
    const { cache, asked, lookup } = setup();
    await lookup('a@x.test', 0, { kind: 'unavailable', reason: 'down' });
    expect(await lookup('a@x.test', 0, fits)).toEqual(fits);
    expect(asked).toHaveLength(2);
    await expect(cache.domain('x.test', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await cache.domain('x.test', () => Promise.resolve<DomainOwnership>({ kind: 'ours' }))).toEqual({
      kind: 'ours',
    });
  });

  it('shares one lookup between concurrent askers', async () => {
    const { cache } = setup();
    let release: (answer: RecipientResolution) => void = () => undefined;
    let loads = 0;
    const load = () => {
      loads += 1;
      return new Promise<RecipientResolution>((resolve) => (release = resolve));
    };
    const first = cache.recipient('a@x.test', 0, load);
    const second = cache.recipient('A@x.test', 0, load);
    release(fits);
    expect(await Promise.all([first, second])).toEqual([fits, fits]);
    expect(loads).toBe(1);
  });

  it('drops everything on invalidate, and does not keep a lookup that was under way', async () => {
    const { cache, asked, lookup } = setup();
    await lookup('a@x.test', 0, unknown);
    let ours = 0;
    const domainLoad = () => {
      ours += 1;
      return Promise.resolve<DomainOwnership>({ kind: 'ours' });
    };
    await cache.domain('x.test', domainLoad);
    cache.invalidate();
    expect(cache.size).toBe(0);
    expect(await lookup('a@x.test', 0, fits)).toEqual(fits);
    await cache.domain('x.test', domainLoad);
    expect(ours).toBe(2);

    let release: (answer: RecipientResolution) => void = () => undefined;
    const pending = cache.recipient('b@x.test', 0, () => new Promise((resolve) => (release = resolve)));
    cache.invalidate();
    release(unknown);
    expect(await pending).toEqual(unknown);
    expect(await lookup('b@x.test', 0, fits)).toEqual(fits);
    expect(asked).toEqual(['a@x.test/0', 'a@x.test/0', 'b@x.test/0']);
  });

  it('drops everything when the entry limit is reached', async () => {
    const cache = new RecipientCache({ maxEntries: 2 });
    let loads = 0;
    const load = () => {
      loads += 1;
      return Promise.resolve(unknown);
    };
    await cache.recipient('a@x.test', 0, load);
    await cache.recipient('b@x.test', 0, load);
    await cache.recipient('c@x.test', 0, load);
    await cache.recipient('a@x.test', 0, load);
    expect(loads).toBe(4);
  });
});

describe('watchDirectoryChanges', () => {
  function fakeConnection() {
    let onMessage: ((error: Error | null) => void) | undefined;
    const statuses: { type: string }[] = [];
    let wake: (() => void) | undefined;
    let closed = false;
    const nc: DirectoryChangeSource = {
      subscribe(_subject, options) {
        onMessage = options.callback;
        return { unsubscribe: () => (onMessage = undefined) };
      },
      async *status() {
        for (;;) {
          const next = statuses.shift();
          if (next !== undefined) yield next;
          else if (closed) return;
          else await new Promise<void>((resolve) => (wake = resolve));
        }
      },
      flush: () => Promise.resolve(),
    };
    return {
      nc,
      announce: () => onMessage?.(null),
      subscribed: () => onMessage !== undefined,
      status(type: string) {
        statuses.push({ type });
        wake?.();
      },
      close() {
        closed = true;
        wake?.();
      },
    };
  }

  it('drops the cache on each announcement and on a disconnection or reconnection', async () => {
    const cache = new RecipientCache();
    const conn = fakeConnection();
    const watch = await watchDirectoryChanges(conn.nc, 'directory.changed', cache, () => undefined);
    const fill = () => cache.recipient('a@x.test', 0, () => Promise.resolve(unknown));
    await fill();
    expect(cache.size).toBe(1);
    conn.announce();
    expect(cache.size).toBe(0);
    await fill();
    conn.status('reconnect');
    await new Promise((resolve) => setImmediate(resolve));
    expect(cache.size).toBe(0);
    await fill();
    conn.status('pingTimer');
    await new Promise((resolve) => setImmediate(resolve));
    expect(cache.size).toBe(1);
    watch.stop();
    expect(conn.subscribed()).toBe(false);
    conn.close();
  });
});
