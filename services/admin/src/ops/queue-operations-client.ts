/**
 * Client of mta-delivery's queue operations (`postmesh.queue.*`, core NATS request/reply; the
 * contract is libs/bus/src/queue-operations-contract.ts). mta-delivery owns the deferred mail (retry state, the
 * last error, the next attempt), so listing, retrying and cancelling go through it.
 *
 * Every request carries the caller as the admin service authenticated it (role and domain scope);
 * mta-delivery checks it again. Typed failures become API errors (`forbidden` → 403, `not-found`
 * → 404, `invalid` → 400, `unavailable` → 503); no responder or no answer in time is a 503.
 */
import {
  QueueSubjects,
  type NatsConnection,
  type QueueCaller,
  type QueueCancelResponse,
  type QueueEntry,
  type QueueErrorCode,
  type QueueFailure,
  type QueueListRequest,
  type QueueListResponse,
  type QueueRetryResponse,
} from '@postmesh/bus';
import { ApiError, type ErrorCode } from '../api/errors.js';

const ERROR_OF: Record<QueueErrorCode, ErrorCode> = {
  forbidden: 'permission_denied',
  'not-found': 'not_found',
  invalid: 'invalid_argument',
  unavailable: 'unavailable',
};

/** `<spoolId>:<recipient domain>`, as mta-delivery names a deferred (message, domain) pair. */
export function parseQueueId(id: string): { spoolId: string; domain: string } | undefined {
  const at = id.lastIndexOf(':');
  if (at <= 0 || at === id.length - 1 || id.length > 400) return undefined;
  return { spoolId: id.slice(0, at), domain: id.slice(at + 1).toLowerCase() };
}

/** The sender's domain of an entry (what a domain-admin's scope is about); '' for `<>`. */
export const senderDomainOf = (entry: QueueEntry): string =>
  entry.sender.includes('@') ? entry.sender.slice(entry.sender.lastIndexOf('@') + 1).toLowerCase() : '';

/** Most pages the target lookup reads (500 entries each) before giving up with 404. */
const LOOKUP_PAGES = 20;

export class QueueOps {
  constructor(
    private readonly nc: NatsConnection,
    private readonly timeoutMs = 5_000,
  ) {}

  private async request<T extends { ok: boolean }>(subject: string, body: unknown): Promise<T> {
    let text: string;
    try {
      const reply = await this.nc.request(subject, new TextEncoder().encode(JSON.stringify(body)), {
        timeout: this.timeoutMs,
      });
      text = new TextDecoder().decode(reply.data);
    } catch {
      // No responders (mta-delivery is not running) or no answer in time.
      throw new ApiError('unavailable', 'mta-delivery is not answering; try again');
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new ApiError('unavailable', 'mta-delivery answered something unreadable');
    }
    if (typeof parsed !== 'object' || parsed === null || !('ok' in parsed))
      throw new ApiError('unavailable', 'mta-delivery answered something unreadable');
    const answer = parsed as T | QueueFailure;
    if (answer.ok) return answer;
    const failure = answer as QueueFailure;
    const wire: string = failure.error.code;
    const code = Object.hasOwn(ERROR_OF, wire) ? ERROR_OF[wire as QueueErrorCode] : 'unavailable';
    throw new ApiError(code, failure.error.message || 'queue operation failed');
  }

  async list(
    caller: QueueCaller,
    options: { domain?: string; limit?: number; cursor?: string },
  ): Promise<{ items: readonly QueueEntry[]; nextCursor: string }> {
    const body: QueueListRequest = {
      caller,
      ...(options.domain === undefined ? {} : { domain: options.domain }),
      ...(options.limit === undefined ? {} : { limit: options.limit }),
      ...(options.cursor === undefined || options.cursor === '' ? {} : { cursor: options.cursor }),
    };
    const answer = await this.request<Extract<QueueListResponse, { ok: true }>>(QueueSubjects.list, body);
    return { items: answer.items, nextCursor: answer.nextCursor ?? '' };
  }

  /**
   * Finds one entry for the guard (to learn its sender domain before the policy decides). Asks as
   * an `auditor` (read-only, system-wide): the lookup itself changes nothing and returns nothing to
   * the client; the policy then decides on the real caller.
   */
  async find(id: string, actor: string): Promise<QueueEntry | undefined> {
    const parsed = parseQueueId(id);
    if (parsed === undefined) return undefined;
    const caller: QueueCaller = { actor: `${actor} (target lookup)`, role: 'auditor', domains: [] };
    let cursor = '';
    for (let page = 0; page < LOOKUP_PAGES; page++) {
      const { items, nextCursor } = await this.list(caller, { domain: parsed.domain, limit: 500, cursor });
      const found = items.find((e) => e.id === id);
      if (found !== undefined) return found;
      if (nextCursor === '') return undefined;
      cursor = nextCursor;
    }
    return undefined;
  }

  retry(caller: QueueCaller, id: string): Promise<Extract<QueueRetryResponse, { ok: true }>> {
    return this.request(QueueSubjects.retry, { caller, id });
  }

  cancel(caller: QueueCaller, id: string, dsn: boolean): Promise<Extract<QueueCancelResponse, { ok: true }>> {
    return this.request(QueueSubjects.cancel, { caller, id, dsn });
  }
}
