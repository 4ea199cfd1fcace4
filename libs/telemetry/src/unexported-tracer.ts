/**
 * The tracer of a process that exports no spans (no OTEL exporter configured): each span is a
 * span context only — a trace id inherited from the parent or new, a new span id, and the
 * parent's sampled flag — wrapped as a non-recording span. That is everything a span is used for
 * when nothing exports it: W3C `traceparent` propagation (NATS headers, gRPC metadata, job
 * fields), trace ids in trace events and logs. It skips what the SDK's recording spans cost on
 * every IMAP command and storage call and nobody reads: attributes, timestamps, events, status,
 * the span processor.
 *
 * The ids and flags are those the SDK would give (its default sampler, ParentBased(AlwaysOn)): a
 * root span is sampled, a child keeps its parent's sampled flag and trace state, and a span
 * under a context with tracing suppressed is the invalid one; so a next hop that does export
 * makes the same sampling decision as before.
 */
import {
  INVALID_SPAN_CONTEXT,
  TraceFlags,
  context as contextApi,
  isSpanContextValid,
  trace,
  type Context,
  type Span,
  type SpanContext,
  type SpanOptions,
  type Tracer,
} from '@opentelemetry/api';
import { core } from '@opentelemetry/sdk-node';
import { randomFillSync } from 'node:crypto';

/** Random bytes drawn in blocks: one system call per 512 ids rather than one per id. */
const POOL_BYTES = 8 * 512;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let poolUsed = POOL_BYTES;

/** `bytes` random bytes as lower-case hex, never all zero (W3C Trace Context §3.2.2.3, §3.2.2.4). */
function randomId(bytes: 8 | 16): string {
  if (poolUsed + bytes > POOL_BYTES) {
    randomFillSync(pool);
    poolUsed = 0;
  }
  const start = poolUsed;
  poolUsed += bytes;
  for (let i = start; i < start + bytes; i++) {
    if (pool[i] !== 0) return pool.toString('hex', start, start + bytes);
  }
  pool[start + bytes - 1] = 1;
  return pool.toString('hex', start, start + bytes);
}

export class UnexportedTracer implements Tracer {
  startSpan(_name: string, options: SpanOptions = {}, ctx: Context = contextApi.active()): Span {
    if (core.isTracingSuppressed(ctx)) return trace.wrapSpanContext(INVALID_SPAN_CONTEXT);
    const parent = options.root === true ? undefined : trace.getSpanContext(ctx);
    const spanId = randomId(8);
    let spanContext: SpanContext;
    if (parent === undefined || !isSpanContextValid(parent)) {
      spanContext = { traceId: randomId(16), spanId, traceFlags: TraceFlags.SAMPLED };
    } else {
      // ParentBased: a sampled parent's child is sampled, an unsampled parent's is not.
      spanContext = {
        traceId: parent.traceId,
        spanId,
        traceFlags: parent.traceFlags & TraceFlags.SAMPLED,
        ...(parent.traceState === undefined ? {} : { traceState: parent.traceState }),
      };
    }
    return trace.wrapSpanContext(spanContext);
  }

  startActiveSpan<F extends (span: Span) => unknown>(name: string, fn: F): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(
    name: string,
    options: SpanOptions,
    fn: F,
  ): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(
    name: string,
    options: SpanOptions,
    ctx: Context,
    fn: F,
  ): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(
    name: string,
    ...args: [F] | [SpanOptions, F] | [SpanOptions, Context, F]
  ): ReturnType<F> {
    const fn = args[args.length - 1] as F;
    const options = args.length > 1 ? (args[0] as SpanOptions) : {};
    const parent = args.length > 2 ? (args[1] as Context) : contextApi.active();
    const span = this.startSpan(name, options, parent);
    return contextApi.with(trace.setSpan(parent, span), () => fn(span)) as ReturnType<F>;
  }
}
