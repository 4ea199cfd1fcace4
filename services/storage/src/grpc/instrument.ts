/**
 * Spans and latency for every gRPC method storage serves. Each call runs in a server span whose
 * parent is the caller's W3C trace context from the request metadata (`traceparent`,
 * `tracestate`, written by the clients with `propagation.inject`), so a delivery or an IMAP
 * command and the storage calls it makes share one trace; its duration and status code go to
 * `postmesh_grpc_server_duration_seconds{method, code}`. A call made in-process (the colocated
 * storage client) hands over its caller's context itself (`CALLER_CONTEXT`), the same parent
 * without writing and parsing a `traceparent`.
 */
import {
  status,
  type Metadata,
  type ServiceDefinition,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { CALLER_CONTEXT } from '@postmesh/storage-client';
import {
  HotHistogram,
  SpanKind,
  SpanStatusCode,
  context,
  extractTraceContext,
  type Context,
  trace,
  tracer,
  type Registry,
} from '@postmesh/telemetry';

const CODE_NAMES = new Map<number, string>(
  Object.entries(status)
    .filter(([, value]) => typeof value === 'number')
    .map(([name, value]) => [value as number, name]),
);

export class GrpcInstrumentation {
  private readonly duration: HotHistogram<'method' | 'code'> | undefined;

  constructor(registry: Registry | undefined) {
    this.duration =
      registry === undefined
        ? undefined
        : new HotHistogram({
            name: 'postmesh_grpc_server_duration_seconds',
            help: 'Time storage took to answer a gRPC call, by method and status code',
            labelNames: ['method', 'code'] as const,
            buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
            registers: [registry],
          });
  }

  /** The same handlers, each call wrapped in a span and timed. */
  wrap<T extends object>(definition: ServiceDefinition, handlers: T): T {
    const wrapped: Record<string, unknown> = {};
    const original = handlers as unknown as UntypedServiceImplementation;
    for (const [name, method] of Object.entries(definition)) {
      const handler = original[name] as ((...args: unknown[]) => unknown) | undefined;
      if (handler === undefined) continue;
      const path = method.path;
      const streaming = method.responseStream;
      // Made once per method rather than per call (the SDK copies the attributes into the span).
      const spanName = path.replace(/^\//, '');
      const spanOptions = { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc', 'rpc.method': path } };
      wrapped[name] = (
        call: {
          metadata: Metadata;
          on(event: string, cb: () => void): unknown;
          readonly [CALLER_CONTEXT]?: Context;
        },
        callback?: unknown,
      ) => {
        const started = performance.now();
        const parent =
          call[CALLER_CONTEXT] ??
          extractTraceContext((key) => {
            const value = call.metadata.get(key)[0];
            return typeof value === 'string' ? value : undefined;
          });
        const span = tracer().startSpan(spanName, spanOptions, parent);
        let ended = false;
        const end = (code: status): void => {
          if (ended) return;
          ended = true;
          const codeName = CODE_NAMES.get(code) ?? String(code);
          span.setAttribute('rpc.grpc.status_code', code);
          if (code !== status.OK) span.setStatus({ code: SpanStatusCode.ERROR, message: codeName });
          span.end();
          this.duration?.observe({ method: path, code: codeName }, (performance.now() - started) / 1_000);
        };
        const active = trace.setSpan(parent, span);
        if (streaming) {
          call.on('finish', () => end(status.OK));
          call.on('cancelled', () => end(status.CANCELLED));
          call.on('error', () => end(status.INTERNAL));
          return context.with(active, () => handler(call));
        }
        const done = (error: { code?: status } | null, ...rest: unknown[]): void => {
          end(error === null || error === undefined ? status.OK : (error.code ?? status.UNKNOWN));
          (callback as (...args: unknown[]) => void)(error, ...rest);
        };
        return context.with(active, () => handler(call, done));
      };
    }
    return { ...handlers, ...wrapped };
  }
}
