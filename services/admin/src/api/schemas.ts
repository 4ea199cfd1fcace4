/**
 * The JSON Schemas of the API's responses (TypeBox: the views in views.ts are typed from them, so
 * a view that drifts from its schema does not compile). /api/docs publishes them.
 */
import { Type, type TSchema } from '@sinclair/typebox';

/** An ISO 8601 time, or null when the record has none (e.g. never used). */
const Time = Type.Union([Type.String({ description: 'ISO 8601 time' }), Type.Null()]);
const Int = Type.Integer();
const CLOSED = { additionalProperties: false } as const;

export const DomainSchema = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    status: Type.Union([Type.Literal('active'), Type.Literal('suspended')]),
    defaultQuotaBytes: Int,
    createdAt: Time,
    updatedAt: Time,
  },
  { additionalProperties: false },
);

export const LimitsSchema = Type.Object(
  { messagesPerHour: Int, recipientsPerMessage: Int },
  { additionalProperties: false, description: '0 = the service default' },
);

export const UsageSchema = Type.Object(
  {
    usedBytes: Int,
    quotaBytes: Int,
    messages: Int,
    quotaMessages: Type.Integer({ minimum: 0, description: 'message count limit; 0 = unlimited' }),
  },
  { additionalProperties: false },
);

export const UserSchema = Type.Object(
  {
    id: Type.String(),
    address: Type.String(),
    domain: Type.String(),
    displayName: Type.String(),
    quotaBytes: Int,
    quotaMessages: Type.Integer({
      minimum: 0,
      description: 'messages the user may keep over all mailboxes (RFC 9208 MESSAGE); 0 = unlimited',
    }),
    status: Type.Union([Type.Literal('active'), Type.Literal('disabled')]),
    createdAt: Time,
    updatedAt: Time,
    passwordChangedAt: Time,
    limits: LimitsSchema,
    totpEnabled: Type.Boolean(),
  },
  { additionalProperties: false },
);

/** A user in lists and after changes: with its quota usage (null when storage has no figures). */
export const UserWithUsageSchema = Type.Composite(
  [UserSchema, Type.Object({ usage: Type.Union([UsageSchema, Type.Null()]) })],
  CLOSED,
);

export const AddressSchema = Type.Object(
  {
    id: Type.String(),
    address: Type.String(),
    kind: Type.String({ description: '`alias` (to users), `forward` (to addresses)' }),
    targets: Type.Array(Type.String()),
    createdAt: Time,
  },
  { additionalProperties: false },
);

export const AddressWithTargetsSchema = Type.Composite(
  [AddressSchema, Type.Object({ targetAddresses: Type.Array(Type.String()) })],
  CLOSED,
);

export const UserDetailSchema = Type.Composite(
  [UserWithUsageSchema, Type.Object({ addresses: Type.Array(AddressSchema) })],
  CLOSED,
);

/** One entry of a mailbox's access control list (RFC 4314 §3.3 GETACL). */
export const AclEntrySchema = Type.Object(
  {
    identifier: Type.String({
      description: "a user's address, or anyone (every user of the owner's domain)",
    }),
    rights: Type.String({ description: 'RFC 4314 rights, c and d shown for their member rights' }),
  },
  { additionalProperties: false },
);

/** A team mailbox: a mailbox of an account and who may use it (docs/shared-mailboxes.md). */
export const TeamMailboxSchema = Type.Object(
  {
    mailbox: Type.Object(
      { id: Type.String({ description: 'empty when only the path was read' }), path: Type.String() },
      { additionalProperties: false },
    ),
    acl: Type.Array(AclEntrySchema, { description: 'the owner first (every right), then by identifier' }),
  },
  { additionalProperties: false },
);

export const DkimKeySchema = Type.Object(
  {
    id: Type.String(),
    domain: Type.String(),
    selector: Type.String(),
    algorithm: Type.Union([Type.Literal('rsa2048'), Type.Literal('ed25519')]),
    status: Type.String({ description: '`pending`, `active` or `retired`' }),
    dnsName: Type.String(),
    dnsTxtValue: Type.String(),
    createdAt: Time,
    activatedAt: Time,
    retiredAt: Time,
  },
  { additionalProperties: false },
);

export const AppPasswordSchema = Type.Object(
  {
    id: Type.String(),
    label: Type.String(),
    protocols: Type.Array(Type.String({ description: '`smtp` or `imap`' })),
    createdAt: Time,
    lastUsedAt: Time,
    expiresAt: Time,
  },
  { additionalProperties: false },
);

export const TraceEventSchema = Type.Object(
  {
    id: Type.String(),
    time: Time,
    service: Type.String(),
    kind: Type.String(),
    queueId: Type.String(),
    messageId: Type.String(),
    sender: Type.String(),
    recipient: Type.String(),
    detail: Type.String(),
    attributes: Type.Record(Type.String(), Type.String()),
    traceId: Type.String({ description: 'W3C trace id' }),
    traceUrl: Type.String({ description: "the trace in the operator's tracing UI, or ''" }),
  },
  { additionalProperties: false },
);

export const AdminSchema = Type.Object(
  {
    id: Type.String(),
    email: Type.String(),
    displayName: Type.String(),
    role: Type.String(),
    domains: Type.Array(Type.String()),
    status: Type.Union([Type.Literal('active'), Type.Literal('disabled')]),
    totpEnabled: Type.Boolean(),
    createdAt: Time,
    lastLoginAt: Time,
    lockedUntil: Time,
  },
  { additionalProperties: false },
);

export const TokenSchema = Type.Object(
  {
    id: Type.String(),
    adminId: Type.String(),
    name: Type.String(),
    scopes: Type.Array(Type.String()),
    domains: Type.Array(Type.String()),
    createdAt: Time,
    expiresAt: Time,
    lastUsedAt: Time,
  },
  { additionalProperties: false },
);

export const AuditEntrySchema = Type.Object(
  {
    id: Type.String(),
    time: Time,
    actor: Type.String(),
    actorRole: Type.String(),
    action: Type.String(),
    target: Type.String(),
    domain: Type.String(),
    sourceIp: Type.String(),
    result: Type.String(),
    detail: Type.String(),
    requestId: Type.String(),
  },
  { additionalProperties: false },
);

export const StorageStatsSchema = Type.Object(
  {
    database: Type.String(),
    documents: Int,
    dataBytes: Int,
    storageBytes: Int,
    indexBytes: Int,
    totalBytes: Int,
    collections: Type.Array(
      Type.Object(
        { name: Type.String(), documents: Int, dataBytes: Int, storageBytes: Int, indexBytes: Int },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export const KekSchema = Type.Object(
  {
    currentKekId: Type.String(),
    remaining: Type.Object({ userKeys: Int, dkimKeys: Int, totpSeeds: Int }, { additionalProperties: false }),
    running: Type.Boolean(),
    lastRewrap: Type.Union([
      Type.Object(
        {
          kekId: Type.String(),
          userKeys: Int,
          dkimKeys: Int,
          totpSeeds: Int,
          startedAt: Time,
          updatedAt: Time,
          finishedAt: Time,
          error: Type.String(),
        },
        { additionalProperties: false },
      ),
      Type.Null(),
    ]),
  },
  { additionalProperties: false },
);

export const WebhookSchema = Type.Object(
  {
    id: Type.String(),
    domain: Type.String(),
    url: Type.String(),
    events: Type.Array(Type.String()),
    enabled: Type.Boolean(),
    createdAt: Time,
    updatedAt: Time,
  },
  { additionalProperties: false },
);

/** A page of a list: `nextPageToken` is '' on the last page. */
export const Page = <T extends TSchema>(item: T) =>
  Type.Object({ items: Type.Array(item), nextPageToken: Type.String() }, { additionalProperties: false });

/** The answer of a change that has nothing else to say (`{deleted: true}`, `{revoked: true}`…). */
export const Done = <K extends string>(key: K) =>
  Type.Object({ [key]: Type.Literal(true) } as Record<K, ReturnType<typeof Type.Literal<true>>>);

/** The signed-in principal (GET /me, and the answer to a sign-in). */
export const MeSchema = Type.Object(
  {
    kind: Type.Union([Type.Literal('admin'), Type.Literal('user')]),
    role: Type.String(),
    user: Type.Optional(UserSchema),
    admin: Type.Optional(AdminSchema),
    domains: Type.Array(Type.String()),
    permissions: Type.Array(Type.String()),
    csrfToken: Type.Optional(Type.String({ description: 'send as X-CSRF-Token on changes (sessions)' })),
  },
  { additionalProperties: false },
);

/** An answer with one secret shown once (a new token or app password). */
export const WithSecret = <T extends TSchema>(schema: T) =>
  Type.Composite([schema, Type.Object({ secret: Type.String({ description: 'shown once' }) })], CLOSED);

/** Something the answer may or may not have, as null. */
const OrNull = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
/** A part of a dashboard answer whose members may grow: documented members, more allowed. */
const Open = (properties: Parameters<typeof Type.Object>[0], description?: string) =>
  Type.Object(properties, description === undefined ? {} : { description });

export const DnsRecordsSchema = Type.Object(
  {
    domain: Type.String(),
    records: Type.Array(
      Type.Object({
        type: Type.Union([Type.Literal('MX'), Type.Literal('TXT'), Type.Literal('CNAME')]),
        name: Type.String(),
        value: Type.String(),
        purpose: Type.String(),
        status: Type.Optional(
          Type.Union([
            Type.Literal('ok'),
            Type.Literal('missing'),
            Type.Literal('different'),
            Type.Literal('error'),
          ]),
        ),
        found: Type.Optional(Type.Array(Type.String())),
        problem: Type.Optional(Type.String()),
      }),
    ),
    checkedAt: Type.Optional(
      Type.String({ description: 'with check=true: when the records were looked up' }),
    ),
  },
  CLOSED,
);

/** A deferred outbound (message, recipient domain), from mta-delivery's queue operations. */
export const QueueEntrySchema = Type.Object(
  {
    id: Type.String({ description: '`<spoolId>:<domain>`' }),
    spoolId: Type.String(),
    domain: Type.String(),
    sender: Type.String(),
    recipients: Type.Array(Type.String()),
    messageId: Type.String(),
    queuedAt: Type.String(),
    attempts: Int,
    lastAttemptAt: Type.String(),
    nextAttemptAt: Type.String(),
    lastError: Type.String(),
  },
  CLOSED,
);

export const DlqEntrySchema = Type.Object(
  {
    seq: Int,
    subject: Type.String(),
    time: Type.String(),
    size: Int,
    spoolId: Type.String(),
    messageId: Type.String(),
    sender: Type.String(),
    senderDomain: Type.String(),
    recipients: Type.Array(Type.String()),
    receivedAt: Type.String(),
    error: Type.String(),
    originalSubject: Type.String(),
    originalStream: Type.String(),
    attempts: Int,
  },
  CLOSED,
);

const StreamSchema = Type.Object({
  name: Type.String(),
  messages: Int,
  bytes: Int,
  consumers: Type.Array(Type.Object({ name: Type.String(), pending: Int, ackPending: Int })),
});

export const HealthSchema = Type.Object(
  {
    services: Type.Array(
      Type.Object(
        {
          service: Type.String(),
          url: Type.String(),
          ready: Type.Boolean(),
          status: Int,
          detail: Type.String(),
        },
        CLOSED,
      ),
    ),
    streams: Type.Array(StreamSchema),
    storage: OrNull(StorageStatsSchema),
  },
  CLOSED,
);

export const OverviewSchema = Type.Object(
  {
    generatedAt: Type.String(),
    services: OrNull(
      Type.Array(
        Type.Object({ service: Type.String(), ready: Type.Boolean(), status: Int, detail: Type.String() }),
      ),
    ),
    inbound: OrNull(Type.Object({ messages: Int, pending: Int })),
    deferred: OrNull(Open({ count: Int, more: Type.Boolean(), error: Type.String() })),
    dlq: OrNull(Open({ size: Int, recent: Type.Array(Open({ seq: Int })), error: Type.String() })),
    alerts: OrNull(Open({ recent: Type.Array(TraceEventSchema), error: Type.String() })),
    failedDeliveries: OrNull(Open({ recent: Type.Array(TraceEventSchema), error: Type.String() })),
  },
  CLOSED,
);

export const SetupSchema = Type.Object(
  {
    checkedAt: Type.String(),
    domains: Type.Array(
      Open(
        {
          domain: Type.String(),
          missing: Type.Optional(Type.Boolean()),
          status: Type.Optional(Type.String()),
          activeDkimKey: Type.Optional(OrNull(Type.Boolean())),
          postmaster: Type.Optional(Type.Boolean()),
          dns: Type.Optional(OrNull(Open({ failing: Type.Array(Open({ name: Type.String() })) }))),
        },
        'one domain; `missing` when it was removed meanwhile',
      ),
    ),
    more: Type.Boolean({ description: 'more domains than the page shows' }),
    tls: Type.Array(Open({}, 'a TLS probe of the mail host (certificate, expiry)')),
  },
  CLOSED,
);

export const TotpEnrollmentSchema = Type.Object(
  {
    secretBase32: Type.String({ description: 'the seed (RFC 4648 §6 base32); shown once' }),
    otpauthUri: Type.String(),
  },
  CLOSED,
);

export const DocsSchema = Type.Object(
  { openapi: Type.Literal('3.1.0'), info: Type.Object({}), paths: Type.Object({}) },
  { description: 'an OpenAPI 3.1 document' },
);

export const SieveScriptSchema = Type.Object({ name: Type.String(), active: Type.Boolean() }, CLOSED);

export const VacationSchema = Type.Object(
  {
    enabled: Type.Boolean(),
    subject: Type.String(),
    body: Type.String(),
    days: Int,
    editedByHand: Type.Boolean({ description: 'the vacation script was written by hand (not this form)' }),
  },
  CLOSED,
);
