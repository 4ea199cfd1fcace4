/**
 * An OpenTelemetry context manager that carries the active context along promise chains with
 * V8's promise hooks (`v8.promiseHooks`) instead of AsyncLocalStorage.
 *
 * On Node 20, AsyncLocalStorage rides on async_hooks: once one store is entered, every promise
 * the process creates goes through async_hooks' init, before and after callbacks (an async id,
 * a resource lookup, the async context stack), whether or not anyone reads a context there. That
 * cost about 8 % of storage-imap's CPU per IMAP command (ADR 0013). These hooks do only what a
 * trace context needs: a promise created while a context is active remembers it, and its
 * reactions (the code after an `await`, a `then` callback) run with it active again. That is
 * AsyncLocalStorage's behaviour for promises, at about half its cost (bench/context-cost.mjs).
 *
 * Unlike AsyncLocalStorage, a callback handed to a timer, `process.nextTick`, an event emitter or
 * a callback-style I/O API does not inherit the context it was registered in; such a callback
 * runs in the root context unless it was wrapped with `context.bind`. Postmesh code is written
 * with promises, and the boundaries where a context must cross a callback (NATS and gRPC
 * handlers, Haraka hooks) set it explicitly with `context.with`.
 *
 * Node 22's AsyncContextFrame gives AsyncLocalStorage the same cost without hooks; this manager
 * is for the Node 20 the stack runs on (STACK.md).
 */
import { ROOT_CONTEXT, type Context, type ContextManager } from '@opentelemetry/api';
import { promiseHooks } from 'node:v8';

/** The context a promise was created in, kept on the promise itself (absent: the root). */
const CONTEXT = Symbol('postmesh.context');

type Tagged = Promise<unknown> & { [CONTEXT]?: Context };

export class PromiseHookContextManager implements ContextManager {
  #current: Context = ROOT_CONTEXT;
  /** The contexts that promise reactions replaced, restored when each reaction ends. */
  readonly #saved: Context[] = [];
  #stop: (() => void) | undefined;

  active(): Context {
    return this.#current;
  }

  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    context: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    const previous = this.#current;
    this.#current = context;
    try {
      return fn.call(thisArg, ...args);
    } finally {
      this.#current = previous;
    }
  }

  /** A function runs with `context` active whenever it is called; other targets are returned as they are. */
  bind<T>(context: Context, target: T): T {
    if (typeof target !== 'function') return target;
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the bound function runs in its caller's `this`.
    const manager = this;
    const fn = target as unknown as (...args: unknown[]) => unknown;
    const bound = function (this: unknown, ...args: unknown[]): unknown {
      return manager.with(context, fn, this, ...args);
    };
    Object.defineProperty(bound, 'length', { value: fn.length });
    return bound as unknown as T;
  }

  enable(): this {
    if (this.#stop !== undefined) return this;
    // Each registration answers the function that removes it (typed `Function` by @types/node).
    const stops = [
      promiseHooks.onInit((promise: Tagged) => {
        const current = this.#current;
        if (current !== ROOT_CONTEXT) promise[CONTEXT] = current;
      }),
      promiseHooks.onBefore((promise: Tagged) => {
        this.#saved.push(this.#current);
        this.#current = promise[CONTEXT] ?? ROOT_CONTEXT;
      }),
      promiseHooks.onAfter(() => {
        this.#current = this.#saved.pop() ?? ROOT_CONTEXT;
      }),
    ] as (() => void)[];
    this.#stop = () => {
      for (const stop of stops) stop();
    };
    return this;
  }

  disable(): this {
    this.#stop?.();
    this.#stop = undefined;
    this.#current = ROOT_CONTEXT;
    this.#saved.length = 0;
    return this;
  }
}
