/** How storage's records look in the REST API: plain JSON, lower-case enums, ISO times. */
import type { trace } from '@postmesh/contracts';
import { admin, directory } from '@postmesh/contracts';
import type { Static } from '@sinclair/typebox';
import { roleName } from '../auth/principal.js';
import type {
  AddressSchema,
  AdminSchema,
  AppPasswordSchema,
  AuditEntrySchema,
  DkimKeySchema,
  DomainSchema,
  KekSchema,
  StorageStatsSchema,
  TokenSchema,
  TraceEventSchema,
  UsageSchema,
  UserSchema,
} from './schemas.js';

const iso = (d: Date | undefined): string | null => (d === undefined ? null : d.toISOString());

export const domainView = (d: directory.Domain): Static<typeof DomainSchema> => ({
  id: d.id,
  name: d.name,
  status: d.status === directory.DomainStatus.SUSPENDED ? 'suspended' : 'active',
  defaultQuotaBytes: d.defaultQuotaBytes,
  createdAt: iso(d.createTime),
  updatedAt: iso(d.updateTime),
});

export const userView = (u: directory.User): Static<typeof UserSchema> => ({
  id: u.id,
  address: u.address,
  domain: u.address.slice(u.address.lastIndexOf('@') + 1).toLowerCase(),
  displayName: u.displayName,
  quotaBytes: u.quotaBytes,
  quotaMessages: u.quotaMessages,
  status: u.status === directory.UserStatus.DISABLED ? 'disabled' : 'active',
  createdAt: iso(u.createTime),
  updatedAt: iso(u.updateTime),
  passwordChangedAt: iso(u.passwordChangeTime),
  /** Submission limits; 0 means the service default (smtp-inbound's configuration). */
  limits: { messagesPerHour: u.messagesPerHour, recipientsPerMessage: u.recipientsPerMessage },
  /** Two-factor sign-in is on (web sign-in needs a code; IMAP and SMTP an app password). */
  totpEnabled: u.totpEnabled,
});

/**
 * Mail storage a user occupies (storage GetUserUsage, the figures of Mailstore GetQuota), with the
 * user's message count limit (the directory's, which GetUserUsage does not carry).
 */
export const usageView = (u: admin.UserUsage, quotaMessages: number): Static<typeof UsageSchema> => ({
  usedBytes: u.usedBytes,
  quotaBytes: u.quotaBytes,
  messages: u.messages,
  quotaMessages,
});

export const storageStatsView = (s: admin.GetStorageStatsResponse): Static<typeof StorageStatsSchema> => ({
  database: s.database,
  documents: s.documents,
  dataBytes: s.dataBytes,
  storageBytes: s.storageBytes,
  indexBytes: s.indexBytes,
  totalBytes: s.totalBytes,
  collections: s.collections.map((c) => ({
    name: c.name,
    documents: c.documents,
    dataBytes: c.dataBytes,
    storageBytes: c.storageBytes,
    indexBytes: c.indexBytes,
  })),
});

export const kekView = (k: admin.KekStatus | undefined): Static<typeof KekSchema> => ({
  currentKekId: k?.currentKekId ?? '',
  remaining: {
    userKeys: k?.remainingUserKeys ?? 0,
    dkimKeys: k?.remainingDkimKeys ?? 0,
    totpSeeds: k?.remainingTotpSeeds ?? 0,
  },
  running: k?.running ?? false,
  lastRewrap:
    k === undefined || k.lastKekId === ''
      ? null
      : {
          kekId: k.lastKekId,
          userKeys: k.rewrappedUserKeys,
          dkimKeys: k.rewrappedDkimKeys,
          totpSeeds: k.rewrappedTotpSeeds,
          startedAt: iso(k.startTime),
          updatedAt: iso(k.updateTime),
          finishedAt: iso(k.finishTime),
          error: k.lastError,
        },
});

export function addressView(a: directory.Address): Static<typeof AddressSchema> {
  const t = a.target;
  const kind = t?.$case ?? 'unknown';
  const targets = t === undefined ? [] : t.$case === 'forward' ? t.value.addresses : t.value.userIds;
  return { id: a.id, address: a.address, kind, targets, createdAt: iso(a.createTime) };
}

export const dkimView = (k: directory.DkimKey): Static<typeof DkimKeySchema> => ({
  id: k.id,
  domain: k.domain,
  selector: k.selector,
  algorithm: k.algorithm === directory.DkimAlgorithm.RSA2048 ? 'rsa2048' : 'ed25519',
  status:
    (
      {
        DKIM_KEY_STATUS_PENDING: 'pending',
        DKIM_KEY_STATUS_ACTIVE: 'active',
        DKIM_KEY_STATUS_RETIRED: 'retired',
      } as Record<string, string>
    )[k.status] ?? 'unknown',
  dnsName: k.dnsName,
  dnsTxtValue: k.dnsTxtValue,
  createdAt: iso(k.createTime),
  activatedAt: iso(k.activateTime),
  retiredAt: iso(k.retireTime),
});

export const appPasswordView = (p: directory.AppPassword): Static<typeof AppPasswordSchema> => ({
  id: p.id,
  label: p.label,
  protocols: p.protocols.map((x) =>
    x === directory.Protocol.SMTP ? 'smtp' : x === directory.Protocol.IMAP ? 'imap' : 'unknown',
  ),
  createdAt: iso(p.createTime),
  lastUsedAt: iso(p.lastUseTime),
  expiresAt: iso(p.expireTime),
});

export const traceView = (e: trace.TraceEvent): Static<typeof TraceEventSchema> => ({
  id: e.id,
  time: iso(e.time),
  service: e.service,
  kind: e.kind.replace(/^EVENT_KIND_/, '').toLowerCase(),
  queueId: e.queueId,
  messageId: e.messageId,
  sender: e.sender,
  recipient: e.recipient,
  detail: e.detail,
  attributes: e.attributes,
  /** W3C trace id; the stored message carries the same one (its delivery's trace). */
  traceId: e.traceId,
  /** The trace in the operator's tracing UI (POSTMESH_TRACE_URL_TEMPLATE), when one is set. */
  traceUrl: traceUrlOf(e.traceId),
});

export const adminView = (a: admin.Admin): Static<typeof AdminSchema> => ({
  id: a.id,
  email: a.email,
  displayName: a.displayName,
  role: roleName(a.role) ?? 'unknown',
  domains: a.domains,
  status: a.status === admin.AdminStatus.DISABLED ? 'disabled' : 'active',
  totpEnabled: a.totpEnabled,
  createdAt: iso(a.createTime),
  lastLoginAt: iso(a.lastLoginTime),
  lockedUntil: iso(a.lockedUntil),
});

export const tokenView = (t: admin.ApiToken): Static<typeof TokenSchema> => ({
  id: t.id,
  adminId: t.adminId,
  name: t.name,
  scopes: t.scopes,
  domains: t.domains,
  createdAt: iso(t.createTime),
  expiresAt: iso(t.expireTime),
  lastUsedAt: iso(t.lastUseTime),
});

export const auditView = (e: admin.AuditEntry): Static<typeof AuditEntrySchema> => ({
  id: e.id,
  time: iso(e.time),
  actor: e.actor,
  actorRole: e.actorRole,
  action: e.action,
  target: e.target,
  domain: e.domain,
  sourceIp: e.sourceIp,
  result: e.result.replace(/^AUDIT_RESULT_/, '').toLowerCase(),
  detail: e.detail,
  requestId: e.requestId,
});

let traceUrlTemplate: string | undefined;

/**
 * Sets where trace ids link to (admin's POSTMESH_TRACE_URL_TEMPLATE): an http(s) URL with
 * `{traceId}`. Anything else is refused, so a link in the console can never be `javascript:`.
 */
export function setTraceUrlTemplate(template: string | undefined): void {
  if (template !== undefined && (!/^https?:\/\//i.test(template) || !template.includes('{traceId}'))) {
    throw new Error('POSTMESH_TRACE_URL_TEMPLATE must be an http(s) URL containing {traceId}');
  }
  traceUrlTemplate = template;
}

function traceUrlOf(traceId: string): string {
  if (traceUrlTemplate === undefined || !/^[0-9a-f]{32}$/.test(traceId)) return '';
  return traceUrlTemplate.replaceAll('{traceId}', traceId);
}
