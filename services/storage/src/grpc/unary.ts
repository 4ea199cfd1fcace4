/**
 * Adapts a `Result`-returning handler to a grpc-js unary handler. Expected failures become a
 * status with an ErrorDetail (libs/contracts `toGrpcError`); anything thrown is a bug or an I/O
 * failure: logged with its cause, and the caller sees only `INTERNAL` / `UNAVAILABLE` without
 * the internal message (STYLE.md: a client never sees an internal error message).
 */
import { status, type handleUnaryCall, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { ErrorReason, grpcCodeFor, toGrpcError } from '@postmesh/contracts';
import type { Logger } from '@postmesh/telemetry';
import type { Result } from '../directory/result.js';

export function unary<Req, Res>(
  logger: Logger,
  rpc: string,
  handler: (request: Req) => Promise<Result<Res>>,
): handleUnaryCall<Req, Res> {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    handler(call.request).then(
      (result) => {
        if (result.ok) {
          callback(null, result.value);
        } else {
          logger.debug({ rpc, reason: result.error.reason, field: result.error.field }, 'expected failure');
          callback(toGrpcError(grpcCodeFor(result.error.reason), result.error));
        }
      },
      (error: unknown) => {
        const unavailable = isTransient(error);
        logger.error({ rpc, err: error }, 'rpc failed');
        callback(
          toGrpcError(unavailable ? status.UNAVAILABLE : status.INTERNAL, {
            reason: ErrorReason.UNSPECIFIED,
            message: unavailable ? 'storage is temporarily unavailable; retry' : 'internal error',
          }),
        );
      },
    );
  };
}

/** Database connectivity problems: the caller may retry (e.g. SMTP answers 4xx). */
function isTransient(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return /^Mongo(Network|ServerSelection|NotConnected|Topology)/.test(error.name);
}
