#!/usr/bin/env node
/**
 * What carrying a trace context along promises costs, per context manager: none, the SDK's
 * AsyncLocalStorage one, and Postmesh's promise-hook one (src/promise-context.ts). Runs CHAINS
 * commands of three awaits each, 100 at a time, each in its own context, and checks that every
 * command still sees its own context at the end. One manager per process (hooks are global).
 *
 *   npm run build -w @postmesh/telemetry
 *   for m in none async-local-storage promise-hooks; do node libs/telemetry/bench/context-cost.mjs $m; done
 */
import { ROOT_CONTEXT, createContextKey } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { PromiseHookContextManager } from '../dist/promise-context.js';

const CHAINS = Number(process.env.CHAINS ?? 300_000);
const mode = process.argv[2] ?? 'promise-hooks';
const manager =
  mode === 'none'
    ? undefined
    : mode === 'async-local-storage'
      ? new AsyncLocalStorageContextManager().enable()
      : mode === 'promise-hooks'
        ? new PromiseHookContextManager().enable()
        : undefined;
if (manager === undefined && mode !== 'none') {
  console.error('usage: context-cost.mjs none|async-local-storage|promise-hooks');
  process.exit(2);
}
const KEY = createContextKey('command');
const run = (ctx, fn) => (manager === undefined ? fn() : manager.with(ctx, fn));
const active = () => manager?.active().getValue(KEY);

async function leaf(i) {
  await Promise.resolve();
  return i + 1;
}
async function command(i) {
  const ctx = ROOT_CONTEXT.setValue(KEY, i);
  return run(ctx, async () => {
    const a = await leaf(i);
    await leaf(a);
    await Promise.resolve();
    return manager === undefined || active() === i;
  });
}

const started = performance.now();
let wrong = 0;
for (let j = 0; j < CHAINS; j += 100) {
  const batch = [];
  for (let k = 0; k < 100; k++) batch.push(command(j + k));
  for (const ok of await Promise.all(batch)) if (!ok) wrong += 1;
}
const ms = performance.now() - started;
console.log(
  `${mode}: ${CHAINS} commands in ${ms.toFixed(0)} ms (${((ms * 1000) / CHAINS).toFixed(2)} µs each), ${wrong} saw another context`,
);
if (wrong > 0) process.exit(1);
