import { NodeSDK, tracing } from '@opentelemetry/sdk-node';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import type { ContextManager } from '@opentelemetry/api';
import { PromiseHookContextManager } from './promise-context.js';
import { useUnexportedSpans } from './trace-context.js';

/**
 * OpenTelemetry tracing configured from the standard `OTEL_*` variables
 * (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_TRACES_EXPORTER, OTEL_SERVICE_NAME, OTEL_SDK_DISABLED, …).
 * Without an exporter configured, spans are still created and propagated (W3C `traceparent`
 * in NATS headers and gRPC metadata, trace ids in trace events and logs) but not exported, so
 * the local stack needs no collector and its trace ids still link a message's hops; Postmesh's
 * own spans (`tracer()`) are then ids only, without the recording nobody would read.
 */
export interface Tracing {
  shutdown(): Promise<void>;
}

/**
 * How the active context follows async work (`POSTMESH_TRACE_CONTEXT`): `promise-hooks` (the
 * default, promise-context.ts) or `async-local-storage` (the SDK's own, which also follows timers
 * and callbacks, at about twice the cost per promise on Node 20).
 */
export function contextManagerFor(env: NodeJS.ProcessEnv = process.env): ContextManager {
  const choice = env.POSTMESH_TRACE_CONTEXT ?? 'promise-hooks';
  if (choice === 'promise-hooks') return new PromiseHookContextManager();
  if (choice === 'async-local-storage') return new AsyncLocalStorageContextManager();
  throw new Error(
    `POSTMESH_TRACE_CONTEXT must be promise-hooks or async-local-storage, not ${JSON.stringify(choice)}`,
  );
}

export function startTracing(serviceName: string, env: NodeJS.ProcessEnv = process.env): Tracing {
  if (env.OTEL_SDK_DISABLED === 'true') return { shutdown: () => Promise.resolve() };
  const exporterConfigured = Boolean(
    env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_TRACES_EXPORTER,
  );
  const sdk = new NodeSDK({
    serviceName: env.OTEL_SERVICE_NAME ?? serviceName,
    // No auto-instrumentations: Postmesh creates its own spans where a message crosses a boundary.
    instrumentations: [],
    contextManager: contextManagerFor(env),
    // The SDK registers a tracer provider only when it has a span processor; a processor that
    // drops every span keeps ids and propagation working when nothing is exported.
    ...(exporterConfigured ? {} : { spanProcessors: [new tracing.NoopSpanProcessor()] }),
  });
  sdk.start();
  useUnexportedSpans(!exporterConfigured);
  return {
    shutdown: () => {
      useUnexportedSpans(false);
      return sdk.shutdown();
    },
  };
}
