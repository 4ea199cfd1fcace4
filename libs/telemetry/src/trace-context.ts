/**
 * Spans and W3C Trace Context (https://www.w3.org/TR/trace-context/) across the boundaries a
 * message crosses: JetStream job headers and job fields, gRPC metadata, trace events. The
 * OpenTelemetry API is a no-op until `startTracing` registers the SDK, so library code may
 * create spans unconditionally.
 */
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  context,
  isSpanContextValid,
  propagation,
  trace,
  type Attributes,
  type Context,
  type Span,
  type TextMapGetter,
  type Tracer,
} from '@opentelemetry/api';
import { UnexportedTracer } from './unexported-tracer.js';

export { SpanKind, SpanStatusCode, context, trace, type Attributes, type Context, type Span };

let unexported: Tracer | undefined;

/**
 * The tracer every Postmesh service creates its spans with: the registered provider's, or, once
 * `startTracing` found no exporter configured, one whose spans carry ids only (unexported-tracer.ts).
 */
export function tracer(): Tracer {
  return unexported ?? trace.getTracer('postmesh');
}

/** @internal `startTracing`'s choice: spans that carry ids only (`tracer`), or the provider's. */
export function useUnexportedSpans(on: boolean): void {
  unexported = on ? new UnexportedTracer() : undefined;
}

/** The trace id (32 hex digits) of the span active in `ctx`, or undefined when there is none. */
export function traceIdOf(ctx: Context = context.active()): string | undefined {
  const spanContext = trace.getSpanContext(ctx);
  return spanContext !== undefined && isSpanContextValid(spanContext) ? spanContext.traceId : undefined;
}

/** `traceparent` (W3C Trace Context §3.2) of the span active in `ctx`; '' when there is none. */
export function traceparentOf(ctx: Context = context.active()): string {
  const spanContext = trace.getSpanContext(ctx);
  if (spanContext === undefined || !isSpanContextValid(spanContext)) return '';
  const flags = (spanContext.traceFlags & 0xff).toString(16).padStart(2, '0');
  return `00-${spanContext.traceId}-${spanContext.spanId}-${flags}`;
}

// W3C Trace Context §3.2.2: version 00, lower-case hex, all-zero ids are invalid.
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * A context whose remote parent is `traceparent` (as a job field carries it); `parent` itself
 * (by default the root) when the value is empty or malformed, so a bad header never fails a job.
 */
export function contextFromTraceparent(traceparent: string, parent: Context = ROOT_CONTEXT): Context {
  const match = TRACEPARENT.exec(traceparent.trim());
  if (match === null) return parent;
  const [, traceId = '', spanId = '', flags = '00'] = match;
  const spanContext = {
    traceId,
    spanId,
    traceFlags: parseInt(flags, 16) & TraceFlags.SAMPLED,
    isRemote: true,
  };
  return isSpanContextValid(spanContext) ? trace.setSpanContext(parent, spanContext) : parent;
}

/** Writes the trace context of `ctx` (`traceparent`, `tracestate`) into a header record. */
export function injectTraceContext(carrier: Record<string, string>, ctx: Context = context.active()): void {
  propagation.inject(ctx, carrier);
  // Without a registered propagator (tracing disabled) the W3C header is still written when a
  // span is active, so the next hop can join the trace once it has tracing on.
  if (carrier.traceparent === undefined) {
    const traceparent = traceparentOf(ctx);
    if (traceparent !== '') carrier.traceparent = traceparent;
  }
}

/**
 * The remote parent context found through `get` (NATS headers, gRPC metadata, …): the
 * registered propagator first, then `traceparent` read directly.
 */
export function extractTraceContext(get: (key: string) => string | undefined): Context {
  const getter: TextMapGetter<null> = {
    keys: () => ['traceparent', 'tracestate'],
    get: (_carrier, key) => get(key),
  };
  const extracted = propagation.extract(ROOT_CONTEXT, null, getter);
  if (trace.getSpanContext(extracted) !== undefined) return extracted;
  return contextFromTraceparent(get('traceparent') ?? '');
}

export interface SpanOptions {
  readonly kind?: SpanKind;
  readonly attributes?: Attributes;
  /** The parent context; by default the active one. */
  readonly parent?: Context;
}

/**
 * Runs `work` inside a new active span that ends when it settles; a thrown error is recorded on
 * the span (status ERROR) and rethrown. Expected failures returned as values leave the span OK:
 * callers set attributes (e.g. the SMTP reply) to tell them apart.
 */
export async function inSpan<T>(
  name: string,
  options: SpanOptions,
  work: (span: Span) => Promise<T>,
): Promise<T> {
  const parent = options.parent ?? context.active();
  const span = tracer().startSpan(
    name,
    {
      kind: options.kind ?? SpanKind.INTERNAL,
      ...(options.attributes ? { attributes: options.attributes } : {}),
    },
    parent,
  );
  try {
    return await context.with(trace.setSpan(parent, span), () => work(span));
  } catch (error) {
    recordFailure(span, error);
    throw error;
  } finally {
    span.end();
  }
}

/** Marks a span failed with the error's name and message (never message content). */
export function recordFailure(span: Span, error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  span.setStatus({ code: SpanStatusCode.ERROR, message: message.slice(0, 500) });
  if (error instanceof Error) span.recordException({ name: error.name, message: message.slice(0, 500) });
}
