import type { MsgHdrs } from '@nats-io/transport-node';
import { extractTraceContext, type Context } from '@postmesh/telemetry';

/**
 * The trace a job belongs to: the W3C `traceparent` header publishDurable wrote (DESIGN §3),
 * else the job's own `traceparent` field (jobs published before the header was written), else
 * a new trace (the root context).
 */
export function jobTraceContext(msg: { readonly headers?: MsgHdrs | undefined }, traceparent = ''): Context {
  const headers = msg.headers;
  return extractTraceContext((key) => {
    const value = headers?.has(key) === true ? headers.get(key) : '';
    if (value !== '') return value;
    return key === 'traceparent' && traceparent !== '' ? traceparent : undefined;
  });
}
