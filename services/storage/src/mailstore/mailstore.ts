/**
 * The mailstore: mailboxes and messages of each user, encrypted at rest (DESIGN §4, §5).
 *
 * Implements the storage side of RFC 9051 (IMAP4rev2), RFC 7162 (CONDSTORE/QRESYNC), RFC 4315
 * (UIDPLUS), RFC 6851 (MOVE), RFC 9208 (QUOTA) and RFC 5032 (WITHIN), on the portable subset of
 * MongoDB that FerretDB shares: no transactions. Invariants hold without them:
 * - UIDs and mod-sequences are allocated by one `findOneAndUpdate` with `$inc` on the mailbox
 *   (serialised per mailbox within the process, see `MailstoreRuntime.withCounterLock`) before
 *   the message is written. A crash in between leaves a gap in UIDs, which IMAP allows (RFC 9051
 *   §2.3.1.1 "strictly ascending", not "contiguous"), never a duplicate: the unique index
 *   `(mailboxId, uid)` refuses one.
 * - Blob references are added before the copies that hold them and dropped after the copies are
 *   gone, so a crash can leak a blob but never delete one still in use.
 * - Counters (`messages`, `unseen`, `deleted`, `size`) change with `$inc`, never by scanning;
 *   a crash between a message write and its counter update can leave them off by that message.
 *
 * `Mailstore` is a facade over the parts that do the work, one module per role (docs/architecture.md,
 * "Storage: the mailstore by role"), wired through one `StoreParts` object (store-part.ts).
 */
import type { UidSet, mailstore } from '@postmesh/contracts';
import type { MailboxChange } from '@postmesh/bus';
import type { Logger } from '@postmesh/telemetry';
import type { Db, Filter } from 'mongodb';
import type { UserKeyring } from '../crypto/types.js';
import type { BlobStores } from '../blob/index.js';
import {
  SpecialUseValues,
  type FetchFieldValue,
  type SpecialUseValue,
  type StoreModeValue,
} from './contract.js';
import type { MailstoreRuntime } from './runtime.js';
import { subscriptions, setCounterRecount, type ListRequest, type ListedMailbox } from './mailboxes.js';
import { DELIMITER } from './paths.js';
import type { DeliveryRecord, MailboxRecord, MessageRecord, WriteTag } from './types.js';
import type { StoreParts, StoreRoles } from './store-part.js';
import type { WriteFence } from './write-fence.js';
import type { FlagChangeDoc, PendingTombstoneDoc } from './pending-changes.js';
import {
  type MailboxRef,
  type MailstoreLimits,
  DEFAULT_LIMITS,
  type AppendInput,
  type AppendResult,
  type DeliveryRecipient,
  type DeliveryOutcome,
  type PreparedBody,
  type BatchDelivery,
  type BatchDeliveryResult,
  type ContentResult,
} from './store-common.js';
import { MailboxOps } from './mailbox-ops.js';
import { MessageWriter } from './message-writer.js';
import { DeliveryCommit } from './delivery-commit.js';
import { QuotaChecks } from './quota.js';
import { IndexUpkeep } from './index-upkeep.js';
import { ContentReader } from './content-reader.js';
import { FlagStore } from './flag-store.js';
import { CopyMoveExpunge } from './copy-move-expunge.js';
import { MessageSearch } from './search.js';

export { DEFAULT_LIMITS, isDatabaseBusy, messageKey, deliveryKey, sentDayOf } from './store-common.js';
export type {
  MailboxRef,
  MailstoreLimits,
  AppendInput,
  AppendResult,
  DeliveryRecipient,
  DeliveryOutcome,
  IngestedBody,
  PreparedBody,
  BatchDelivery,
  BatchDeliveryResult,
  ContentResult,
} from './store-common.js';

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
  /**
   * Commit-then-confirm of the IMAP writes (APPEND, STORE, EXPUNGE, COPY, MOVE; write-fence.ts):
   * given by storage's gRPC service with ownership on. Default: not fenced.
   */
  readonly fence?: WriteFence;
}

/** The mailstore's API; each call is answered by the part of its role (`this.s.<role>`). */
export class Mailstore {
  private readonly s: StoreParts;

  constructor(deps: MailstoreDeps, limits: Partial<MailstoreLimits> = {}) {
    if (deps.runtime.db !== deps.db) throw new Error('the mailstore runtime belongs to another database');
    const logger = deps.logger;
    const notify = deps.onMailboxChanged;
    const roles: Partial<StoreRoles> = {};
    const s: StoreParts = Object.assign(roles, {
      db: deps.db,
      rt: deps.runtime,
      blobs: deps.blobs,
      keyring: deps.keyring,
      logger,
      limits: { ...DEFAULT_LIMITS, ...limits },
      writeCounts: deps.writeCounts ?? (() => true),
      fence: deps.fence,
      onChanged: (userId: string, change?: MailboxChange) => {
        try {
          notify?.(userId, change);
        } catch (error) {
          logger.warn({ err: error }, 'mailbox change notification failed');
        }
      },
    }) as StoreParts;
    roles.boxes = new MailboxOps(s);
    roles.writer = new MessageWriter(s);
    roles.batches = new DeliveryCommit(s);
    roles.quota = new QuotaChecks(s);
    roles.upkeep = new IndexUpkeep(s);
    roles.reader = new ContentReader(s);
    roles.flags = new FlagStore(s);
    roles.transfer = new CopyMoveExpunge(s);
    roles.searcher = new MessageSearch(s);
    this.s = s;
    setCounterRecount(deps.db, (mailboxId, mark) => s.flags.recountCounters(mailboxId, mark));
  }

  // MailboxOps (mailbox-ops.ts)

  createDefaultMailboxes(userId: string): Promise<void> {
    return this.s.boxes.createDefaultMailboxes(userId);
  }

  listMailboxes(request: ListRequest): Promise<ListedMailbox[]> {
    return this.s.boxes.listMailboxes(request);
  }

  resolveMailbox(userId: string, ref: MailboxRef, field = 'mailbox'): Promise<MailboxRecord> {
    return this.s.boxes.resolveMailbox(userId, ref, field);
  }

  createMailbox(
    userId: string,
    rawPath: string,
    specialUse: SpecialUseValue,
    subscribe: boolean,
  ): Promise<{ mailbox: ListedMailbox; createdParents: string[] }> {
    return this.s.boxes.createMailbox(userId, rawPath, specialUse, subscribe);
  }

  renameMailbox(userId: string, ref: MailboxRef, rawNewPath: string): Promise<ListedMailbox> {
    return this.s.boxes.renameMailbox(userId, ref, rawNewPath);
  }

  deleteMailbox(userId: string, ref: MailboxRef): Promise<string> {
    return this.s.boxes.deleteMailbox(userId, ref);
  }

  purgeUserMail(userId: string): Promise<void> {
    return this.s.boxes.purgeUserMail(userId);
  }

  setSubscribed(userId: string, path: string, subscribed: boolean): Promise<void> {
    return this.s.boxes.setSubscribed(userId, path, subscribed);
  }

  getMailboxStatus(
    userId: string,
    ref: MailboxRef,
    claimRecent: boolean,
  ): Promise<mailstore.GetMailboxStatusResponse> {
    return this.s.boxes.getMailboxStatus(userId, ref, claimRecent);
  }

  // MessageWriter (message-writer.ts)

  appendMessage(input: AppendInput, body: AsyncIterable<Uint8Array>): Promise<AppendResult> {
    return this.s.writer.appendMessage(input, body);
  }

  deliverToMailboxes(
    spoolId: string,
    body: Uint8Array | AsyncIterable<Uint8Array>,
    recipients: readonly DeliveryRecipient[],
    receivedAt: Date = new Date(),
  ): Promise<DeliveryOutcome[]> {
    return this.s.writer.deliverToMailboxes(spoolId, body, recipients, receivedAt);
  }

  prepareDelivery(body: Uint8Array | AsyncIterable<Uint8Array>): Promise<PreparedBody> {
    return this.s.writer.prepareDelivery(body);
  }

  discardPrepared(body: PreparedBody): Promise<void> {
    return this.s.writer.discardPrepared(body);
  }

  // DeliveryCommit (delivery-commit.ts)

  commitDeliveries(
    batch: readonly BatchDelivery[],
    tag?: WriteTag,
    busyAttempt = 0,
  ): Promise<BatchDeliveryResult[]> {
    return this.s.batches.commitDeliveries(batch, tag, busyAttempt);
  }

  discardWrites(messages: Filter<MessageRecord>, records?: Filter<DeliveryRecord>): Promise<number> {
    return this.s.batches.discardWrites(messages, records);
  }

  discardRecords(tagged: Filter<FlagChangeDoc> & Filter<PendingTombstoneDoc>): Promise<number> {
    return this.s.batches.discardRecords(tagged);
  }

  // QuotaChecks (quota.ts)

  getQuota(userId: string): Promise<mailstore.GetQuotaResponse> {
    return this.s.quota.getQuota(userId);
  }

  // IndexUpkeep (index-upkeep.ts)

  compactChanges(options: { holding?: string } = {}): Promise<number> {
    return this.s.upkeep.compactChanges(options);
  }

  warmIndex(options: { minMessages?: number; signal?: AbortSignal } = {}): Promise<number> {
    return this.s.upkeep.warmIndex(options);
  }

  // ContentReader (content-reader.ts)

  fetchMessages(
    userId: string,
    mailboxId: string,
    uids: UidSet | undefined,
    changedSince: number | undefined,
    fields: readonly FetchFieldValue[],
  ): AsyncGenerator<mailstore.MessageMetadata> {
    return this.s.reader.fetchMessages(userId, mailboxId, uids, changedSince, fields);
  }

  fetchMessageBatches(
    userId: string,
    mailboxId: string,
    uids: UidSet | undefined,
    changedSince: number | undefined,
    fields: readonly FetchFieldValue[],
  ): AsyncGenerator<mailstore.MessageMetadata[]> {
    return this.s.reader.fetchMessageBatches(userId, mailboxId, uids, changedSince, fields);
  }

  getMessageContent(
    userId: string,
    mailboxId: string,
    uid: number,
    section: string,
    partial: { offset: number; length: number } | undefined,
    decode: boolean,
  ): Promise<ContentResult> {
    return this.s.reader.getMessageContent(userId, mailboxId, uid, section, partial, decode);
  }

  getChanges(
    userId: string,
    mailboxId: string,
    sinceModseq: number,
    uidValidity: number,
    knownUids: UidSet | undefined,
  ): Promise<mailstore.GetChangesResponse> {
    return this.s.reader.getChanges(userId, mailboxId, sinceModseq, uidValidity, knownUids);
  }

  // FlagStore (flag-store.ts)

  storeFlags(
    userId: string,
    mailboxId: string,
    uids: UidSet,
    mode: StoreModeValue,
    flags: readonly string[],
    unchangedSince: number | undefined,
  ): Promise<mailstore.StoreFlagsResponse> {
    return this.s.flags.storeFlags(userId, mailboxId, uids, mode, flags, unchangedSince);
  }

  flushCounters(holding?: string): Promise<number> {
    return this.s.flags.flushCounters(holding);
  }

  releaseCounters(): Promise<void> {
    return this.s.flags.releaseCounters();
  }

  // CopyMoveExpunge (copy-move-expunge.ts)

  copyMessages(
    userId: string,
    mailboxId: string,
    uids: UidSet,
    destination: MailboxRef,
  ): Promise<mailstore.CopyMessagesResponse> {
    return this.s.transfer.copyMessages(userId, mailboxId, uids, destination);
  }

  moveMessages(
    userId: string,
    mailboxId: string,
    uids: UidSet,
    destination: MailboxRef,
  ): Promise<mailstore.MoveMessagesResponse> {
    return this.s.transfer.moveMessages(userId, mailboxId, uids, destination);
  }

  expunge(userId: string, mailboxId: string, uids: UidSet | undefined): Promise<mailstore.ExpungeResponse> {
    return this.s.transfer.expunge(userId, mailboxId, uids);
  }

  // MessageSearch (search.ts)

  search(userId: string, mailboxId: string, query: mailstore.SearchKey): Promise<mailstore.SearchResponse> {
    return this.s.searcher.search(userId, mailboxId, query);
  }
}

export { DELIMITER, SpecialUseValues, subscriptions };
