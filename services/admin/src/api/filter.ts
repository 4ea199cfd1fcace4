/**
 * Every error leaves the API in the one format of errors.ts. Storage failures are mapped by
 * reason; anything unexpected is logged with its cause and answered 500 "internal error".
 */
import { Catch, HttpException, Inject, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { DEPS, type AdminDeps } from '../deps.js';
import { ApiError, errorBody, fromGrpc, type ErrorCode } from './errors.js';
import type { HttpRequest } from './http.js';

interface Reply {
  status(code: number): Reply;
  header(name: string, value: string): Reply;
  send(payload: unknown): unknown;
}

const BY_STATUS: Readonly<Record<number, ErrorCode>> = {
  400: 'invalid_argument',
  401: 'unauthenticated',
  403: 'permission_denied',
  404: 'not_found',
  405: 'not_found',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'too_many_requests',
  503: 'unavailable',
};

export function toApiError(error: unknown): ApiError | undefined {
  if (error instanceof ApiError) return error;
  const grpc = fromGrpc(error);
  if (grpc !== undefined) return grpc;
  if (error instanceof HttpException) {
    const code = BY_STATUS[error.getStatus()];
    if (code !== undefined)
      return new ApiError(code, code === 'not_found' ? 'no such endpoint' : error.message);
  }
  // Fastify's own errors (body parsing, size, content type) carry a statusCode and a safe message.
  if (
    typeof error === 'object' &&
    error !== null &&
    'statusCode' in error &&
    typeof error.statusCode === 'number'
  ) {
    const code = BY_STATUS[error.statusCode];
    if (code === 'payload_too_large') return new ApiError(code, 'request body too large');
    if (code === 'unsupported_media_type')
      return new ApiError(code, 'send JSON (Content-Type: application/json)');
    if (code !== undefined)
      return new ApiError(
        code,
        code === 'invalid_argument' ? 'malformed request body (expected JSON)' : code,
      );
  }
  return undefined;
}

@Catch()
export class ApiExceptionFilter implements ExceptionFilter {
  constructor(@Inject(DEPS) private readonly deps: AdminDeps) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<HttpRequest>();
    const reply = http.getResponse<Reply>();
    let error = toApiError(exception);
    if (error === undefined) {
      this.deps.logger.error(
        { err: exception, requestId: request.pm?.requestId, url: request.url },
        'request failed',
      );
      error = new ApiError('internal', 'internal error');
    }
    reply.status(error.status);
    for (const [name, value] of Object.entries(error.headers)) reply.header(name, value);
    reply.header('content-type', 'application/json; charset=utf-8');
    reply.send(errorBody(error, request.pm?.requestId ?? ''));
  }
}
