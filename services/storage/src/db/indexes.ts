/**
 * Every index of DESIGN §4, created at start. `createIndexes` with an unchanged specification is
 * a no-op, so every replica runs this on every start. Names are explicit so a changed definition
 * fails loudly (IndexOptionsConflict) instead of silently keeping the old one. Only plain,
 * compound and unique indexes, which FerretDB 1.24 and MongoDB 7 both support (no partial, no
 * text, no wildcard indexes). TTL indexes exist only on MongoDB: FerretDB 1.24 answers
 * "expireAfterSeconds is not implemented", so there the expiry field gets a plain index and the
 * owner of the collection sweeps expired documents itself (see `TraceStore.sweepExpired`).
 */
import type { Db, IndexDescription } from 'mongodb';
import { Collections } from './schema.js';

export const indexSpecs: Readonly<Record<string, readonly IndexDescription[]>> = {
  [Collections.domains]: [{ key: { name: 1 }, name: 'name_unique', unique: true }],
  [Collections.users]: [
    { key: { addressKey: 1 }, name: 'addressKey_unique', unique: true },
    { key: { domainId: 1, addressKey: 1 }, name: 'domainId_addressKey' },
  ],
  [Collections.addresses]: [
    { key: { addressKey: 1 }, name: 'addressKey_unique', unique: true },
    { key: { domainId: 1, addressKey: 1 }, name: 'domainId_addressKey' },
    { key: { userIds: 1, addressKey: 1 }, name: 'userIds_addressKey' },
  ],
  [Collections.appPasswords]: [
    { key: { userId: 1, createdAt: -1 }, name: 'userId_createdAt' },
    { key: { secretHash: 1 }, name: 'secretHash_unique', unique: true },
  ],
  [Collections.dkimKeys]: [
    { key: { domain: 1, selector: 1 }, name: 'domain_selector_unique', unique: true },
    { key: { domainId: 1, createdAt: -1 }, name: 'domainId_createdAt' },
  ],
  [Collections.webhooks]: [{ key: { domain: 1, createdAt: 1 }, name: 'domain_createdAt' }],
  [Collections.webhookDeliveries]: [{ key: { at: 1 }, name: 'at' }],
  [Collections.sieveScripts]: [
    { key: { userId: 1, name: 1 }, name: 'userId_name_unique', unique: true },
    { key: { userId: 1, active: 1 }, name: 'userId_active' },
  ],
  [Collections.mailboxes]: [{ key: { userId: 1, path: 1 }, name: 'userId_path_unique', unique: true }],
  [Collections.messages]: [
    // DESIGN §6 of the issue: a UID is never reused within a mailbox.
    { key: { mailboxId: 1, uid: 1 }, name: 'mailboxId_uid_unique', unique: true },
    { key: { mailboxId: 1, modseq: 1 }, name: 'mailboxId_modseq' },
    { key: { blobId: 1 }, name: 'blobId' },
  ],
  // The blind search index, kept out of `messages` (ADR 0003; src/mailstore/types.ts).
  message_terms: [
    { key: { userId: 1, mailboxId: 1, terms: 1 }, name: 'userId_mailboxId_terms' },
    { key: { mailboxId: 1 }, name: 'mailboxId' },
  ],
  // The mailstore's own (src/mailstore/types.ts MailstoreCollections.subscriptions).
  mailbox_subscriptions: [{ key: { userId: 1, path: 1 }, name: 'userId_path_unique', unique: true }],
  // RFC 4314 ACLs (src/acl/acl-store.ts): by mailbox (GETACL, checks) and by grantee (LIST of
  // the "Other Users" namespace).
  mailbox_acls: [
    { key: { mailboxId: 1 }, name: 'mailboxId' },
    { key: { granteeId: 1 }, name: 'granteeId' },
    { key: { identifierKey: 1, ownerDomain: 1 }, name: 'identifierKey_ownerDomain' },
  ],
  [Collections.tombstones]: [{ key: { mailboxId: 1, modseq: 1 }, name: 'mailboxId_modseq' }],
  // DESIGN §2 step 6: a redelivered job finds its record and becomes a no-op.
  [Collections.deliveries]: [
    { key: { spoolId: 1, recipient: 1 }, name: 'spoolId_recipient_unique', unique: true },
  ],
  // Claims older than the TOTP window are swept by account (totp/enrolment.ts).
  [Collections.totpClaims]: [{ key: { account: 1, step: 1 }, name: 'account_step' }],
  [Collections.events]: [
    { key: { eventId: 1 }, name: 'eventId_unique', unique: true },
    // TTL: each document carries its own expiry (POSTMESH_TRACE_RETENTION_DAYS at store time).
    { key: { expiresAt: 1 }, name: 'expiresAt_ttl', expireAfterSeconds: 0 },
    { key: { messageId: 1, time: 1 }, name: 'messageId_time' },
    { key: { queueId: 1, time: 1 }, name: 'queueId_time' },
    { key: { sender: 1, time: 1 }, name: 'sender_time' },
    { key: { recipient: 1, time: 1 }, name: 'recipient_time' },
    // The console's recent alerts and failed deliveries (TraceStore.recent).
    { key: { kind: 1, time: -1 }, name: 'kind_time' },
  ],
};

export interface IndexReport {
  /** Whether the database expires documents itself (TTL indexes); if not, sweep. */
  readonly ttl: boolean;
}

export async function ensureIndexes(db: Db): Promise<IndexReport> {
  let ttl = true;
  for (const [collection, specs] of Object.entries(indexSpecs)) {
    for (const spec of specs) {
      try {
        await db.collection(collection).createIndexes([spec]);
      } catch (error) {
        if (spec.expireAfterSeconds === undefined || !isNotImplemented(error)) throw error;
        ttl = false;
        const { expireAfterSeconds: _ttl, ...plain } = spec;
        await db.collection(collection).createIndexes([{ ...plain, name: `${spec.name ?? 'ttl'}_plain` }]);
      }
    }
  }
  return { ttl };
}

/** MongoDB error code 238 NotImplemented (FerretDB's answer to unsupported index options). */
function isNotImplemented(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  return code === 238 || (typeof message === 'string' && /not implemented/i.test(message));
}
