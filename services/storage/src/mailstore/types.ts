/**
 * Document shapes the mailstore keeps beyond the shared ones in ../db/schema.ts (the fields are
 * additions to `mailboxes` and `messages`, plus two collections of its own). Listed in the
 * storage report so they can move into schema.ts.
 */
import type { Binary, ObjectId } from 'mongodb';
import type { SearchableHeaders } from '@postmesh/mime';
import type { DeliveryDoc, MailboxDoc, MessageDoc, MessageMeta } from '../db/schema.js';
import type { StoredBody } from './blob-store.js';

/** Collections only the mailstore uses. */
export const MailstoreCollections = {
  /** `(userId, path)` unique: subscriptions outlive their mailbox (RFC 9051 §6.3.7). */
  subscriptions: 'mailbox_subscriptions',
  /** `_id = userId`: the last UIDVALIDITY handed out, so a recreated path gets a greater one. */
  uidValidity: 'mailbox_uidvalidity',
  /**
   * The blind search index, one document per message with the message's `_id` (ADR 0003). Kept
   * out of `messages` because FerretDB 1.24 (SQLite) scans and decodes whole documents for any
   * filter other than `_id`: with the terms inside, a lookup by `(mailboxId, uid)` in a
   * 300-message mailbox took 461 ms instead of 113 ms (measured).
   */
  searchIndex: 'message_terms',
  /**
   * Flag changes appended by STORE, folded into the owner's answers at once and into the message
   * documents by background compaction (pending-changes.ts; ADR 0007).
   */
  flagChanges: 'message_changes',
} as const;

export interface MailboxRecord extends MailboxDoc {
  /**
   * Messages flagged \Deleted (STATUS DELETED, RFC 9051 §6.3.11), kept with `$inc`. Absent in
   * mailboxes created before the mailstore kept it: read as 0.
   */
  deleted?: number;
  /** Messages with a UID at or above this are \Recent (RFC 3501 §2.3.2); SELECT moves it. */
  recentFloor?: number;
  /**
   * Every message of this mailbox has the `_id` `messageKey(mailboxId, uid)`, so a UID is found by
   * `_id` (set on mailboxes created since message ids became deterministic; older mailboxes may
   * hold messages with ObjectId `_id`s and are read by `(mailboxId, uid)` queries).
   */
  keyedMessages?: boolean;
  /**
   * The tenure (`counterTenure`) of the owner moving this mailbox's counters in memory, written
   * before its first such move and taken off when it wrote them at a clean shutdown (ADR 0007).
   */
  countersHeldBy?: string;
}

/**
 * A message `_id`: `messageKey(mailboxId, uid)` for messages written since ids became
 * deterministic, an ObjectId for older ones.
 */
export type MessageId = string | ObjectId;

/**
 * A message document. `terms` (schema.ts) stays empty here: the terms live in the search index
 * collection (`SearchIndexDoc`), see MailstoreCollections.searchIndex.
 */
/**
 * The write a document was written in under one owner per mailbox (ADR 0007,
 * Commit-then-confirm): a delivery batch or an IMAP write (APPEND, STORE, EXPUNGE, COPY, MOVE) of
 * the partition, its fencing epoch, its sequence. It counts once the partition's commit pointer
 * covers it; a rebuild drops it otherwise. Untagged documents always count.
 */
export interface WriteTag {
  readonly p: number;
  readonly e: number;
  readonly s: number;
}

export interface MessageRecord extends Omit<MessageDoc, '_id'> {
  _id: MessageId;
  /** Set on messages written by a partition's delivery batch or an owner's IMAP write. */
  own?: WriteTag;
  /**
   * `_id` of the message's search entry (`SearchIndexDoc`); absent on older messages, whose entry
   * has the message's own `_id`. A MOVE gives the message a new `_id` but keeps its entry.
   */
  searchId?: MessageId;
  /**
   * Where the body (`blobId`) is stored and how to open it. Absent on messages stored before the
   * blob store had a choice of backends: their bodies are in GridFS, described by the file.
   */
  blob?: StoredBody;
  /** Calendar date of the Date: header in its own zone, as YYYYMMDD (SENTON, RFC 9051 §6.4.4). */
  sentDay: number;
  /** The RCPT TO address of the delivery that stored it (with `spoolId`: the idempotency key). */
  recipient?: string;
  /**
   * W3C trace id (32 hex digits) of the delivery that stored it, from the job's `traceparent`:
   * the same id as the message's trace events, so the console's message trace links the two.
   */
  traceId?: string;
  /** Set by an EXPUNGE that is about to delete the message (see Mailstore.expunge). */
  expungeClaim?: string;
  expungeClaimedAt?: Date;
}

/** What `MessageDoc.meta` decrypts to in this implementation. */
export interface SealedMeta extends MessageMeta {
  readonly headers: SearchableHeaders;
  /** The raw header block (base64), when it is at most RAW_HEADER_LIMIT octets. */
  readonly rawHeader: string | null;
}

/** The search entry of one message (`_id` = the message's `searchId`, or its `_id` if it has none). */
export interface SearchIndexDoc {
  _id: MessageId;
  userId: string;
  mailboxId: string;
  /** Keyed hashes of trigrams (search-terms.ts). */
  terms: string[];
  /** False when `terms` was cut at MAX_TERMS: such a message is always a search candidate. */
  termsComplete: boolean;
  /** Decoded text of the text parts, sealed with the content key, for BODY/TEXT confirmation. */
  searchText: Binary | null;
  /** The write that added it, as on its message. */
  own?: WriteTag;
}

export interface SubscriptionDoc {
  _id: ObjectId;
  userId: string;
  path: string;
}

export interface UidValidityDoc {
  _id: string;
  last: number;
}

/**
 * The idempotency record of one delivery (DESIGN §2 step 6). `_id` is `deliveryKey(spoolId,
 * recipient)` for records written since it became deterministic, so a redelivered job is found
 * with an `_id` lookup (FerretDB 1.24 decodes every record for a `(spoolId, recipient)` filter);
 * older records have ObjectIds. The unique `(spoolId, recipient)` index holds either way.
 */
export interface DeliveryRecord extends Omit<DeliveryDoc, '_id'> {
  _id: string | ObjectId;
  /**
   * The `_id` of the message the record stands for. Records that have it are written just
   * before their message (batched delivery), so a reader checks that the message exists; records
   * without it got their `uid` only once their message was written.
   */
  messageId?: string;
  /** Set on records written by a partition's delivery batch. */
  own?: WriteTag;
}
