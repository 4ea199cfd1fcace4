/**
 * Queue operations on mta-delivery's deferred mail, over core NATS request/reply (DESIGN §6:
 * queue of a domain = owner and domain-admin; auditor reads). Every request carries the caller's
 * role and domain scope as the admin service authenticated it; mta-delivery checks it again.
 * The `caller` is not anyone's claim: only the admin service's NATS user may publish on
 * `postmesh.queue.*` (libs/bus `natsPermissions`, enforced by the NATS server), so a request that
 * reaches mta-delivery was sent by admin on behalf of the user it authenticated.
 *
 * Subjects (served by every mta-delivery replica in queue group `mta-delivery`):
 *   postmesh.queue.list    QueueListRequest   → QueueListResponse
 *   postmesh.queue.retry   QueueRetryRequest  → QueueRetryResponse
 *   postmesh.queue.cancel  QueueCancelRequest → QueueCancelResponse
 * Payloads are UTF-8 JSON. A failure is `{ ok: false, error: { code, message } }`.
 */

export const QueueSubjects = {
  list: 'postmesh.queue.list',
  retry: 'postmesh.queue.retry',
  cancel: 'postmesh.queue.cancel',
} as const;

/** The admin roles of DESIGN §6. */
export const QUEUE_CALLER_ROLES = ['owner', 'domain-admin', 'helpdesk', 'auditor', 'user'] as const;
export type QueueCallerRole = (typeof QUEUE_CALLER_ROLES)[number];

export interface QueueCaller {
  /** Who asks (admin id or token id), for the log. */
  readonly actor: string;
  readonly role: QueueCallerRole;
  /** The domains a `domain-admin` manages (lower case); ignored for system-wide roles. */
  readonly domains: readonly string[];
}

/** A deferred (message, recipient domain) pair. `id` is `<spoolId>:<domain>`. */
export interface QueueEntry {
  readonly id: string;
  readonly spoolId: string;
  readonly domain: string;
  readonly sender: string;
  /** Recipients not yet delivered nor bounced. */
  readonly recipients: readonly string[];
  readonly messageId: string;
  readonly queuedAt: string;
  readonly attempts: number;
  readonly lastAttemptAt: string;
  readonly nextAttemptAt: string;
  /** The last remote reply or network error, e.g. `451 4.7.1 try later (mx.example.org)`. */
  readonly lastError: string;
}

export type QueueErrorCode = 'forbidden' | 'invalid' | 'not-found' | 'unavailable';
export interface QueueFailure {
  readonly ok: false;
  readonly error: { readonly code: QueueErrorCode; readonly message: string };
}

export interface QueueListRequest {
  readonly caller: QueueCaller;
  /** Only entries whose sender or recipient domain is this one. */
  readonly domain?: string;
  /** At most this many entries (1..500, default 100), oldest `queuedAt` first. */
  readonly limit?: number;
  /** `nextCursor` of the previous page. */
  readonly cursor?: string;
}
export type QueueListResponse =
  | {
      readonly ok: true;
      readonly items: readonly QueueEntry[];
      readonly nextCursor?: string;
    }
  | QueueFailure;

export interface QueueRetryRequest {
  readonly caller: QueueCaller;
  readonly id: string;
}
export type QueueRetryResponse =
  { readonly ok: true; readonly id: string; readonly nextAttemptAt: string } | QueueFailure;

export interface QueueCancelRequest {
  readonly caller: QueueCaller;
  readonly id: string;
  /** Send the sender a failure DSN (RFC 3464, Action: failed) for the remaining recipients. */
  readonly dsn: boolean;
}
export type QueueCancelResponse =
  { readonly ok: true; readonly id: string; readonly dsnSent: boolean } | QueueFailure;
