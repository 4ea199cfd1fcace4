/**
 * Queue operations for operators (libs/bus queue-operations-contract.ts has the contract): list deferred mail,
 * retry now, cancel with or without a DSN. Served over core NATS request/reply in queue group
 * `mta-delivery`, so any one replica answers (the queue records are shared in JetStream KV).
 * Authorisation (DESIGN §6): owner everything; domain-admin the mail of their domains (by
 * sender domain); auditor lists only; helpdesk and user nothing.
 */
import {
  QueueRequestChecks,
  QueueSubjects,
  type NatsConnection,
  type QueueCaller,
  type QueueCancelRequest,
  type QueueCancelResponse,
  type QueueEntry,
  type QueueFailure,
  type QueueListRequest,
  type QueueListResponse,
  type QueueRetryRequest,
  type QueueRetryResponse,
} from '@postmesh/bus';
import type { Logger } from '@postmesh/telemetry';
import { entryId, parseEntryId, queueKey, type QueueRecord, type QueueStore } from './queue-store.js';

export interface QueueOpsDeps {
  readonly nc: NatsConnection;
  readonly queue: QueueStore;
  readonly logger: Logger;
  /** Sends the failure DSN of a cancelled entry; false when none was sent (null sender). */
  readonly cancelDsn: (record: QueueRecord) => Promise<boolean>;
  readonly now?: () => number;
}

const fail = (code: QueueFailure['error']['code'], message: string): QueueFailure => ({
  ok: false,
  error: { code, message },
});

const senderDomain = (r: QueueRecord): string => r.sender.slice(r.sender.lastIndexOf('@') + 1).toLowerCase();

/** May `caller` see (`write` false) or change (`write` true) this entry? */
export function allowed(caller: QueueCaller, record: QueueRecord, write: boolean): boolean {
  switch (caller.role) {
    case 'owner':
      return true;
    case 'auditor':
      return !write;
    case 'domain-admin':
      return caller.domains.includes(senderDomain(record));
    case 'helpdesk':
    case 'user':
      return false;
  }
}

function toEntry(r: QueueRecord): QueueEntry {
  return {
    id: entryId(r.spoolId, r.domain),
    spoolId: r.spoolId,
    domain: r.domain,
    sender: r.sender,
    recipients: r.remaining,
    messageId: r.messageId,
    queuedAt: r.queuedAt,
    attempts: r.attempts,
    lastAttemptAt: r.lastAttemptAt,
    nextAttemptAt: r.nextAttemptAt,
    lastError:
      r.remoteMta && !r.lastError.includes(r.remoteMta) ? `${r.lastError} (${r.remoteMta})` : r.lastError,
  };
}

export class QueueOperations {
  private readonly subs: { unsubscribe(): void }[] = [];
  private readonly now: () => number;

  constructor(private readonly deps: QueueOpsDeps) {
    this.now = deps.now ?? Date.now;
  }

  start(): void {
    const serve = <R extends { readonly caller: QueueCaller }>(
      subject: string,
      check: (value: unknown) => { ok: true; value: R } | { ok: false; problem: string },
      handler: (request: R, caller: QueueCaller) => Promise<unknown>,
    ): void => {
      const sub = this.deps.nc.subscribe(subject, {
        queue: 'mta-delivery',
        callback: (error, msg) => {
          if (error) return;
          void (async () => {
            let answer: unknown;
            try {
              // The request is checked against its schema (libs/bus queue-operations-contract.ts);
              // a refusal names the field, e.g. `caller.role: expected one of owner, …`.
              const checked = check(msg.json<unknown>());
              if (!checked.ok) answer = fail('invalid', checked.problem);
              else {
                const { caller } = checked.value;
                const domains = caller.domains.map((d) => d.toLowerCase());
                answer = await handler(checked.value, { ...caller, domains });
              }
            } catch (e) {
              this.deps.logger.error({ err: e, subject }, 'queue operation failed');
              answer = fail(
                e instanceof SyntaxError ? 'invalid' : 'unavailable',
                e instanceof SyntaxError ? 'request is not JSON' : 'queue store unavailable',
              );
            }
            msg.respond(new TextEncoder().encode(JSON.stringify(answer)));
          })();
        },
      });
      this.subs.push(sub);
    };
    serve(QueueSubjects.list, QueueRequestChecks.list, (request, caller) => this.list(request, caller));
    serve(QueueSubjects.retry, QueueRequestChecks.retry, (request, caller) => this.retry(request, caller));
    serve(QueueSubjects.cancel, QueueRequestChecks.cancel, (request, caller) => this.cancel(request, caller));
  }

  stop(): void {
    for (const sub of this.subs) sub.unsubscribe();
  }

  async list(body: QueueListRequest, caller: QueueCaller): Promise<QueueListResponse> {
    if (caller.role === 'helpdesk' || caller.role === 'user')
      return fail('forbidden', `role ${caller.role} may not read the queue`);
    const limit = body.limit ?? 100;
    const domain = body.domain?.toLowerCase();
    const records: QueueRecord[] = [];
    for await (const { record } of this.deps.queue.all()) {
      if (record.cancelled !== undefined || !allowed(caller, record, false)) continue;
      if (domain !== undefined && record.domain !== domain && senderDomain(record) !== domain) continue;
      records.push(record);
    }
    records.sort(
      (a, b) =>
        a.queuedAt.localeCompare(b.queuedAt) ||
        entryId(a.spoolId, a.domain).localeCompare(entryId(b.spoolId, b.domain)),
    );
    const cursor = body.cursor;
    const start =
      cursor === undefined ? 0 : records.findIndex((r) => entryId(r.spoolId, r.domain) === cursor) + 1;
    const page = records.slice(start, start + limit);
    const last = page[page.length - 1];
    return {
      ok: true,
      items: page.map(toEntry),
      ...(start + limit < records.length && last !== undefined
        ? { nextCursor: entryId(last.spoolId, last.domain) }
        : {}),
    };
  }

  private async find(body: { readonly id: string }, caller: QueueCaller) {
    const id = parseEntryId(body.id);
    if (id === undefined) return fail('invalid', 'id is "<spoolId>:<domain>"');
    const key = queueKey(id.spoolId, id.domain);
    const found = await this.deps.queue.get(key);
    // Out-of-scope entries answer not-found: a domain-admin learns nothing about other domains.
    if (found === undefined || found.record.cancelled !== undefined || !allowed(caller, found.record, false))
      return fail('not-found', 'no deferred message with this id');
    if (!allowed(caller, found.record, true))
      return fail('forbidden', `role ${caller.role} may not change the queue`);
    return { key, ...found };
  }

  async retry(body: QueueRetryRequest, caller: QueueCaller): Promise<QueueRetryResponse> {
    for (let i = 0; i < 5; i++) {
      const found = await this.find(body, caller);
      if ('ok' in found) return found;
      const nextAttemptAt = new Date(this.now()).toISOString();
      if (await this.deps.queue.write(found.key, { ...found.record, nextAttemptAt }, found.revision)) {
        this.deps.logger.info({ id: body.id, actor: caller.actor }, 'queue entry: retry now');
        return { ok: true, id: entryId(found.record.spoolId, found.record.domain), nextAttemptAt };
      }
    }
    return fail('unavailable', 'the entry kept changing; try again');
  }

  async cancel(body: QueueCancelRequest, caller: QueueCaller): Promise<QueueCancelResponse> {
    for (let i = 0; i < 5; i++) {
      const found = await this.find(body, caller);
      if ('ok' in found) return found;
      const cancelled = { by: caller.actor, at: new Date(this.now()).toISOString() };
      if (await this.deps.queue.write(found.key, { ...found.record, cancelled }, found.revision)) {
        const dsnSent = body.dsn ? await this.deps.cancelDsn(found.record) : false;
        this.deps.logger.info({ id: body.id, actor: caller.actor, dsnSent }, 'queue entry cancelled');
        return { ok: true, id: entryId(found.record.spoolId, found.record.domain), dsnSent };
      }
    }
    return fail('unavailable', 'the entry kept changing; try again');
  }
}
