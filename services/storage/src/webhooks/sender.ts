/**
 * The webhook sender (docs/webhooks.md): durable consumer `storage-webhooks` on MAIL_EVENTS.
 * Each event that maps onto a webhook type is POSTed, signed, to every enabled endpoint of the
 * domains it concerns. Storage sends them because the endpoints, their encrypted secrets and
 * the per-endpoint delivery records all live in the database storage alone touches: one query
 * per event, no new gRPC surface, and the secrets never leave storage.
 *
 * Exactly once per endpoint: a 2xx answer is recorded in `webhook_deliveries` under
 * `<webhookId>:<eventId>` before the event is acked, and an endpoint with a record is skipped,
 * so a redelivered event (a retry for another endpoint, or after a restart) is not sent again
 * where it already arrived. Only a crash between the endpoint's answer and that write can repeat
 * it; the `Postmesh-Event-Id` header lets a receiver drop that repeat.
 *
 * Retries: a failed endpoint makes the event come back (nak with an exponential delay) until it
 * succeeds or `maxAttempts` deliveries of the event were made; then the endpoint is given up
 * (`failed` record) and an alert event is raised. Other endpoints are not held up meanwhile.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import {
  ConsumerLoop,
  Consumers,
  JobOutcomes,
  Streams,
  mailEvent,
  parseMailEvent,
  publishMailEvent,
  webhookDomainsOf,
  webhookEventTypeOf,
  type AlertName,
  type AlertSeverity,
  type Bus,
  type JobOutcome,
  type MailEvent,
  type WebhookEventType,
} from '@postmesh/bus';
import type { Logger } from '@postmesh/telemetry';
import type { Collection, Db } from 'mongodb';
import { Collections, type WebhookDeliveryDoc, type WebhookDoc } from '../db/schema.js';
import type { DestinationPolicy } from './destination.js';
import { SIGNATURE_HEADER, signWebhook } from './signature.js';
import type { WebhookStore } from './webhook-store.js';

export interface WebhookSenderOptions {
  readonly bus: Bus;
  readonly db: Db;
  readonly store: WebhookStore;
  readonly destinations: DestinationPolicy;
  readonly logger: Logger;
  /** Deliveries of an event before a failing endpoint is given up (POSTMESH_WEBHOOK_MAX_ATTEMPTS). */
  readonly maxAttempts?: number;
  /** First retry delay; doubles per attempt up to an hour (POSTMESH_WEBHOOK_RETRY_BASE_MS). */
  readonly retryBaseMs?: number;
  /** Per request (POSTMESH_WEBHOOK_TIMEOUT_MS). */
  readonly timeoutMs?: number;
  /** Events handled at once. */
  readonly concurrency?: number;
  readonly now?: () => Date;
}

/** The JSON body every endpoint receives (docs/webhooks.md). */
export interface WebhookPayload {
  readonly id: string;
  readonly type: WebhookEventType;
  readonly time: string;
  readonly domain: string;
  readonly data: {
    readonly kind: MailEvent['kind'];
    readonly service: string;
    readonly queueId?: string;
    readonly messageId?: string;
    readonly sender?: string;
    readonly recipient?: string;
    readonly detail?: string;
    readonly attributes: Readonly<Record<string, string>>;
  };
}

type Attempt =
  | { readonly ok: true; readonly status: number }
  | { readonly ok: false; readonly status: number; readonly reason: string };

const MAX_RETRY_MS = 3_600_000;

export function retryDelayMs(attempt: number, baseMs: number): number {
  return Math.min(baseMs * 2 ** Math.max(0, attempt - 1), MAX_RETRY_MS);
}

export function webhookPayload(event: MailEvent, type: WebhookEventType, domain: string): WebhookPayload {
  return {
    id: event.eventId,
    type,
    time: event.time,
    domain,
    data: {
      kind: event.kind,
      service: event.service,
      ...(event.queueId === undefined ? {} : { queueId: event.queueId }),
      ...(event.messageId === undefined ? {} : { messageId: event.messageId }),
      ...(event.sender === undefined ? {} : { sender: event.sender }),
      ...(event.recipient === undefined ? {} : { recipient: event.recipient }),
      ...(event.detail === undefined ? {} : { detail: event.detail }),
      attributes: event.attributes ?? {},
    },
  };
}

export class WebhookSender {
  private readonly loop: ConsumerLoop;
  private readonly deliveries: Collection<WebhookDeliveryDoc>;
  private readonly maxAttempts: number;
  private readonly retryBaseMs: number;
  private readonly timeoutMs: number;
  private readonly now: () => Date;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly options: WebhookSenderOptions) {
    this.deliveries = options.db.collection(Collections.webhookDeliveries);
    this.maxAttempts = options.maxAttempts ?? 8;
    this.retryBaseMs = options.retryBaseMs ?? 10_000;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.now = options.now ?? (() => new Date());
    this.loop = new ConsumerLoop({
      js: options.bus.js,
      stream: Streams.MAIL_EVENTS,
      consumer: Consumers.STORAGE_WEBHOOKS,
      logger: options.logger,
      concurrency: options.concurrency ?? 16,
      // Attempts are bounded per endpoint here, never by dead-lettering the shared event.
      maxDeliver: 0,
      handler: (msg) => {
        const parsed = parseMailEvent(msg.data);
        if (!parsed.ok) return Promise.resolve(JobOutcomes.drop(`malformed event: ${parsed.problem}`));
        return this.handle(parsed.event, msg.info.deliveryCount);
      },
    });
  }

  start(): void {
    this.loop.start();
    // A record is needed only while its event can still be redelivered: MAIL_EVENTS keeps
    // events 7 days.
    const sweep = (): void => {
      const before = new Date(this.now().getTime() - 8 * 24 * 3_600_000);
      this.deliveries.deleteMany({ at: { $lt: before } }).catch((error: unknown) => {
        this.options.logger.warn({ err: error }, 'webhook delivery record sweep failed');
      });
    };
    this.sweeper = setInterval(sweep, 3_600_000);
    this.sweeper.unref();
  }

  /** Stops taking events; requests in flight finish and are recorded first. */
  async stop(): Promise<void> {
    clearInterval(this.sweeper);
    await this.loop.stop();
  }

  /** One delivery of one event to every endpoint that has not had it yet. */
  async handle(event: MailEvent, attempt: number): Promise<JobOutcome> {
    const type = webhookEventTypeOf(event);
    if (type === undefined) return JobOutcomes.ack;
    const endpoints = await this.options.store.endpointsFor(type, webhookDomainsOf(event));
    if (endpoints.length === 0) return JobOutcomes.ack;
    const done = new Set(
      (
        await this.deliveries
          .find({ _id: { $in: endpoints.map((e) => deliveryId(e, event)) } }, { projection: { _id: 1 } })
          .toArray()
      ).map((d) => d._id),
    );
    const pending = endpoints.filter((e) => !done.has(deliveryId(e, event)));
    const failures: string[] = [];
    await Promise.all(
      pending.map(async (endpoint) => {
        const result = await this.send(endpoint, event, type, attempt);
        if (result.ok) {
          await this.record(endpoint, event, 'delivered', attempt, result.status);
          return;
        }
        this.options.logger.warn(
          {
            webhookId: endpoint._id.toHexString(),
            domain: endpoint.domain,
            eventId: event.eventId,
            attempt,
            status: result.status,
            reason: result.reason,
          },
          'webhook request failed',
        );
        if (attempt >= this.maxAttempts) {
          await this.giveUp(endpoint, event, type, attempt, result);
          return;
        }
        failures.push(`${endpoint._id.toHexString()}: ${result.reason}`);
      }),
    );
    if (failures.length === 0) return JobOutcomes.ack;
    return JobOutcomes.retry(failures.join('; ').slice(0, 500), retryDelayMs(attempt, this.retryBaseMs));
  }

  private async record(
    endpoint: WebhookDoc,
    event: MailEvent,
    status: WebhookDeliveryDoc['status'],
    attempts: number,
    httpStatus: number,
  ): Promise<void> {
    const doc: WebhookDeliveryDoc = {
      _id: deliveryId(endpoint, event),
      webhookId: endpoint._id.toHexString(),
      eventId: event.eventId,
      status,
      attempts,
      httpStatus,
      at: this.now(),
    };
    await this.deliveries.replaceOne({ _id: doc._id }, doc, { upsert: true });
  }

  /** Attempts exhausted: remember it (no more tries) and tell the operators. */
  private async giveUp(
    endpoint: WebhookDoc,
    event: MailEvent,
    type: WebhookEventType,
    attempts: number,
    result: Attempt & { ok: false },
  ): Promise<void> {
    const webhookId = endpoint._id.toHexString();
    // The alert first: if it is not stored the event comes back and the endpoint is tried again.
    await publishMailEvent(
      this.options.bus.js,
      mailEvent({
        eventId: `alert:webhook:${webhookId}:${event.eventId}`.slice(0, 1_000),
        service: 'storage',
        kind: 'alert',
        detail: `webhook ${webhookId} of ${endpoint.domain} did not take ${type} event ${event.eventId} after ${attempts} attempts: ${result.reason}`,
        attributes: {
          alert: 'webhook-failed' satisfies AlertName,
          severity: 'warning' satisfies AlertSeverity,
          about: webhookId,
          webhook_id: webhookId,
          domain: endpoint.domain,
          event_id: event.eventId,
          event_type: type,
          attempts: String(attempts),
          http_status: String(result.status),
          reason: result.reason,
        },
        ...(event.traceId === undefined ? {} : { traceId: event.traceId }),
      }),
    );
    await this.record(endpoint, event, 'failed', attempts, result.status);
  }

  private async send(
    endpoint: WebhookDoc,
    event: MailEvent,
    type: WebhookEventType,
    attempt: number,
  ): Promise<Attempt> {
    const problem = this.options.destinations.urlProblem(endpoint.url);
    if (problem !== undefined) return { ok: false, status: 0, reason: problem };
    const body = Buffer.from(JSON.stringify(webhookPayload(event, type, endpoint.domain)), 'utf8');
    const secret = await this.options.store.secretOf(endpoint);
    const timestamp = Math.floor(this.now().getTime() / 1_000);
    const url = new URL(endpoint.url);
    const headers = {
      'content-type': 'application/json',
      'content-length': String(body.length),
      'user-agent': 'Postmesh-Webhooks/1',
      'postmesh-event-id': event.eventId,
      'postmesh-event-type': type,
      'postmesh-webhook-id': endpoint._id.toHexString(),
      'postmesh-delivery-attempt': String(attempt),
      [SIGNATURE_HEADER.toLowerCase()]: signWebhook(secret, timestamp, body),
    };
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<Attempt>((resolve) => {
      const req = request(
        url,
        { method: 'POST', headers, lookup: this.options.destinations.lookup, timeout: this.timeoutMs },
        (res: IncomingMessage) => {
          const status = res.statusCode ?? 0;
          // The answer's body means nothing to us; read and drop it so the socket is released.
          res.resume();
          res.on('end', () =>
            resolve(
              status >= 200 && status < 300
                ? { ok: true, status }
                : { ok: false, status, reason: `HTTP ${status}` },
            ),
          );
          res.on('error', (error) => resolve({ ok: false, status, reason: error.message }));
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      req.on('error', (error) => resolve({ ok: false, status: 0, reason: error.message.slice(0, 200) }));
      req.end(body);
    });
  }
}

const deliveryId = (endpoint: WebhookDoc, event: MailEvent): string =>
  `${endpoint._id.toHexString()}:${event.eventId}`;
