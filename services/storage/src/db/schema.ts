/**
 * The MongoDB data model of DESIGN §4: collection names and document shapes, shared by the
 * directory, mailstore, delivery and trace modules of the storage service. Only storage imports
 * this (and the driver). Keep to the subset FerretDB and MongoDB 7 share: no transactions, no
 * change streams, no `$text`, no nested arrays, no `.`/`$` in field names, no NUL in strings.
 */
import type { Binary, ObjectId } from 'mongodb';
import type { BodyPart, Envelope } from '@postmesh/mime';

export const Collections = {
  domains: 'domains',
  users: 'users',
  addresses: 'addresses',
  appPasswords: 'app_passwords',
  dkimKeys: 'dkim_keys',
  mailboxes: 'mailboxes',
  messages: 'messages',
  /** Expunged (mailboxId, uid, modseq) for QRESYNC VANISHED and session catch-up. */
  tombstones: 'tombstones',
  /** GridFS bucket of the GridFS blob store (collections `blobs.files`, `blobs.chunks`). */
  blobs: 'blobs',
  /** Reference counts of blobs shared by several mailboxes. */
  blobRefs: 'blob_refs',
  /** `(spoolId, recipient)` unique: the idempotency record of a delivery (DESIGN §2 step 6). */
  deliveries: 'deliveries',
  events: 'events',
  admins: 'admins',
  audit: 'audit',
  apiTokens: 'api_tokens',
  /** Key-encryption key metadata (which KEK wraps which data keys; rotation progress). */
  keyring: 'keyring',
  /** A domain's webhook endpoints (webhooks/webhook-store.ts). */
  webhooks: 'webhooks',
  /** `<webhookId>:<eventId>`: an event sent to an endpoint (or given up on), sent once. */
  webhookDeliveries: 'webhook_deliveries',
  /** Users' Sieve scripts (`(userId, name)` unique; at most one active per user). */
  sieveScripts: 'sieve_scripts',
  /** Sieve side effects already carried out, and vacation replies per (user, sender, handle). */
  sieveLedger: 'sieve_ledger',
  /** `<account>:<step>`: a TOTP code used for a sign-in, so it works once (totp/enrolment.ts). */
  totpClaims: 'totp_claims',
} as const;

/**
 * A TOTP time step whose code an account has used. Inserting it is the claim: the unique `_id`
 * makes the insert succeed for exactly one of several sign-ins racing with the same code, on
 * FerretDB as on MongoDB (an insert is atomic on both; a compare-and-set update is not isolated
 * on FerretDB, ADR 0005).
 */
export interface TotpClaimDoc {
  /** `<account>:<step>`. */
  _id: string;
  /** The account's KEK wrapping context of its seed (`user-totp:<id>`, `admin-totp:<id>`). */
  account: string;
  step: number;
  at: Date;
}

export interface SieveScriptDoc {
  userId: string;
  name: string;
  content: string;
  /** sha256 hex of `content`. */
  version: string;
  active: boolean;
  updatedAt: Date;
}

/**
 * `_id` is `fx:<spoolId>:<userId>:<n>` (a redirect, reject or reply of one delivery, done),
 * `vac:<userId>:<sha256(sender, handle)>` (the last vacation reply to a sender, RFC 5230 §4.2) or
 * `notice:<userId>:<script version>` (the user was told that this script failed).
 */
export interface SieveLedgerDoc {
  _id: string;
  at: Date;
  /** vac: no further reply to this sender with this handle before this time. */
  until?: Date;
  /** vac: the job that sent the reply (its redelivery may complete it, nothing else may). */
  spoolId?: string;
}

/** A key wrapped (encrypted) by another key with AES-256-GCM. */
export interface WrappedKey {
  /** Id of the wrapping key: a KEK id, or `user:<userId>:<version>` for a user data key. */
  readonly by: string;
  readonly iv: Binary;
  readonly tag: Binary;
  readonly ciphertext: Binary;
}

export type DomainStatus = 'active' | 'suspended';

export interface DomainDoc {
  _id: ObjectId;
  /** Lower-case ASCII (A-labels for IDNs). Unique. */
  name: string;
  status: DomainStatus;
  /** User id receiving mail for unknown addresses of this domain, if any. */
  catchAllUserId?: string;
  /** Quota given to new users when CreateUser leaves it unset; 0 = unlimited. */
  defaultQuotaBytes?: number;
  createdAt: Date;
  updatedAt: Date;
}

export type UserStatus = 'active' | 'suspended';

export interface UserDoc {
  _id: ObjectId;
  /** Primary address as given (local part case kept); `addressKey` is the normalised form. */
  address: string;
  addressKey: string;
  domain: string;
  /** Id of the domain document. */
  domainId: string;
  displayName: string;
  /** argon2id PHC string. */
  passwordHash: string;
  status: UserStatus;
  /** Quota in bytes; 0 = unlimited. */
  quotaBytes: number;
  /**
   * No longer kept (2026-12-07): a user's usage is the sum of their mailboxes' SIZE and MESSAGES
   * counters (`usageOf`, mailstore/mailboxes.ts), which the owner moves in memory, so an APPEND or
   * EXPUNGE writes nothing here. Documents written before keep the figure they had; it is ignored.
   */
  usedBytes?: number;
  /**
   * Message count quota (RFC 9208 §5.2 MESSAGE) over all mailboxes; 0 or absent (users created
   * before it existed) = unlimited.
   */
  quotaMessages?: number;
  /** Sending limits for submission (messages per hour, recipients per message). */
  limits: { messagesPerHour: number; recipientsPerMessage: number };
  /** The user's data key, wrapped by the key-encryption key (DESIGN §5). */
  dataKey: WrappedKey;
  dataKeyVersion: number;
  /** When the password was last set. */
  passwordChangedAt?: Date;
  /** Two-factor sign-in (totp/enrolment.ts): the TOTP seed, wrapped by the KEK. */
  totpSecret?: WrappedKey;
  totpEnabled?: boolean;
  /** A seed from a begun enrolment, not yet confirmed (same wrapping). */
  pendingTotpSecret?: WrappedKey;
  /** The last time step a code was accepted for (a code works once). */
  totpLastStep?: number;
  /**
   * Set when the user was deleted but their mail is kept for the retention period
   * (DeleteUser without `purge_data`). Such a user's `addressKey` is `deleted:<id>`, so the
   * address is free again and no lookup finds them; the data key stays so the mail can be exported.
   */
  deletedAt?: Date;
  createdAt: Date;
  updatedAt: Date;
}

export type AddressKind = 'primary' | 'alias' | 'forward' | 'catch-all';

/** Every address the directory knows, unique by `addressKey` (DESIGN §4 `addresses`). */
export interface AddressDoc {
  _id: ObjectId;
  address: string;
  /** Normalised: lower-cased domain and local part. Unique. */
  addressKey: string;
  domain: string;
  /** Id of the domain document. */
  domainId: string;
  kind: AddressKind;
  /** Local users this address delivers to (primary and alias). */
  userIds: string[];
  /** External targets of a forward. */
  forwardTo: string[];
  createdAt: Date;
}

/** Protocols an app password may be used for (never the web console). */
export type AppPasswordProtocol = 'imap' | 'smtp';

/** `app_passwords`: a generated secret usable instead of the account password. */
export interface AppPasswordDoc {
  _id: ObjectId;
  userId: string;
  label: string;
  protocols: AppPasswordProtocol[];
  /**
   * SHA-256 (hex) of the secret. The secret is generated with 130 bits of entropy, so a slow
   * hash adds nothing and a fast one lets Authenticate find it by value. Shown once, never stored.
   */
  secretHash: string;
  createdAt: Date;
  lastUsedAt?: Date;
  lastUsedIp?: string;
  expiresAt?: Date;
}

export type DkimAlgorithm = 'ed25519' | 'rsa2048';
export type DkimKeyStatus = 'pending' | 'active' | 'retired';

/** `dkim_keys`: unique by (domain, selector). */
export interface DkimKeyDoc {
  _id: ObjectId;
  domainId: string;
  /** Domain name (`d=`). */
  domain: string;
  selector: string;
  algorithm: DkimAlgorithm;
  status: DkimKeyStatus;
  /** PKCS#8 DER of the private key, wrapped by the KEK with context `dkim:<domain>:<selector>`. */
  privateKey: WrappedKey;
  /** The TXT record value to publish at `<selector>._domainkey.<domain>`. */
  dnsTxtValue: string;
  createdAt: Date;
  activatedAt?: Date;
  retiredAt?: Date;
}

export interface MailboxDoc {
  _id: ObjectId;
  userId: string;
  /** Full path with `/` as delimiter; `INBOX` is upper-case. Unique with userId. */
  path: string;
  specialUse: string | null;
  subscribed: boolean;
  uidValidity: number;
  uidNext: number;
  highestModseq: number;
  /** Counters kept with `$inc` so STATUS needs no scan. */
  messages: number;
  unseen: number;
  size: number;
  createdAt: Date;
}

export interface MessageDoc {
  _id: ObjectId;
  userId: string;
  mailboxId: string;
  /** Unique with mailboxId; allocated by `$inc` on the mailbox's uidNext. */
  uid: number;
  modseq: number;
  /** System flags (`\Seen` …) and keywords, as IMAP writes them. */
  flags: string[];
  internalDate: Date;
  size: number;
  /** Blob id of the encrypted body in the blob store (shared by the recipients of one delivery). */
  blobId: ObjectId;
  /** The body's content key, wrapped with this user's data key. */
  contentKey: WrappedKey;
  /** Precomputed at store time (libs/mime); encrypted with the content key when at rest. */
  meta: Binary;
  /** Delivery idempotency: the spool job this message came from, when delivered. */
  spoolId?: string;
  /**
   * Unused (always empty): the keyed-hash search terms live in the `message_terms` collection,
   * one document per message, because FerretDB decodes whole documents when filtering (ADR 0003).
   */
  terms: string[];
  /** Header date (Date:) for SENTBEFORE/SENTON/SENTSINCE, or internalDate when absent. */
  sentDate: Date;
}

/** What `meta` decrypts to. */
export interface MessageMeta {
  envelope: Envelope;
  bodystructure: BodyPart;
}

export interface TombstoneDoc {
  _id: ObjectId;
  mailboxId: string;
  uid: number;
  modseq: number;
  expungedAt: Date;
}

export interface DeliveryDoc {
  _id: ObjectId;
  spoolId: string;
  recipient: string;
  userId: string;
  mailboxId: string;
  uid: number;
  deliveredAt: Date;
}

export interface EventDoc {
  _id: ObjectId;
  /** Event id from the publisher, unique: a redelivered event is stored once. */
  eventId: string;
  time: Date;
  service: string;
  kind: string;
  queueId?: string;
  messageId?: string;
  sender?: string;
  recipient?: string;
  /** Structured extras (the payload's `attributes`; the proto's `attributes`). */
  detail: Record<string, string>;
  /** Human-readable one-line summary (the payload's and the proto's `detail`). */
  summary?: string;
  traceId?: string;
  /** TTL index field. */
  expiresAt: Date;
}

/** `webhooks`: an HTTP endpoint a domain's mail events are sent to (docs/webhooks.md). */
export interface WebhookDoc {
  _id: ObjectId;
  domainId: string;
  domain: string;
  url: string;
  /** Webhook event types (libs/bus WEBHOOK_EVENT_TYPES). */
  events: string[];
  enabled: boolean;
  /** The signing secret's UTF-8 bytes, wrapped by the KEK with context `webhook:<id>`. */
  secret: WrappedKey;
  createdAt: Date;
  updatedAt: Date;
}

/** `webhook_deliveries`: `_id` is `<webhookId>:<eventId>`, so an event reaches an endpoint once. */
export interface WebhookDeliveryDoc {
  _id: string;
  webhookId: string;
  eventId: string;
  /** `delivered`: the endpoint answered 2xx; `failed`: attempts exhausted, an alert was raised. */
  status: 'delivered' | 'failed';
  attempts: number;
  /** The endpoint's last HTTP status, or 0 when it did not answer. */
  httpStatus: number;
  at: Date;
}
