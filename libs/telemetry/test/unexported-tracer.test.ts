/**
 * Spans when no exporter is configured (tracing.ts, unexported-tracer.ts): ids only, and the same
 * ids, flags and propagation the SDK gives, so a message's hops stay linked by one trace id.
 */
import { TraceFlags, createTraceState } from '@opentelemetry/api';
import { core } from '@opentelemetry/sdk-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  context,
  contextFromTraceparent,
  inSpan,
  injectTraceContext,
  startTracing,
  trace,
  traceIdOf,
  tracer,
  type Tracing,
} from '../src/index.js';

const PARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('spans without an exporter', () => {
  let tracing: Tracing;
  beforeAll(() => {
    tracing = startTracing('unexported-test', {});
  });
  afterAll(() => tracing.shutdown());

  it('starts a root span with new valid ids, sampled, and records nothing', () => {
    const span = tracer().startSpan('root', { attributes: { a: 1 } });
    const ids = span.spanContext();
    expect(ids.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(ids.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(ids.traceId).not.toBe('0'.repeat(32));
    expect(ids.traceFlags).toBe(TraceFlags.SAMPLED);
    expect(span.isRecording()).toBe(false);
    span.setAttribute('b', 2).end();
    const other = tracer().startSpan('root').spanContext();
    expect(other.traceId).not.toBe(ids.traceId);
    expect(other.spanId).not.toBe(ids.spanId);
  });

  it('keeps the parent trace id, flag and trace state in a child with a new span id', () => {
    const sampled = contextFromTraceparent(PARENT);
    const child = tracer().startSpan('child', {}, sampled).spanContext();
    expect(child.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(child.spanId).not.toBe('00f067aa0ba902b7');
    expect(child.traceFlags).toBe(TraceFlags.SAMPLED);

    const unsampled = contextFromTraceparent(PARENT.replace(/01$/, '00'));
    expect(tracer().startSpan('child', {}, unsampled).spanContext().traceFlags).toBe(TraceFlags.NONE);

    const state = createTraceState('vendor=value');
    const withState = trace.setSpanContext(context.active(), {
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      traceFlags: TraceFlags.SAMPLED,
      traceState: state,
    });
    expect(tracer().startSpan('child', {}, withState).spanContext().traceState?.serialize()).toBe(
      'vendor=value',
    );
  });

  it('starts a new trace for a root span even under a parent, and none where tracing is suppressed', () => {
    const parent = contextFromTraceparent(PARENT);
    expect(tracer().startSpan('root', { root: true }, parent).spanContext().traceId).not.toBe(
      '4bf92f3577b34da6a3ce929d0e0e4736',
    );
    const suppressed = tracer().startSpan('quiet', {}, core.suppressTracing(parent)).spanContext();
    expect(trace.isSpanContextValid(suppressed)).toBe(false);
  });

  it('makes the span active in inSpan and startActiveSpan, where it propagates as traceparent', async () => {
    const parent = contextFromTraceparent(PARENT);
    const carrier: Record<string, string> = {};
    const traceId = await inSpan('work', { parent }, (span) => {
      injectTraceContext(carrier);
      expect(carrier.traceparent).toBe(`00-4bf92f3577b34da6a3ce929d0e0e4736-${span.spanContext().spanId}-01`);
      return Promise.resolve(traceIdOf());
    });
    expect(traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    const active = tracer().startActiveSpan('active', {}, parent, (span) => ({
      id: traceIdOf(),
      span: span.spanContext().spanId,
      current: trace.getActiveSpan()?.spanContext().spanId,
    }));
    expect(active.id).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(active.current).toBe(active.span);
  });
});
