export { createLogger, type Logger } from './logger.js';
export { EventLoopWatchdog, type EventLoopWatchdogOptions, type LivenessVerdict } from './event-loop.js';
export { startTracing, type Tracing } from './tracing.js';
export { OpsServer, type CheckResult, type OpsServerOptions, type ReadinessCheck } from './ops-server.js';
export {
  SpanKind,
  SpanStatusCode,
  context,
  contextFromTraceparent,
  extractTraceContext,
  inSpan,
  injectTraceContext,
  recordFailure,
  trace,
  traceIdOf,
  traceparentOf,
  tracer,
  type Attributes,
  type Context,
  type Span,
  type SpanOptions,
} from './trace-context.js';
export { Counter, Gauge, Histogram, Registry } from 'prom-client';
export { HotCounter, HotHistogram } from './hot-metrics.js';
