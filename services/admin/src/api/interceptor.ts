/**
 * Audits every change that passed the guard: success or failure (denials are audited by the
 * guard itself). Reads are not audited.
 */
import {
  Inject,
  Injectable,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { catchError, from, mergeMap, type Observable } from 'rxjs';
import { DEPS, type AdminDeps } from '../deps.js';
import { endpointOf } from './endpoint.js';
import { toApiError } from './filter.js';
import type { HttpRequest } from './http.js';

@Injectable()
export class AuditInterceptor implements NestInterceptor {
  constructor(@Inject(DEPS) private readonly deps: AdminDeps) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const request = context.switchToHttp().getRequest<HttpRequest>();
    const spec = endpointOf(context.getHandler());
    const audited =
      spec !== undefined && spec.action !== 'public' && !['GET', 'HEAD', 'OPTIONS'].includes(request.method);
    if (!audited) return next.handle();
    const write = (outcome: 'success' | 'failed', detail: string): Promise<void> =>
      this.deps.audit.write({
        principal: request.pm?.principal,
        action: spec.action,
        target: request.pm?.target ?? '',
        domain: request.pm?.domain ?? '',
        sourceIp: request.ip,
        outcome,
        detail: `${request.method} ${spec.path}${detail === '' ? '' : `: ${detail}`}`,
        requestId: request.pm?.requestId ?? '',
      });
    return next.handle().pipe(
      mergeMap((value: unknown) => from(write('success', '').then(() => value))),
      catchError((error: unknown) =>
        from(
          // Storage's refusals (a weak password, a duplicate address …) arrive as gRPC errors: they
          // are recorded with the code and reason the client is given, not as an internal error.
          write('failed', describe(error)).then(() => {
            throw error;
          }),
        ),
      ),
    );
  }
}

function describe(error: unknown): string {
  const known = toApiError(error);
  return known === undefined ? 'internal error' : `${known.code}: ${known.message}`.slice(0, 300);
}
