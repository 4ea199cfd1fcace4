/** Outbound queue, message trace, dead-letter queue and system health (issue 7 §4). */
import { Controller, Inject, Req } from '@nestjs/common';
import { Endpoint } from '../api/endpoint.js';
import { ApiError } from '../api/errors.js';
import { authOf, type HttpRequest } from '../api/http.js';
import { int, optional, pageShape, parseQuery, str, time } from '../api/validate.js';
import { traceView } from '../api/views.js';
import { DEPS, type AdminDeps } from '../deps.js';
import type { QueueInspector } from '../ops/queue.js';
import { decisionOf } from './scope.js';

@Controller()
export class OpsController {
  constructor(@Inject(DEPS) private readonly deps: AdminDeps) {}

  private queue(): QueueInspector {
    if (this.deps.queue === undefined) throw new ApiError('unavailable', 'JetStream is not connected');
    return this.deps.queue;
  }

  @Endpoint({
    method: 'GET',
    path: '/queue',
    action: 'queue.read',
    target: { kind: 'list' },
    summary:
      'Outbound queue entries (MAIL_OUTBOUND), by stream sequence; read-only until mta-delivery exposes queue operations',
    query: { domain: 'sender domain', pageSize: '1–1000', pageToken: 'from the previous page' },
  })
  async list(@Req() request: HttpRequest) {
    const query = parseQuery(request.query, { ...pageShape, domain: optional(str({ max: 253 })) });
    const scope = decisionOf(request).domains;
    const domain = query.domain?.toLowerCase();
    const page = await this.queue().outbound(
      query.pageSize ?? 50,
      query.pageToken ?? '',
      (e) =>
        (scope === 'all' || scope.includes(e.senderDomain)) &&
        (domain === undefined || e.senderDomain === domain),
    );
    return page;
  }

  @Endpoint({
    method: 'POST',
    path: '/queue/:seq/retry',
    action: 'queue.write',
    target: { kind: 'queue-param', param: 'seq' },
    summary: 'Retry a deferred message now (501 until mta-delivery provides it)',
  })
  retry(): never {
    throw new ApiError(
      'not_implemented',
      'retry is done by mta-delivery, whose queue operations are not available yet',
    );
  }

  @Endpoint({
    method: 'DELETE',
    path: '/queue/:seq',
    action: 'queue.write',
    target: { kind: 'queue-param', param: 'seq' },
    summary: 'Cancel a deferred message (501 until mta-delivery provides it)',
  })
  cancel(): never {
    throw new ApiError(
      'not_implemented',
      'cancel is done by mta-delivery, whose queue operations are not available yet',
    );
  }

  @Endpoint({
    method: 'GET',
    path: '/trace',
    action: 'trace.read',
    target: { kind: 'list' },
    summary: 'Message trace: every hop of messages by Message-ID, queue id or address, within a time range',
    query: {
      messageId: 'Message-ID',
      queueId: 'spool id',
      address: 'sender or recipient',
      start: 'ISO time',
      end: 'ISO time',
      pageSize: '1–1000',
      pageToken: 'from the previous page',
    },
  })
  async trace(@Req() request: HttpRequest) {
    const query = parseQuery(request.query, {
      ...pageShape,
      messageId: optional(str({ max: 998 })),
      queueId: optional(str({ max: 100 })),
      address: optional(str({ max: 320 })),
      start: optional(time()),
      end: optional(time()),
    });
    const decision = decisionOf(request);
    const principal = authOf(request).principal;
    let filter: { $case: 'messageId' | 'queueId' | 'address'; value: string } | undefined;
    if (decision.self) {
      // A user sees the trace of their own address only.
      if (principal?.kind !== 'user') throw new ApiError('permission_denied', 'not allowed');
      filter = { $case: 'address', value: principal.user.address };
    } else {
      const given = (['messageId', 'queueId', 'address'] as const).filter((k) => query[k] !== undefined);
      if (given.length !== 1)
        throw new ApiError(
          'invalid_argument',
          'give exactly one of messageId, queueId, address',
          'messageId',
        );
      const key = given[0] ?? 'messageId';
      filter = { $case: key, value: query[key] ?? '' };
    }
    const domains = decision.domains === 'all' ? [] : [...decision.domains];
    if (decision.domains !== 'all' && domains.length === 0) return { items: [], nextPageToken: '' };
    const page = await this.deps.storage.trace.queryEvents({
      filter,
      ...(query.start === undefined ? {} : { startTime: query.start }),
      ...(query.end === undefined ? {} : { endTime: query.end }),
      domains,
      pageSize: query.pageSize ?? 100,
      pageToken: query.pageToken ?? '',
    });
    return { items: page.events.map(traceView), nextPageToken: page.nextPageToken };
  }

  @Endpoint({
    method: 'GET',
    path: '/dlq',
    action: 'dlq.read',
    target: { kind: 'system' },
    summary: 'Dead-letter queue entries with their last error',
    query: { pageSize: '1–1000', pageToken: 'from the previous page' },
  })
  dlq(@Req() request: HttpRequest) {
    const query = parseQuery(request.query, pageShape);
    return this.queue().dlq(query.pageSize ?? 50, query.pageToken ?? '');
  }

  @Endpoint({
    method: 'POST',
    path: '/dlq/:seq/redrive',
    action: 'dlq.write',
    target: { kind: 'system' },
    summary: 'Re-drive a DLQ entry: republish it to its original subject, then delete it from the DLQ',
  })
  async redrive(@Req() request: HttpRequest) {
    const seq = int({ min: 1 })(request.params.seq, 'seq');
    if (request.pm !== undefined) request.pm.target = `dlq:${seq}`;
    const result = await this.queue().redrive(seq);
    if (result === undefined) throw new ApiError('not_found', 'no such DLQ entry');
    return { redriven: true, ...result };
  }

  @Endpoint({
    method: 'DELETE',
    path: '/dlq/:seq',
    action: 'dlq.write',
    target: { kind: 'system' },
    summary: 'Discard a DLQ entry',
  })
  async discard(@Req() request: HttpRequest) {
    const seq = int({ min: 1 })(request.params.seq, 'seq');
    if (request.pm !== undefined) request.pm.target = `dlq:${seq}`;
    if (!(await this.queue().discard(seq))) throw new ApiError('not_found', 'no such DLQ entry');
    return { deleted: true };
  }

  @Endpoint({
    method: 'GET',
    path: '/health',
    action: 'health.read',
    target: { kind: 'system' },
    summary: "Each service's readiness and each stream's size and consumer lag",
  })
  health() {
    return this.deps.health.report();
  }
}
