import type { TraceServiceServer } from '@postmesh/contracts';
import type { Logger } from '@postmesh/telemetry';
import type { TraceStore } from '../trace/trace-store.js';
import { unary } from './unary.js';

/** TraceService over gRPC (proto/postmesh/trace/v1/trace.proto). */
export function traceHandlers(store: TraceStore, logger: Logger): TraceServiceServer {
  return {
    queryEvents: unary(logger, 'QueryEvents', (r) => store.query(r)),
    recentEvents: unary(logger, 'RecentEvents', (r) => store.recent(r)),
  };
}
