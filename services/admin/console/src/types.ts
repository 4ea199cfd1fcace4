/** What the API returns, as the console uses it (the views of services/admin/src/api/views.ts). */

export interface Domain {
  id: string;
  name: string;
  status: string;
  defaultQuotaBytes: number;
  createdAt: string;
}
export interface User {
  id: string;
  address: string;
  domain: string;
  displayName: string;
  quotaBytes: number;
  /** Messages the user may keep over all mailboxes; 0 = unlimited. */
  quotaMessages: number;
  status: string;
  createdAt: string;
  /** Mail stored against the quotas; null when storage no longer knows the user. */
  usage: { usedBytes: number; quotaBytes: number; messages: number; quotaMessages: number } | null;
  /** Submission limits; 0 = the service default. */
  limits: { messagesPerHour: number; recipientsPerMessage: number };
  /** Two-factor sign-in is on. */
  totpEnabled: boolean;
}

export interface Alias {
  id: string;
  address: string;
  kind: string;
  targets: string[];
  /** Where it delivers, as addresses (the API resolves user ids). */
  targetAddresses?: string[];
}
export interface DnsRecord {
  type: string;
  name: string;
  value: string;
  purpose: string;
  status?: string;
  found?: string[];
  problem?: string;
}
export interface DkimKey {
  id: string;
  selector: string;
  algorithm: string;
  status: string;
  dnsName: string;
  dnsTxtValue: string;
}
export interface TraceEvent {
  id: string;
  time: string;
  service: string;
  kind: string;
  queueId: string;
  messageId: string;
  sender: string;
  recipient: string;
  detail: string;
  attributes: Record<string, string>;
  /** W3C trace id; the stored message records the same one. */
  traceId: string;
  /** The trace in the operator's tracing UI; empty when none is configured. */
  traceUrl: string;
}
export interface QueueEntry {
  seq: number;
  subject: string;
  time: string;
  sender: string;
  recipients: string[];
  messageId: string;
  error?: string;
  attempts?: number;
  originalSubject?: string;
}
/** A deferred (message, recipient domain) pair in mta-delivery's queue. */
export interface OutboundEntry {
  id: string;
  domain: string;
  sender: string;
  recipients: string[];
  messageId: string;
  queuedAt: string;
  attempts: number;
  nextAttemptAt: string;
  lastError: string;
}
export interface AuditEntry {
  id: string;
  time: string;
  actor: string;
  actorRole: string;
  action: string;
  target: string;
  sourceIp: string;
  result: string;
  detail: string;
}
export interface Admin {
  id: string;
  email: string;
  role: string;
  domains: string[];
  status: string;
  totpEnabled: boolean;
  lastLoginAt: string | null;
  lockedUntil?: string | null;
}
export interface Token {
  id: string;
  name: string;
  scopes: string[];
  domains: string[];
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
}

export interface HealthReport {
  services: { service: string; ready: boolean; status: number; url: string }[];
  streams: {
    name: string;
    messages: number;
    bytes: number;
    consumers: { name: string; pending: number; ackPending: number }[];
  }[];
  storage: {
    database: string;
    documents: number;
    dataBytes: number;
    storageBytes: number;
    indexBytes: number;
    totalBytes: number;
    collections: {
      name: string;
      documents: number;
      dataBytes: number;
      storageBytes: number;
      indexBytes: number;
    }[];
  } | null;
}

export interface KekStatus {
  currentKekId: string;
  remaining: { userKeys: number; dkimKeys: number; totpSeeds: number };
  running: boolean;
  lastRewrap: {
    kekId: string;
    userKeys: number;
    dkimKeys: number;
    totpSeeds: number;
    startedAt: string | null;
    finishedAt: string | null;
    error: string;
  } | null;
}
