/**
 * The mailstore: mailboxes and messages of each user, encrypted at rest (DESIGN §4, §5).
 *
 * Implements the storage side of RFC 9051 (IMAP4rev2), RFC 7162 (CONDSTORE/QRESYNC), RFC 4315
 * (UIDPLUS), RFC 6851 (MOVE), RFC 9208 (QUOTA) and RFC 5032 (WITHIN), on the portable subset of
 * MongoDB that FerretDB shares: no transactions. Invariants hold without them:
 * - UIDs and mod-sequences are allocated by one `findOneAndUpdate` with `$inc` on the mailbox
 *   (serialised per mailbox within the process, see `withCounterLock`) before the message is written. A
 *   crash in between leaves a gap in UIDs, which IMAP allows (RFC 9051 §2.3.1.1 "strictly
 *   ascending", not "contiguous"), never a duplicate: the unique index `(mailboxId, uid)`
 *   refuses one.
 * - Blob references are added before the copies that hold them and dropped after the copies are
 *   gone, so a crash can leak a blob but never delete one still in use.
 * - Counters (`messages`, `unseen`, `deleted`, `size`) change with `$inc`, never by scanning;
 *   a crash between a message write and its counter update can leave them off by that message.
 */
import { randomBytes } from 'node:crypto';
import {
  MAX_UID,
  resolveUidSet,
  uidSetFromUids,
  uidSetProblem,
  type UidSet,
  type mailstore,
} from '@postmesh/contracts';
import {
  MimeIndexer,
  decodePartBody,
  findSectionPart,
  parseHeaderBlock,
  parseSectionSpec,
  resolveSection,
  applyPartial,
  selectHeaderFields,
  type HeaderField,
  type IndexResult,
} from '@postmesh/mime';
import type { MailboxChange } from '@postmesh/bus';
import type { Logger } from '@postmesh/telemetry';
import {
  MongoBulkWriteError,
  ObjectId,
  type AnyBulkWriteOperation,
  type Binary,
  type Collection,
  type Db,
  type Document,
  type Filter,
  type OptionalUnlessRequiredId,
  type WithId,
  type OneOrMore,
  type WriteError,
} from 'mongodb';
import type { UserKeyring } from '../crypto/types.js';
import { boundedBulkWrite } from '../db/bulk-updates.js';
import { groupInsert } from '../db/group-insert.js';
import { Collections } from '../db/schema.js';
import {
  addBlobRefs,
  insertBlobRefs,
  newBlobRef,
  releaseBlobRefs as releaseRefs,
  type BlobRefCounts,
  type BlobRefDoc,
  type BlobStoreKind,
  type BlobStores,
} from '../blob/index.js';
import {
  bodyRefId,
  isDuplicateKey,
  legacyBodyInfo,
  readBlobBytes,
  readBlobRange,
  seal,
  sealBody,
  storedBodyInfo,
  unseal,
  writeBody,
  writePack,
  type BlobInfo,
  type SealedBody,
  type StoredBody,
} from './blob-store.js';
import {
  ErrorReason,
  FetchFields,
  SpecialUseValues,
  StoreModes,
  type FetchFieldValue,
  type SpecialUseValue,
  type StoreModeValue,
} from './contract.js';
import { BlobIntegrityError, MailstoreError } from './errors.js';
import { emailIdOf, threadIdOf } from './object-ids.js';
import { DELETED, SEEN, splitFlags } from './flags.js';
import {
  MailboxIndexEntry,
  sharedMailboxIndex as index,
  type IndexBuild,
  type IndexedMessage,
  summaryBytes,
  type MessageSummary,
} from './mailbox-index.js';
import { sharedMessageCache as messageCache, type OpenedMessage } from './message-cache.js';
import type { MailstoreRuntime, PendingInsert, PendingState } from './runtime.js';
import {
  PendingChanges,
  compactPending,
  retainOwnedRecords,
  flagChanges,
  type FlagChangeDoc,
  type PendingTombstoneDoc,
} from './pending-changes.js';
import {
  createDefaultMailboxes,
  ensureParents,
  insertMailbox,
  isSubscribed,
  listMailboxes,
  mailboxRecords,
  mailboxes,
  newMailboxRecord,
  setSubscribed,
  specialUseAttribute,
  specialUseValue,
  subscriptions,
  userFilter,
  users,
  counterTenure,
  setCounterRecount,
  usageOf,
  type CounterDelta,
  type ListRequest,
  type ListedMailbox,
} from './mailboxes.js';
import { DELIMITER, isDescendant, validateNewPath } from './paths.js';
import {
  indexAnswers,
  indexMatcher,
  matches,
  needsBodyText,
  prefilterFor,
  searchTextsOf,
  summaryAnswers,
  type SearchContext,
  type SearchSubject,
} from './search.js';
import { TermHasher, termsFor, trigramsFor, type IndexedTrigrams } from './search-terms.js';
import {
  MailstoreCollections,
  type DeliveryRecord,
  type MailboxRecord,
  type MessageId,
  type MessageRecord,
  type SealedMeta,
  type SearchIndexDoc,
  type UidValidityDoc,
  type WriteTag,
} from './types.js';

export type MailboxRef = { readonly id: string } | { readonly path: string };

export interface MailstoreDeps {
  readonly db: Db;
  /** What every Mailstore of this process over `db` shares (runtime.ts): one per process and database. */
  readonly runtime: MailstoreRuntime;
  /** Where bodies are written and read (../blob). */
  readonly blobs: BlobStores;
  readonly keyring: UserKeyring;
  readonly logger: Logger;
  /**
   * Called after a change visible to IMAP sessions (publish `mailbox.changed.<userId>`), with the
   * mailbox and its HIGHESTMODSEQ after the change where one mailbox changed by one write.
   */
  readonly onMailboxChanged?: (userId: string, change?: MailboxChange) => void;
  /**
   * Whether a document written by a partition's delivery batch counts (ADR 0007,
   * Commit-then-confirm): false for a batch whose confirm never came. Default: all count.
   */
  readonly writeCounts?: (tag: WriteTag) => boolean;
}

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

/** Raw header blocks up to this size are kept in the sealed metadata (FETCH BODY[HEADER] of many). */
const RAW_HEADER_LIMIT = 64 * 1024;
/** Section bytes read and authenticated before the first byte is answered. */
const VERIFY_BEFORE_ANSWER = 1024 * 1024;
const BATCH = 256;
/** Octets per streamed content chunk. */
const CHUNK = 64 * 1024;

const META_LABEL = 'pm-meta-v1';
const TEXT_LABEL = 'pm-text-v1';

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
 * Bodies up to this size wait in memory for their batch's pack (one blob per batch); larger
 * ones (and bodies that stream from the spool) are written on their own as they arrive.
 */
const PACKED_BODY_LIMIT = 1024 * 1024;

/** A pack takes bodies up to about this many octets; a batch with more writes several. */
const PACK_BYTES = 16 * 1024 * 1024;

/** Whole-batch retries of a delivery commit the database refused as busy, and the first pause. */
const BUSY_RETRIES = 4;
const BUSY_BACKOFF_MS = 100;

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

/** One copy of a batch on its way into a mailbox. */
interface DeliveryRow {
  readonly item: number;
  readonly recipient: DeliveryRecipient;
  readonly mailbox: MailboxRecord;
  readonly entry: SearchIndexDoc;
  readonly doc: MessageRecord;
  record: DeliveryRecord | undefined;
  state: 'accepted' | 'allocated' | 'recorded' | 'stored' | 'redelivered' | 'failed';
}

/** MongoDB's duplicate-key error code (also FerretDB's). */
const DUPLICATE_KEY = 11000;

/** A document refused by a bulk insert. */
interface WriteProblem {
  readonly code: number;
  readonly message: string;
}

/** A delivery's recipients, each once (by address): one copy each at most. */
function distinctRecipients(delivery: BatchDelivery): DeliveryRecipient[] {
  return [...new Map(delivery.recipients.map((r) => [r.recipient, r])).values()];
}

/** The copies a delivery's commit tries to store, which its pack's reference counts (storePacked). */
function plannedCopies(delivery: BatchDelivery): number {
  return distinctRecipients(delivery).length;
}

function writeFailure(what: string, problem: WriteProblem): Error {
  return new Error(`${what} not written: ${problem.message} (code ${problem.code})`);
}

/**
 * Inserts `docs` with one unordered bulk write; answers the problem of each refused document by
 * its index in `docs`. What is not a per-document refusal (the connection, the write concern) is
 * thrown.
 */
async function insertUnordered<T extends Document>(
  collection: Collection<T>,
  docs: readonly OptionalUnlessRequiredId<T>[],
): Promise<Map<number, WriteProblem>> {
  if (docs.length === 0) return new Map();
  try {
    await collection.insertMany([...docs], { ordered: false });
    return new Map();
  } catch (error) {
    if (error instanceof MongoBulkWriteError && error.writeConcernError === undefined) {
      const reported: OneOrMore<WriteError> = error.writeErrors;
      const list = Array.isArray(reported) ? (reported as readonly WriteError[]) : [reported as WriteError];
      if (list.length > 0) {
        return new Map(list.map((e) => [e.index, { code: e.code, message: e.errmsg ?? 'refused' }]));
      }
    }
    if (docs.length === 1 && isDuplicateKey(error)) {
      return new Map([[0, { code: DUPLICATE_KEY, message: 'duplicate key' }]]);
    }
    throw error;
  }
}

/** Documents written in exactly this delivery batch. */
function ownFilter(tag: WriteTag): { 'own.p': number; 'own.e': number; 'own.s': number } {
  return { 'own.p': tag.p, 'own.e': tag.e, 'own.s': tag.s };
}

/** The counters a mailbox gains with these new messages. */
function counters(docs: readonly MessageRecord[]) {
  return {
    messages: docs.length,
    size: docs.reduce((n, d) => n + d.size, 0),
    unseen: docs.filter((d) => !d.flags.includes(SEEN)).length,
    deleted: docs.filter((d) => d.flags.includes(DELETED)).length,
  };
}

/** Users whose term hashers are kept, at most (then forgotten all at once). */
const MAX_TERM_HASHERS = 16;

/** Mailboxes remembered for delivery, at most (then forgotten all at once). */
const MAX_DELIVERY_TARGETS = 100_000;

function targetKey(userId: string, path: string): string {
  return `${userId}\u0000${path}`;
}

export interface ContentResult {
  readonly info: mailstore.ContentInfo;
  readonly chunks: AsyncIterable<Buffer> | Iterable<Buffer>;
}

function negated(delta: CounterDelta): CounterDelta {
  const out: CounterDelta = {};
  for (const [field, n] of Object.entries(delta) as [keyof CounterDelta, number][]) out[field] = -n;
  return out;
}

/** What a mailbox's in-memory index keeps of a message. */
function indexEntryOf(doc: MessageRecord): IndexedMessage {
  return {
    uid: doc.uid,
    modseq: doc.modseq,
    flags: doc.flags,
    size: doc.size,
    internalDate: doc.internalDate,
  };
}

/** A claim older than this belongs to an expunge that died midway; it may be taken over. */
const CLAIM_EXPIRY_MS = 5 * 60_000;

/** Messages no live EXPUNGE is about to delete. */
function unclaimed(): Filter<MessageRecord> {
  return {
    $or: [
      { expungeClaim: { $exists: false } },
      { expungeClaimedAt: { $lt: new Date(Date.now() - CLAIM_EXPIRY_MS) } },
    ],
  };
}

function contentContext(blobId: ObjectId): string {
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
function cacheWritten(docs: readonly MessageRecord[]): void {
  if (!messageCache.enabled) return;
  for (const doc of docs) {
    if (typeof doc._id === 'string') messageCache.put(doc._id, { ...doc });
  }
}

function idText(id: MessageId): string {
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
function searchIdOf(doc: Pick<MessageRecord, '_id' | 'searchId'>): MessageId {
  return doc.searchId ?? doc._id;
}

/**
 * UID sets of at most this many UIDs are read by `_id` lookups (in keyed mailboxes), larger ones
 * by one query over the mailbox.
 */
const POINT_LOOKUPS = 64;
/** `_id` lookups in flight at once. */
const LOOKUP_CONCURRENCY = 8;
/** A generous estimate of one message's bytes in the message cache (sealed metadata and the rest). */
const CACHED_MESSAGE_BYTES = 8 * 1024;

/**
 * Documents asked for per batch by reads of whole mailboxes (index builds, the start-up warm-up,
 * summaries). Measured on FerretDB 1.24/SQLite reading 10,000 messages (docs/benchmarks.md):
 * 1,024 a batch was the fastest; one batch of everything took twice as long to arrive.
 */
const WHOLE_READ_BATCH = 1024;

/**
 * What an index build reads of each message: the entry's fields, and what the message's summary
 * is made of (on FerretDB the database decodes whole documents whatever the projection, so one
 * read that also yields the summaries costs about what the entry's fields alone cost, and the
 * sync that follows a SELECT reads nothing more).
 */
const INDEX_BUILD_PROJECTION = {
  mailboxId: 1,
  uid: 1,
  modseq: 1,
  flags: 1,
  size: 1,
  internalDate: 1,
  own: 1,
  userId: 1,
  blobId: 1,
  contentKey: 1,
  meta: 1,
  sentDay: 1,
} as const;

/** What the mailbox index keeps of an opened message (mailbox-index.ts `MessageSummary`). */
function summaryOf(doc: MessageRecord, opened: OpenedMessage): MessageSummary {
  return {
    envelopeJson: (opened.envelopeJson ??= JSON.stringify(opened.meta.envelope)),
    sentDay: doc.sentDay,
    ...searchTextsOf(opened.meta.headers),
  };
}

/** `run` over every item, at most `limit` at a time; results in the items' order. */
async function mapLimited<T, R>(
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

type Intervals = readonly (readonly [number, number])[];

function inIntervals(intervals: Intervals, uid: number): boolean {
  return intervals.some(([a, b]) => uid >= a && uid <= b);
}

function intervalSize(intervals: Intervals): number {
  return intervals.reduce((n, [a, b]) => n + b - a + 1, 0);
}

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

function utcDay(date: Date): number {
  return date.getUTCFullYear() * 10_000 + (date.getUTCMonth() + 1) * 100 + date.getUTCDate();
}

function notFound(what: string, field = ''): MailstoreError {
  return new MailstoreError(ErrorReason.NOT_FOUND, `${what} does not exist`, field);
}

export class Mailstore {
  private readonly db: Db;
  private readonly rt: MailstoreRuntime;
  private readonly blobs: BlobStores;
  private readonly keyring: UserKeyring;
  private readonly logger: Logger;
  private readonly limits: MailstoreLimits;
  private readonly onChanged: (userId: string, change?: MailboxChange) => void;
  private readonly writeCounts: (tag: WriteTag) => boolean;
  /** Delivery targets by user and path: a mailbox's `_id` never changes, its path is checked on use. */
  private readonly deliveryTargets = new Map<string, MailboxRecord>();
  /** Term hashers of the users written to lately (their memos save most HMACs). */
  private readonly termHashers = new Map<string, TermHasher>();
  /** Quota limits of the users written to lately (`quotaLimitsOf`). */
  private readonly quotaLimits = new Map<
    string,
    { at: number; limits: { quotaBytes: number; quotaMessages: number } | null }
  >();
  /** The clean-up of unconfirmed writes running now, and the one collecting callers for after it. */
  private discarding: Promise<unknown> = Promise.resolve();
  private queuedDiscard:
    | {
        readonly messages: Filter<MessageRecord>[];
        readonly records: Filter<DeliveryRecord>[];
        readonly run: Promise<number>;
      }
    | undefined;

  constructor(deps: MailstoreDeps, limits: Partial<MailstoreLimits> = {}) {
    if (deps.runtime.db !== deps.db) throw new Error('the mailstore runtime belongs to another database');
    this.db = deps.db;
    this.rt = deps.runtime;
    this.blobs = deps.blobs;
    this.keyring = deps.keyring;
    this.logger = deps.logger;
    this.limits = { ...DEFAULT_LIMITS, ...limits };
    this.writeCounts = deps.writeCounts ?? (() => true);
    const notify = deps.onMailboxChanged;
    this.onChanged = (userId, change) => {
      try {
        notify?.(userId, change);
      } catch (error) {
        this.logger.warn({ err: error }, 'mailbox change notification failed');
      }
    };
    setCounterRecount(this.db, (mailboxId, mark) => this.recountCounters(mailboxId, mark));
  }

  // ---------------------------------------------------------------------------------------------
  // Mailboxes

  createDefaultMailboxes(userId: string): Promise<void> {
    return createDefaultMailboxes(this.db, userId);
  }

  listMailboxes(request: ListRequest): Promise<ListedMailbox[]> {
    return listMailboxes(this.db, request);
  }

  async resolveMailbox(userId: string, ref: MailboxRef, field = 'mailbox'): Promise<MailboxRecord> {
    let found: MailboxRecord | null;
    // The owner's copy when it has one (mailboxes.ts `mailboxRecords`), else one read, kept.
    if ('id' in ref) {
      // By `_id` alone, the owner checked here: FerretDB decodes every mailbox of every user for
      // any other filter. Another user's mailbox is as absent as a missing one.
      const valid = ObjectId.isValid(ref.id) && /^[0-9a-f]{24}$/i.test(ref.id);
      const id = ref.id.toLowerCase();
      let byId = valid ? (mailboxRecords.byId(this.db, id) ?? null) : null;
      if (valid && byId === null) {
        const token = mailboxRecords.readToken(this.db, id);
        byId = await mailboxes(this.db).findOne({ _id: new ObjectId(id) });
        if (byId !== null) mailboxRecords.keep(this.db, byId, token);
      }
      found = byId?.userId === userId ? byId : null;
    } else {
      const path =
        ref.path.toUpperCase() === 'INBOX' || ref.path.toUpperCase().startsWith('INBOX/')
          ? `INBOX${ref.path.slice(5)}`
          : ref.path;
      found = mailboxRecords.byUserPath(this.db, userId, path) ?? null;
      if (found === null) {
        const token = mailboxRecords.readToken(this.db, undefined);
        found = await mailboxes(this.db).findOne({ userId, path });
        if (found !== null) mailboxRecords.keep(this.db, found, token);
      }
    }
    if (found === null) throw notFound('mailbox', field);
    return found;
  }

  async createMailbox(
    userId: string,
    rawPath: string,
    specialUse: SpecialUseValue,
    subscribe: boolean,
  ): Promise<{ mailbox: ListedMailbox; createdParents: string[] }> {
    const path = validateNewPath(rawPath, 'path');
    const attribute = specialUseAttribute(specialUse);
    if (attribute !== null) {
      // RFC 6154 §3: one mailbox per special use in Postmesh, so clients find a single \Sent.
      const taken = await mailboxes(this.db).countDocuments({ userId, specialUse: attribute }, { limit: 1 });
      if (taken > 0) {
        throw new MailstoreError(
          ErrorReason.NOT_ALLOWED,
          'special use already given to another mailbox',
          'special_use',
        );
      }
    }
    if ((await mailboxes(this.db).countDocuments({ userId, path }, { limit: 1 })) > 0) {
      throw new MailstoreError(ErrorReason.ALREADY_EXISTS, 'mailbox exists', 'path');
    }
    await this.checkMailboxLimit(userId, path.split(DELIMITER).length);
    const createdParents = await ensureParents(this.db, userId, path);
    if (subscribe) await setSubscribed(this.db, userId, path, true);
    const record = await newMailboxRecord(
      this.db,
      userId,
      path,
      attribute,
      subscribe || (await isSubscribed(this.db, userId, path)),
    );
    if (!(await insertMailbox(this.db, record))) {
      throw new MailstoreError(ErrorReason.ALREADY_EXISTS, 'mailbox exists', 'path');
    }
    this.onChanged(userId);
    return {
      mailbox: { record, path, subscribed: record.subscribed, hasChildren: false },
      createdParents,
    };
  }

  /** LIMIT_EXCEEDED when `adding` more mailboxes would pass the per-user limit (a bound, not exact). */
  private async checkMailboxLimit(userId: string, adding: number): Promise<void> {
    const count = await mailboxes(this.db).countDocuments({ userId });
    if (count + adding > this.limits.maxMailboxes) {
      throw new MailstoreError(ErrorReason.LIMIT_EXCEEDED, 'too many mailboxes', 'path');
    }
  }

  /**
   * RFC 9051 §6.3.6 RENAME: the mailbox and all its children. Renaming INBOX moves its messages
   * to a new mailbox and leaves INBOX empty; INBOX's children stay where they are.
   */
  async renameMailbox(userId: string, ref: MailboxRef, rawNewPath: string): Promise<ListedMailbox> {
    const source = await this.resolveMailbox(userId, ref);
    const newPath = validateNewPath(rawNewPath, 'new_path');
    if (source.path === 'INBOX') return this.renameInbox(source, newPath);
    if (newPath === source.path || newPath === 'INBOX') {
      throw new MailstoreError(ErrorReason.ALREADY_EXISTS, 'mailbox exists', 'new_path');
    }
    if (isDescendant(newPath, source.path)) {
      throw new MailstoreError(ErrorReason.NOT_ALLOWED, 'cannot rename a mailbox into itself', 'new_path');
    }
    const all = await mailboxes(this.db)
      .find({ userId }, { projection: { _id: 1, path: 1 } })
      .toArray();
    const existing = new Set(all.map((m) => m.path));
    const moving = all.filter((m) => m.path === source.path || isDescendant(m.path, source.path));
    const renames = moving.map((m) => ({ id: m._id, to: newPath + m.path.slice(source.path.length) }));
    if (renames.some((r) => existing.has(r.to))) {
      throw new MailstoreError(ErrorReason.ALREADY_EXISTS, 'mailbox exists', 'new_path');
    }
    await this.checkMailboxLimit(userId, newPath.split(DELIMITER).length - 1);
    await ensureParents(this.db, userId, newPath);
    for (const { id, to } of renames) {
      try {
        await mailboxes(this.db).updateOne(
          { _id: id, userId },
          { $set: { path: to, subscribed: await isSubscribed(this.db, userId, to) } },
        );
      } catch (error) {
        if (isDuplicateKey(error))
          throw new MailstoreError(ErrorReason.ALREADY_EXISTS, 'mailbox exists', 'new_path');
        throw error;
      }
    }
    this.onChanged(userId);
    const renamed = await this.resolveMailbox(userId, { id: source._id.toHexString() });
    return {
      record: renamed,
      path: renamed.path,
      subscribed: renamed.subscribed,
      hasChildren: renames.length > 1,
    };
  }

  private renameInbox(inbox: MailboxRecord, newPath: string): Promise<ListedMailbox> {
    return this.rt.withCounterLock(this.lockKey(inbox._id.toHexString()), () =>
      this.renameInboxLocked(inbox, newPath),
    );
  }

  private lockKey(id: string): string {
    return `${this.db.databaseName}:${id}`;
  }

  private async renameInboxLocked(inbox: MailboxRecord, newPath: string): Promise<ListedMailbox> {
    const userId = inbox.userId;
    if (
      newPath === 'INBOX' ||
      (await mailboxes(this.db).countDocuments({ userId, path: newPath }, { limit: 1 })) > 0
    ) {
      throw new MailstoreError(ErrorReason.ALREADY_EXISTS, 'mailbox exists', 'new_path');
    }
    await this.checkMailboxLimit(userId, newPath.split(DELIMITER).length);
    await ensureParents(this.db, userId, newPath);
    // One mod-sequence for the expunges INBOX's sessions will see (RFC 7162 §3.2.10 VANISHED).
    const after = await mailboxes(this.db).findOneAndUpdate(
      { _id: inbox._id },
      { $inc: { highestModseq: 1 } },
      { returnDocument: 'after' },
    );
    if (after === null) throw notFound('mailbox');
    index.drop(inbox._id.toHexString());
    const modseq = after.highestModseq;
    const lastUid = after.uidNext - 1;
    const inboxId = inbox._id.toHexString();
    const pending = await this.pending();
    const moving = (
      await this.messages()
        .find({ mailboxId: inboxId, uid: { $lte: lastUid } }, { projection: { terms: 0 } })
        .toArray()
    ).flatMap((m) => pending.fold(inboxId, m) ?? []);
    const target = await newMailboxRecord(
      this.db,
      userId,
      newPath,
      null,
      await isSubscribed(this.db, userId, newPath),
    );
    // The moved messages keep their UIDs: the new mailbox starts where INBOX stands, so its UIDs
    // stay ascending; its UIDVALIDITY is new, as for any new mailbox.
    target.uidNext = after.uidNext;
    target.highestModseq = modseq;
    target.messages = moving.length;
    target.size = moving.reduce((s, m) => s + m.size, 0);
    target.unseen = moving.filter((m) => !m.flags.includes(SEEN)).length;
    target.deleted = moving.filter((m) => m.flags.includes(DELETED)).length;
    target.recentFloor = after.uidNext;
    if (!(await insertMailbox(this.db, target))) {
      throw new MailstoreError(ErrorReason.ALREADY_EXISTS, 'mailbox exists', 'new_path');
    }
    if (moving.length > 0) {
      // The messages get ids in the new mailbox (same UIDs), with blob references of their own
      // until the INBOX documents are gone, as for MOVE.
      const targetId = target._id.toHexString();
      const refs = Mailstore.refsOf(moving);
      await addBlobRefs(this.db, refs);
      await this.messages().insertMany(
        moving.map(({ expungeClaim: _claim, expungeClaimedAt: _at, ...m }) => ({
          ...m,
          _id: messageKey(targetId, m.uid),
          searchId: searchIdOf(m),
          mailboxId: targetId,
        })),
        { ordered: false },
      );
      await this.messages().deleteMany({ _id: { $in: moving.map((m) => m._id) } });
      await this.releaseBlobRefs(refs);
      await this.searchIndex().updateMany(
        { _id: { $in: moving.map(searchIdOf) } },
        { $set: { mailboxId: targetId } },
      );
      await this.tombstones().insertMany(
        moving.map((m) => ({
          _id: new ObjectId(),
          mailboxId: inbox._id.toHexString(),
          uid: m.uid,
          modseq,
          expungedAt: new Date(),
        })),
      );
      await mailboxes(this.db).updateOne(
        { _id: inbox._id },
        {
          $inc: {
            messages: -target.messages,
            size: -target.size,
            unseen: -target.unseen,
            deleted: -(target.deleted ?? 0),
          },
        },
      );
    }
    this.onChanged(userId);
    return { record: target, path: newPath, subscribed: target.subscribed, hasChildren: false };
  }

  /**
   * RFC 9051 §6.3.5 DELETE. INBOX cannot be deleted. A mailbox with children is refused
   * (NOT_ALLOWED, IMAP `NO [HASCHILDREN]` of RFC 5530 §3): Postmesh has no \Noselect mailboxes,
   * so the RFC's alternative of keeping a non-selectable parent does not arise.
   */
  async deleteMailbox(userId: string, ref: MailboxRef): Promise<string> {
    const mailbox = await this.resolveMailbox(userId, ref);
    if (mailbox.path === 'INBOX') {
      throw new MailstoreError(ErrorReason.NOT_ALLOWED, 'INBOX cannot be deleted', 'mailbox'); // RFC 9051 §6.3.5
    }
    const all = await mailboxes(this.db)
      .find({ userId }, { projection: { path: 1 } })
      .toArray();
    if (all.some((m) => isDescendant(m.path, mailbox.path))) {
      throw new MailstoreError(ErrorReason.NOT_ALLOWED, 'mailbox has children', 'mailbox');
    }
    const mailboxId = mailbox._id.toHexString();
    // The mailbox goes first so nothing new lands in it; then its messages and their blobs, and its
    // pending records, whose compaction must not release a body a second time.
    await mailboxes(this.db).deleteOne({ _id: mailbox._id, userId });
    index.drop(mailboxId);
    await this.rt.compactionLocks.run(this.lockKey(mailboxId), () =>
      this.deleteMessagesOf(userId, mailboxId),
    );
    this.onChanged(userId);
    return mailboxId;
  }

  private async deleteMessagesOf(userId: string, mailboxId: string): Promise<void> {
    const pending = await this.pending();
    const refs = new Map<string, { id: ObjectId; n: number }>();
    for await (const m of this.messages().find({ mailboxId }, { projection: { blobId: 1, blob: 1 } })) {
      // A body in a pack holds a reference to the pack (storePacked).
      const id = bodyRefId(m.blobId, m.blob);
      const key = id.toHexString();
      const entry = refs.get(key) ?? { id, n: 0 };
      entry.n++;
      refs.set(key, entry);
    }
    await this.messages().deleteMany({ mailboxId });
    await this.searchIndex().deleteMany({ mailboxId });
    await this.tombstones().deleteMany({ mailboxId });
    await flagChanges(this.db).deleteMany({ mailboxId });
    pending.dropMailbox(mailboxId);
    await this.releaseBlobRefs(refs);
  }

  /**
   * Removes all mail of a user (DeleteUser with purge): messages, tombstones, mailboxes,
   * subscriptions, and the user's references to stored bodies, so a body is deleted when no other
   * user's copy refers to it. The UIDVALIDITY record goes too: the user id is never reused.
   */
  async purgeUserMail(userId: string): Promise<void> {
    const boxes = await mailboxes(this.db)
      .find({ userId }, { projection: { _id: 1 } })
      .toArray();
    // Sorted: compaction takes the locks of several mailboxes in that order too (no deadlock).
    const mailboxIds = boxes.map((b) => b._id.toHexString()).sort();
    // Mailboxes first, so nothing new lands in them while their messages go; compaction of their
    // pending records is held off (it would release bodies a second time).
    await mailboxes(this.db).deleteMany({ userId });
    index.dropUser(userId);
    const step = (i: number): Promise<void> => {
      const id = mailboxIds[i];
      return id === undefined
        ? this.purgeMessagesOf(userId, mailboxIds)
        : this.rt.compactionLocks.run(this.lockKey(id), () => step(i + 1));
    };
    await step(0);
  }

  private async purgeMessagesOf(userId: string, mailboxIds: readonly string[]): Promise<void> {
    const pending = await this.pending();
    const refs = new Map<string, { id: ObjectId; n: number }>();
    for await (const m of this.messages().find({ userId }, { projection: { blobId: 1, blob: 1 } })) {
      // A body in a pack holds a reference to the pack (storePacked).
      const id = bodyRefId(m.blobId, m.blob);
      const entry = refs.get(id.toHexString()) ?? { id, n: 0 };
      entry.n++;
      refs.set(id.toHexString(), entry);
    }
    await this.messages().deleteMany({ userId });
    await this.searchIndex().deleteMany({ userId });
    await this.releaseBlobRefs(refs);
    await this.tombstones().deleteMany({ mailboxId: { $in: [...mailboxIds] } });
    await flagChanges(this.db).deleteMany({ mailboxId: { $in: [...mailboxIds] } });
    for (const id of mailboxIds) pending.dropMailbox(id);
    await subscriptions(this.db).deleteMany({ userId });
    await this.db.collection<UidValidityDoc>(MailstoreCollections.uidValidity).deleteMany({ _id: userId });
  }

  setSubscribed(userId: string, path: string, subscribed: boolean): Promise<void> {
    return setSubscribed(this.db, userId, path, subscribed);
  }

  /** SELECT / EXAMINE / STATUS counters (RFC 9051 §6.3.2, §6.3.11; RFC 7162 §3.1.2.1). */
  async getMailboxStatus(
    userId: string,
    ref: MailboxRef,
    claimRecent: boolean,
  ): Promise<mailstore.GetMailboxStatusResponse> {
    let mailbox = await this.settled(await this.resolveMailbox(userId, ref));
    const mailboxId = mailbox._id.toHexString();
    // The owner builds the entry of any mailbox it is asked about, small ones too: on FerretDB an
    // `_id` lookup decodes the collection as a read of the whole mailbox does, and after the
    // build every command on the mailbox is answered from memory (ADR 0006).
    const entry = await this.indexOf(mailbox, true);
    // A build that found counters behind the messages (lost with a former process) raised them.
    if (entry !== undefined && entry.stamp !== mailbox.highestModseq) mailbox = await this.settled(mailbox);
    const recentFrom = mailbox.recentFloor ?? 1;
    let recent = 0;
    const fewRecent = mailbox.keyedMessages === true && mailbox.uidNext - recentFrom <= POINT_LOOKUPS;
    if (entry !== undefined) {
      recent = entry.countFrom(recentFrom);
    } else if (fewRecent) {
      // A few UIDs since the last SELECT (the usual case): `_id` lookups, not a count over the mailbox.
      const range: Intervals = recentFrom < mailbox.uidNext ? [[recentFrom, mailbox.uidNext - 1]] : [];
      for await (const _ of this.messagesIn(mailbox, range, { projection: { _id: 1 } })) recent++;
    } else {
      recent = await this.messages().countDocuments({ mailboxId, uid: { $gte: recentFrom } });
    }
    let firstRecentUid = 0;
    if (claimRecent) {
      // RFC 3501 §6.3.1: the session that SELECTs claims \Recent; later ones see none.
      const floor = await this.rt.withCounterLock(this.lockKey(mailboxId), async () => {
        // The owner's copy is what the database holds (ADR 0007): with nothing new to claim
        // there is nothing to write, and a write keeps the copy (`after`) for the next command.
        const known = mailboxRecords.byId(this.db, mailboxId);
        if (known !== undefined) {
          const was = known.recentFloor ?? 1;
          if (was >= mailbox.uidNext) return was;
          // In memory, written with the mailbox's counters (ADR 0007): a session's claim after
          // each APPEND of another session was an update of the mailbox each.
          if (mailboxRecords.raiseRecentFloor(this.db, mailboxId, mailbox.uidNext)) {
            this.countersAhead();
            return was;
          }
          await mailboxes(this.db).findOneAndUpdate(
            { _id: mailbox._id },
            { $max: { recentFloor: mailbox.uidNext } },
            { returnDocument: 'after' },
          );
          return was;
        }
        const before = await mailboxes(this.db).findOneAndUpdate(
          { _id: mailbox._id },
          { $max: { recentFloor: mailbox.uidNext } },
          { returnDocument: 'before' },
        );
        return before?.recentFloor ?? 1;
      });
      firstRecentUid = Math.min(floor, mailbox.uidNext);
    }
    const firstUnseenUid = await this.firstUnseenUid(mailbox, entry);
    return {
      status: {
        mailboxId,
        path: mailbox.path,
        messages: mailbox.messages,
        recent,
        uidNext: mailbox.uidNext,
        uidValidity: mailbox.uidValidity,
        unseen: mailbox.unseen,
        deleted: Math.max(0, mailbox.deleted ?? 0),
        highestModseq: mailbox.highestModseq,
        size: mailbox.size,
        firstUnseenUid,
      },
      specialUse: specialUseValue(mailbox.specialUse),
      firstRecentUid,
    };
  }

  /**
   * UID of the first message without \Seen (RFC 3501 §7.1 `[UNSEEN n]`), 0 for none. The `unseen`
   * counter says whether to look and, in keyed mailboxes, lets a window of `_id` lookups answer
   * the usual cases without a query over the mailbox: when every message is unseen it is the
   * lowest UID in use; when the unseen messages are the last ones it is the lowest unseen UID of
   * the window at the top, if the window holds exactly `unseen` of them. Otherwise, one query.
   */
  private async firstUnseenUid(mailbox: MailboxRecord, entry?: MailboxIndexEntry): Promise<number> {
    if (mailbox.unseen <= 0) return 0;
    if (entry !== undefined) return entry.firstWithout(SEEN);
    const top = mailbox.uidNext - 1;
    if (mailbox.keyedMessages === true && top >= 1) {
      const window: Intervals =
        mailbox.unseen >= mailbox.messages
          ? [[1, Math.min(top, POINT_LOOKUPS)]]
          : [[Math.max(1, top - POINT_LOOKUPS + 1), top]];
      const docs: MessageRecord[] = [];
      for await (const doc of this.messagesIn(mailbox, window, { projection: { uid: 1, flags: 1 } })) {
        docs.push(doc);
      }
      const unseen = docs.filter((d) => !d.flags.includes(SEEN));
      if (mailbox.unseen >= mailbox.messages) {
        const lowest = docs[0];
        if (lowest !== undefined && !lowest.flags.includes(SEEN)) return lowest.uid;
      } else if (unseen.length === mailbox.unseen && unseen[0] !== undefined) {
        return unseen[0].uid;
      }
    }
    const built = await this.indexOf(mailbox, true);
    if (built !== undefined) return built.firstWithout(SEEN);
    const first = await this.messages().findOne(
      { mailboxId: mailbox._id.toHexString(), flags: { $ne: SEEN } },
      { sort: { uid: 1 }, projection: { uid: 1 } },
    );
    return first?.uid ?? 0;
  }

  // ---------------------------------------------------------------------------------------------
  // Storing

  /**
   * Reads a message once: parses it with libs/mime and encrypts it into the blob store as it
   * streams (neither the body nor its ciphertext is held in memory whole). With `refs`, the
   * body's reference document is inserted once the body is durable, holding that many references.
   */
  private async ingest(
    source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    declaredSize?: number,
    refs?: number,
  ): Promise<IngestedBody> {
    const body = await this.parseAndSeal(source, 'own', declaredSize, refs);
    if (body.blob === undefined) throw new Error('body not written');
    return { ...body, blob: body.blob };
  }

  /**
   * `ingest`, or with `pack` the body sealed in memory only, to be written with the other bodies
   * of its delivery batch (`storePacked`).
   */
  private async parseAndSeal(
    source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    into: 'own' | 'pack',
    declaredSize?: number,
    refs?: number,
  ): Promise<PreparedBody> {
    const blobId = new ObjectId();
    const contentKey = randomBytes(32);
    const indexer = new MimeIndexer({ searchTextBytes: this.limits.searchTextBytes });
    const head: Buffer[] = [];
    let headBytes = 0;
    let size = 0;
    let result: IndexResult | undefined;
    const limits = this.limits;
    // The message as it streams in: checked, kept for the header, indexed, then sealed and put.
    async function* checked(): AsyncGenerator<Uint8Array> {
      for await (const chunk of source) {
        size += chunk.length;
        if (size > limits.maxMessageBytes) {
          throw new MailstoreError(ErrorReason.TOO_BIG, 'message larger than the limit');
        }
        if (declaredSize !== undefined && size > declaredSize) {
          throw new MailstoreError(
            ErrorReason.INVALID_ARGUMENT,
            'message longer than its declared size',
            'header.size',
          );
        }
        if (headBytes < RAW_HEADER_LIMIT) {
          head.push(Buffer.from(chunk.subarray(0, RAW_HEADER_LIMIT - headBytes)));
          headBytes += Math.min(chunk.length, RAW_HEADER_LIMIT - headBytes);
        }
        indexer.write(chunk);
        yield chunk;
      }
      if (declaredSize !== undefined && size !== declaredSize) {
        throw new MailstoreError(
          ErrorReason.INVALID_ARGUMENT,
          'message shorter than its declared size',
          'header.size',
        );
      }
      result = indexer.end();
    }
    let blob: StoredBody | undefined;
    let sealed: SealedBody | undefined;
    // A failed put leaves nothing behind (BlobStore.put).
    if (into === 'pack') sealed = await sealBody(blobId, contentKey, checked());
    else blob = await writeBody(this.blobs, blobId, contentKey, checked());
    if (result === undefined) throw new Error('message stream ended without being indexed');
    if (refs !== undefined && blob !== undefined) {
      try {
        await insertBlobRefs(this.db, [newBlobRef(blobId, refs, blob.store)]);
      } catch (error) {
        await this.blobs.primary.delete(blobId.toHexString()).catch((cause: unknown) => {
          // Swept later: a body without a reference document.
          this.logger.warn(
            { err: cause, blobId: blobId.toHexString() },
            'could not remove an unreferenced blob',
          );
        });
        throw error;
      }
    }
    const headerEnd = result.bodystructure.offsets.bodyStart;
    const rawHeader = headerEnd <= headBytes ? Buffer.concat(head).subarray(0, headerEnd) : null;
    const meta: SealedMeta = {
      envelope: result.envelope,
      bodystructure: result.bodystructure,
      headers: result.headers,
      rawHeader: rawHeader === null ? null : rawHeader.toString('base64'),
    };
    const addresses = (list: readonly { name: string | null; address: string }[]) =>
      list.map((a) => `${a.name ?? ''} ${a.address}`);
    const body = result.textForSearch ?? '';
    const sentDay = sentDayOf(result.envelope.date);
    return {
      blobId,
      blob,
      sealed,
      contentKey,
      size,
      meta: seal(contentKey, META_LABEL, blobId, Buffer.from(JSON.stringify(meta), 'utf8')),
      searchText: body === '' ? null : seal(contentKey, TEXT_LABEL, blobId, Buffer.from(body, 'utf8')),
      trigrams: trigramsFor({
        subject: result.headers.subject,
        from: addresses(result.headers.from),
        to: addresses(result.headers.to),
        cc: addresses(result.headers.cc),
        bcc: addresses(result.headers.bcc),
        body,
      }),
      sentDate: result.headers.date === null ? null : new Date(result.headers.date),
      sentDay,
    };
  }

  /**
   * Refuses with OVER_QUOTA when `bytes` more would exceed the user's STORAGE quota or `messages`
   * more the MESSAGE quota (RFC 9208 §5.1, §5.2).
   */
  private async checkQuota(userId: string, bytes: number, messages = 1): Promise<void> {
    const limits = await this.quotaLimitsOf(userId);
    if (limits === null || (limits.quotaBytes <= 0 && limits.quotaMessages <= 0)) return;
    const used = (await usageOf(this.db, [userId], this.recountHeld)).get(userId) ?? {
      bytes: 0,
      messages: 0,
    };
    if (limits.quotaBytes > 0 && used.bytes + bytes > limits.quotaBytes) {
      throw new MailstoreError(ErrorReason.OVER_QUOTA, 'storage quota exceeded');
    }
    if (limits.quotaMessages > 0 && used.messages + messages > limits.quotaMessages) {
      throw new MailstoreError(ErrorReason.OVER_QUOTA, 'message quota exceeded');
    }
  }

  /**
   * A user's STORAGE and MESSAGE limits, kept for `MailstoreRuntime.settings.quotaLimits.maxAgeMs` (null: no such
   * user): an APPEND checks the quota without reading the user's document each time (a scan of
   * `users` on FerretDB), and a limit an administrator changed applies within that time.
   */
  private async quotaLimitsOf(userId: string): Promise<{ quotaBytes: number; quotaMessages: number } | null> {
    const now = Date.now();
    const known = this.quotaLimits.get(userId);
    if (known !== undefined && now - known.at < this.rt.settings.quotaLimits.maxAgeMs) return known.limits;
    const filter = userFilter(userId);
    const user =
      filter === null
        ? null
        : await users(this.db).findOne(filter, { projection: { quotaBytes: 1, quotaMessages: 1 } });
    const limits =
      user === null ? null : { quotaBytes: user.quotaBytes ?? 0, quotaMessages: user.quotaMessages ?? 0 };
    if (this.quotaLimits.size >= 100_000) this.quotaLimits.clear();
    this.quotaLimits.set(userId, { at: now, limits });
    return limits;
  }

  /**
   * Recounts, under its lock, a mailbox whose counters a lost holder may have kept in memory, so
   * that usage read by the owner (`usageOf`) is right after a crash too.
   */
  private readonly recountHeld = (mailboxId: string, mark: string): Promise<void> =>
    this.rt.withCounterLock(this.lockKey(mailboxId), () => this.recountCounters(mailboxId, mark));

  /** The user's term hasher, kept (with its memo) while the user's search key stays the same. */
  private async termHasher(userId: string): Promise<TermHasher> {
    const key = await this.keyring.searchKey(userId);
    const known = this.termHashers.get(userId);
    if (known !== undefined && Buffer.from(known.searchKey).equals(key)) return known;
    const hasher = new TermHasher(key);
    if (this.termHashers.size >= MAX_TERM_HASHERS) this.termHashers.clear();
    this.termHashers.set(userId, hasher);
    return hasher;
  }

  /**
   * The search entry and message document of a new copy of `body` in `mailbox`, its UID, MODSEQ
   * and `_id` still to be allocated.
   */
  private async newMessage(
    mailbox: MailboxRecord,
    body: IngestedBody,
    flags: readonly string[],
    internalDate: Date,
    delivery: { spoolId: string; recipient?: string; traceId?: string } | undefined,
  ): Promise<{ entry: SearchIndexDoc; doc: MessageRecord }> {
    const userId = mailbox.userId;
    const { terms, complete } = termsFor(await this.termHasher(userId), body.trigrams);
    const contentKey = await this.keyring.wrapForUser(userId, body.contentKey, contentContext(body.blobId));
    const mailboxId = mailbox._id.toHexString();
    const searchId = new ObjectId();
    return {
      entry: {
        _id: searchId,
        userId,
        mailboxId,
        terms,
        termsComplete: complete,
        searchText: body.searchText,
      },
      doc: {
        _id: '',
        searchId,
        userId,
        mailboxId,
        uid: 0,
        modseq: 0,
        flags: [...flags],
        internalDate,
        size: body.size,
        blobId: body.blobId,
        blob: body.blob,
        contentKey,
        meta: body.meta,
        terms: [],
        sentDate: body.sentDate ?? internalDate,
        sentDay: body.sentDay ?? utcDay(internalDate),
        ...(delivery === undefined ? {} : delivery),
      },
    };
  }

  /**
   * Writes one mailbox's message document for an ingested body (the blob ref is already held).
   *
   * Appends to one mailbox are committed in groups: whoever arrives while the mailbox's lock is
   * busy joins the next group, and a group costs one insert of search entries, one allocation of
   * its UIDs and MODSEQs (`$inc` by the group's size), one insert of messages and one usage
   * update per user, instead of four writes per message. On FerretDB (SQLite) every write is a
   * transaction with its own fsync and writes are serialised, so writes per message bound the
   * append rate (docs/benchmarks.md). Each message still gets its own UID and MODSEQ, in arrival
   * order.
   */
  private async insertMessage(
    mailbox: MailboxRecord,
    body: IngestedBody,
    flags: readonly string[],
    internalDate: Date,
    delivery: { spoolId: string; recipient?: string; own?: WriteTag } | undefined,
  ): Promise<{ uid: number; modseq: number }> {
    const { entry, doc } = await this.newMessage(mailbox, body, flags, internalDate, delivery);
    if (delivery?.own !== undefined) doc.own = delivery.own;
    const mailboxId = mailbox._id.toHexString();
    return new Promise((resolve, reject) => {
      const item: PendingInsert = {
        entry,
        doc,
        resolve,
        reject,
        stored: false,
      };
      const key = this.lockKey(mailboxId);
      const queue = this.rt.pendingInserts.get(key);
      if (queue !== undefined) {
        queue.push(item);
        return;
      }
      this.rt.pendingInserts.set(key, [item]);
      let group: PendingInsert[] = [];
      const settle = (error: unknown): void => {
        // A message that got written is reported stored even if others of its group failed:
        // its caller must keep the blob reference it holds.
        // (Quota usage is the mailbox counters the group moved: nothing to write for it.)
        for (const it of group) {
          if (it.stored) it.resolve({ uid: it.doc.uid, modseq: it.doc.modseq });
          else it.reject(error ?? new Error('message not stored'));
        }
      };
      this.rt
        .withCounterLock(key, async () => {
          group = this.rt.pendingInserts.get(key) ?? [];
          this.rt.pendingInserts.delete(key);
          await this.commitGroup(mailbox, group);
        })
        .then(
          () => settle(null),
          (error: unknown) => settle(error),
        );
    });
  }

  /**
   * Stores a group of new messages of one mailbox (the caller holds its lock): search entries
   * first (a message is never visible without its entry; an entry without a message, left by a
   * crash, matches nothing because search joins on the message), then UIDs and MODSEQs, then the
   * messages. Sets `uid`, `modseq` and `_id` of each document.
   */
  private async commitGroup(mailbox: MailboxRecord, group: readonly PendingInsert[]): Promise<void> {
    if (group.length === 0) return;
    const mailboxId = mailbox._id.toHexString();
    // Shared with the other groups of this process committing now (group commit, ADR 0007).
    await groupInsert(
      this.db,
      this.searchIndex(),
      group.map((it) => it.entry),
    );
    let todo = [...group];
    let allocated: PendingInsert[] = [];
    try {
      for (let attempt = 0; todo.length > 0; attempt++) {
        const counters = {
          messages: todo.length,
          size: todo.reduce((n, it) => n + it.doc.size, 0),
          unseen: todo.filter((it) => !it.doc.flags.includes(SEEN)).length,
          deleted: todo.filter((it) => it.doc.flags.includes(DELETED)).length,
        };
        // RFC 9051 §2.3.1.1 / RFC 7162 §3.1: UIDs and MODSEQs allocated before the write. The
        // owner with a current index entry allocates in memory (`advanceCounters`); otherwise the
        // document `after` (the values before follow from the increments) keeps the owner's copy
        // of the mailbox, so the next SELECT or FETCH does not read it back.
        const current = (): MailboxIndexEntry | undefined => {
          const known = mailboxRecords.byId(this.db, mailboxId);
          return known === undefined || known.uidNext > MAX_UID - todo.length + 1
            ? undefined
            : index.get(mailboxId, known.highestModseq);
        };
        let entry = current();
        if (entry !== undefined && !(await this.holdCounters(mailbox))) entry = undefined;
        const moved =
          entry !== undefined && current() === entry
            ? mailboxRecords.advance(this.db, mailboxId, {
                uidNext: todo.length,
                highestModseq: todo.length,
                ...counters,
              })
            : undefined;
        if (moved !== undefined) this.countersAhead();
        const after =
          moved !== undefined
            ? moved.after
            : await mailboxes(this.db).findOneAndUpdate(
                { _id: mailbox._id, uidNext: { $lte: MAX_UID - todo.length + 1 } },
                { $inc: { uidNext: todo.length, highestModseq: todo.length, ...counters } },
                { returnDocument: 'after' },
              );
        const before =
          after === null
            ? null
            : { uidNext: after.uidNext - todo.length, highestModseq: after.highestModseq - todo.length };
        if (before === null) {
          const exists = await mailboxes(this.db).countDocuments({ _id: mailbox._id }, { limit: 1 });
          if (exists === 0) throw notFound('mailbox', 'mailbox');
          throw new MailstoreError(ErrorReason.LIMIT_EXCEEDED, 'mailbox ran out of UIDs');
        }
        todo.forEach((it, i) => {
          it.doc.uid = before.uidNext + i;
          it.doc.modseq = before.highestModseq + 1 + i;
          it.doc._id = messageKey(mailboxId, it.doc.uid);
        });
        allocated = todo;
        const refused = await this.insertNew(todo.map((it) => it.doc));
        allocated = [];
        todo.forEach((it, i) => {
          if (!refused.has(i)) it.stored = true;
        });
        const written = todo.filter((_, i) => !refused.has(i)).map((it) => it.doc);
        cacheWritten(written);
        index.patch(mailboxId, before.highestModseq, before.highestModseq + todo.length, (entry) =>
          entry.add(written.map(indexEntryOf)),
        );
        if (refused.size === 0) return;
        const lost = todo.filter((_, i) => refused.has(i));
        await this.takeBackCounters(mailbox, this.counterDecrementsOf(lost.map((it) => it.doc)));
        // The unique `_id` (and `(mailboxId, uid)`) refused UIDs another process also got
        // (possible only where updates are not atomic, see `withCounterLock`): allocate again, leaving gaps.
        if (attempt >= 10) throw new Error('could not allocate a free UID in 10 attempts');
        todo = lost;
      }
    } catch (error) {
      // Messages whose insert failed leave the counters they were given (UIDs and MODSEQs stay
      // used: gaps).
      if (allocated.length > 0) {
        await this.takeBackCounters(mailbox, this.counterDecrementsOf(allocated.map((it) => it.doc)));
      }
      await this.searchIndex()
        .deleteMany({ _id: { $in: todo.map((it) => it.entry._id) } })
        .catch(() => undefined);
      throw error;
    }
  }

  /**
   * Inserts new message documents; returns the indexes refused as duplicates. Any other failure
   * takes the counters of every document back out and throws.
   */
  private async insertNew(docs: readonly MessageRecord[]): Promise<Set<number>> {
    try {
      // Shared with the other inserts of messages of this process now (group commit, ADR 0007).
      return await groupInsert(this.db, this.messages(), docs);
    } catch (error) {
      const reported: OneOrMore<WriteError> | null =
        error instanceof MongoBulkWriteError ? error.writeErrors : null;
      const writeErrors: readonly WriteError[] | null =
        reported === null
          ? null
          : Array.isArray(reported)
            ? (reported as readonly WriteError[])
            : [reported as WriteError];
      if (writeErrors !== null && writeErrors.length > 0 && writeErrors.every((e) => e.code === 11000)) {
        return new Set(writeErrors.map((e) => e.index));
      }
      if (isDuplicateKey(error) && docs.length === 1) return new Set([0]);
      throw error;
    }
  }

  /** RFC 9051 §6.3.12 APPEND with RFC 4315 §3 APPENDUID. */
  async appendMessage(input: AppendInput, body: AsyncIterable<Uint8Array>): Promise<AppendResult> {
    const declared = input.declaredSize;
    if (declared !== undefined && declared > this.limits.maxMessageBytes) {
      throw new MailstoreError(ErrorReason.TOO_BIG, 'message larger than the limit', 'header.size');
    }
    // Both reads at once; a missing mailbox is reported before an exceeded quota, as one by one.
    const [found, quota] = await Promise.allSettled([
      this.resolveMailbox(input.userId, input.mailbox, 'header.mailbox'),
      declared === undefined ? null : this.checkQuota(input.userId, declared),
    ]);
    if (found.status === 'rejected') throw found.reason;
    if (quota.status === 'rejected') throw quota.reason;
    const mailbox = found.value;
    // With a declared size, `ingest` accepts exactly that many octets, already checked against the
    // quota; without one, the quota is checked once the size is known.
    const ingested = await this.ingest(body, declared, 1);
    try {
      if (declared === undefined) await this.checkQuota(input.userId, ingested.size);
    } catch (error) {
      await this.releaseBlobRefs(
        new Map([[ingested.blobId.toHexString(), { id: ingested.blobId, n: 1, store: ingested.blob.store }]]),
      );
      throw error;
    }
    let stored: { uid: number; modseq: number };
    try {
      stored = await this.insertMessage(
        mailbox,
        ingested,
        input.flags,
        input.internalDate ?? new Date(),
        input.spoolId === undefined ? undefined : { spoolId: input.spoolId },
      );
    } catch (error) {
      await this.releaseBlobRefs(
        new Map([[ingested.blobId.toHexString(), { id: ingested.blobId, n: 1, store: ingested.blob.store }]]),
      );
      throw error;
    }
    this.onChanged(input.userId, { mailboxId: mailbox._id.toHexString(), highestModseq: stored.modseq });
    return { mailboxId: mailbox._id.toHexString(), uidValidity: mailbox.uidValidity, ...stored };
  }

  /**
   * Inbound delivery of one job (DESIGN §2 steps 5–6): the body is encrypted and written once,
   * and a message is stored in each recipient's mailbox, as a batch of one (`commitDeliveries`).
   * `(spoolId, recipient)` is the idempotency key: a redelivered job stores nothing twice.
   */
  async deliverToMailboxes(
    spoolId: string,
    body: Uint8Array | AsyncIterable<Uint8Array>,
    recipients: readonly DeliveryRecipient[],
    receivedAt: Date = new Date(),
  ): Promise<DeliveryOutcome[]> {
    const prepared = await this.prepareDelivery(body);
    const [result] = await this.commitDeliveries([{ spoolId, body: prepared, recipients, receivedAt }]);
    if (result === undefined) throw new Error('delivery not committed');
    if (!result.ok) throw result.error;
    return [...result.outcomes];
  }

  /**
   * Parses and encrypts a delivery's body once, ahead of its batch's commit: a body in memory of
   * up to PACKED_BODY_LIMIT octets waits there for its batch's pack (written by
   * `commitDeliveries`); any other is written on its own now.
   */
  prepareDelivery(body: Uint8Array | AsyncIterable<Uint8Array>): Promise<PreparedBody> {
    if (body instanceof Uint8Array && body.length <= PACKED_BODY_LIMIT) {
      return this.parseAndSeal([body], 'pack');
    }
    return this.parseAndSeal(body instanceof Uint8Array ? [body] : body, 'own');
  }

  /** Removes a prepared body that no commit will reference (its job failed before). */
  async discardPrepared(body: PreparedBody): Promise<void> {
    // Never written (or its pack failed): nothing to remove.
    if (body.blob === undefined) return;
    // A body of a pack: its own copies were released by its commit; the pack goes with the
    // last reference of any of its bodies, which this release (of none) deletes if it is gone.
    const id = bodyRefId(body.blobId, body.blob);
    await this.releaseBlobRefs(new Map([[id.toHexString(), { id, n: 0, store: body.blob.store }]]));
  }

  /**
   * Writes the bodies of `batch` still sealed in memory, as packs (`writePack`: one blob and one
   * fsync for many bodies), each with its reference document counting every copy its bodies'
   * deliveries are about to store (so the commit writes no reference of its own for them, and
   * releases what it does not store). Answers, per delivery, why it cannot be committed (its
   * pack was not written), or undefined.
   */
  private async storePacked(batch: readonly BatchDelivery[]): Promise<unknown[]> {
    const errors: unknown[] = batch.map(() => undefined);
    const waiting = [...batch.entries()].filter(
      ([, d]) => d.body.blob === undefined && d.body.sealed !== undefined,
    );
    const groups: [number, BatchDelivery][][] = [];
    let bytes = Infinity;
    for (const entry of waiting) {
      const size = entry[1].body.sealed?.length ?? 0;
      if (bytes + size > PACK_BYTES) {
        groups.push([]);
        bytes = 0;
      }
      groups[groups.length - 1]?.push(entry);
      bytes += size;
    }
    for (const group of groups) {
      const store = this.blobs.primary;
      let packId: ObjectId | undefined;
      try {
        const written = await writePack(
          this.blobs,
          group.map(([, d]) => d.body.sealed as SealedBody),
        );
        packId = written.packId;
        const copies = group.reduce((n, [, d]) => n + plannedCopies(d), 0);
        await insertBlobRefs(this.db, [newBlobRef(written.packId, copies, store.kind)]);
        group.forEach(([, d], k) => {
          d.body.blob = written.stored[k];
          d.body.sealed = undefined;
        });
      } catch (error) {
        for (const [item] of group) errors[item] = error;
        if (packId !== undefined) {
          const id = packId.toHexString();
          await store.delete(id).catch((cause: unknown) => {
            // Swept later: a pack without a reference document.
            this.logger.warn({ err: cause, blobId: id }, 'could not remove an unreferenced pack');
          });
        }
      }
    }
    return errors;
  }

  /**
   * Commits the deliveries of a batch of jobs with one unordered bulk write per collection (blob
   * references, search entries, idempotency records, messages), one counter update per mailbox
   * and one usage update per user, instead of about twenty writes and reads per message: on
   * FerretDB every write is a transaction of its own and every read a scan of its collection
   * (docs/adr/0007-storage-ownership-and-write-path.md). Answers one result per delivery, in order.
   *
   * - No read on the way: mailboxes come from memory after their first use, quotas from one read
   *   of the batch's users, and "already delivered?" from the insert of the `(spoolId, recipient)`
   *   record itself, which a redelivered job's copy fails with a duplicate key. Only those copies
   *   (jobs that came back after a crash) take the slow path that reads (`settleRedelivery`).
   * - The record goes in before its message, both under the mailbox's lock after the UIDs were
   *   allocated, so a message is never stored without its record; a record without its message
   *   (a crash in between) is found and completed by the slow path.
   * - A document refused for any other reason fails only its own delivery; a failure of the batch
   *   as a whole is retried delivery by delivery, so one poisoned job never fails the others.
   */
  async commitDeliveries(
    batch: readonly BatchDelivery[],
    tag?: WriteTag,
    busyAttempt = 0,
  ): Promise<BatchDeliveryResult[]> {
    const unwritten = await this.storePacked(batch);
    if (unwritten.some((e) => e !== undefined)) {
      const ready = batch.flatMap((d, item) => (unwritten[item] === undefined ? [d] : []));
      const results = ready.length === 0 ? [] : await this.commitDeliveries(ready, tag);
      let next = 0;
      return batch.map((_, item) => {
        const error = unwritten[item];
        if (error !== undefined) return { ok: false, error };
        return results[next++] ?? { ok: false, error: new Error('not committed') };
      });
    }
    try {
      return await this.commitBatch(batch, tag);
    } catch (error) {
      // The database's writer was busy (FerretDB on SQLite): the batch is fine, so it is tried
      // again whole after a pause, rather than as one commit per delivery, which busies it more.
      if (busyAttempt < BUSY_RETRIES && isDatabaseBusy(error)) {
        this.logger.warn(
          { err: error, deliveries: batch.length, attempt: busyAttempt + 1 },
          'database busy; committing the batch again',
        );
        await new Promise((r) => setTimeout(r, BUSY_BACKOFF_MS * 2 ** busyAttempt * (0.5 + Math.random())));
        return this.commitDeliveries(batch, tag, busyAttempt + 1);
      }
      if (batch.length <= 1) return batch.map(() => ({ ok: false, error }));
      this.logger.warn(
        { err: error, deliveries: batch.length },
        'batch commit failed as a whole; committing its deliveries one by one',
      );
      const results: BatchDeliveryResult[] = [];
      for (const delivery of batch) results.push(...(await this.commitDeliveries([delivery], tag)));
      return results;
    }
  }

  private async commitBatch(batch: readonly BatchDelivery[], tag?: WriteTag): Promise<BatchDeliveryResult[]> {
    const outcomes: DeliveryOutcome[][] = batch.map(() => []);
    const errors: unknown[] = batch.map(() => undefined);
    const fail = (row: DeliveryRow, error: unknown): void => {
      row.state = 'failed';
      errors[row.item] ??= error;
    };
    const deliveryOf = (row: DeliveryRow): BatchDelivery => batch[row.item] as BatchDelivery;
    // Every body is written by now (storePacked, or prepareDelivery for a body on its own).
    const bodies = batch.map((d): IngestedBody | undefined =>
      d.body.blob === undefined ? undefined : { ...d.body, blob: d.body.blob },
    );
    const bodyOf = (item: number): IngestedBody => {
      const body = bodies[item];
      if (body === undefined) throw new Error('delivery body not written');
      return body;
    };

    const targets: { item: number; recipient: DeliveryRecipient; mailbox: MailboxRecord }[] = [];
    for (const [item, delivery] of batch.entries()) {
      if (bodies[item] === undefined) {
        errors[item] = new Error('delivery body not written');
        continue;
      }
      for (const recipient of distinctRecipients(delivery)) {
        try {
          const mailbox = await this.deliveryMailbox(recipient);
          if (mailbox === null)
            outcomes[item]?.push({ status: 'no-mailbox', recipient: recipient.recipient });
          else targets.push({ item, recipient, mailbox });
        } catch (error) {
          errors[item] ??= error;
        }
      }
    }
    // RFC 9208 §5: what each user may still store, from one read, less this batch's own copies.
    const room = await this.quotaRoom(targets.map((t) => t.recipient.userId));
    const rows: DeliveryRow[] = [];
    for (const target of targets) {
      if (errors[target.item] !== undefined) continue;
      const size = bodyOf(target.item).size;
      const left = room.bytes.get(target.recipient.userId);
      const leftMessages = room.messages.get(target.recipient.userId);
      if ((left !== undefined && left < size) || (leftMessages !== undefined && leftMessages < 1)) {
        outcomes[target.item]?.push({ status: 'over-quota', recipient: target.recipient.recipient });
        continue;
      }
      if (left !== undefined) room.bytes.set(target.recipient.userId, left - size);
      if (leftMessages !== undefined) room.messages.set(target.recipient.userId, leftMessages - 1);
      const delivery = batch[target.item] as BatchDelivery;
      const built = await this.newMessage(
        target.mailbox,
        bodyOf(target.item),
        target.recipient.flags ?? [],
        delivery.receivedAt,
        {
          spoolId: delivery.spoolId,
          recipient: target.recipient.recipient,
          ...(delivery.traceId === undefined ? {} : { traceId: delivery.traceId }),
        },
      );
      const own = delivery.tag ?? tag;
      if (own !== undefined) built.doc.own = own;
      rows.push({ ...target, ...built, record: undefined, state: 'accepted' });
    }

    // Blob references before the copies that hold them (a crash in between leaks, never loses).
    const refCounts = new Map<number, number>();
    for (const row of rows) refCounts.set(row.item, (refCounts.get(row.item) ?? 0) + 1);
    // A packed body's copies are counted already, in its pack's reference (storePacked).
    const refItems = [...refCounts.keys()].filter((item) => bodyOf(item).blob.pack === undefined);
    const refErrors = await insertUnordered(
      this.db.collection<BlobRefDoc>(Collections.blobRefs),
      refItems.map((item) => {
        const body = bodyOf(item);
        return newBlobRef(body.blobId, refCounts.get(item) ?? 0, body.blob.store);
      }),
    );
    const refFailed = new Map<number, WriteProblem>();
    refItems.forEach((item, i) => {
      const problem = refErrors.get(i);
      // A duplicate is this very reference, written by a batch commit that then failed as a whole.
      if (problem !== undefined && problem.code !== DUPLICATE_KEY) refFailed.set(item, problem);
    });
    for (const row of rows) {
      const problem = refFailed.get(row.item);
      if (problem !== undefined) fail(row, writeFailure('blob reference', problem));
    }
    // Search entries before messages: a message is never visible without its entry; an entry
    // without a message matches nothing (search joins on the message).
    const indexing = rows.filter((r) => r.state === 'accepted');
    const entryErrors = await insertUnordered(
      this.searchIndex(),
      indexing.map((r) => r.entry),
    );
    indexing.forEach((row, i) => {
      const problem = entryErrors.get(i);
      if (problem !== undefined) fail(row, writeFailure('search entry', problem));
    });

    const byMailbox = new Map<string, DeliveryRow[]>();
    for (const row of rows) {
      if (row.state !== 'accepted') continue;
      const id = row.mailbox._id.toHexString();
      byMailbox.set(id, [...(byMailbox.get(id) ?? []), row]);
    }
    await this.underLocks(
      [...byMailbox.keys()].map((id) => this.lockKey(id)),
      () => this.writeMessages(byMailbox, fail),
    );

    // Quota usage is the mailbox counters `writeMessages` moved: nothing to write for it.
    const changed = new Set(rows.filter((row) => row.state === 'stored').map((row) => row.doc.userId));
    const holding = new Map<number, number>();
    for (const row of rows) {
      if (row.state === 'stored') {
        outcomes[row.item]?.push({
          status: 'delivered',
          recipient: row.recipient.recipient,
          mailboxId: row.doc.mailboxId,
          uid: row.doc.uid,
        });
        holding.set(row.item, (holding.get(row.item) ?? 0) + 1);
      } else if (row.state === 'redelivered') {
        try {
          const settled = await this.settleRedelivery(row, deliveryOf(row), bodyOf(row.item));
          outcomes[row.item]?.push(settled.outcome);
          if (settled.holdsReference) {
            holding.set(row.item, (holding.get(row.item) ?? 0) + 1);
            changed.add(row.doc.userId);
          }
        } catch (error) {
          fail(row, error);
        }
      }
    }
    // References that no message holds: copies that were duplicates or failed, and bodies that no
    // copy needed at all (which deletes them).
    for (const [item, delivery] of batch.entries()) {
      const body = bodies[item];
      if (body === undefined) continue;
      const packed = body.blob.pack !== undefined;
      const taken = packed ? plannedCopies(delivery) : refFailed.has(item) ? 0 : (refCounts.get(item) ?? 0);
      const unused = taken - (holding.get(item) ?? 0);
      if (unused > 0 || taken === 0) {
        const id = bodyRefId(body.blobId, body.blob);
        await this.releaseBlobRefs(
          new Map([[id.toHexString(), { id, n: unused, store: body.blob.store }]]),
        ).catch((error: unknown) => {
          this.logger.warn({ err: error, blobId: id.toHexString() }, 'unused body not removed');
        });
      }
    }
    const orphans = rows.filter((r) => r.state !== 'stored').map((r) => r.entry._id);
    if (orphans.length > 0) {
      await this.searchIndex()
        .deleteMany({ _id: { $in: orphans } })
        .catch(() => undefined);
    }
    for (const userId of changed) this.onChanged(userId);
    return batch.map((_, item) =>
      errors[item] === undefined
        ? { ok: true, outcomes: outcomes[item] ?? [] }
        : { ok: false, error: errors[item] },
    );
  }

  /**
   * Allocates the UIDs and MODSEQs of each mailbox's new messages (one counter update per
   * mailbox: RFC 9051 §2.3.1.1, RFC 7162 §3.1), then writes the idempotency records and the
   * messages, each with one bulk insert, and patches the mailbox index. The caller holds the
   * locks of every mailbox in `byMailbox`.
   */
  private async writeMessages(
    byMailbox: ReadonlyMap<string, DeliveryRow[]>,
    fail: (row: DeliveryRow, error: unknown) => void,
  ): Promise<void> {
    const allocations: { mailboxId: string; before: MailboxRecord; rows: DeliveryRow[] }[] = [];
    try {
      for (const [mailboxId, group] of byMailbox) {
        const todo = group.filter((r) => r.state === 'accepted');
        const first = todo[0];
        if (first === undefined) continue;
        const before = await mailboxes(this.db).findOneAndUpdate(
          { _id: first.mailbox._id, path: first.mailbox.path, uidNext: { $lte: MAX_UID - todo.length + 1 } },
          { $inc: { uidNext: todo.length, highestModseq: todo.length, ...counters(todo.map((r) => r.doc)) } },
          { returnDocument: 'before' },
        );
        if (before === null) {
          this.deliveryTargets.delete(targetKey(first.mailbox.userId, first.mailbox.path));
          const exists = await mailboxes(this.db).countDocuments(
            { _id: first.mailbox._id, path: first.mailbox.path },
            { limit: 1 },
          );
          const error =
            exists === 0
              ? notFound('mailbox', 'mailbox')
              : new MailstoreError(ErrorReason.LIMIT_EXCEEDED, 'mailbox ran out of UIDs');
          for (const row of todo) fail(row, error);
          continue;
        }
        todo.forEach((row, i) => {
          row.doc.uid = before.uidNext + i;
          row.doc.modseq = before.highestModseq + 1 + i;
          row.doc._id = messageKey(mailboxId, row.doc.uid);
          row.record = {
            _id: deliveryKey(row.doc.spoolId ?? '', row.recipient.recipient),
            spoolId: row.doc.spoolId ?? '',
            recipient: row.recipient.recipient,
            userId: row.doc.userId,
            mailboxId,
            uid: row.doc.uid,
            messageId: row.doc._id,
            deliveredAt: new Date(),
            ...(row.doc.own === undefined ? {} : { own: row.doc.own }),
          };
          row.state = 'allocated';
        });
        allocations.push({ mailboxId, before, rows: todo });
      }
      const recording = allocations.flatMap((a) => a.rows);
      const recordErrors = await insertUnordered(
        this.deliveries(),
        recording.map((r) => r.record as DeliveryRecord),
      );
      recording.forEach((row, i) => {
        const problem = recordErrors.get(i);
        if (problem === undefined) row.state = 'recorded';
        else if (problem.code === DUPLICATE_KEY) row.state = 'redelivered';
        else fail(row, writeFailure('delivery record', problem));
      });
      const writing = recording.filter((r) => r.state === 'recorded');
      const messageErrors = await insertUnordered(
        this.messages(),
        writing.map((r) => r.doc),
      );
      writing.forEach((row, i) => {
        const problem = messageErrors.get(i);
        if (problem === undefined) row.state = 'stored';
        else fail(row, writeFailure('message', problem));
      });
    } catch (error) {
      // Counters were raised for messages that may not be there: the entries must be rebuilt.
      for (const a of allocations) index.drop(a.mailboxId);
      throw error;
    }
    for (const a of allocations) {
      const stored = a.rows.filter((r) => r.state === 'stored');
      const lost = a.rows.filter((r) => r.state !== 'stored');
      if (lost.length > 0) {
        // Allocated but not written here: their UIDs stay unused (a gap, which IMAP allows).
        await mailboxes(this.db)
          .updateOne({ _id: a.before._id }, { $inc: this.counterDecrementsOf(lost.map((r) => r.doc)) })
          .catch(() => undefined);
      }
      cacheWritten(stored.map((r) => r.doc));
      index.patch(a.mailboxId, a.before.highestModseq, a.before.highestModseq + a.rows.length, (entry) =>
        entry.add(stored.map((r) => indexEntryOf(r.doc))),
      );
    }
  }

  /** Runs `fn` holding every lock of `keys`, taken in one global order so holders never deadlock. */
  private underLocks<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(keys)].sort();
    const step = (i: number): Promise<T> => {
      const key = sorted[i];
      return key === undefined ? fn() : this.rt.withCounterLock(key, () => step(i + 1));
    };
    return step(0);
  }

  /** The mailbox a copy goes to (its fallback when that does not exist), from memory after the first time. */
  private async deliveryMailbox(recipient: DeliveryRecipient): Promise<MailboxRecord | null> {
    const paths = [recipient.mailbox ?? 'INBOX'];
    if (recipient.fallbackMailbox !== undefined) paths.push(recipient.fallbackMailbox);
    for (const path of paths) {
      const key = targetKey(recipient.userId, path);
      const known = this.deliveryTargets.get(key);
      if (known !== undefined) return known;
      let mailbox = await mailboxes(this.db).findOne({ userId: recipient.userId, path });
      if (mailbox === null && path === 'INBOX') {
        await createDefaultMailboxes(this.db, recipient.userId);
        mailbox = await mailboxes(this.db).findOne({ userId: recipient.userId, path });
      }
      if (mailbox === null) continue;
      if (this.deliveryTargets.size >= MAX_DELIVERY_TARGETS) this.deliveryTargets.clear();
      this.deliveryTargets.set(key, mailbox);
      return mailbox;
    }
    return null;
  }

  /**
   * Bytes and messages each of these users may still store, for those with a STORAGE or MESSAGE
   * quota (one read of the users, one of the mailboxes of those with a quota: usage is the sum of
   * their counters, `usageOf`).
   */
  private async quotaRoom(
    userIds: readonly string[],
  ): Promise<{ bytes: Map<string, number>; messages: Map<string, number> }> {
    const ids = [...new Set(userIds)].flatMap((id) => {
      const filter = userFilter(id);
      return filter === null ? [] : [filter._id];
    });
    if (ids.length === 0) return { bytes: new Map(), messages: new Map() };
    const docs = await users(this.db)
      .find({ _id: { $in: ids } }, { projection: { quotaBytes: 1, quotaMessages: 1 } })
      .toArray();
    const limited = docs.filter((u) => u.quotaBytes > 0 || (u.quotaMessages ?? 0) > 0);
    const used = await usageOf(
      this.db,
      limited.map((u) => u._id.toHexString()),
      this.recountHeld,
    );
    const usedOf = (id: string) => used.get(id) ?? { bytes: 0, messages: 0 };
    return {
      bytes: new Map(
        limited
          .filter((u) => u.quotaBytes > 0)
          .map((u) => [u._id.toHexString(), u.quotaBytes - usedOf(u._id.toHexString()).bytes] as const),
      ),
      messages: new Map(
        limited
          .filter((u) => (u.quotaMessages ?? 0) > 0)
          .map((u) => {
            const id = u._id.toHexString();
            return [id, (u.quotaMessages ?? 0) - usedOf(id).messages] as const;
          }),
      ),
    };
  }

  /**
   * A copy whose idempotency record already exists: the job came back (a crash or a lost ack
   * after an earlier attempt). Reads, which is fine off the hot path: if the earlier attempt's
   * message is there (or was since expunged or moved away), this is a duplicate; otherwise the
   * attempt stopped between record and message, and the copy is stored now with a new UID (UIDs
   * only ascend, RFC 9051 §2.3.1.1) and the record pointed at it.
   */
  private async settleRedelivery(
    row: DeliveryRow,
    delivery: BatchDelivery,
    body: IngestedBody,
  ): Promise<{ outcome: DeliveryOutcome; holdsReference: boolean }> {
    const recipient = row.recipient.recipient;
    const spoolId = delivery.spoolId;
    const key = deliveryKey(spoolId, recipient);
    const record =
      (await this.deliveries().findOne({ _id: key })) ??
      (await this.deliveries().findOne({ spoolId, recipient }));
    const copy = record === null ? null : await this.deliveredCopy(record);
    if (copy !== null) {
      return { outcome: { status: 'duplicate', recipient, ...copy }, holdsReference: false };
    }
    const { uid } = await this.insertMessage(
      row.mailbox,
      body,
      row.recipient.flags ?? [],
      delivery.receivedAt,
      { spoolId, recipient, ...(row.doc.own === undefined ? {} : { own: row.doc.own }) },
    );
    const mailboxId = row.mailbox._id.toHexString();
    // Upserted even when the record was found: a record that did not count (an unconfirmed batch
    // of a former owner) may be removed meanwhile by the clean-up of such batches, which this
    // owner runs alongside delivery (partitioned-delivery.ts). Without a record the copy stored
    // now would be stored again the next time its job comes back (ADR 0007, Commit-then-confirm).
    await this.deliveries().updateOne(
      { _id: record?._id ?? key },
      {
        $set: {
          spoolId,
          recipient,
          userId: row.recipient.userId,
          mailboxId,
          uid,
          messageId: messageKey(mailboxId, uid),
          deliveredAt: new Date(),
          ...(row.doc.own === undefined ? {} : { own: row.doc.own }),
        },
        // Not tagged now: the former tag must not have the clean-up remove the record later.
        ...(row.doc.own === undefined ? { $unset: { own: '' } } : {}),
      },
      { upsert: true },
    );
    return { outcome: { status: 'delivered', recipient, mailboxId, uid }, holdsReference: true };
  }

  /** Where the copy an idempotency record stands for is (or was), or null if it was never written. */
  private async deliveredCopy(record: DeliveryRecord): Promise<{ mailboxId: string; uid: number } | null> {
    const { spoolId, recipient } = record;
    if (record.own !== undefined && !this.writeCounts(record.own)) {
      // Written by an owner whose batch was never confirmed (ADR 0007): it does not count; its
      // message goes (the caller points the record at the copy it stores now).
      if (record.messageId !== undefined) {
        await this.discardWrites({ _id: record.messageId, ...ownFilter(record.own) });
      }
      return null;
    }
    // Records written before batched delivery got their UID only once their message was written.
    if (record.uid > 0 && record.messageId === undefined)
      return { mailboxId: record.mailboxId, uid: record.uid };
    if (record.messageId !== undefined) {
      const doc = await this.messages().findOne(
        { _id: record.messageId },
        { projection: { spoolId: 1, recipient: 1, mailboxId: 1, uid: 1 } },
      );
      if (doc !== null && doc.spoolId === spoolId && doc.recipient === recipient) {
        return { mailboxId: doc.mailboxId, uid: doc.uid };
      }
      // Expunged or moved away since: delivered all the same (its tombstone says so).
      const gone = await this.tombstones().countDocuments(
        { mailboxId: record.mailboxId, uid: record.uid },
        { limit: 1 },
      );
      if (record.uid > 0 && gone > 0) return { mailboxId: record.mailboxId, uid: record.uid };
    }
    const written = await this.messages().findOne(
      { spoolId, recipient },
      { projection: { mailboxId: 1, uid: 1, own: 1 } },
    );
    if (written?.own !== undefined && !this.writeCounts(written.own)) {
      await this.discardWrites({ _id: written._id, ...ownFilter(written.own) });
      return null;
    }
    return written === null ? null : { mailboxId: written.mailboxId, uid: written.uid };
  }

  /**
   * Removes messages that delivery batches wrote but never got confirmed (ADR 0007, Rebuild), as
   * an EXPUNGE does (counters down, tombstones in, bodies released), and the idempotency records
   * `records` selects, so their jobs, never acked, are delivered again by the partition's owner.
   * Claims first, so several processes discarding the same messages count each once.
   */
  async discardWrites(messages: Filter<MessageRecord>, records?: Filter<DeliveryRecord>): Promise<number> {
    // Clean-ups that arrive while one runs go together in the next (a replica that starts gains
    // all its partitions within a second or two, each with one): on FerretDB each is a decoding
    // scan of the whole messages collection, so 64 of them held a restart's index warm-up back
    // for minutes at 10,000 messages (docs/benchmarks.md). Deleting the union of the filters'
    // documents is what the separate calls would have done; each caller gets the total removed.
    let next = this.queuedDiscard;
    if (next === undefined) {
      const queued = { messages: [] as Filter<MessageRecord>[], records: [] as Filter<DeliveryRecord>[] };
      const run = this.discarding.then(() => {
        this.queuedDiscard = undefined;
        const one = <T>(filters: Filter<T>[]): Filter<T> | undefined =>
          filters.length <= 1 ? filters[0] : ({ $or: filters } as Filter<T>);
        return this.discardNow(one(queued.messages) ?? {}, one(queued.records));
      });
      next = { ...queued, run };
      this.queuedDiscard = next;
      this.discarding = run.catch(() => undefined);
    }
    next.messages.push(messages);
    if (records !== undefined) next.records.push(records);
    return next.run;
  }

  private async discardNow(
    messages: Filter<MessageRecord>,
    records?: Filter<DeliveryRecord>,
  ): Promise<number> {
    const found = await this.messages()
      .find(messages, { projection: { terms: 0, meta: 0 } })
      .toArray();
    const byMailbox = new Map<string, MessageRecord[]>();
    for (const doc of found) byMailbox.set(doc.mailboxId, [...(byMailbox.get(doc.mailboxId) ?? []), doc]);
    let removed = 0;
    for (const [mailboxId, docs] of byMailbox) {
      removed += await this.rt.withCounterLock(this.lockKey(mailboxId), async () => {
        const mine = await this.claim(mailboxId, docs);
        const first = mine[0];
        if (first === undefined) return 0;
        await this.messages().deleteMany({ expungeClaim: first.expungeClaim ?? '' });
        await this.searchIndex().deleteMany({ _id: { $in: mine.map(searchIdOf) } });
        const mailbox = await mailboxes(this.db).findOne({ _id: new ObjectId(mailboxId) });
        if (mailbox !== null) await this.removeFromSource(mailbox, mine);
        await this.releaseBlobRefs(Mailstore.refsOf(mine));
        this.onChanged(first.userId);
        return mine.length;
      });
    }
    if (records !== undefined) await this.deliveries().deleteMany(records);
    return removed;
  }

  // ---------------------------------------------------------------------------------------------
  // Reading

  private messages() {
    return this.db.collection<MessageRecord>(Collections.messages);
  }

  private searchIndex() {
    return this.db.collection<SearchIndexDoc>(MailstoreCollections.searchIndex);
  }

  private tombstones() {
    return this.db.collection<PendingTombstoneDoc>(Collections.tombstones);
  }

  private deliveries() {
    return this.db.collection<DeliveryRecord>(Collections.deliveries);
  }

  private pendingState(): PendingState {
    let state = this.rt.records;
    if (state === undefined) {
      const db = this.db;
      const changes = PendingChanges.load(db).then(async (loaded) => {
        const owned = new PendingChanges();
        await retainOwnedRecords(db, owned, loaded);
        return owned;
      });
      state = {
        changes,
        refreshQueued: false,
        timer: undefined,
        running: undefined,
        lastWrite: 0,
        stopped: false,
      };
      const loaded = state;
      changes.then(
        (p) => {
          if (p.size > 0) this.scheduleCompaction(loaded);
        },
        () => {
          if (this.rt.records === loaded) this.rt.records = undefined;
        },
      );
      this.rt.records = state;
    }
    return state;
  }

  /** The records not folded into message documents yet (loaded once per database). */
  private pending(): Promise<PendingChanges> {
    return this.pendingState().changes;
  }

  /**
   * Whether flag changes and expunges are written as appended records: when this process owns
   * its mailboxes' state, i.e. the mailbox index is on (ADR 0006, 0007). With the index off
   * (several replicas on MongoDB) they update the documents in place, as other replicas read them.
   */
  private get appendsRecords(): boolean {
    return index.enabled;
  }

  private scheduleCompaction(state: PendingState, delay = this.rt.settings.compaction.quietMs): void {
    if (state.timer !== undefined || state.stopped) return;
    state.timer = setTimeout(() => {
      state.timer = undefined;
      (async () => {
        const pending = await state.changes;
        pending.keepLatest = this.appendsRecords;
        const { quietMs, minBatch, idleMs, backlog } = this.rt.settings.compaction;
        const quietFor = Date.now() - state.lastWrite;
        const due =
          pending.size >= backlog ||
          (quietFor >= quietMs && pending.size >= minBatch) ||
          quietFor >= Math.max(quietMs, idleMs);
        if (!due) {
          this.scheduleCompaction(state);
          return;
        }
        await this.compactChanges().catch((error: unknown) => {
          this.logger.warn({ err: error }, 'compacting flag and expunge records failed; retried later');
        });
        if (pending.size > 0) this.scheduleCompaction(state);
      })().catch((error: unknown) => {
        // The records could not be loaded (the next use loads them again) or the client closed.
        this.logger.warn({ err: error }, 'background compaction of flag and expunge records failed');
      });
    }, delay);
    state.timer.unref();
  }

  /** A record was written: compaction comes once writes pause. */
  private recordWritten(): void {
    const state = this.pendingState();
    state.lastWrite = Date.now();
    this.scheduleCompaction(state);
  }

  /**
   * Folds every pending flag and expunge record into the message documents (normally in the
   * background after writes pause; tests and shutdown call it). Answers the records compacted.
   */
  async compactChanges(options: { holding?: string } = {}): Promise<number> {
    const state = this.pendingState();
    const pending = await state.changes;
    pending.keepLatest = this.appendsRecords;
    // Counters first: an index build takes UIDNEXT and HIGHESTMODSEQ above the pending
    // tombstones, which compaction turns into ordinary ones (`finishIndexBuild`); the expunges
    // of a mailbox whose counters are still ahead wait for the next compaction.
    await this.flushCounters(options.holding);
    while (state.running !== undefined) await state.running.catch(() => undefined);
    const run = (async () => {
      let total = 0;
      for (;;) {
        const n = await compactPending(pending, {
          db: this.db,
          logger: this.logger,
          underCompactionLock: (mailboxId, fn) => this.rt.compactionLocks.run(this.lockKey(mailboxId), fn),
          releaseBlobRefs: (counts) => this.releaseBlobRefs(counts),
          countersAhead: (mailboxId) => mailboxRecords.aheadIds(this.db).includes(mailboxId),
          keepLatestFlags: this.appendsRecords,
          ...(this.appendsRecords ? { keyOf: messageKey } : {}),
        });
        total += n;
        if (n === 0 || pending.size === 0) return total;
      }
    })();
    state.running = run;
    try {
      const total = await run;
      if (total > 0) this.logger.debug({ records: total }, 'flag and expunge records compacted');
      return total;
    } finally {
      if (state.running === run) state.running = undefined;
    }
  }

  /**
   * The mailbox as it stands once this process's writes in flight to it have finished, so a
   * HIGHESTMODSEQ or UIDNEXT handed out is never ahead of the messages that carry it.
   */
  private async settled(mailbox: MailboxRecord): Promise<MailboxRecord> {
    const id = mailbox._id.toHexString();
    const current = await this.rt.withCounterLock(this.lockKey(id), async () => {
      const known = mailboxRecords.byId(this.db, id);
      if (known !== undefined) return known;
      const token = mailboxRecords.readToken(this.db, id);
      const read = await mailboxes(this.db).findOne({ _id: mailbox._id });
      if (read !== null) mailboxRecords.keep(this.db, read, token);
      return read;
    });
    if (current === null) throw notFound('mailbox', 'mailbox');
    return current;
  }

  private async mailboxById(userId: string, mailboxId: string): Promise<MailboxRecord> {
    return this.resolveMailbox(userId, { id: mailboxId }, 'mailbox_id');
  }

  /** Highest UID in use (RFC 9051 §9 `*`), 0 for an empty mailbox. */
  private async highestUid(mailbox: MailboxRecord): Promise<number> {
    const mailboxId = mailbox._id.toHexString();
    if (mailbox.keyedMessages === true && mailbox.uidNext > 1) {
      // Usually the last UID handed out is still there: one `_id` lookup instead of a scan.
      const last = await this.messages().findOne(
        { _id: messageKey(mailboxId, mailbox.uidNext - 1) },
        { projection: { uid: 1 } },
      );
      if (last !== null) return last.uid;
    }
    const last = await this.messages().findOne({ mailboxId }, { sort: { uid: -1 }, projection: { uid: 1 } });
    return last?.uid ?? 0;
  }

  /**
   * The UID intervals a set names in `mailbox`. `*` is the highest UID in use (RFC 9051 §9); it is
   * looked up only when it matters: in `1:*` any upper bound at or above it names the same
   * messages, and UIDNEXT - 1 is one.
   */
  private async intervalsOf(mailbox: MailboxRecord, set: UidSet, field: string): Promise<Intervals> {
    const problem = uidSetProblem(set);
    if (problem !== undefined) throw new MailstoreError(ErrorReason.INVALID_ARGUMENT, problem, field);
    const exact = set.ranges.some((r) => r.last === 0 && r.first > 1);
    const entry = exact ? index.get(mailbox._id.toHexString(), mailbox.highestModseq) : undefined;
    const highest = !exact ? mailbox.uidNext - 1 : (entry?.highestUid ?? (await this.highestUid(mailbox)));
    return resolveUidSet(set, highest);
  }

  private uidFilter(intervals: Intervals): Filter<MessageRecord> {
    if (intervals.length === 0) return { uid: -1 };
    if (intervals.length > 64) {
      // Many ranges: one range scan, the rest filtered here (`inIntervals`).
      return { uid: { $gte: intervals[0]?.[0] ?? 1, $lte: intervals.at(-1)?.[1] ?? 0 } };
    }
    return { $or: intervals.map(([a, b]) => (a === b ? { uid: a } : { uid: { $gte: a, $lte: b } })) };
  }

  /**
   * The index of `mailbox` as of the document just read, built (under the mailbox's lock, one read
   * of its messages) when `build` and the index is on; undefined otherwise.
   */
  private async indexOf(mailbox: MailboxRecord, build: boolean): Promise<MailboxIndexEntry | undefined> {
    const mailboxId = mailbox._id.toHexString();
    const entry = index.get(mailboxId, mailbox.highestModseq);
    if (entry !== undefined || !index.enabled) return entry;
    if (index.has(mailboxId)) {
      // A step behind the document just read (a writer is patching it): wait, do not rebuild.
      const caught = await this.currentIndex(mailbox);
      if (caught !== undefined) return caught;
    }
    if (!build) return undefined;
    let pending = this.rt.indexBuilds.get(mailboxId);
    if (pending === undefined) {
      pending = this.buildIndex(mailbox).finally(() => this.rt.indexBuilds.delete(mailboxId));
      this.rt.indexBuilds.set(mailboxId, pending);
    }
    return pending;
  }

  /**
   * Fills the mailbox index at start, largest mailboxes first up to its bound, with ONE read of
   * the messages collection for all of them (on FerretDB any read by mailbox is a read of the
   * whole collection, so one per mailbox would cost as many). Builds as `buildIndex` does:
   * stamps under each lock, writers recorded meanwhile, caught up at the end. Readers of a
   * mailbox being warmed wait for it rather than read on their own. Logs progress.
   */
  async warmIndex(options: { minMessages?: number; signal?: AbortSignal } = {}): Promise<number> {
    if (!index.enabled) return 0;
    const minMessages = options.minMessages ?? POINT_LOOKUPS;
    const started = Date.now();
    const candidates = await mailboxes(this.db)
      .find({ messages: { $gte: minMessages } }, { projection: { _id: 1, messages: 1 } })
      .toArray();
    candidates.sort((a, b) => b.messages - a.messages);
    const chosen = new Map<string, { build: IndexBuild; entry: MailboxIndexEntry }>();
    let planned = 0;
    for (const c of candidates) {
      if (planned + c.messages > index.maxMessages) continue;
      const id = c._id.toHexString();
      if (this.rt.indexBuilds.has(id)) continue;
      const started = await this.rt.withCounterLock(this.lockKey(id), async () => {
        const current = await mailboxes(this.db).findOne({ _id: c._id });
        if (current === null || index.get(id, current.highestModseq) !== undefined) return undefined;
        const build = index.beginBuild(id, current.userId, current.highestModseq);
        if (build === undefined) return undefined;
        return { build, entry: new MailboxIndexEntry(current.userId, current.highestModseq) };
      });
      if (started === undefined) continue;
      chosen.set(id, started);
      planned += c.messages;
    }
    if (chosen.size === 0) return 0;
    this.logger.info({ mailboxes: chosen.size, messages: planned }, 'warming the mailbox index');
    let finish!: (kept: Set<string>) => void;
    const done = new Promise<Set<string>>((resolve) => (finish = resolve));
    for (const [id, { entry }] of chosen) {
      this.rt.indexBuilds.set(
        id,
        done.then((kept) => (kept.has(id) ? entry : undefined)).finally(() => this.rt.indexBuilds.delete(id)),
      );
    }
    const kept = new Set<string>();
    try {
      const pending = await this.pending();
      const budget = { bytes: index.maxSummaryBytes - index.summaryBytes };
      let read = 0;
      let lastLog = Date.now();
      const cursor = this.messages()
        .find({}, { projection: INDEX_BUILD_PROJECTION })
        .batchSize(WHOLE_READ_BATCH);
      for await (const doc of cursor) {
        if (options.signal?.aborted === true) throw new Error('warming the mailbox index was stopped');
        read++;
        if (Date.now() - lastLog > 10_000) {
          lastLog = Date.now();
          this.logger.info(
            { read, of: planned, ms: lastLog - started },
            'warming the mailbox index: messages read',
          );
        }
        if (doc.own !== undefined && !this.writeCounts(doc.own)) continue;
        const entry = chosen.get(doc.mailboxId)?.entry;
        const folded = entry === undefined ? null : pending.fold(doc.mailboxId, doc);
        if (folded !== null) entry?.add([await this.indexedWithSummary(folded, budget)]);
      }
      for (const [id, { build, entry }] of chosen) {
        if (await this.finishIndexBuild(build, entry)) kept.add(id);
      }
      this.logger.info(
        {
          mailboxes: kept.size,
          messages: index.messages,
          summaryBytes: index.summaryBytes,
          read,
          ms: Date.now() - started,
        },
        'mailbox index warm',
      );
      return kept.size;
    } catch (error) {
      for (const [id, { build }] of chosen) if (!kept.has(id)) index.abortBuild(build);
      throw error;
    } finally {
      finish(kept);
    }
  }

  /**
   * The current entry of `mailbox` without building one: when the entry is a step behind the
   * document just read (a writer of this process is between raising HIGHESTMODSEQ and patching),
   * waits for the mailbox's lock and looks again.
   */
  private async currentIndex(mailbox: MailboxRecord): Promise<MailboxIndexEntry | undefined> {
    const mailboxId = mailbox._id.toHexString();
    const entry = index.get(mailboxId, mailbox.highestModseq);
    if (entry !== undefined || !index.has(mailboxId)) return entry;
    return this.rt.withCounterLock(this.lockKey(mailboxId), async () => {
      const now =
        mailboxRecords.byId(this.db, mailboxId) ??
        (await mailboxes(this.db).findOne({ _id: mailbox._id }, { projection: { highestModseq: 1 } }));
      return now === null ? undefined : index.get(mailboxId, now.highestModseq);
    });
  }

  /**
   * Ends a build under the mailbox's lock against its HIGHESTMODSEQ now; true if the entry is kept.
   * A kept entry holds every message of the mailbox, so it also checks that UIDNEXT is above all
   * of them and raises it if not (a counter written after its messages and lost in a crash): a UID
   * is never handed out twice (RFC 9051 §2.3.1.1).
   */
  private finishIndexBuild(build: IndexBuild, entry: MailboxIndexEntry): Promise<boolean> {
    return this.rt.withCounterLock(this.lockKey(build.mailboxId), async () => {
      const _id = new ObjectId(build.mailboxId);
      const pending = await this.pending();
      const now = await mailboxes(this.db).findOne(
        { _id },
        {
          projection: {
            highestModseq: 1,
            uidNext: 1,
            messages: 1,
            size: 1,
            unseen: 1,
            deleted: 1,
            countersHeldBy: 1,
          },
        },
      );
      if (now === null) {
        index.abortBuild(build);
        return false;
      }
      const kept = index.finishBuild(build, entry, now.highestModseq);
      if (!kept) return false;
      // The owner writes the counters it moves in memory after the messages and records that
      // carry them (ADR 0007, "Counters in the owner"); lost with the process, they are recounted
      // here, so a UID or MODSEQ is never handed out twice (RFC 9051 §2.3.1.1, RFC 7162 §3.1).
      const counted = entry.counters();
      const top = pending.highestOf(build.mailboxId);
      const uidNext = Math.max(now.uidNext, entry.highestUid + 1, top.uid + 1);
      const highestModseq = Math.max(now.highestModseq, counted.highestModseq, top.modseq);
      const recount =
        now.messages !== counted.messages ||
        now.size !== counted.size ||
        now.unseen !== counted.unseen ||
        (now.deleted ?? 0) !== counted.deleted;
      // A mark of a lost holder (`holdCounters`) is answered by this recount: taken off.
      const mark = mailboxRecords.foreignMark(this.db, build.mailboxId, now);
      if (uidNext === now.uidNext && highestModseq === now.highestModseq && !recount) {
        if (mark !== undefined) {
          await this.db
            .collection<MailboxRecord>(Collections.mailboxes)
            .updateOne({ _id, countersHeldBy: mark }, { $unset: { countersHeldBy: '' } });
        }
        return true;
      }
      this.logger.warn(
        {
          mailboxId: build.mailboxId,
          uidNext: [now.uidNext, uidNext],
          highestModseq: [now.highestModseq, highestModseq],
          messages: [now.messages, counted.messages],
        },
        'mailbox counters were behind its messages and records; raised and recounted',
      );
      await mailboxes(this.db).updateOne(
        { _id },
        {
          $max: { uidNext, highestModseq },
          $set: {
            messages: counted.messages,
            size: counted.size,
            unseen: counted.unseen,
            deleted: counted.deleted,
          },
          ...(mark === undefined ? {} : { $unset: { countersHeldBy: '' } }),
        },
      );
      // The entry holds every message: it stands for the raised HIGHESTMODSEQ too.
      entry.stamp = highestModseq;
      return true;
    });
  }

  /**
   * Builds the entry of `mailbox`: its HIGHESTMODSEQ is read under the mailbox's lock (no change of
   * this process half done), its messages without it (writers go on; their patches are recorded),
   * and the recorded patches are replayed under the lock again (ADR 0006).
   */
  private async buildIndex(mailbox: MailboxRecord): Promise<MailboxIndexEntry | undefined> {
    const mailboxId = mailbox._id.toHexString();
    const lock = this.lockKey(mailboxId);
    const start = await this.rt.withCounterLock(lock, async () => {
      const current = await mailboxes(this.db).findOne({ _id: mailbox._id });
      if (current === null) return undefined;
      // A writer may have patched an entry while this call waited for the lock.
      const ready = index.get(mailboxId, current.highestModseq);
      if (ready !== undefined) return { current, ready, build: undefined };
      return { current, ready, build: index.beginBuild(mailboxId, current.userId, current.highestModseq) };
    });
    if (start === undefined) return undefined;
    if (start.ready !== undefined) return start.ready;
    const build = start.build;
    if (build === undefined) return undefined; // the start-up warm-up has it
    const started = Date.now();
    const entry = new MailboxIndexEntry(start.current.userId, start.current.highestModseq);
    try {
      const pending = await this.pending();
      const budget = { bytes: index.maxSummaryBytes - index.summaryBytes };
      const batch: IndexedMessage[] = [];
      const cursor = this.messages()
        .find({ mailboxId }, { projection: INDEX_BUILD_PROJECTION })
        .sort({ uid: 1 })
        .batchSize(WHOLE_READ_BATCH);
      for await (const found of cursor) {
        // A batch whose confirm never came does not count (ADR 0007, Rebuild).
        if (found.own !== undefined && !this.writeCounts(found.own)) continue;
        const doc = pending.fold(mailboxId, found);
        if (doc !== null) batch.push(await this.indexedWithSummary(doc, budget));
        if (batch.length >= 4096) entry.add(batch.splice(0));
      }
      entry.add(batch);
    } catch (error) {
      index.abortBuild(build);
      throw error;
    }
    const kept = await this.finishIndexBuild(build, entry);
    this.logger.info(
      { mailboxId, messages: entry.size, ms: Date.now() - started, kept, indexed: index.messages },
      'mailbox index built',
    );
    return kept ? entry : undefined;
  }

  /**
   * `doc` as the index holds it, with its summary while the build's `budget` (bytes of summaries
   * it may still add within POSTMESH_MAILBOX_INDEX_SUMMARY_BYTES) lasts. A message that cannot be
   * opened is indexed without one: the fetch that needs it reports the problem.
   */
  private async indexedWithSummary(doc: MessageRecord, budget: { bytes: number }): Promise<IndexedMessage> {
    const entry = indexEntryOf(doc);
    if (budget.bytes <= 0 || doc.meta === undefined) return entry;
    try {
      const summary = summaryOf(doc, await this.opened(doc));
      budget.bytes -= summaryBytes(summary);
      return { ...entry, summary };
    } catch (error) {
      this.logger.warn(
        { err: error, messageId: idText(doc._id) },
        'message could not be opened for the index',
      );
      return entry;
    }
  }

  /**
   * The messages of `mailbox` with UIDs in `intervals`, in UID order: by `_id` lookups when the
   * set is small and the mailbox keyed, else by one cursor over the mailbox (batched, never one
   * round trip per message).
   */
  private async *messagesIn(
    mailbox: MailboxRecord,
    intervals: Intervals,
    options: { projection?: Record<string, 0 | 1>; changedSince?: number } = {},
  ): AsyncGenerator<MessageRecord> {
    const mailboxId = mailbox._id.toHexString();
    const projection = options.projection ?? { terms: 0 };
    const since = options.changedSince;
    // Documents as the pending flag and expunge records make them (pending-changes.ts).
    const pending = await this.pending();
    if (mailbox.keyedMessages === true && intervalSize(intervals) <= POINT_LOOKUPS) {
      const uids = intervals
        .flatMap(([a, b]) => Array.from({ length: b - a + 1 }, (_, i) => a + i))
        .filter((uid) => !pending.isExpunged(mailboxId, uid));
      const docs = await mapLimited(uids, LOOKUP_CONCURRENCY, (uid) =>
        this.messages().findOne({ _id: messageKey(mailboxId, uid) }, { projection }),
      );
      for (const found of docs) {
        const doc = found === null ? null : pending.fold(mailboxId, found);
        if (doc !== null && (since === undefined || doc.modseq > since)) yield doc;
      }
      return;
    }
    const filter: Filter<MessageRecord> = { mailboxId, ...this.uidFilter(intervals) };
    // A pending record may have raised a MODSEQ the document does not show yet: filtered here.
    if (since !== undefined && !pending.has(mailboxId)) filter.modseq = { $gt: since };
    const cursor = this.messages().find(filter, { projection }).sort({ uid: 1 }).batchSize(BATCH);
    for await (const found of cursor) {
      if (!inIntervals(intervals, found.uid)) continue;
      const doc = pending.fold(mailboxId, found);
      if (doc !== null && (since === undefined || doc.modseq > since)) yield doc;
    }
  }

  /** One message by UID, or null. */
  private async messageByUid(mailbox: MailboxRecord, uid: number): Promise<MessageRecord | null> {
    const mailboxId = mailbox._id.toHexString();
    const pending = await this.pending();
    if (pending.isExpunged(mailboxId, uid)) return null;
    let doc = await this.messages().findOne(
      { _id: messageKey(mailboxId, uid) },
      { projection: { terms: 0 } },
    );
    if (doc === null && mailbox.keyedMessages !== true) {
      doc = await this.messages().findOne({ mailboxId, uid }, { projection: { terms: 0 } });
    }
    return doc === null ? null : pending.fold(mailboxId, doc);
  }

  private async unwrapKey(doc: MessageRecord): Promise<Uint8Array> {
    return this.keyring.unwrapForUser(doc.userId, doc.contentKey, contentContext(doc.blobId));
  }

  /** The content key and metadata of `doc`, from the message cache when it opened them before. */
  private async opened(doc: MessageRecord): Promise<OpenedMessage> {
    const id = typeof doc._id === 'string' ? doc._id : undefined;
    const known = id === undefined ? undefined : messageCache.opened(id);
    if (known !== undefined) return known;
    const key = await this.unwrapKey(doc);
    const opened: OpenedMessage = { key, meta: await this.openMeta(doc, key) };
    if (id !== undefined) messageCache.setOpened(id, opened);
    return opened;
  }

  private async openMeta(doc: MessageRecord, key?: Uint8Array): Promise<SealedMeta> {
    const contentKey = key ?? (await this.unwrapKey(doc));
    return JSON.parse(unseal(contentKey, META_LABEL, doc.blobId, doc.meta).toString('utf8')) as SealedMeta;
  }

  private async blobInfo(doc: MessageRecord): Promise<BlobInfo> {
    if (doc.blob !== undefined) return storedBodyInfo(doc.blobId, doc.blob);
    const info = await legacyBodyInfo(this.blobs, doc.blobId);
    if (info === undefined) throw new BlobIntegrityError(`blob ${doc.blobId.toHexString()} is missing`);
    return info;
  }

  /** Drops blob references; bodies whose last reference goes are deleted from their store. */
  private releaseBlobRefs(counts: BlobRefCounts): Promise<void> {
    return releaseRefs(this.db, this.blobs, counts);
  }

  private async rawHeader(doc: MessageRecord, meta: SealedMeta, key: Uint8Array): Promise<Buffer> {
    if (meta.rawHeader !== null) return Buffer.from(meta.rawHeader, 'base64');
    const root = meta.bodystructure.offsets;
    return readBlobBytes(this.blobs, await this.blobInfo(doc), key, root.headerStart, root.bodyStart);
  }

  /**
   * RFC 9051 §6.4.5 FETCH of metadata, RFC 7162 §3.1.4.1 CHANGEDSINCE. Reads in batches of
   * documents (one cursor), never one round trip per message.
   */
  async *fetchMessages(
    userId: string,
    mailboxId: string,
    uids: UidSet | undefined,
    changedSince: number | undefined,
    fields: readonly FetchFieldValue[],
  ): AsyncGenerator<mailstore.MessageMetadata> {
    const mailbox = await this.mailboxById(userId, mailboxId);
    const intervals = await this.intervalsOf(mailbox, uids ?? { ranges: [{ first: 1, last: 0 }] }, 'uids');
    const wantEnvelope = fields.includes(FetchFields.ENVELOPE);
    const wantStructure = fields.includes(FetchFields.BODYSTRUCTURE);
    const wantHeader = fields.includes(FetchFields.HEADER);
    const wantObjectIds = fields.includes(FetchFields.OBJECT_IDS);
    const needMeta = wantEnvelope || wantStructure || wantHeader || wantObjectIds;
    if (!needMeta) {
      // UIDs, flags, sizes and dates only (SELECT, `FETCH 1:* (FLAGS)`): the index answers
      // (ADR 0006), built on first use if the index is on.
      const entry = await this.indexOf(mailbox, true);
      if (entry !== undefined) {
        for (const m of entry.select(intervals, changedSince)) {
          const { flags, keywords } = splitFlags(m.flags);
          yield {
            uid: m.uid,
            modseq: m.modseq,
            flags,
            keywords,
            internalDate: m.internalDate,
            size: m.size,
            envelopeJson: '',
            bodystructureJson: '',
            header: Buffer.alloc(0),
            emailId: '',
            threadId: '',
          };
        }
        return;
      }
    }
    if (wantEnvelope && !wantStructure && !wantHeader && !wantObjectIds) {
      // `FETCH (FLAGS ENVELOPE)`, a client's sync: flags from the index, ENVELOPEs from the
      // summaries it keeps, so a mailbox larger than the message cache is not read back on
      // every sync.
      const entry = await this.indexOf(mailbox, true);
      const selection = entry?.select(intervals, changedSince);
      const summaries =
        entry === undefined || selection === undefined
          ? undefined
          : await this.summariesOf(mailbox, entry, selection);
      if (selection !== undefined && summaries !== undefined) {
        for (const [i, m] of selection.entries()) {
          const { flags, keywords } = splitFlags(m.flags);
          yield {
            uid: m.uid,
            modseq: m.modseq,
            flags,
            keywords,
            internalDate: m.internalDate,
            size: m.size,
            envelopeJson: summaries[i]?.envelopeJson ?? '',
            bodystructureJson: '',
            header: Buffer.alloc(0),
            emailId: '',
            threadId: '',
          };
        }
        return;
      }
    }
    const docs =
      (needMeta ? await this.cachedMessages(mailbox, intervals, changedSince) : undefined) ??
      this.messagesIn(mailbox, intervals, {
        projection: needMeta ? { terms: 0 } : { terms: 0, meta: 0, contentKey: 0 },
        ...(changedSince === undefined ? {} : { changedSince }),
      });
    for await (const doc of docs) {
      if (needMeta && typeof doc._id === 'string') messageCache.put(doc._id, doc);
      const { flags, keywords } = splitFlags(doc.flags);
      const out: mailstore.MessageMetadata = {
        uid: doc.uid,
        modseq: doc.modseq,
        flags,
        keywords,
        internalDate: doc.internalDate,
        size: doc.size,
        envelopeJson: '',
        bodystructureJson: '',
        header: Buffer.alloc(0),
        emailId: '',
        threadId: '',
      };
      if (needMeta) {
        const opened = await this.opened(doc);
        if (wantEnvelope) out.envelopeJson = opened.envelopeJson ??= JSON.stringify(opened.meta.envelope);
        if (wantStructure) {
          out.bodystructureJson = opened.bodystructureJson ??= JSON.stringify(opened.meta.bodystructure);
        }
        if (wantHeader) out.header = await this.rawHeader(doc, opened.meta, opened.key);
        if (wantObjectIds) {
          out.emailId = emailIdOf(doc.blobId);
          out.threadId = threadIdOf(opened.meta.headers, doc.blobId);
        }
      }
      yield out;
    }
  }

  /**
   * The messages of a set, in UID order, from the mailbox index entry (which ones, their flags and
   * MODSEQ) and the message cache (the rest), loading by `_id` the few the cache lacks; undefined
   * without a current entry or with too many missing (one read of the mailbox then fills the
   * cache).
   */
  private async cachedMessages(
    mailbox: MailboxRecord,
    intervals: Intervals,
    changedSince: number | undefined,
    fill = true,
  ): Promise<MessageRecord[] | undefined> {
    if (!messageCache.enabled || mailbox.keyedMessages !== true) return undefined;
    const mailboxId = mailbox._id.toHexString();
    // Built if missing: one read of the mailbox, after which its commands read nothing.
    const entry = await this.indexOf(mailbox, true);
    if (entry === undefined) return undefined;
    const selection = entry.select(intervals, changedSince);
    const missing = selection.filter((m) => !messageCache.has(messageKey(mailboxId, m.uid)));
    if (missing.length > POINT_LOOKUPS) {
      if (!fill || !(await this.fillMessageCache(mailbox, missing.length))) return undefined;
      // The entry may have moved on during the read: look again, from the mailbox as it is now.
      const now = await this.resolveMailbox(mailbox.userId, { id: mailboxId });
      return this.cachedMessages(now, intervals, changedSince, false);
    }
    const loaded = await mapLimited(missing, LOOKUP_CONCURRENCY, (m) =>
      this.messages().findOne({ _id: messageKey(mailboxId, m.uid) }, { projection: { terms: 0 } }),
    );
    for (const doc of loaded) if (doc !== null) messageCache.put(idText(doc._id), doc);
    const out: MessageRecord[] = [];
    for (const m of selection) {
      const hit = messageCache.get(messageKey(mailboxId, m.uid));
      if (hit !== undefined) out.push({ ...hit.doc, flags: [...m.flags], modseq: m.modseq });
    }
    return out;
  }

  /**
   * The summaries of `selection` (messages of the current index `entry` of `mailbox`), aligned
   * with it: those the index keeps, the rest made from the message cache, by `_id` lookups when
   * few, else by one read of the mailbox shared by concurrent readers; kept in the index within
   * its bound. Undefined when a message could not be found (it went meanwhile): the caller takes
   * the documents' path.
   */
  private async summariesOf(
    mailbox: MailboxRecord,
    entry: MailboxIndexEntry,
    selection: readonly IndexedMessage[],
  ): Promise<MessageSummary[] | undefined> {
    if (mailbox.keyedMessages !== true) return undefined;
    const mailboxId = mailbox._id.toHexString();
    const made = new Map<number, MessageSummary>();
    const unread: number[] = [];
    for (const m of selection) {
      if (m.summary !== undefined) continue;
      const hit = messageCache.get(messageKey(mailboxId, m.uid));
      if (hit !== undefined) made.set(m.uid, summaryOf(hit.doc, await this.opened(hit.doc)));
      else unread.push(m.uid);
    }
    if (unread.length > POINT_LOOKUPS) {
      let fill = this.rt.summaryFills.get(mailboxId);
      if (fill === undefined) {
        fill = this.readSummaries(mailbox, entry).finally(() => this.rt.summaryFills.delete(mailboxId));
        this.rt.summaryFills.set(mailboxId, fill);
      }
      const read = await fill;
      for (const uid of unread) {
        const summary = read.get(uid);
        if (summary !== undefined) made.set(uid, summary);
      }
    } else if (unread.length > 0) {
      const docs = await mapLimited(unread, LOOKUP_CONCURRENCY, (uid) =>
        this.messages().findOne({ _id: messageKey(mailboxId, uid) }, { projection: { terms: 0 } }),
      );
      for (const doc of docs) if (doc !== null) made.set(doc.uid, summaryOf(doc, await this.opened(doc)));
    }
    if (made.size > 0) {
      index.keepSummaries(
        mailboxId,
        entry,
        [...made].map(([uid, summary]) => ({ uid, summary })),
      );
    }
    const out: MessageSummary[] = [];
    for (const m of selection) {
      const summary = m.summary ?? made.get(m.uid);
      if (summary === undefined) return undefined;
      out.push(summary);
    }
    return out;
  }

  /**
   * One read of the messages of `mailbox` that `entry` has no summary of, in `_id` order (the
   * key names the mailbox and UID), opening each; not through the message cache, which a mailbox
   * larger than it would only churn. Kept in the index as it goes, within its bound.
   */
  private async readSummaries(
    mailbox: MailboxRecord,
    entry: MailboxIndexEntry,
  ): Promise<Map<number, MessageSummary>> {
    const mailboxId = mailbox._id.toHexString();
    const started = Date.now();
    const read = new Map<number, MessageSummary>();
    let batch: { uid: number; summary: MessageSummary }[] = [];
    const cursor = this.messages()
      .find(
        { _id: { $gte: messageKey(mailboxId, 0), $lte: messageKey(mailboxId, MAX_UID) } },
        { projection: { terms: 0 } },
      )
      .sort({ _id: 1 })
      .batchSize(WHOLE_READ_BATCH);
    for await (const doc of cursor) {
      const summary = summaryOf(doc, await this.opened(doc));
      read.set(doc.uid, summary);
      batch.push({ uid: doc.uid, summary });
      if (batch.length >= 1024) {
        index.keepSummaries(mailboxId, entry, batch);
        batch = [];
      }
    }
    index.keepSummaries(mailboxId, entry, batch);
    this.logger.info(
      { mailboxId, messages: read.size, ms: Date.now() - started, summaryBytes: entry.summaryBytes },
      'mailbox index summaries read',
    );
    return read;
  }

  /**
   * Fills the message cache with the messages of `mailbox` by one read of the mailbox, shared by
   * every reader that finds `missing` messages uncached meanwhile (several clients opening a cold
   * mailbox at once cost one read, not one each). False, without reading, when that many would
   * not fit well in the cache: the caller streams from the database instead.
   */
  private async fillMessageCache(mailbox: MailboxRecord, missing: number): Promise<boolean> {
    if (missing * CACHED_MESSAGE_BYTES > messageCache.maxBytes / 2) return false;
    const mailboxId = mailbox._id.toHexString();
    let fill = this.rt.cacheFills.get(mailboxId);
    if (fill === undefined) {
      fill = (async () => {
        const all: Intervals = [[1, MAX_UID]];
        for await (const doc of this.messagesIn(mailbox, all, { projection: { terms: 0 } })) {
          if (typeof doc._id === 'string') messageCache.put(doc._id, doc);
        }
      })().finally(() => this.rt.cacheFills.delete(mailboxId));
      this.rt.cacheFills.set(mailboxId, fill);
    }
    await fill;
    return true;
  }

  /**
   * RFC 9051 §6.4.5 BODY[section]<partial> and RFC 3516 BINARY[section]: resolves the section to
   * a byte range with the part offsets and decrypts only the records it covers.
   */
  async getMessageContent(
    userId: string,
    mailboxId: string,
    uid: number,
    section: string,
    partial: { offset: number; length: number } | undefined,
    decode: boolean,
  ): Promise<ContentResult> {
    const mailbox = await this.mailboxById(userId, mailboxId);
    // A message in the current index entry may come from the message cache (its flags and
    // MODSEQ from the entry); otherwise it is read, and cached for the next time.
    const id = messageKey(mailboxId, uid);
    const current =
      messageCache.enabled && mailbox.keyedMessages === true
        ? (await this.indexOf(mailbox, true))?.select([[uid, uid]])[0]
        : undefined;
    const hit = current === undefined ? undefined : messageCache.get(id);
    let doc: MessageRecord | null =
      hit === undefined || current === undefined
        ? null
        : { ...hit.doc, flags: [...current.flags], modseq: current.modseq };
    if (doc === null) {
      doc = await this.messageByUid(mailbox, uid);
      if (doc !== null && doc._id === id) messageCache.put(id, doc);
    }
    if (doc === null) throw notFound('message', 'uid');
    const { key, meta } = await this.opened(doc);
    const spec = parseSectionSpec(section);
    if (spec === null)
      throw new MailstoreError(ErrorReason.INVALID_ARGUMENT, 'not a section-spec', 'section');
    const resolved = resolveSection(meta.bodystructure, spec);
    if (!resolved.ok) {
      if (resolved.error === 'syntax')
        throw new MailstoreError(ErrorReason.INVALID_ARGUMENT, 'not a section-spec', 'section');
      throw notFound('section', 'section');
    }
    const info = hit?.blob ?? (await this.blobInfo(doc));
    if (hit?.blob === undefined && doc._id === id) messageCache.setBlob(id, info);
    const slice = (bytes: Buffer): Buffer => {
      if (partial === undefined) return bytes;
      const start = Math.min(partial.offset, bytes.length);
      return bytes.subarray(start, Math.min(bytes.length, start + partial.length));
    };
    const inMemory = (out: Buffer, sectionSize: number, containsNul: boolean): ContentResult => {
      return {
        info: { size: out.length, sectionSize, modseq: doc.modseq, containsNul },
        chunks: Array.from({ length: Math.ceil(out.length / CHUNK) }, (_, i) =>
          out.subarray(i * CHUNK, (i + 1) * CHUNK),
        ),
      };
    };
    if (resolved.fields !== null) {
      const header = await readBlobBytes(this.blobs, info, key, resolved.range.start, resolved.range.end);
      const selected = Buffer.from(selectHeaderFields(header, resolved.fields.names, resolved.fields.not));
      return inMemory(slice(selected), selected.length, false);
    }
    if (decode && spec.part.length > 0 && spec.text === null) {
      const part = findSectionPart(meta.bodystructure, spec.part);
      if (part === null) throw notFound('section', 'section');
      const raw = await readBlobBytes(this.blobs, info, key, resolved.range.start, resolved.range.end);
      const decoded = decodePartBody(part, raw);
      if (!decoded.ok) {
        // RFC 3516 §4.3: UNKNOWN-CTE; BINARY of a multipart is not a single body.
        throw new MailstoreError(
          ErrorReason.INVALID_ARGUMENT,
          `cannot decode: ${decoded.error}`,
          'decode_transfer_encoding',
        );
      }
      const bytes = Buffer.from(decoded.bytes);
      const out = slice(bytes);
      return inMemory(out, bytes.length, out.includes(0));
    }
    const sectionSize = resolved.range.end - resolved.range.start;
    const range =
      partial === undefined ? resolved.range : applyPartial(resolved.range, partial.offset, partial.length);
    const size = range.end - range.start;
    if (size <= VERIFY_BEFORE_ANSWER) {
      // Authenticated before anything is answered: tampering fails the call, not mid-literal.
      const bytes = await readBlobBytes(this.blobs, info, key, range.start, range.end);
      return inMemory(bytes, sectionSize, false);
    }
    return {
      info: { size, sectionSize, modseq: doc.modseq, containsNul: false },
      chunks: readBlobRange(this.blobs, info, key, range.start, range.end),
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Changing flags, copying, moving, expunging

  /** RFC 9051 §6.4.6 STORE, RFC 7162 §3.1.3 UNCHANGEDSINCE. */
  storeFlags(
    userId: string,
    mailboxId: string,
    uids: UidSet,
    mode: StoreModeValue,
    flags: readonly string[],
    unchangedSince: number | undefined,
  ): Promise<mailstore.StoreFlagsResponse> {
    return this.rt.withCounterLock(this.lockKey(mailboxId), () =>
      this.storeFlagsLocked(userId, mailboxId, uids, mode, flags, unchangedSince),
    );
  }

  private async storeFlagsLocked(
    userId: string,
    mailboxId: string,
    uids: UidSet,
    mode: StoreModeValue,
    flags: readonly string[],
    unchangedSince: number | undefined,
  ): Promise<mailstore.StoreFlagsResponse> {
    const mailbox = await this.mailboxById(userId, mailboxId);
    if (mode !== StoreModes.ADD && mode !== StoreModes.REMOVE && mode !== StoreModes.REPLACE) {
      throw new MailstoreError(ErrorReason.INVALID_ARGUMENT, 'store mode not set', 'mode');
    }
    const intervals = await this.intervalsOf(mailbox, uids, 'uids');
    const apply = (current: readonly string[]): string[] => {
      switch (mode) {
        case StoreModes.ADD:
          return [...new Set([...current, ...flags])];
        case StoreModes.REMOVE:
          return current.filter((f) => !flags.includes(f));
        default:
          return [...new Set(flags)];
      }
    };
    const sameSet = (a: readonly string[], b: readonly string[]) =>
      a.length === b.length && a.every((f) => b.includes(f));
    if (this.appendsRecords) {
      return this.storeFlagsAsRecords(mailbox, intervals, unchangedSince, (current) => {
        const next = apply(current);
        return sameSet(next, current) ? null : next;
      });
    }
    const pendingNow = await this.pending();
    if (pendingNow.has(mailboxId)) {
      // Records left by an owner that had the index on: folded into the documents first, since the
      // updates below compare-and-set on the documents' MODSEQ.
      await this.compactChanges({ holding: mailboxId });
    }
    const changed = new Map<number, mailstore.MessageFlags>();
    const modified = new Set<number>();
    const projection = { _id: 1, uid: 1, flags: 1, modseq: 1 } as const;
    // With a current index entry (one storage process, ADR 0006; this runs under the mailbox's
    // lock) the flags and MODSEQs are known and nobody else writes them: no read, and updates by
    // `_id` alone, which FerretDB finds without decoding the collection (a compare-and-set on
    // `modseq` as well is a decoding scan per message there).
    const entry = mailbox.keyedMessages === true ? index.get(mailboxId, mailbox.highestModseq) : undefined;
    let retry: MessageId[] | null = null;
    for (let attempt = 0; attempt < 8; attempt++) {
      const known = retry === null && entry !== undefined;
      const docs: Pick<MessageRecord, '_id' | 'uid' | 'flags' | 'modseq'>[] = [];
      if (known) {
        for (const m of entry.select(intervals)) {
          docs.push({ _id: messageKey(mailboxId, m.uid), uid: m.uid, flags: [...m.flags], modseq: m.modseq });
        }
      } else if (retry === null) {
        for await (const doc of this.messagesIn(mailbox, intervals, { projection })) docs.push(doc);
      } else {
        docs.push(
          ...(await this.messages()
            .find({ _id: { $in: retry } }, { projection })
            .sort({ uid: 1 })
            .toArray()),
        );
      }
      const updates: { doc: (typeof docs)[number]; next: string[] }[] = [];
      for (const doc of docs) {
        // RFC 7162 §3.1.3: a message changed after UNCHANGEDSINCE is not touched; MODIFIED lists it.
        if (unchangedSince !== undefined && doc.modseq > unchangedSince) {
          modified.add(doc.uid);
          continue;
        }
        const next = apply(doc.flags);
        if (!sameSet(next, doc.flags)) updates.push({ doc, next });
      }
      if (updates.length === 0) break;
      let unseen = 0;
      let deleted = 0;
      for (const { doc, next } of updates) {
        unseen += Number(!next.includes(SEEN)) - Number(!doc.flags.includes(SEEN));
        deleted += Number(next.includes(DELETED)) - Number(doc.flags.includes(DELETED));
      }
      // One new mod-sequence for this command's changes (RFC 7162 §3.1.1: greater than any before).
      const after = await mailboxes(this.db).findOneAndUpdate(
        { _id: mailbox._id },
        { $inc: { highestModseq: 1 } },
        { returnDocument: 'after' },
      );
      if (after === null) throw notFound('mailbox', 'mailbox_id');
      const modseq = after.highestModseq;
      const ops: AnyBulkWriteOperation<MessageRecord>[] = updates.map(({ doc, next }) => ({
        updateOne: {
          filter: known ? { _id: doc._id } : { _id: doc._id, modseq: doc.modseq },
          update: { $set: { flags: next, modseq } },
        },
      }));
      // In commands of a few statements: one `update` of ~100 matched statements deadlocks FerretDB.
      const result = await boundedBulkWrite(this.messages(), ops, { ordered: false });
      const ids = updates.map((u) => u.doc._id);
      let lost: MessageId[] = [];
      if (result.matchedCount !== updates.length) {
        // Someone changed some of them meanwhile: those are read again and recomputed.
        const now = await this.messages()
          .find({ _id: { $in: ids } }, { projection: { _id: 1, modseq: 1 } })
          .toArray();
        const applied = new Set(now.filter((d) => d.modseq === modseq).map((d) => idText(d._id)));
        const present = new Set(now.map((d) => idText(d._id)));
        lost = ids.filter((id) => !applied.has(idText(id)) && present.has(idText(id)));
        for (const u of updates.filter((x) => !applied.has(idText(x.doc._id)))) {
          unseen -= Number(!u.next.includes(SEEN)) - Number(!u.doc.flags.includes(SEEN));
          deleted -= Number(u.next.includes(DELETED)) - Number(u.doc.flags.includes(DELETED));
        }
      }
      const lostSet = new Set(lost.map(idText));
      for (const { doc, next } of updates) {
        if (lostSet.has(idText(doc._id))) continue;
        const split = splitFlags(next);
        changed.set(doc.uid, { uid: doc.uid, modseq, flags: split.flags, keywords: split.keywords });
      }
      if (lost.length > 0 || result.matchedCount !== updates.length) {
        index.drop(mailboxId); // changed by someone else too: the entry cannot know how
      } else {
        index.patch(mailboxId, modseq - 1, modseq, (entry) => {
          for (const { doc, next } of updates) entry.setFlags(doc.uid, next, modseq);
        });
      }
      if (unseen !== 0 || deleted !== 0) {
        await mailboxes(this.db).updateOne({ _id: mailbox._id }, { $inc: { unseen, deleted } });
      }
      if (lost.length === 0) break;
      retry = lost;
    }
    if (changed.size > 0) this.onChanged(userId);
    const final = await mailboxes(this.db).findOne(
      { _id: mailbox._id },
      { projection: { highestModseq: 1 } },
    );
    return {
      changed: [...changed.values()].sort((a, b) => a.uid - b.uid),
      modifiedUids: [...modified].sort((a, b) => a - b),
      highestModseq: final?.highestModseq ?? mailbox.highestModseq,
    };
  }

  /**
   * STORE as appended records (the caller holds the mailbox's lock and this process owns the
   * mailbox, ADR 0007): the flags and MODSEQs come from the index entry (or the documents, folded),
   * one counter update allocates the command's MODSEQ (RFC 7162 §3.1.1) and moves UNSEEN/DELETED,
   * and one insert writes a record per changed message; the entry and the pending records are
   * patched once that insert is durable. No message document is read or updated.
   */
  private async storeFlagsAsRecords(
    mailbox: MailboxRecord,
    intervals: Intervals,
    unchangedSince: number | undefined,
    nextFlags: (current: readonly string[]) => string[] | null,
  ): Promise<mailstore.StoreFlagsResponse> {
    const mailboxId = mailbox._id.toHexString();
    const pending = await this.pending();
    const entry = index.get(mailboxId, mailbox.highestModseq);
    const current: { uid: number; flags: readonly string[]; modseq: number }[] = [];
    if (entry !== undefined) current.push(...entry.select(intervals));
    else
      for await (const doc of this.messagesIn(mailbox, intervals, {
        projection: { _id: 1, uid: 1, flags: 1, modseq: 1 },
      }))
        current.push(doc);
    const modified: number[] = [];
    const updates: { uid: number; before: readonly string[]; next: string[] }[] = [];
    for (const m of current) {
      // RFC 7162 §3.1.3: a message changed after UNCHANGEDSINCE is not touched; MODIFIED lists it.
      if (unchangedSince !== undefined && m.modseq > unchangedSince) {
        modified.push(m.uid);
        continue;
      }
      const next = nextFlags(m.flags);
      if (next !== null) updates.push({ uid: m.uid, before: m.flags, next });
    }
    if (updates.length === 0) {
      return { changed: [], modifiedUids: modified, highestModseq: mailbox.highestModseq };
    }
    let unseen = 0;
    let deleted = 0;
    for (const { before, next } of updates) {
      unseen += Number(!next.includes(SEEN)) - Number(!before.includes(SEEN));
      deleted += Number(next.includes(DELETED)) - Number(before.includes(DELETED));
    }
    const modseq = await this.advanceCounters(mailbox, entry, { highestModseq: 1, unseen, deleted });
    const records: FlagChangeDoc[] = updates.map((u) => ({
      _id: new ObjectId(),
      mailboxId,
      uid: u.uid,
      flags: u.next,
      modseq,
    }));
    try {
      await groupInsert(this.db, flagChanges(this.db), records);
    } catch (error) {
      // Nothing of the command counts: its counters go back (the MODSEQ stays used, a gap).
      await this.takeBackCounters(mailbox, { unseen: -unseen, deleted: -deleted });
      index.drop(mailboxId);
      throw error;
    }
    for (const r of records) pending.setFlags(mailboxId, r.uid, r.flags, modseq, r._id);
    index.patch(mailboxId, modseq - 1, modseq, (e) => {
      for (const u of updates) e.setFlags(u.uid, u.next, modseq);
    });
    this.recordWritten();
    this.onChanged(mailbox.userId, { mailboxId, highestModseq: modseq });
    return {
      changed: updates.map((u) => {
        const split = splitFlags(u.next);
        return { uid: u.uid, modseq, flags: split.flags, keywords: split.keywords };
      }),
      modifiedUids: modified,
      highestModseq: modseq,
    };
  }

  /**
   * Moves the counters of `mailbox` (the caller holds its lock) and answers its new HIGHESTMODSEQ.
   * With a current index entry the owner moves them in memory (ADR 0007, "Counters in the owner"):
   * it is their only writer, `flushCounters` writes them later, and an index build recounts them
   * from the messages and records should they be lost with the process. Otherwise one counter
   * update of the mailbox document.
   */
  private async advanceCounters(
    mailbox: MailboxRecord,
    entry: MailboxIndexEntry | undefined,
    delta: CounterDelta,
  ): Promise<number> {
    const mailboxId = mailbox._id.toHexString();
    const current = (): boolean =>
      entry !== undefined && index.get(mailboxId, mailbox.highestModseq) === entry;
    const moved =
      current() && (await this.holdCounters(mailbox)) && current()
        ? mailboxRecords.advance(this.db, mailboxId, delta)
        : undefined;
    if (moved !== undefined && moved.before.highestModseq === mailbox.highestModseq) {
      this.countersAhead();
      return moved.after.highestModseq;
    }
    if (moved !== undefined) {
      // The copy was not the document this command read: put it back and write to the database.
      mailboxRecords.advance(this.db, mailboxId, negated(delta));
    }
    const after = await mailboxes(this.db).findOneAndUpdate(
      { _id: mailbox._id },
      { $inc: delta },
      { returnDocument: 'after' },
    );
    if (after === null) throw notFound('mailbox', 'mailbox_id');
    return after.highestModseq;
  }

  /** Takes counters of a write that failed back out (never UIDNEXT or HIGHESTMODSEQ: gaps). */
  private async takeBackCounters(mailbox: MailboxRecord, delta: CounterDelta): Promise<void> {
    const mailboxId = mailbox._id.toHexString();
    if (mailboxRecords.advance(this.db, mailboxId, delta) !== undefined) {
      this.countersAhead();
      return;
    }
    await mailboxes(this.db)
      .updateOne({ _id: mailbox._id }, { $inc: delta })
      .catch(() => undefined);
  }

  /** Counters were moved in memory: written within the runtime's `settings.counterFlush.delayMs`. */
  private countersAhead(): void {
    const state = this.rt.counterFlush;
    if (state.timer !== undefined) return;
    state.timer = setTimeout(() => {
      state.timer = undefined;
      this.flushCounters().catch((error: unknown) => {
        this.logger.warn({ err: error }, 'writing mailbox counters failed; retried later');
        this.countersAhead();
      });
    }, this.rt.settings.counterFlush.delayMs);
    state.timer.unref();
  }

  /**
   * Writes the counters this process moved in memory to the mailbox documents: one update per
   * mailbox, under its lock (compaction and tests call it too). A restart or a new owner never
   * needs them (the index build recounts), but other readers of the documents do (admin usage).
   */
  async flushCounters(holding?: string): Promise<number> {
    let written = 0;
    const flush = async (id: string): Promise<void> => {
      if (!mailboxRecords.aheadIds(this.db).includes(id)) return;
      // `mailboxes(db)` adds what is held ahead to this `$inc` (mailboxes.ts).
      await mailboxes(this.db).findOneAndUpdate(
        { _id: new ObjectId(id) },
        { $inc: { highestModseq: 0 } },
        { returnDocument: 'after' },
      );
      written++;
    };
    for (const id of mailboxRecords.aheadIds(this.db)) {
      // A caller holding one mailbox's lock flushes that one only: taking another's could
      // deadlock with a caller holding that one (compaction skips the mailboxes left ahead).
      if (id === holding) await flush(id);
      else if (holding === undefined) await this.rt.withCounterLock(this.lockKey(id), () => flush(id));
    }
    return written;
  }

  /**
   * Before the first counter of `mailbox` moved in memory in this tenure: marks its document
   * (`counterTenure`, ADR 0007 "Counters in the owner"), durably, so an owner that cannot rebuild
   * the counters from an index entry knows they may have been lost and recounts them. Answers
   * whether the counters may move in memory (false: the caller writes them to the database).
   */
  private async holdCounters(mailbox: MailboxRecord): Promise<boolean> {
    const mailboxId = mailbox._id.toHexString();
    if (mailboxRecords.holds(this.db, mailboxId)) return true;
    try {
      // Not through `mailboxes(db)`: the mark changes no counter, and the owner's copy stays.
      await this.db
        .collection<MailboxRecord>(Collections.mailboxes)
        .updateOne({ _id: mailbox._id }, { $set: { countersHeldBy: counterTenure } });
    } catch (error) {
      this.logger.warn({ err: error, mailboxId }, 'could not mark the mailbox counters as held');
      return false;
    }
    mailboxRecords.markHeld(this.db, mailboxId, mailbox.userId);
    return true;
  }

  /**
   * At a clean shutdown: writes the counters moved in memory (`flushCounters`) and takes this
   * tenure's marks off the mailboxes whose counters are all written, so their next owner need not
   * recount them. A mark left (a write failed) only costs that owner a recount.
   */
  async releaseCounters(): Promise<void> {
    await this.flushCounters();
    for (const id of mailboxRecords.heldIds(this.db)) {
      await this.rt.withCounterLock(this.lockKey(id), async () => {
        if (mailboxRecords.aheadIds(this.db).includes(id)) return;
        await this.db
          .collection<MailboxRecord>(Collections.mailboxes)
          .updateOne(
            { _id: new ObjectId(id), countersHeldBy: counterTenure },
            { $unset: { countersHeldBy: '' } },
          );
        mailboxRecords.released(this.db, id);
      });
    }
  }

  /**
   * Recounts the counters of a mailbox whose document carries the mark `mark` of a tenure that
   * may have lost counters it moved in memory, and takes the mark off, in one update conditional
   * on the mark. UIDNEXT goes above every UID of its messages, flag records and tombstones,
   * HIGHESTMODSEQ to at least every MODSEQ among them (RFC 9051 §2.3.1.1, RFC 7162 §3.1); MESSAGES,
   * SIZE, UNSEEN and DELETED are counted from the messages not expunged, with their latest flags.
   * Off the hot path: once per mailbox after its holder was lost, and only where no index entry
   * was built (a build recounts the same way, `finishIndexBuild`). The caller holds the mailbox's
   * counter lock.
   */
  private async recountCounters(mailboxId: string, mark: string): Promise<void> {
    let uid = 0;
    let modseq = 0;
    const latest = new Map<number, { flags: readonly string[]; modseq: number }>();
    for await (const c of flagChanges(this.db).find(
      { mailboxId },
      { projection: { uid: 1, flags: 1, modseq: 1 } },
    )) {
      uid = Math.max(uid, c.uid);
      modseq = Math.max(modseq, c.modseq);
      if ((latest.get(c.uid)?.modseq ?? 0) < c.modseq)
        latest.set(c.uid, { flags: c.flags, modseq: c.modseq });
    }
    const expunged = new Set<number>();
    for await (const t of this.tombstones().find({ mailboxId }, { projection: { uid: 1, modseq: 1 } })) {
      uid = Math.max(uid, t.uid);
      modseq = Math.max(modseq, t.modseq);
      expunged.add(t.uid);
    }
    const counted = { messages: 0, size: 0, unseen: 0, deleted: 0 };
    for await (const d of this.messages().find(
      { mailboxId },
      { projection: { uid: 1, size: 1, flags: 1, modseq: 1 } },
    )) {
      uid = Math.max(uid, d.uid);
      modseq = Math.max(modseq, d.modseq);
      if (expunged.has(d.uid)) continue;
      const change = latest.get(d.uid);
      const flags = change !== undefined && change.modseq > d.modseq ? change.flags : d.flags;
      counted.messages++;
      counted.size += d.size;
      if (!flags.includes(SEEN)) counted.unseen++;
      if (flags.includes(DELETED)) counted.deleted++;
    }
    this.logger.warn(
      { mailboxId, heldBy: mark, highestUid: uid, highestModseq: modseq, messages: counted.messages },
      'mailbox counters were held in memory by a lost owner; recounted from its messages and records',
    );
    // Not through `mailboxes(db)`: the caller is inside a write of this mailbox through it.
    await this.db
      .collection<MailboxRecord>(Collections.mailboxes)
      .updateOne(
        { _id: new ObjectId(mailboxId), countersHeldBy: mark },
        { $max: { uidNext: uid + 1, highestModseq: modseq }, $set: counted, $unset: { countersHeldBy: '' } },
      );
    index.drop(mailboxId);
  }

  private async selectForTransfer(mailbox: MailboxRecord, uids: UidSet): Promise<MessageRecord[]> {
    const intervals = await this.intervalsOf(mailbox, uids, 'uids');
    const docs: MessageRecord[] = [];
    for await (const doc of this.messagesIn(mailbox, intervals)) docs.push(doc);
    return docs;
  }

  /** Documents by `_id` (equality lookups for a few: FerretDB decodes the collection for `$in`). */
  private async byIds<T extends { _id: MessageId }>(
    collection: Collection<T>,
    ids: readonly MessageId[],
  ): Promise<WithId<T>[]> {
    if (ids.length === 0) return [];
    if (ids.length > POINT_LOOKUPS) {
      return collection.find({ _id: { $in: [...ids] } } as Filter<T>).toArray();
    }
    const found = await mapLimited(ids, LOOKUP_CONCURRENCY, (id) =>
      collection.findOne({ _id: id } as Filter<T>),
    );
    return found.filter((d): d is WithId<T> => d !== null);
  }

  /** Blob references held by `docs`, one per document. */
  private static refsOf(
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

  /**
   * Allocates `n` UIDs and one mod-sequence in `mailbox`, adding the counters of `docs`. The
   * caller holds the mailbox's lock until the messages carrying them are written, so nobody sees
   * the new HIGHESTMODSEQ before the messages that have it (RFC 7162 §3.1.2.1).
   */
  private async allocate(mailbox: MailboxRecord, docs: readonly MessageRecord[]) {
    const counters = {
      messages: docs.length,
      size: docs.reduce((s, d) => s + d.size, 0),
      unseen: docs.filter((d) => !d.flags.includes(SEEN)).length,
      deleted: docs.filter((d) => d.flags.includes(DELETED)).length,
    };
    const before = await mailboxes(this.db).findOneAndUpdate(
      { _id: mailbox._id, uidNext: { $lte: MAX_UID - docs.length + 1 } },
      { $inc: { uidNext: docs.length, highestModseq: 1, ...counters } },
      { returnDocument: 'before' },
    );
    if (before === null) throw notFound('mailbox', 'destination');
    return {
      firstUid: before.uidNext,
      previousModseq: before.highestModseq,
      modseq: before.highestModseq + 1,
      counters,
      uidValidity: before.uidValidity,
    };
  }

  /** RFC 9051 §6.4.7 COPY with RFC 4315 §3 COPYUID. Copies share the stored body. */
  async copyMessages(
    userId: string,
    mailboxId: string,
    uids: UidSet,
    destination: MailboxRef,
  ): Promise<mailstore.CopyMessagesResponse> {
    const source = await this.mailboxById(userId, mailboxId);
    const dest = await this.resolveMailbox(userId, destination, 'destination');
    const docs = await this.selectForTransfer(source, uids);
    if (docs.length === 0) {
      return {
        destinationMailboxId: dest._id.toHexString(),
        destinationUidValidity: dest.uidValidity,
        mappings: [],
      };
    }
    await this.checkQuota(
      userId,
      docs.reduce((s, d) => s + d.size, 0),
      docs.length,
    );
    const { firstUid, uidValidity } = await this.rt.withCounterLock(
      this.lockKey(dest._id.toHexString()),
      () => this.writeCopies(dest, docs, 'copy'),
    );
    this.onChanged(userId);
    return {
      destinationMailboxId: dest._id.toHexString(),
      destinationUidValidity: uidValidity,
      mappings: docs.map((d, i) => ({ sourceUid: d.uid, destinationUid: firstUid + i })),
    };
  }

  /**
   * Writes `docs` into `dest` with new UIDs and one new mod-sequence; the caller holds `dest`'s
   * lock. Blob references for the new documents are added first. A `copy` gets search entries of
   * its own (entry before message, as for a new message); a `move` keeps the source's entry
   * (re-pointed by the caller once the source is gone).
   */
  private async writeCopies(dest: MailboxRecord, docs: readonly MessageRecord[], kind: 'copy' | 'move') {
    const destId = dest._id.toHexString();
    const refs = Mailstore.refsOf(docs);
    await addBlobRefs(this.db, refs);
    const searchIds = docs.map((d) => (kind === 'copy' ? new ObjectId() : searchIdOf(d)));
    if (kind === 'copy') {
      const sourceEntries = new Map(
        (await this.byIds(this.searchIndex(), docs.map(searchIdOf))).map((e) => [idText(e._id), e]),
      );
      const entries: SearchIndexDoc[] = [];
      docs.forEach((d, i) => {
        const entry = sourceEntries.get(idText(searchIdOf(d)));
        const id = searchIds[i];
        if (entry !== undefined && id !== undefined) entries.push({ ...entry, _id: id, mailboxId: destId });
      });
      if (entries.length > 0) await this.searchIndex().insertMany(entries, { ordered: false });
    }
    let allocated: Awaited<ReturnType<Mailstore['allocate']>>;
    try {
      allocated = await this.allocate(dest, docs);
    } catch (error) {
      await this.releaseBlobRefs(refs);
      if (kind === 'copy') {
        await this.searchIndex()
          .deleteMany({ _id: { $in: searchIds } })
          .catch(() => undefined);
      }
      throw error;
    }
    // A copy carries neither a source's expunge claim (that EXPUNGE deletes by claim) nor its
    // delivery key (the copy is not the delivered message).
    const copies: MessageRecord[] = docs.map(
      ({ expungeClaim: _claim, expungeClaimedAt: _at, spoolId: _spool, recipient: _rcpt, ...d }, i) => ({
        ...d,
        _id: messageKey(destId, allocated.firstUid + i),
        searchId: searchIds[i] ?? searchIdOf(d),
        mailboxId: destId,
        uid: allocated.firstUid + i,
        modseq: allocated.modseq,
      }),
    );
    try {
      await this.messages().insertMany(copies, { ordered: true });
    } catch (error) {
      // Whatever got in stays out of sight only if removed: a half-written COPY is undone.
      await this.messages()
        .deleteMany({ _id: { $in: copies.map((c) => c._id) } })
        .catch(() => undefined);
      await mailboxes(this.db)
        .updateOne({ _id: dest._id }, { $inc: this.counterDecrementsOf(docs) })
        .catch(() => undefined);
      await this.releaseBlobRefs(refs);
      if (kind === 'copy') {
        await this.searchIndex()
          .deleteMany({ _id: { $in: searchIds } })
          .catch(() => undefined);
      }
      index.drop(destId);
      throw error;
    }
    cacheWritten(copies);
    index.patch(destId, allocated.previousModseq, allocated.modseq, (entry) =>
      entry.add(copies.map(indexEntryOf)),
    );
    return allocated;
  }

  /**
   * RFC 6851 §3.3 MOVE. A message's `_id` names its mailbox and UID, so a move writes the message
   * into the destination with its new UID and then deletes the source document: the source
   * messages are first claimed (as by EXPUNGE, so a concurrent EXPUNGE or MOVE cannot take them
   * too), then copied (with blob references of their own), then deleted by that claim, and the
   * source gets tombstones (VANISHED, RFC 7162 §3.2.10). A crash in between can leave a message in
   * both mailboxes (the claim expires and the source copy reappears), never in neither. Bodies
   * and search entries stay where they are.
   */
  async moveMessages(
    userId: string,
    mailboxId: string,
    uids: UidSet,
    destination: MailboxRef,
  ): Promise<mailstore.MoveMessagesResponse> {
    const source = await this.mailboxById(userId, mailboxId);
    const dest = await this.resolveMailbox(userId, destination, 'destination');
    const destId = dest._id.toHexString();
    if (destId === mailboxId) {
      throw new MailstoreError(
        ErrorReason.NOT_ALLOWED,
        'source and destination are the same mailbox',
        'destination',
      );
    }
    if (this.appendsRecords) {
      // Both mailboxes locked for the whole move: an EXPUNGE of the source, which writes only a
      // tombstone record under the source's lock, cannot take the same messages meanwhile.
      return this.underLocks([this.lockKey(mailboxId), this.lockKey(destId)], () =>
        this.moveLocked(userId, source, dest, uids, (_key, fn) => fn()),
      );
    }
    return this.moveLocked(userId, source, dest, uids, (key, fn) => this.rt.withCounterLock(key, fn));
  }

  private async moveLocked(
    userId: string,
    source: MailboxRecord,
    dest: MailboxRecord,
    uids: UidSet,
    lock: <T>(key: string, fn: () => Promise<T>) => Promise<T>,
  ): Promise<mailstore.MoveMessagesResponse> {
    const mailboxId = source._id.toHexString();
    const destId = dest._id.toHexString();
    if (this.appendsRecords) source = await this.mailboxById(userId, mailboxId);
    const selected = await this.selectForTransfer(source, uids);
    const docs = await this.claim(mailboxId, selected);
    if (docs.length === 0) {
      return {
        destinationMailboxId: destId,
        destinationUidValidity: dest.uidValidity,
        mappings: [],
        sourceHighestModseq: source.highestModseq,
      };
    }
    const claim = docs[0]?.expungeClaim ?? '';
    const { firstUid, uidValidity } = await lock(this.lockKey(destId), async () => {
      try {
        return await this.writeCopies(dest, docs, 'move');
      } catch (error) {
        // Nothing moved: give the sources back.
        await this.messages()
          .updateMany({ expungeClaim: claim }, { $unset: { expungeClaim: '', expungeClaimedAt: '' } })
          .catch(() => undefined);
        throw error;
      }
    });
    await this.messages().deleteMany({ expungeClaim: claim });
    const searchIds = docs.map(searchIdOf);
    await this.searchIndex().updateMany({ _id: { $in: searchIds } }, { $set: { mailboxId: destId } });
    await this.releaseBlobRefs(Mailstore.refsOf(docs));
    const sourceModseq = await lock(this.lockKey(mailboxId), () => this.removeFromSource(source, docs));
    this.onChanged(userId);
    return {
      destinationMailboxId: destId,
      destinationUidValidity: uidValidity,
      mappings: docs.map((d, i) => ({ sourceUid: d.uid, destinationUid: firstUid + i })),
      sourceHighestModseq: sourceModseq,
    };
  }

  /**
   * Marks `docs` (of `mailboxId`) as about to leave, unless a live EXPUNGE or MOVE claimed them
   * first; returns those this call claimed, in UID order, with `expungeClaim` set.
   */
  private async claim(mailboxId: string, docs: readonly MessageRecord[]): Promise<MessageRecord[]> {
    if (docs.length === 0) return [];
    const claim = new ObjectId().toHexString();
    const claimedAt = new Date();
    await this.messages().updateMany(
      { _id: { $in: docs.map((d) => d._id) }, mailboxId, ...unclaimed() },
      { $set: { expungeClaim: claim, expungeClaimedAt: claimedAt } },
    );
    const mine = new Set(
      (
        await this.messages()
          .find({ expungeClaim: claim }, { projection: { _id: 1 } })
          .toArray()
      ).map((d) => idText(d._id)),
    );
    return docs
      .filter((d) => mine.has(idText(d._id)))
      .map((d) => ({ ...d, expungeClaim: claim, expungeClaimedAt: claimedAt }));
  }

  /** The `$inc` that takes `docs` out of their mailbox's counters (messages, size, unseen, deleted). */
  private counterDecrementsOf(docs: readonly MessageRecord[]) {
    return {
      messages: -docs.length,
      size: -docs.reduce((s, d) => s + d.size, 0),
      unseen: -docs.filter((d) => !d.flags.includes(SEEN)).length,
      deleted: -docs.filter((d) => d.flags.includes(DELETED)).length,
    };
  }

  /** Counters down and tombstones in for messages that left `mailbox`; returns its HIGHESTMODSEQ. */
  private async removeFromSource(mailbox: MailboxRecord, gone: readonly MessageRecord[]): Promise<number> {
    const after = await mailboxes(this.db).findOneAndUpdate(
      { _id: mailbox._id },
      { $inc: { highestModseq: 1, ...(gone.length > 0 ? this.counterDecrementsOf(gone) : {}) } },
      { returnDocument: 'after' },
    );
    if (after === null) return mailbox.highestModseq;
    index.patch(mailbox._id.toHexString(), after.highestModseq - 1, after.highestModseq, (entry) =>
      entry.remove(
        gone.map((d) => d.uid),
        after.highestModseq,
      ),
    );
    if (gone.length > 0) {
      await this.tombstones().insertMany(
        gone.map((d) => ({
          _id: new ObjectId(),
          mailboxId: mailbox._id.toHexString(),
          uid: d.uid,
          modseq: after.highestModseq,
          expungedAt: new Date(),
        })),
        { ordered: false },
      );
    }
    return after.highestModseq;
  }

  /**
   * RFC 9051 §6.4.3 EXPUNGE, RFC 4315 §2.1 UID EXPUNGE: removes \Deleted messages, leaves
   * tombstones with a new mod-sequence (RFC 7162 §3.2.10) and releases their bodies.
   */
  expunge(userId: string, mailboxId: string, uids: UidSet | undefined): Promise<mailstore.ExpungeResponse> {
    return this.rt.withCounterLock(this.lockKey(mailboxId), () =>
      this.expungeLocked(userId, mailboxId, uids),
    );
  }

  private async expungeLocked(
    userId: string,
    mailboxId: string,
    uids: UidSet | undefined,
  ): Promise<mailstore.ExpungeResponse> {
    const mailbox = await this.mailboxById(userId, mailboxId);
    if (this.appendsRecords) return this.expungeAsRecords(mailbox, uids);
    if ((await this.pending()).has(mailboxId)) await this.compactChanges({ holding: mailboxId });
    let docs: MessageRecord[];
    if (uids === undefined) {
      docs = await this.messages()
        .find({ mailboxId, flags: DELETED }, { projection: { terms: 0, meta: 0 } })
        .sort({ uid: 1 })
        .toArray();
    } else {
      docs = (await this.selectForTransfer(mailbox, uids)).filter((d) => d.flags.includes(DELETED));
    }
    if (docs.length === 0) return { expungedUids: [], highestModseq: mailbox.highestModseq };
    // Claim, then delete what was claimed: a concurrent EXPUNGE or MOVE of the same messages
    // cannot make both count (and release) one message.
    docs = await this.claim(mailboxId, docs);
    if (docs.length === 0) return { expungedUids: [], highestModseq: mailbox.highestModseq };
    await this.messages().deleteMany({ expungeClaim: docs[0]?.expungeClaim ?? '' });
    await this.searchIndex().deleteMany({ _id: { $in: docs.map(searchIdOf) } });
    const highestModseq = await this.removeFromSource(mailbox, docs);
    await this.releaseBlobRefs(Mailstore.refsOf(docs));
    this.onChanged(userId);
    return { expungedUids: docs.map((d) => d.uid), highestModseq };
  }

  /**
   * EXPUNGE as appended records (the caller holds the mailbox's lock; this process owns the
   * mailbox, ADR 0007): the \Deleted messages come from the index entry (or the documents,
   * folded), one counter update allocates the MODSEQ of the removal (RFC 7162 §3.2.10) and takes
   * the messages out of the counters, and one insert writes their tombstones, marked pending. The
   * documents, search entries, blob references and usage follow in the background
   * (`compactChanges`); until then every read folds the tombstones.
   */
  private async expungeAsRecords(
    mailbox: MailboxRecord,
    uids: UidSet | undefined,
  ): Promise<mailstore.ExpungeResponse> {
    const mailboxId = mailbox._id.toHexString();
    const pending = await this.pending();
    const intervals: Intervals =
      uids === undefined ? [[1, MAX_UID]] : await this.intervalsOf(mailbox, uids, 'uids');
    const entry = index.get(mailboxId, mailbox.highestModseq);
    const gone: { uid: number; flags: readonly string[]; size: number }[] = [];
    if (entry !== undefined) {
      for (const m of entry.select(intervals)) if (m.flags.includes(DELETED)) gone.push(m);
    } else {
      const projection: Record<string, 0 | 1> = { _id: 1, uid: 1, flags: 1, modseq: 1, size: 1 };
      for await (const d of this.messagesIn(mailbox, intervals, { projection })) {
        if (d.flags.includes(DELETED)) gone.push(d);
      }
    }
    if (gone.length === 0) return { expungedUids: [], highestModseq: mailbox.highestModseq };
    const modseq = await this.advanceCounters(mailbox, entry, {
      highestModseq: 1,
      messages: -gone.length,
      size: -gone.reduce((s, m) => s + m.size, 0),
      unseen: -gone.filter((m) => !m.flags.includes(SEEN)).length,
      deleted: -gone.length,
    });
    const now = new Date();
    const tombstones = gone.map((m) => ({
      _id: new ObjectId(),
      mailboxId,
      uid: m.uid,
      modseq,
      expungedAt: now,
      pending: true,
    }));
    try {
      await groupInsert(this.db, this.tombstones(), tombstones);
    } catch (error) {
      await this.takeBackCounters(mailbox, {
        messages: gone.length,
        size: gone.reduce((s, m) => s + m.size, 0),
        unseen: gone.filter((m) => !m.flags.includes(SEEN)).length,
        deleted: gone.length,
      });
      index.drop(mailboxId);
      throw error;
    }
    for (const t of tombstones) pending.expunge(mailboxId, t.uid, t._id, modseq);
    // Quota usage drops with the EXPUNGE (RFC 9208 §5: it is the counters just moved), the
    // bodies with compaction.
    index.patch(mailboxId, modseq - 1, modseq, (e) =>
      e.remove(
        gone.map((m) => m.uid),
        modseq,
      ),
    );
    this.recordWritten();
    this.onChanged(mailbox.userId, { mailboxId, highestModseq: modseq });
    return { expungedUids: gone.map((m) => m.uid), highestModseq: modseq };
  }

  // ---------------------------------------------------------------------------------------------
  // Search, quota, changes

  /** What SEARCH's string keys may need of a message, decrypted on first use. */
  private searchSubject(doc: MessageRecord): SearchSubject {
    let key: Uint8Array | null = null;
    let meta: SealedMeta | null = null;
    let fields: HeaderField[] | null = null;
    const contentKey = async () => (key ??= (await this.opened(doc)).key);
    const subject: SearchSubject = {
      doc,
      meta: async () => (meta ??= (await this.opened(doc)).meta),
      headerFields: async () =>
        (fields ??= parseHeaderBlock(await this.rawHeader(doc, await subject.meta(), await contentKey()))),
      bodyText: async () => {
        const entry = await this.searchIndex().findOne(
          { _id: searchIdOf(doc) },
          { projection: { searchText: 1 } },
        );
        const sealed = entry?.searchText ?? null;
        return sealed === null
          ? ''
          : unseal(await contentKey(), TEXT_LABEL, doc.blobId, sealed).toString('utf8');
      },
      objectIds: async () => ({
        emailId: emailIdOf(doc.blobId),
        threadId: threadIdOf((await subject.meta()).headers, doc.blobId),
      }),
    };
    return subject;
  }

  /** RFC 9051 §6.4.4 SEARCH (with RFC 7162 §3.1.5 MODSEQ) over encrypted messages. */
  async search(
    userId: string,
    mailboxId: string,
    query: mailstore.SearchKey,
  ): Promise<mailstore.SearchResponse> {
    const mailbox = await this.mailboxById(userId, mailboxId);
    // `*` from the index entry when there is one (a read of the messages otherwise).
    const current = index.enabled ? await this.indexOf(mailbox, true) : undefined;
    const base = {
      hasher: await this.termHasher(userId),
      highestUid: current?.highestUid ?? (await this.highestUid(mailbox)),
      now: Date.now(),
    };
    const ctx: SearchContext = { ...base, target: 'message' };
    const parts: Filter<MessageRecord>[] = [{ userId, mailboxId }];
    const onMessages = prefilterFor(query, ctx);
    // Flags, UIDs, dates, sizes only (`SEARCH UNSEEN`, `SEARCH DELETED`; prefilterFor has checked
    // the query): the mailbox index answers without reading a message document (ADR 0006).
    // Matches the index's messages (with their summaries when given) without any content.
    const fromIndex = (
      selection: readonly IndexedMessage[],
      summaryAt?: (i: number) => MessageSummary | undefined,
    ): mailstore.SearchResponse => {
      // Resolved once for the mailbox; each message is then tested without an allocation.
      const test = indexMatcher(query, ctx);
      const found: number[] = [];
      let top = 0;
      for (let i = 0; i < selection.length; i++) {
        const m = selection[i] as IndexedMessage;
        if (test(m, summaryAt?.(i))) {
          found.push(m.uid);
          if (m.modseq > top) top = m.modseq;
        }
      }
      return { uids: found, highestModseq: top };
    };
    const entry = indexAnswers(query) ? current : undefined;
    if (entry !== undefined) return fromIndex(entry.select([[1, MAX_UID]]));
    // Header and sent-date keys (`SEARCH FROM`, `SUBJECT`, `SENTSINCE`): the index's summaries
    // answer them, made once per message (mailbox-index.ts `MessageSummary`).
    if (current !== undefined && summaryAnswers(query)) {
      const selection = current.select([[1, MAX_UID]]);
      const summaries = await this.summariesOf(mailbox, current, selection);
      if (summaries !== undefined) return fromIndex(selection, (i) => summaries[i]);
    }
    // Header and sent-date keys (`SEARCH FROM`, `SUBJECT`, `SENTSINCE`) over a mailbox whose
    // messages are all cached: decided from the cached (sealed) metadata, no read of the messages
    // or of the blind index. BODY/TEXT need the stored search text: the path below.
    const cached =
      !needsBodyText(query) && messageCache.enabled
        ? await this.cachedMessages(mailbox, [[1, MAX_UID]], undefined)
        : undefined;
    if (cached !== undefined) {
      const found: number[] = [];
      let top = 0;
      for (const doc of cached) {
        if (await matches(query, this.searchSubject(doc), ctx)) {
          found.push(doc.uid);
          top = Math.max(top, doc.modseq);
        }
      }
      return { uids: found, highestModseq: top };
    }
    // Flags and MODSEQs of messages with pending records differ from their documents: the
    // documents are then filtered here (`matches`), not by the database.
    const pending = await this.pending();
    if (onMessages !== null && !pending.has(mailboxId)) parts.push(onMessages);
    // The blind index narrows string keys: its candidates (by message id) join the filter.
    const onIndex = prefilterFor(query, { ...base, target: 'index' });
    if (onIndex !== null) {
      const hits = await this.searchIndex()
        .find(
          { $and: [{ userId, mailboxId }, onIndex as Filter<SearchIndexDoc>] },
          { projection: { _id: 1 } },
        )
        .toArray();
      const ids = hits.map((h) => h._id);
      // Entries are joined by the message's `searchId`, or by its `_id` for older messages.
      parts.push({ $or: [{ searchId: { $in: ids } }, { _id: { $in: ids } }] });
    }
    const filter: Filter<MessageRecord> = parts.length === 1 ? { userId, mailboxId } : { $and: parts };
    const uids: number[] = [];
    let highestModseq = 0;
    const cursor = this.messages()
      .find(filter, { projection: { terms: 0 } })
      .sort({ uid: 1 })
      .batchSize(BATCH);
    for await (const found of cursor) {
      const doc = pending.fold(mailboxId, found);
      if (doc === null) continue;
      if (await matches(query, this.searchSubject(doc), ctx)) {
        uids.push(doc.uid);
        highestModseq = Math.max(highestModseq, doc.modseq);
      }
    }
    return { uids, highestModseq };
  }

  /** RFC 9208 §5.1: one quota root per user. */
  async getQuota(userId: string): Promise<mailstore.GetQuotaResponse> {
    const filter = userFilter(userId);
    const user =
      filter === null
        ? null
        : await users(this.db).findOne(filter, {
            projection: { quotaBytes: 1, quotaMessages: 1 },
          });
    if (user === null) throw notFound('user', 'user_id');
    const used = (await usageOf(this.db, [userId], this.recountHeld)).get(userId);
    return {
      usedBytes: used?.bytes ?? 0,
      limitBytes: user.quotaBytes ?? 0,
      usedMessages: used?.messages ?? 0,
      limitMessages: user.quotaMessages ?? 0,
    };
  }

  /** RFC 7162 §3.2.5 QRESYNC catch-up: changed messages and vanished UIDs since a mod-sequence. */
  async getChanges(
    userId: string,
    mailboxId: string,
    sinceModseq: number,
    uidValidity: number,
    knownUids: UidSet | undefined,
  ): Promise<mailstore.GetChangesResponse> {
    const mailbox = await this.settled(await this.mailboxById(userId, mailboxId));
    const base = {
      highestModseq: mailbox.highestModseq,
      uidValidity: mailbox.uidValidity,
      uidNext: mailbox.uidNext,
    };
    if (uidValidity !== 0 && uidValidity !== mailbox.uidValidity) {
      // RFC 7162 §3.2.5.2: the client's cache is void.
      return { ...base, changed: [], vanished: { ranges: [] }, uidValidityChanged: true };
    }
    // Every UID in use is below UIDNEXT, so it bounds `*` for the membership test.
    const highest = mailbox.uidNext - 1;
    const known = knownUids === undefined ? null : resolveUidSet(knownUids, highest);
    const inKnown = (uid: number) => known === null || known.some(([a, b]) => uid >= a && uid <= b);
    // The mailbox index knows what changed, and whether anything left since (ADR 0006): the usual
    // IDLE wake-up (new mail) then reads neither messages nor tombstones.
    const entry = await this.indexOf(mailbox, true);
    if (entry !== undefined) {
      const changed = entry.select([[1, MAX_UID]], sinceModseq).map((m) => {
        const split = splitFlags(m.flags);
        return { uid: m.uid, modseq: m.modseq, flags: split.flags, keywords: split.keywords };
      });
      // Removals since the entry was built are in it; older ones only in the tombstones.
      const vanished =
        entry.removedSince(sinceModseq) ??
        (
          await this.tombstones()
            .find({ mailboxId, modseq: { $gt: sinceModseq } }, { projection: { uid: 1 } })
            .toArray()
        ).map((t) => t.uid);
      return {
        ...base,
        changed,
        vanished: uidSetFromUids(vanished.filter(inKnown)),
        uidValidityChanged: false,
      };
    }
    const changed: mailstore.MessageFlags[] = [];
    for await (const doc of this.messagesIn(mailbox, [[1, MAX_UID]], {
      projection: { uid: 1, modseq: 1, flags: 1 },
      changedSince: sinceModseq,
    })) {
      const split = splitFlags(doc.flags);
      changed.push({ uid: doc.uid, modseq: doc.modseq, flags: split.flags, keywords: split.keywords });
    }
    const vanished = await this.tombstones()
      .find({ mailboxId, modseq: { $gt: sinceModseq } }, { projection: { uid: 1 } })
      .toArray();
    return {
      ...base,
      changed,
      vanished: uidSetFromUids(vanished.map((t) => t.uid).filter(inKnown)),
      uidValidityChanged: false,
    };
  }
}

export { DELIMITER, SpecialUseValues, subscriptions };
