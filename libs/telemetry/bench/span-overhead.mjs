#!/usr/bin/env node
/**
 * The tracing work storage-imap does per IMAP command when no exporter is configured, alone in one
 * process, before and after the session-8 changes (docs/benchmarks.md): a command span (inSpan)
 * around two in-process storage calls, each with the handler span storage's instrumentation starts.
 *   before: the SDK's recording spans; each call injects a traceparent into a grpc Metadata that
 *           the handler's wrapper extracts again (libs/storage-client local.ts, grpc/instrument.ts)
 *   after:  tracer()'s id-only spans (libs/telemetry unexported-tracer.ts); the call hands over the
 *           caller's context
 * Prints the CPU microseconds per command of each variant, alternated, so machine load hits both.
 * Usage: node libs/telemetry/bench/span-overhead.mjs [commands per round] [rounds]
 * Needs the workspace built (libs/telemetry/dist).
 */
import {
  SpanKind,
  context,
  extractTraceContext,
  inSpan,
  injectTraceContext,
  startTracing,
  trace,
  tracer,
} from '../dist/index.js';

const commands = Number(process.argv[2] ?? 100_000);
const rounds = Number(process.argv[3] ?? 3);
const tracing = startTracing('span-overhead', {});
const sdkTracer = trace.getTracer('postmesh');
const serverOptions = { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc', 'rpc.method': '/m' } };

function handlerSpan(spanTracer, parent) {
  const span = spanTracer.startSpan(
    'postmesh.mailstore.v1.MailstoreService/getChanges',
    serverOptions,
    parent,
  );
  return context.with(trace.setSpan(parent, span), () => {
    span.setAttribute('rpc.grpc.status_code', 0);
    span.end();
    return Promise.resolve(1);
  });
}

const before = {
  tracer: sdkTracer,
  call() {
    // A Map of value lists stands in for grpc-js's Metadata (which is one), so this tool needs
    // no dependency beyond the workspace's telemetry.
    const carrier = {};
    injectTraceContext(carrier);
    const metadata = new Map();
    for (const [key, value] of Object.entries(carrier)) metadata.set(key, [value]);
    const parent = extractTraceContext((key) => {
      const value = metadata.get(key)?.[0];
      return typeof value === 'string' ? value : undefined;
    });
    return handlerSpan(sdkTracer, parent);
  },
};
const after = {
  tracer: tracer(),
  call() {
    return handlerSpan(tracer(), context.active());
  },
};

async function run(variant) {
  const started = process.cpuUsage();
  for (let i = 0; i < commands; i++) {
    // inSpan uses tracer(); the "before" variant starts its command span with the SDK's tracer.
    const span = variant.tracer.startSpan('imap NOOP', {
      kind: SpanKind.SERVER,
      attributes: { 'postmesh.imap.session': 7 },
    });
    await context.with(trace.setSpan(context.active(), span), async () => {
      await variant.call();
      await variant.call();
    });
    span.setAttribute('postmesh.imap.condition', 'OK');
    span.end();
  }
  const used = process.cpuUsage(started);
  return (used.user + used.system) / commands;
}

await inSpan('warm-up', {}, () => Promise.resolve());
for (let r = 0; r < rounds; r++) {
  const b = await run(before);
  const a = await run(after);
  console.log(`round ${r + 1}: before ${b.toFixed(2)} µs/command, after ${a.toFixed(2)} µs/command`);
}
await tracing.shutdown();
