/** Outbound queue, message trace, dead-letter queue and system health. */
import { Controller, Inject, Req } from '@nestjs/common';
import {
  DlqEntrySchema,
  Done,
  HealthSchema,
  KekSchema,
  Page,
  QueueEntrySchema,
  TraceEventSchema,
} from '../api/schemas.js';
import { Type } from '@sinclair/typebox';
import { Endpoint } from '../api/endpoint.js';
import { ApiError } from '../api/errors.js';
import { authOf, type HttpRequest } from '../api/http.js';
import { bool, int, optional, pageShape, parseQuery, str, time } from '../api/validate.js';
import { kekView, storageStatsView, traceView } from '../api/views.js';
import { DEPS, type AdminDeps } from '../deps.js';
import type { QueueInspector } from '../ops/queue.js';
import type { QueueOps } from '../ops/queue-operations-client.js';
import { decisionOf, queueCallerOf } from './scope.js';

const listQuery = {
  pageSize: optional(int({ min: 1, max: 500 })),
  pageToken: optional(str({ max: 2000 })),
  domain: optional(str({ max: 253 })),
};

const cancelQuery = { dsn: optional(bool()) };

const traceQuery = {
  ...pageShape,
  messageId: optional(str({ max: 998 })),
  queueId: optional(str({ max: 100 })),
  address: optional(str({ max: 320 })),
  start: optional(time()),
  end: optional(time()),
};

@Controller()
export class OpsController {
  constructor(@Inject(DEPS) private readonly deps: AdminDeps) {}

  private queue(): QueueInspector {
    if (this.deps.queue === undefined) throw new ApiError('unavailable', 'JetStream is not connected');
    return this.deps.queue;
  }

  private queueOps(): QueueOps {
    if (this.deps.queueOps === undefined) throw new ApiError('unavailable', 'NATS is not connected');
    return this.deps.queueOps;
  }

  @Endpoint({
    method: 'GET',
    path: '/queue',
    action: 'queue.read',
    target: { kind: 'list' },
    summary:
      "Deferred outbound mail (mta-delivery's queue), oldest first: recipients left, attempts, last error, next attempt",
    query: listQuery,
    response: Page(QueueEntrySchema),
  })
  async list(@Req() request: HttpRequest) {
    const query = parseQuery(request.query, listQuery);
    const caller = queueCallerOf(request);
    if (caller === undefined) return { items: [], nextPageToken: '' };
    const page = await this.queueOps().list(caller, {
      ...(query.domain === undefined ? {} : { domain: query.domain.toLowerCase() }),
      limit: query.pageSize ?? 50,
      ...(query.pageToken === undefined ? {} : { cursor: query.pageToken }),
    });
    return { items: page.items, nextPageToken: page.nextCursor };
  }

  @Endpoint({
    method: 'POST',
    path: '/queue/:id/retry',
    action: 'queue.write',
    target: { kind: 'queue-param', param: 'id' },
    summary: 'Retry a deferred message now (mta-delivery attempts it within one queue tick)',
    response: Type.Object({ retried: Type.Literal(true), id: Type.String(), nextAttemptAt: Type.String() }),
  })
  async retry(@Req() request: HttpRequest) {
    const caller = queueCallerOf(request);
    if (caller === undefined) throw new ApiError('permission_denied', 'not allowed: queue.write');
    const done = await this.queueOps().retry(caller, request.params.id ?? '');
    return { retried: true, id: done.id, nextAttemptAt: done.nextAttemptAt };
  }

  @Endpoint({
    method: 'DELETE',
    path: '/queue/:id',
    action: 'queue.write',
    target: { kind: 'queue-param', param: 'id' },
    summary:
      'Cancel a deferred message for its remaining recipients; dsn=true (the default) tells the sender (RFC 3464)',
    query: cancelQuery,
    response: Type.Object({ cancelled: Type.Literal(true), id: Type.String(), dsnSent: Type.Boolean() }),
  })
  async cancel(@Req() request: HttpRequest) {
    const query = parseQuery(request.query, cancelQuery);
    const caller = queueCallerOf(request);
    if (caller === undefined) throw new ApiError('permission_denied', 'not allowed: queue.write');
    const done = await this.queueOps().cancel(caller, request.params.id ?? '', query.dsn ?? true);
    return { cancelled: true, id: done.id, dsnSent: done.dsnSent };
  }

  @Endpoint({
    method: 'GET',
    path: '/trace',
    action: 'trace.read',
    target: { kind: 'list' },
    summary: 'Message trace: every hop of messages by Message-ID, queue id or address, within a time range',
    query: traceQuery,
    response: Page(TraceEventSchema),
  })
  async trace(@Req() request: HttpRequest) {
    const query = parseQuery(request.query, traceQuery);
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
    query: pageShape,
    response: Page(DlqEntrySchema),
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
    response: Type.Object({ redriven: Type.Literal(true), subject: Type.String(), newSeq: Type.Integer() }),
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
    response: Done('deleted'),
  })
  async discard(@Req() request: HttpRequest) {
    const seq = int({ min: 1 })(request.params.seq, 'seq');
    if (request.pm !== undefined) request.pm.target = `dlq:${seq}`;
    if (!(await this.queue().discard(seq))) throw new ApiError('not_found', 'no such DLQ entry');
    return { deleted: true };
  }

  @Endpoint({
    method: 'GET',
    path: '/keys/kek',
    action: 'keys.read',
    target: { kind: 'system' },
    summary:
      'The key-encryption key in use (its id, never the key), how many wrapped keys are still under another KEK, and the last re-wrap',
    response: KekSchema,
  })
  async kekStatus() {
    return kekView((await this.deps.storage.admin.getKekStatus({})).status);
  }

  @Endpoint({
    method: 'POST',
    path: '/keys/kek/rewrap',
    action: 'keys.write',
    target: { kind: 'system' },
    summary:
      'Re-wrap every user data key, DKIM key and TOTP seed under the current KEK (background, resumable); remove the previous KEK only when nothing remains',
    status: 202,
    response: Type.Composite([Type.Object({ started: Type.Boolean() }), KekSchema]),
  })
  async kekRewrap() {
    const answer = await this.deps.storage.admin.startKekRewrap({});
    return { started: answer.started, ...kekView(answer.status) };
  }

  @Endpoint({
    method: 'GET',
    path: '/health',
    action: 'health.read',
    target: { kind: 'system' },
    summary:
      "Each service's readiness, each stream's size and consumer lag, and the database's size (totals and per collection; null when storage does not answer)",
    response: HealthSchema,
  })
  async health() {
    const [report, storage] = await Promise.all([
      this.deps.health.report(),
      this.deps.storage.admin.getStorageStats({}).then(storageStatsView, (error: unknown) => {
        this.deps.logger.warn({ err: error }, 'storage size unavailable');
        return null;
      }),
    ]);
    return { ...report, storage };
  }
}
