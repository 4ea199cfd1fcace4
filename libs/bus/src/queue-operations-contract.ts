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
import { Type, compile, type DeepReadonly, type Static } from '@postmesh/schema';

export const QueueSubjects = {
  list: 'postmesh.queue.list',
  retry: 'postmesh.queue.retry',
  cancel: 'postmesh.queue.cancel',
} as const;

/** The admin roles of DESIGN §6. */
export const QUEUE_CALLER_ROLES = ['owner', 'domain-admin', 'helpdesk', 'auditor', 'user'] as const;
export type QueueCallerRole = (typeof QUEUE_CALLER_ROLES)[number];

export const QueueCallerSchema = Type.Object(
  {
    actor: Type.String({ maxLength: 320, description: 'who asks (admin id or token id), for the log' }),
    role: Type.Unsafe<QueueCallerRole>({ type: 'string', enum: [...QUEUE_CALLER_ROLES] }),
    domains: Type.Array(Type.String({ maxLength: 253 }), {
      maxItems: 10_000,
      description: 'the domains a domain-admin manages; ignored for system-wide roles',
    }),
  },
  { description: 'the caller as the admin service authenticated it' },
);
export type QueueCaller = DeepReadonly<Static<typeof QueueCallerSchema>>;

/** A deferred (message, recipient domain) pair. `id` is `<spoolId>:<domain>`. */
export const QueueEntrySchema = Type.Object({
  id: Type.String({ description: '<spoolId>:<domain>' }),
  spoolId: Type.String(),
  domain: Type.String(),
  sender: Type.String(),
  recipients: Type.Array(Type.String(), { description: 'recipients not yet delivered nor bounced' }),
  messageId: Type.String(),
  queuedAt: Type.String(),
  attempts: Type.Integer({ minimum: 0 }),
  lastAttemptAt: Type.String(),
  nextAttemptAt: Type.String(),
  lastError: Type.String({
    description: 'the last remote reply or network error, e.g. 451 4.7.1 try later (mx.example.org)',
  }),
});
export type QueueEntry = DeepReadonly<Static<typeof QueueEntrySchema>>;

const EntryId = Type.String({
  pattern: '^[A-Za-z0-9_-]{8,64}:[a-z0-9.-]{1,253}$',
  description: 'an entry id, <spoolId>:<domain>',
});

/**
 * The requests. Unknown fields are allowed (and ignored), so an admin service of a newer release
 * can send one before every mta-delivery replica reads it.
 */
export const QueueListRequestSchema = Type.Object({
  caller: QueueCallerSchema,
  domain: Type.Optional(
    Type.String({ maxLength: 253, description: 'only entries whose sender or recipient domain is this one' }),
  ),
  limit: Type.Optional(
    Type.Integer({ minimum: 1, maximum: 500, description: 'at most this many entries, oldest first (100)' }),
  ),
  cursor: Type.Optional(Type.String({ maxLength: 400, description: 'nextCursor of the previous page' })),
});
export type QueueListRequest = DeepReadonly<Static<typeof QueueListRequestSchema>>;

export const QueueRetryRequestSchema = Type.Object({
  caller: QueueCallerSchema,
  id: EntryId,
});
export type QueueRetryRequest = DeepReadonly<Static<typeof QueueRetryRequestSchema>>;

export const QueueCancelRequestSchema = Type.Object({
  caller: QueueCallerSchema,
  id: EntryId,
  dsn: Type.Boolean({
    description: 'send the sender a failure DSN (RFC 3464, Action: failed) for the remaining recipients',
  }),
});
export type QueueCancelRequest = DeepReadonly<Static<typeof QueueCancelRequestSchema>>;

/** The requests' validators (compiled once), for the server and for tests of clients. */
export const QueueRequestChecks = {
  list: compile(QueueListRequestSchema),
  retry: compile(QueueRetryRequestSchema),
  cancel: compile(QueueCancelRequestSchema),
} as const;

export type QueueErrorCode = 'forbidden' | 'invalid' | 'not-found' | 'unavailable';
export interface QueueFailure {
  readonly ok: false;
  readonly error: { readonly code: QueueErrorCode; readonly message: string };
}

export type QueueListResponse =
  | {
      readonly ok: true;
      readonly items: readonly QueueEntry[];
      readonly nextCursor?: string;
    }
  | QueueFailure;

export type QueueRetryResponse =
  { readonly ok: true; readonly id: string; readonly nextAttemptAt: string } | QueueFailure;

export type QueueCancelResponse =
  { readonly ok: true; readonly id: string; readonly dsnSent: boolean } | QueueFailure;
