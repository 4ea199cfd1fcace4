/**
 * Storage's one gRPC server adapter: how a handler's outcome becomes the status a caller sees.
 *
 * - An expected failure is a status with an ErrorDetail (libs/contracts `toGrpcError`): a
 *   `Result` error, or what a service's own `expected` mapping makes of an error it threw.
 * - Anything else thrown is a bug or an I/O failure, logged with its cause; the caller sees only
 *   UNAVAILABLE (the database is unreachable: retrying later may work, so SMTP answers 4xx and
 *   IMAP `NO [UNAVAILABLE]`) or INTERNAL, never the internal message (STYLE.md).
 */
import { status, type handleUnaryCall, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { ContractError, ErrorReason, grpcCodeFor, toGrpcError } from '@postmesh/contracts';
import type { Logger } from '@postmesh/telemetry';
import type { Result } from '../directory/result.js';

/**
 * A service's mapping of the errors it throws on purpose onto a status (a `ContractError`, or
 * another status such as DATA_LOSS); undefined for anything it does not know.
 */
export type ExpectedFailures = (error: unknown) => Error | undefined;

/** The status a caller gets for a thrown `error`. */
export function failureStatus(
  error: unknown,
  logger: Logger,
  rpc: string,
  expected?: ExpectedFailures,
): Error {
  const known = error instanceof ContractError ? error : expected?.(error);
  if (known !== undefined) {
    if (known instanceof ContractError) {
      logger.debug({ rpc, reason: known.detail.reason, field: known.detail.field }, 'expected failure');
    }
    return known;
  }
  const transient = isTransient(error);
  logger.error({ rpc, err: error }, 'rpc failed');
  return toGrpcError(transient ? status.UNAVAILABLE : status.INTERNAL, {
    reason: ErrorReason.UNSPECIFIED,
    message: transient ? 'storage is temporarily unavailable; retry' : 'internal error',
  });
}

/** A unary handler that resolves with the response or throws (`expected` maps its refusals). */
export function serveUnary<Req, Res>(
  logger: Logger,
  rpc: string,
  run: (request: Req) => Promise<Res>,
  expected?: ExpectedFailures,
): handleUnaryCall<Req, Res> {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    run(call.request).then(
      (response) => callback(null, response),
      (error: unknown) => callback(failureStatus(error, logger, rpc, expected)),
    );
  };
}

/** A unary handler that returns its expected failures as a `Result`. */
export function unary<Req, Res>(
  logger: Logger,
  rpc: string,
  handler: (request: Req) => Promise<Result<Res>>,
): handleUnaryCall<Req, Res> {
  return serveUnary(logger, rpc, async (request: Req) => {
    const result = await handler(request);
    if (result.ok) return result.value;
    throw toGrpcError(grpcCodeFor(result.error.reason), result.error);
  });
}

/** Database connectivity problems: the caller may retry (e.g. SMTP answers 4xx). */
function isTransient(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return /^Mongo(Network|ServerSelection|NotConnected|Topology)/.test(error.name);
}
