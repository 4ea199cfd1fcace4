/**
 * Failures of storage calls as typed errors (the error-detail convention, libs/contracts): a
 * refusal storage explains with an `ErrorDetail` is a `StorageError` with its reason; everything
 * else (unreachable, deadline, an internal failure, a partition with no owner) is a
 * `StorageUnavailableError`. Both keep the gRPC shape (`code`, `details`, `metadata`), so
 * `isServiceError` and `errorDetailOf` still work on them.
 */
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { ErrorReason, errorDetailOf, isServiceError } from '@postmesh/contracts';

/** A failed storage call: the gRPC status it ended with and the RPC it was. */
export abstract class StorageCallError extends Error implements ServiceError {
  readonly code: status;
  readonly details: string;
  readonly metadata: Metadata;

  constructor(
    /** `Service/Method`, for logs. */
    readonly rpc: string,
    code: status,
    details: string,
    metadata: Metadata,
    options?: { readonly cause?: unknown },
  ) {
    super(`${rpc}: ${details}`, options);
    this.code = code;
    this.details = details;
    this.metadata = metadata;
  }
}

/** An expected refusal with a reason the caller maps to its own protocol (IMAP NO, SMTP 5xx, HTTP 4xx). */
export class StorageError extends StorageCallError {
  override readonly name = 'StorageError';
  readonly reason: ErrorReason;
  /** The request field it is about (proto path in snake_case), '' for the request as a whole. */
  readonly field: string;

  constructor(
    rpc: string,
    code: status,
    detail: { readonly reason: ErrorReason; readonly message: string; readonly field: string },
    metadata: Metadata,
    options?: { readonly cause?: unknown },
  ) {
    super(rpc, code, detail.message, metadata, options);
    this.reason = detail.reason;
    this.field = detail.field;
  }
}

/** Storage could not be reached, ran out of time or failed unexpectedly: try again later. */
export class StorageUnavailableError extends StorageCallError {
  override readonly name = 'StorageUnavailableError';
}

/** Reasons that are not a refusal of the request itself. */
const NOT_A_REFUSAL: ReadonlySet<ErrorReason> = new Set([
  ErrorReason.UNSPECIFIED,
  ErrorReason.UNRECOGNIZED,
  ErrorReason.NOT_OWNER,
]);

/** The typed form of whatever a grpc-js call failed with. Non-gRPC values are returned as errors. */
export function storageErrorOf(rpc: string, error: unknown): Error {
  if (error instanceof StorageCallError) return error;
  if (!isServiceError(error)) return error instanceof Error ? error : new Error(String(error));
  const detail = errorDetailOf(error);
  if (detail !== undefined && !NOT_A_REFUSAL.has(detail.reason)) {
    return new StorageError(rpc, error.code, detail, error.metadata, { cause: error });
  }
  return new StorageUnavailableError(rpc, error.code, error.details || error.message, error.metadata, {
    cause: error,
  });
}

/** Whether storage answered "this replica does not own the user" (ADR 0007, Routing). */
export function isNotOwner(error: unknown): boolean {
  return (
    isServiceError(error) &&
    error.code === status.UNAVAILABLE &&
    errorDetailOf(error)?.reason === ErrorReason.NOT_OWNER
  );
}

/** A failure raised by the client itself (no storage answer), e.g. no replica owns the user. */
export function unavailable(rpc: string, details: string): StorageUnavailableError {
  return new StorageUnavailableError(rpc, status.UNAVAILABLE, details, new Metadata());
}
