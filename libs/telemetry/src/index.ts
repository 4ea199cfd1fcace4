export { createLogger, type Logger } from './logger.js';
export { EventLoopWatchdog, type EventLoopWatchdogOptions, type LivenessVerdict } from './event-loop.js';
export { startTracing, type Tracing } from './tracing.js';
export { OpsServer, type CheckResult, type OpsServerOptions, type ReadinessCheck } from './ops-server.js';
export { Counter, Gauge, Histogram, Registry } from 'prom-client';
