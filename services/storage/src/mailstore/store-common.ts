/**
 * What the mailstore's parts (mailstore.ts and the role modules it wires) share: the public
 * types of its API, limits and constants, and small helpers over message documents.
 */
import type { mailstore } from '@postmesh/contracts';
import type { ObjectId } from 'mongodb';
import { type Binary } from 'mongodb';
import type { BlobStoreKind } from '../blob/index.js';
import { bodyRefId, type SealedBody, type StoredBody } from './blob-store.js';
import { ErrorReason } from './contract.js';
import { MailstoreError } from './errors.js';
import { DELETED, SEEN } from './flags.js';
import type { IndexedMessage } from './mailbox-index.js';
import { sharedMessageCache as messageCache } from './message-cache.js';
import type { IndexedTrigrams } from './search-terms.js';
import type { MessageId, MessageRecord, WriteTag } from './types.js';

export type MailboxRef = { readonly id: string } | { readonly path: string };

export interface MailstoreLimits {
  /** Largest message accepted, in octets (TOO_BIG beyond). */
  readonly maxMessageBytes: number;
  /** Raw octets of text parts decoded for BODY/TEXT search per message. */
  readonly searchTextBytes: number;
  /** Mailboxes per user (CreateMailbox and RenameMailbox answer LIMIT_EXCEEDED beyond). */
  readonly maxMailboxes: number;
}

export const DEFAULT_LIMITS: MailstoreLimits = {
  maxMessageBytes: 64 * 1024 * 1024,
  maxMailboxes: 10_000,
  searchTextBytes: 1024 * 1024,
};

export const BATCH = 256;

export const META_LABEL = 'pm-meta-v1';

export const TEXT_LABEL = 'pm-text-v1';

export interface AppendInput {
  readonly userId: string;
  readonly mailbox: MailboxRef;
  /** Stored flag names (`\Seen`, keywords). */
  readonly flags: readonly string[];
  readonly internalDate?: Date;
  /** The size the client announced (the literal's length), checked before and after reading. */
  readonly declaredSize?: number;
  readonly spoolId?: string;
}

export interface AppendResult {
  readonly mailboxId: string;
  readonly uidValidity: number;
  readonly uid: number;
  readonly modseq: number;
}

export interface DeliveryRecipient {
  /** The RCPT TO address, as in the `deliveries` idempotency key. */
  readonly recipient: string;
  readonly userId: string;
  /** Mailbox path, INBOX when absent (the pipeline picks Junk for spam verdicts). */
  readonly mailbox?: string;
  /** Where the copy goes if `mailbox` does not exist (quarantined mail to INBOX, not nowhere). */
  readonly fallbackMailbox?: string;
  readonly flags?: readonly string[];
}

export type DeliveryOutcome =
  | {
      readonly status: 'delivered';
      readonly recipient: string;
      readonly mailboxId: string;
      readonly uid: number;
    }
  | {
      readonly status: 'duplicate';
      readonly recipient: string;
      readonly mailboxId: string;
      readonly uid: number;
    }
  | { readonly status: 'over-quota'; readonly recipient: string }
  | { readonly status: 'no-mailbox'; readonly recipient: string };

/** A body written once to the blob store, ready to be referenced by one or more mailboxes. */
export interface IngestedBody {
  readonly blobId: ObjectId;
  /** Recorded in each message document (`blob`): where the body is and how to open it. */
  readonly blob: StoredBody;
  readonly contentKey: Uint8Array;
  readonly size: number;
  readonly meta: Binary;
  readonly searchText: Binary | null;
  readonly trigrams: IndexedTrigrams;
  readonly sentDate: Date | null;
  readonly sentDay: number | null;
}

/**
 * A delivery's body, parsed and encrypted, waiting for its batch's commit: written already
 * (`blob`), or sealed in memory (`sealed`) until its batch's pack is written.
 */
export interface PreparedBody extends Omit<IngestedBody, 'blob'> {
  blob: StoredBody | undefined;
  sealed: SealedBody | undefined;
}

/**
 * FerretDB on SQLite answers a write that waited too long for SQLite's one writer with
 * `database is locked (5) (SQLITE_BUSY)`: nothing was written, and the same write succeeds later.
 */
export function isDatabaseBusy(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error);
  return /SQLITE_BUSY|database is locked/i.test(message);
}

/** One job's delivery in a batch (`commitDeliveries`). */
export interface BatchDelivery {
  readonly spoolId: string;
  readonly body: PreparedBody;
  readonly recipients: readonly DeliveryRecipient[];
  readonly receivedAt: Date;
  /** Trace id of the delivering job (its `traceparent`), recorded on each stored copy. */
  readonly traceId?: string;
  /** Its partition batch's tag, when one commit carries several partitions' batches (else the commit's). */
  readonly tag?: WriteTag;
}

/** What became of one delivery of a batch: its outcomes, or why it must be tried again. */
export type BatchDeliveryResult =
  | { readonly ok: true; readonly outcomes: readonly DeliveryOutcome[] }
  | { readonly ok: false; readonly error: unknown };

/** The counters a mailbox gains with these new messages. */
export function counters(docs: readonly MessageRecord[]) {
  return {
    messages: docs.length,
    size: docs.reduce((n, d) => n + d.size, 0),
    unseen: docs.filter((d) => !d.flags.includes(SEEN)).length,
    deleted: docs.filter((d) => d.flags.includes(DELETED)).length,
  };
}

export interface ContentResult {
  readonly info: mailstore.ContentInfo;
  readonly chunks: AsyncIterable<Buffer> | Iterable<Buffer>;
}

/** What a mailbox's in-memory index keeps of a message. */
export function indexEntryOf(doc: MessageRecord): IndexedMessage {
  return {
    uid: doc.uid,
    modseq: doc.modseq,
    flags: doc.flags,
    size: doc.size,
    internalDate: doc.internalDate,
  };
}

export function contentContext(blobId: ObjectId): string {
  return `msg:${blobId.toHexString()}`;
}

/**
 * The `_id` of the message with `uid` in `mailboxId`: the mailbox id and the UID in ten digits
 * (UIDs are below 2^32), so ids sort by mailbox, then UID. A message is found by UID with an
 * `_id` lookup, the only filter FerretDB 1.24 (SQLite) does not answer by decoding every message
 * of every mailbox; on MongoDB it is the primary index. A UID is never reused in a mailbox, so
 * the id is unique for good; MOVE gives the message a new id in the destination.
 */
export function messageKey(mailboxId: string, uid: number): string {
  return `${mailboxId}:${String(uid).padStart(10, '0')}`;
}

/**
 * Puts message documents just written into the message cache (write-through), so the first
 * ENVELOPE fetch or header SEARCH after a delivery or APPEND reads nothing back from the database.
 * Only what never changes is used from it (message-cache.ts); flags and MODSEQ come from the index.
 */
export function cacheWritten(docs: readonly MessageRecord[]): void {
  if (!messageCache.enabled) return;
  for (const doc of docs) {
    if (typeof doc._id === 'string') messageCache.put(doc._id, { ...doc });
  }
}

export function idText(id: MessageId): string {
  return typeof id === 'string' ? id : id.toHexString();
}

/**
 * The `_id` of the idempotency record of delivering spool job `spoolId` to `recipient`: the
 * escaped spool id cannot contain `/`, so the first `/` separates the two.
 */
export function deliveryKey(spoolId: string, recipient: string): string {
  return `${encodeURIComponent(spoolId)}/${recipient}`;
}

/** The `_id` of a message's search entry. */
export function searchIdOf(doc: Pick<MessageRecord, '_id' | 'searchId'>): MessageId {
  return doc.searchId ?? doc._id;
}

/**
 * UID sets of at most this many UIDs are read by `_id` lookups (in keyed mailboxes), larger ones
 * by one query over the mailbox.
 */
export const POINT_LOOKUPS = 64;

/** `_id` lookups in flight at once. */
export const LOOKUP_CONCURRENCY = 8;

/**
 * Documents asked for per batch by reads of whole mailboxes (index builds, the start-up warm-up,
 * summaries). Measured on FerretDB 1.24/SQLite reading 10,000 messages (docs/benchmarks.md):
 * 1,024 a batch was the fastest; one batch of everything took twice as long to arrive.
 */
export const WHOLE_READ_BATCH = 1024;

/** `run` over every item, at most `limit` at a time; results in the items' order. */
export async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  run: (item: T) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      for (;;) {
        const i = next++;
        if (i >= items.length) return;
        out[i] = await run(items[i] as T);
      }
    }),
  );
  return out;
}

export type Intervals = readonly (readonly [number, number])[];

/** YYYYMMDD of the Date: header as written, i.e. in the header's own zone (RFC 9051 §6.4.4). */
export function sentDayOf(date: string | null): number | null {
  if (date === null) return null;
  const m = /(\d{1,2})\s+(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\s+(\d{2,4})/i.exec(date);
  if (m === null) return null;
  const months = 'janfebmaraprmayjunjulaugsepoctnovdec';
  const month = months.indexOf((m[2] ?? '').toLowerCase()) / 3 + 1;
  let year = Number(m[3]);
  // RFC 5322 §4.3 obsolete years: two digits below 50 are 20xx, otherwise add 1900.
  if ((m[3] ?? '').length === 2) year += year < 50 ? 2000 : 1900;
  else if ((m[3] ?? '').length === 3) year += 1900;
  return year * 10_000 + month * 100 + Number(m[1]);
}

export function notFound(what: string, field = ''): MailstoreError {
  return new MailstoreError(ErrorReason.NOT_FOUND, `${what} does not exist`, field);
}

/** Blob references held by `docs`, one per document. */
export function refsOf(
  docs: readonly MessageRecord[],
): Map<string, { id: ObjectId; n: number; store?: BlobStoreKind }> {
  const refs = new Map<string, { id: ObjectId; n: number; store?: BlobStoreKind }>();
  for (const d of docs) {
    // A body in a pack holds a reference to the pack (storePacked).
    const id = bodyRefId(d.blobId, d.blob);
    const entry = refs.get(id.toHexString()) ?? {
      id,
      n: 0,
      ...(d.blob === undefined ? {} : { store: d.blob.store }),
    };
    entry.n++;
    refs.set(id.toHexString(), entry);
  }
  return refs;
}
