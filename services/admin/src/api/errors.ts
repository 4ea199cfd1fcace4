/**
 * One error format for the whole API:
 *   { "error": { "status": 400, "code": "invalid_argument", "message": "…", "field": "email", "requestId": "…" } }
 * Messages are for people; `code` is for programs. Internal failures never carry their cause
 * (STYLE.md: a client never sees an internal error message); the log has it with the request id.
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import { ErrorReason, errorDetailOf, isServiceError } from '@postmesh/contracts';

export const ErrorCodes = {
  invalid_argument: 400,
  unauthenticated: 401,
  permission_denied: 403,
  not_found: 404,
  request_timeout: 408,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  too_many_requests: 429,
  headers_too_large: 431,
  internal: 500,
  not_implemented: 501,
  unavailable: 503,
} as const;
export type ErrorCode = keyof typeof ErrorCodes;

export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly field?: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.status = ErrorCodes[code];
  }
}

export interface ErrorBody {
  readonly error: {
    readonly status: number;
    readonly code: ErrorCode;
    readonly message: string;
    readonly field?: string;
    readonly requestId: string;
  };
}

export function errorBody(error: ApiError, requestId: string): ErrorBody {
  return {
    error: {
      status: error.status,
      code: error.code,
      message: error.message,
      ...(error.field === undefined ? {} : { field: error.field }),
      requestId,
    },
  };
}

const camel = (field: string): string => field.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/** Maps a storage gRPC failure to an API error; `undefined` for anything that is not one. */
export function fromGrpc(error: unknown): ApiError | undefined {
  if (!isServiceError(error)) return undefined;
  const detail = errorDetailOf(error);
  const field = detail?.field ? camel(detail.field) : undefined;
  const message = detail?.message ?? '';
  switch (detail?.reason) {
    case ErrorReason.NOT_FOUND:
    case ErrorReason.PERMISSION_DENIED:
      return new ApiError('not_found', message || 'not found', field);
    case ErrorReason.ALREADY_EXISTS:
      return new ApiError('conflict', message || 'already exists', field);
    case ErrorReason.INVALID_NAME:
    case ErrorReason.INVALID_ARGUMENT:
    case ErrorReason.WEAK_PASSWORD:
      return new ApiError('invalid_argument', message || 'invalid argument', field);
    case ErrorReason.NOT_ALLOWED:
    case ErrorReason.DOMAIN_SUSPENDED:
    case ErrorReason.USER_DISABLED:
    case ErrorReason.CONFLICT:
    case ErrorReason.LIMIT_EXCEEDED:
    case ErrorReason.OVER_QUOTA:
    case ErrorReason.TOO_BIG:
      return new ApiError('conflict', message || 'not allowed in the current state', field);
    default:
      break;
  }
  switch (error.code) {
    case GrpcStatus.UNAVAILABLE:
    case GrpcStatus.DEADLINE_EXCEEDED:
      return new ApiError('unavailable', 'storage is unavailable; try again');
    case GrpcStatus.INVALID_ARGUMENT:
      return new ApiError('invalid_argument', 'invalid argument');
    case GrpcStatus.NOT_FOUND:
      return new ApiError('not_found', 'not found');
    default:
      return undefined;
  }
}
