/**
 * The error-detail convention (proto/postmesh/common/v1/errors.proto): an expected failure is a
 * gRPC status whose trailing metadata carries the protobuf-encoded `ErrorDetail` under the binary
 * key `postmesh-error-bin`. Servers build such a status with `toGrpcError`; clients read it back
 * with `errorDetailOf`.
 */
import { Metadata, status, type ServiceError, type StatusObject } from '@grpc/grpc-js';
import { ErrorDetail, ErrorReason } from './gen/postmesh/common/v1/errors.js';

/** Trailing-metadata key of the encoded `ErrorDetail`. Keys ending in `-bin` carry bytes (gRPC). */
export const ERROR_DETAIL_METADATA_KEY = 'postmesh-error-bin';

/** What a server says about an expected failure; `field` defaults to "the request as a whole". */
export interface ErrorDetailInit {
  readonly reason: ErrorReason;
  /** For operators' logs; no secrets, no message content. */
  readonly message: string;
  /** Proto field path in snake_case, e.g. `header.mailbox.path`. */
  readonly field?: string;
}

/**
 * A gRPC status with an `ErrorDetail` attached. It is an `Error` with `code`, `details` and
 * `metadata`, so grpc-js accepts it as is: `callback(err)` in unary and client-streaming handlers,
 * `call.emit('error', err)` in server-streaming ones. (Not `call.destroy(err)`: grpc-js then
 * never sends the status, and the client waits until its deadline.)
 */
export class ContractError extends Error implements StatusObject {
  override readonly name = 'ContractError';
  readonly code: status;
  readonly details: string;
  readonly metadata: Metadata;
  readonly detail: ErrorDetail;

  constructor(code: status, detail: ErrorDetail, options?: { readonly cause?: unknown }) {
    super(`${detail.reason}: ${detail.message}`, options);
    this.code = code;
    this.details = detail.message;
    this.detail = detail;
    this.metadata = new Metadata();
    this.metadata.set(ERROR_DETAIL_METADATA_KEY, Buffer.from(ErrorDetail.encode(detail).finish()));
  }
}

/** Builds the status a server returns for an expected failure. */
export function toGrpcError(
  code: status,
  detail: ErrorDetailInit,
  options?: { readonly cause?: unknown },
): ContractError {
  return new ContractError(
    code,
    { reason: detail.reason, message: detail.message, field: detail.field ?? '' },
    options,
  );
}

/**
 * The `ErrorDetail` a failed call carried, or `undefined` when the error is not a gRPC status or
 * has none (an unexpected failure: decide by `code` alone). Accepts anything so it can be used
 * directly in `catch (err)`.
 */
export function errorDetailOf(error: unknown): ErrorDetail | undefined {
  if (typeof error !== 'object' || error === null || !('metadata' in error)) return undefined;
  const { metadata } = error;
  if (!(metadata instanceof Metadata)) return undefined;
  for (const value of metadata.get(ERROR_DETAIL_METADATA_KEY)) {
    if (typeof value === 'string') continue;
    try {
      return ErrorDetail.decode(value);
    } catch {
      // A peer that wrote something else under our key: treat as absent, keep the status code.
      return undefined;
    }
  }
  return undefined;
}

/** Narrows a caught value to a grpc-js client error (it has a numeric `code` and `metadata`). */
export function isServiceError(error: unknown): error is ServiceError {
  return (
    error instanceof Error &&
    typeof (error as Partial<ServiceError>).code === 'number' &&
    (error as Partial<ServiceError>).metadata instanceof Metadata
  );
}

/** The gRPC code each reason is returned with (as documented in errors.proto). */
export function grpcCodeFor(reason: ErrorReason): status {
  switch (reason) {
    case ErrorReason.NOT_FOUND:
      return status.NOT_FOUND;
    case ErrorReason.ALREADY_EXISTS:
      return status.ALREADY_EXISTS;
    case ErrorReason.OVER_QUOTA:
    case ErrorReason.LIMIT_EXCEEDED:
    case ErrorReason.TOO_BIG:
      return status.RESOURCE_EXHAUSTED;
    case ErrorReason.INVALID_NAME:
    case ErrorReason.INVALID_ARGUMENT:
    case ErrorReason.WEAK_PASSWORD:
      return status.INVALID_ARGUMENT;
    case ErrorReason.DOMAIN_SUSPENDED:
    case ErrorReason.USER_DISABLED:
    case ErrorReason.NOT_ALLOWED:
      return status.FAILED_PRECONDITION;
    case ErrorReason.PERMISSION_DENIED:
      return status.PERMISSION_DENIED;
    case ErrorReason.CONFLICT:
      return status.ABORTED;
    case ErrorReason.NOT_OWNER:
      return status.UNAVAILABLE;
    case ErrorReason.UNSPECIFIED:
    case ErrorReason.UNRECOGNIZED:
      return status.UNKNOWN;
  }
}
