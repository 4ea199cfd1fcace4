import { ROOT_CONTEXT, createContextKey, type Context } from '@opentelemetry/api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { PromiseHookContextManager } from '../src/promise-context.js';
import { contextManagerFor } from '../src/tracing.js';

const KEY = createContextKey('test value');
const named = (name: string): Context => ROOT_CONTEXT.setValue(KEY, name);
const nameOf = (manager: PromiseHookContextManager): unknown => manager.active().getValue(KEY);

describe('PromiseHookContextManager', () => {
  let manager: PromiseHookContextManager;
  beforeEach(() => {
    manager = new PromiseHookContextManager().enable();
  });
  afterEach(() => {
    manager.disable();
  });

  it('is the root outside any with, and the given context inside it, restored after', () => {
    expect(manager.active()).toBe(ROOT_CONTEXT);
    const seen = manager.with(named('a'), () => {
      const inner = manager.with(named('b'), () => nameOf(manager));
      return [nameOf(manager), inner];
    });
    expect(seen).toEqual(['a', 'b']);
    expect(manager.active()).toBe(ROOT_CONTEXT);
  });

  it('restores the outer context when the function throws', () => {
    manager.with(named('outer'), () => {
      expect(() =>
        manager.with(named('inner'), () => {
          throw new Error('boom');
        }),
      ).toThrow('boom');
      expect(nameOf(manager)).toBe('outer');
    });
  });

  it('passes this and the arguments through', () => {
    const target = { base: 40 };
    const sum = manager.with(
      named('a'),
      function (this: typeof target, x: number, y: number) {
        return this.base + x + y;
      },
      target,
      1,
      1,
    );
    expect(sum).toBe(42);
  });

  it('keeps the context across awaits, in nested async functions and after a timer resolves a promise', async () => {
    const leaf = async (): Promise<unknown> => {
      await Promise.resolve();
      await sleep(5);
      return nameOf(manager);
    };
    const run = async (): Promise<unknown[]> => {
      const first = nameOf(manager);
      await Promise.resolve();
      const second = await leaf();
      await sleep(1);
      return [first, second, nameOf(manager)];
    };
    await expect(manager.with(named('command'), run)).resolves.toEqual(['command', 'command', 'command']);
    expect(manager.active()).toBe(ROOT_CONTEXT);
  });

  it('keeps interleaved chains apart: each continuation sees its own context', async () => {
    const chain = async (name: string, delays: number[]): Promise<unknown[]> =>
      manager.with(named(name), async () => {
        const seen: unknown[] = [];
        for (const delay of delays) {
          await sleep(delay);
          seen.push(nameOf(manager));
          await Promise.resolve();
          seen.push(nameOf(manager));
        }
        return seen;
      });
    const results = await Promise.all([
      chain('a', [3, 1, 4]),
      chain('b', [1, 5, 1]),
      chain('c', [2, 2, 2]),
      manager.with(ROOT_CONTEXT, async () => {
        await sleep(2);
        return [manager.active() === ROOT_CONTEXT];
      }),
    ]);
    expect(results).toEqual([Array(6).fill('a'), Array(6).fill('b'), Array(6).fill('c'), [true]]);
  });

  it('runs then callbacks in the context that registered them, not the one that resolved the promise', async () => {
    let resolve!: (value: string) => void;
    const pending = new Promise<string>((r) => {
      resolve = r;
    });
    const observed = manager.with(named('waiter'), () => pending.then(() => nameOf(manager)));
    manager.with(named('resolver'), () => resolve('done'));
    await expect(observed).resolves.toBe('waiter');
  });

  it('leaves a context-free continuation in the root', async () => {
    await manager.with(named('a'), async () => {
      await Promise.resolve();
    });
    await Promise.resolve();
    expect(manager.active()).toBe(ROOT_CONTEXT);
  });

  it('runs a bound function in its context wherever it is called, keeping this, arguments and length', async () => {
    const bound = manager.bind(named('bound'), function (this: { n: number }, a: number, b: number) {
      return [nameOf(manager), this.n + a + b];
    });
    expect(bound.length).toBe(2);
    expect(bound.call({ n: 1 }, 2, 3)).toEqual(['bound', 6]);
    const later = await new Promise((resolve) => setTimeout(() => resolve(bound.call({ n: 0 }, 0, 0)), 1));
    expect(later).toEqual(['bound', 0]);
    const notAFunction = { x: 1 };
    expect(manager.bind(named('x'), notAFunction)).toBe(notAFunction);
  });

  it('does not carry the context into a timer callback that was not bound (the documented difference)', async () => {
    const seen = await manager.with(
      named('a'),
      () => new Promise((resolve) => setTimeout(() => resolve(manager.active() === ROOT_CONTEXT), 1)),
    );
    expect(seen).toBe(true);
  });

  it('stops following promises once disabled, and enable is idempotent', async () => {
    manager.enable();
    manager.disable();
    const seen = await manager.with(named('a'), async () => {
      await Promise.resolve();
      return manager.active();
    });
    expect(seen).toBe(ROOT_CONTEXT);
    manager.enable();
    const again = await manager.with(named('b'), async () => {
      await Promise.resolve();
      return nameOf(manager);
    });
    expect(again).toBe('b');
  });
});

describe('contextManagerFor', () => {
  it('defaults to promise hooks, accepts async-local-storage and refuses anything else', () => {
    expect(contextManagerFor({})).toBeInstanceOf(PromiseHookContextManager);
    expect(contextManagerFor({ POSTMESH_TRACE_CONTEXT: 'async-local-storage' }).constructor.name).toBe(
      'AsyncLocalStorageContextManager',
    );
    expect(() => contextManagerFor({ POSTMESH_TRACE_CONTEXT: 'threads' })).toThrow(/POSTMESH_TRACE_CONTEXT/);
  });
});
