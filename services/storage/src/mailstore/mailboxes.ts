/**
 * Mailboxes of one user (RFC 9051 §6.3.4 CREATE, §6.3.5 DELETE, §6.3.6 RENAME, §6.3.7/§6.3.8
 * SUBSCRIBE/UNSUBSCRIBE, §6.3.9 LIST; RFC 5258 LIST-EXTENDED; RFC 6154 SPECIAL-USE).
 *
 * Parents are always real mailboxes (CREATE and RENAME create missing ones, DELETE refuses a
 * mailbox with children), so LIST never has to invent \Noselect or \NonExistent parents for
 * existing mailboxes.
 */
import { ErrorReason, SpecialUseValues, type SpecialUseValue } from './contract.js';
import { ObjectId, type Collection, type Db, type FindCursor } from 'mongodb';
import { Collections, type UserDoc } from '../db/schema.js';
import { isDuplicateKey } from './blob-store.js';
import { MailstoreError } from './errors.js';
import { sharedMailboxIndex } from './mailbox-index.js';
import { DELIMITER, canonicalPath, listMatcher, parentPaths, validateNewPath } from './paths.js';
import {
  MailstoreCollections,
  type MailboxRecord,
  type SubscriptionDoc,
  type UidValidityDoc,
} from './types.js';

/** RFC 6154 attribute names as stored in `MailboxDoc.specialUse`. */
const SPECIAL_USE_ATTRIBUTE: Readonly<Record<SpecialUseValue, string | null>> = {
  [SpecialUseValues.UNSPECIFIED]: null,
  [SpecialUseValues.ALL]: '\\All',
  [SpecialUseValues.ARCHIVE]: '\\Archive',
  [SpecialUseValues.DRAFTS]: '\\Drafts',
  [SpecialUseValues.FLAGGED]: '\\Flagged',
  [SpecialUseValues.JUNK]: '\\Junk',
  [SpecialUseValues.SENT]: '\\Sent',
  [SpecialUseValues.TRASH]: '\\Trash',
  [SpecialUseValues.UNRECOGNIZED]: null,
};

export function specialUseAttribute(value: SpecialUseValue): string | null {
  return SPECIAL_USE_ATTRIBUTE[value];
}

export function specialUseValue(attribute: string | null): SpecialUseValue {
  for (const [value, name] of Object.entries(SPECIAL_USE_ATTRIBUTE)) {
    if (name !== null && name === attribute) return value as SpecialUseValue;
  }
  return SpecialUseValues.UNSPECIFIED;
}

/** New users' mailboxes (RFC 6154 §2). */
export const DEFAULT_MAILBOXES: readonly { path: string; specialUse: string | null }[] = [
  { path: 'INBOX', specialUse: null },
  { path: 'Drafts', specialUse: '\\Drafts' },
  { path: 'Sent', specialUse: '\\Sent' },
  { path: 'Junk', specialUse: '\\Junk' },
  { path: 'Trash', specialUse: '\\Trash' },
  { path: 'Archive', specialUse: '\\Archive' },
];

/** Collection methods that write: every call through `mailboxes(db)` invalidates what it touches. */
const WRITES = new Set([
  'findOneAndUpdate',
  'findOneAndReplace',
  'findOneAndDelete',
  'updateOne',
  'updateMany',
  'replaceOne',
  'deleteOne',
  'deleteMany',
  'insertOne',
  'insertMany',
  'bulkWrite',
]);

/**
 * The owner's copies of its mailbox documents (ADR 0007): with the mailbox index on, this process
 * owns its mailboxes, so the documents it read or wrote last are what the database holds, and
 * SELECT, FETCH, STORE and SEARCH take them from memory instead of a read per command (a scan of
 * the `mailboxes` collection on FerretDB). Every write through `mailboxes(db)` goes through
 * `write`: it drops the copy of the mailbox it names (of all mailboxes when the filter names none)
 * for its duration, and keeps the document a `findOneAndUpdate` returns `after` when no other write
 * of that mailbox overlapped. A read keeps what it read only if no write of the mailbox started
 * meanwhile (generation numbers), so a copy is never older than a write that finished.
 */
interface ReadToken {
  readonly key: string | undefined;
  readonly generation: number;
  readonly everything: number;
  readonly writes: number;
}

/** The counters of a mailbox document the owner may hold ahead of the database. */
export const COUNTER_FIELDS = ['uidNext', 'highestModseq', 'messages', 'size', 'unseen', 'deleted'] as const;
export type CounterField = (typeof COUNTER_FIELDS)[number];
export type CounterDelta = Partial<Record<CounterField, number>>;

function addDelta(into: CounterDelta, delta: CounterDelta): void {
  for (const field of COUNTER_FIELDS) {
    const n = delta[field];
    if (n !== undefined && n !== 0) into[field] = (into[field] ?? 0) + n;
  }
}

function isObject(value: unknown): value is object {
  return value !== null && typeof value === 'object';
}

function isEmptyDelta(delta: CounterDelta): boolean {
  return COUNTER_FIELDS.every((field) => (delta[field] ?? 0) === 0);
}

/** `doc` with `delta` added to the counters it holds (a projection may leave some out). */
function withDelta<T extends object>(doc: T, delta: CounterDelta | undefined): T {
  if (delta === undefined) return doc;
  const out = { ...doc } as Record<string, unknown>;
  for (const field of COUNTER_FIELDS) {
    const n = delta[field];
    if (n === undefined || n === 0) continue;
    const value = out[field];
    if (typeof value === 'number') out[field] = value + n;
    else if (field === 'deleted' && value === undefined && 'unseen' in out) out[field] = n;
  }
  return out as T;
}

/** Whether an update sets a counter other than by `$inc` (the owner's delta then goes first). */
function setsCounters(update: unknown): boolean {
  if (Array.isArray(update) || update === null || typeof update !== 'object') return true;
  for (const [operator, fields] of Object.entries(update as Record<string, unknown>)) {
    if (operator === '$inc') continue;
    if (!operator.startsWith('$')) return true; // a replacement
    if (fields !== null && typeof fields === 'object') {
      if (COUNTER_FIELDS.some((field) => field in fields)) return true;
    }
  }
  return false;
}

/**
 * This process's mark on a mailbox document whose counters it moves in memory (ADR 0007,
 * "Counters in the owner"): written once per mailbox per tenure, before the first counter moved in
 * memory, and taken off by `Mailstore.releaseCounters` once they are written at a clean shutdown.
 * A mark this process does not hold (of another process, or of one of its own tenures whose
 * memory was dropped) means counters may have been lost with their holder: whoever allocates
 * from the database counters then recounts them first (`setCounterRecount`).
 */
export const counterTenure = new ObjectId().toHexString();

/**
 * Recounts the counters of a mailbox whose document carries the mark `mark` of another tenure,
 * and takes the mark off (one conditional update); the caller holds the mailbox's counter lock.
 */
export type CounterRecount = (mailboxId: string, mark: string) => Promise<void>;
const counterRecounts = new WeakMap<Db, CounterRecount>();

export function setCounterRecount(db: Db, recount: CounterRecount): void {
  counterRecounts.set(db, recount);
}

/** Whether an update allocates UIDs or MODSEQs from the mailbox document (a positive `$inc`). */
function allocates(update: unknown): boolean {
  if (!isObject(update) || Array.isArray(update)) return false;
  const inc: unknown = (update as { $inc?: unknown }).$inc;
  if (!isObject(inc)) return false;
  const { uidNext, highestModseq } = inc as { uidNext?: unknown; highestModseq?: unknown };
  return (
    (typeof uidNext === 'number' && uidNext > 0) || (typeof highestModseq === 'number' && highestModseq > 0)
  );
}

/** Counters moved in memory and not yet written, with the mailbox's user. */
interface AheadCounters {
  readonly userId: string;
  readonly delta: CounterDelta;
  recentFloor?: number;
}

class MailboxRecords {
  private readonly records = new Map<string, MailboxRecord>();
  private readonly byPath = new Map<string, string>();
  private readonly generations = new Map<string, number>();
  private readonly writing = new Map<string, number>();
  private everything = 0;
  /** Writes started, of any mailbox: a read by path (no id known before) keeps only if none did. */
  private writesStarted = 0;
  /**
   * Counters the owner moved in memory and has not written yet (`advance`), by mailbox, with the
   * mailbox's user: every document read through `mailboxes(db)` gets them added, and the next
   * write of the mailbox's counters (`flushCounters`, or any `$inc` of the mailbox) carries them.
   */
  private readonly ahead = new Map<string, AheadCounters>();
  /**
   * Counters taken by a write that has not answered yet (`takeAhead` → `settleAhead`): still added
   * to documents read meanwhile, which may not show the write yet. Taken out of `ahead` so a
   * concurrent write of the same mailbox does not carry them twice.
   */
  private readonly inflight = new Map<string, Set<AheadCounters>>();
  /** Mailboxes whose documents carry this tenure's mark (`counterTenure`), with their users. */
  private readonly held = new Map<string, string>();

  /** Only an owner keeps copies: the mailbox index on (ADR 0006, 0007). */
  get enabled(): boolean {
    return sharedMailboxIndex.enabled;
  }

  private key(db: Db, id: string): string {
    return `${db.databaseName}:${id}`;
  }

  private pathKey(db: Db, userId: string, path: string): string {
    return `${db.databaseName}:${userId}\u0000${path}`;
  }

  byId(db: Db, id: string): MailboxRecord | undefined {
    if (!this.enabled) return undefined;
    const record = this.records.get(this.key(db, id));
    return record === undefined ? undefined : { ...record };
  }

  byUserPath(db: Db, userId: string, path: string): MailboxRecord | undefined {
    if (!this.enabled) return undefined;
    const id = this.byPath.get(this.pathKey(db, userId, path));
    const record = id === undefined ? undefined : this.records.get(this.key(db, id));
    return record?.userId === userId && record.path === path ? { ...record } : undefined;
  }

  /** A token to take before reading a mailbox from the database (`keep` checks it). */
  readToken(db: Db, id: string | undefined): ReadToken {
    const key = id === undefined ? undefined : this.key(db, id);
    return {
      key,
      generation: key === undefined ? 0 : (this.generations.get(key) ?? 0),
      everything: this.everything,
      writes: this.writesStarted,
    };
  }

  /** Keeps a document read from the database, unless a write of it started since `token`. */
  keep(db: Db, record: MailboxRecord, token: ReadToken): void {
    if (!this.enabled || token.everything !== this.everything) return;
    const key = this.key(db, record._id.toHexString());
    if (token.key === undefined ? token.writes !== this.writesStarted : token.key !== key) return;
    if ((this.generations.get(key) ?? 0) !== token.generation || (this.writing.get(key) ?? 0) > 0) return;
    if (this.records.size > 200_000) this.clear();
    // `record` was read through `mailboxes(db)`, so it carries the counters held ahead already.
    this.records.set(key, { ...record });
    this.byPath.set(this.pathKey(db, record.userId, record.path), record._id.toHexString());
  }

  private clear(): void {
    this.records.clear();
    this.byPath.clear();
  }

  /** Forgets the copies of every user `matches` selects (a partition moved; ownership). */
  dropUsersWhere(matches: (userId: string) => boolean): void {
    this.everything++;
    for (const [key, record] of this.records) if (matches(record.userId)) this.records.delete(key);
    // A partition moved: its new owner rebuilds the counters from the messages and records
    // (`IndexUpkeep.finishIndexBuild`); writing ours now could undo what it wrote since.
    for (const [key, ahead] of this.ahead) if (matches(ahead.userId)) this.ahead.delete(key);
    // Their marks stay on the documents: the new owner recounts before it allocates from them.
    for (const [key, userId] of this.held) if (matches(userId)) this.held.delete(key);
  }

  /** Whether this tenure's mark is on the mailbox document (counters may move in memory). */
  holds(db: Db, id: string): boolean {
    return this.held.has(this.key(db, id));
  }

  /** The mark was written to the mailbox document. */
  markHeld(db: Db, id: string, userId: string): void {
    this.held.set(this.key(db, id), userId);
  }

  /** The mark was taken off the mailbox document. */
  released(db: Db, id: string): void {
    this.held.delete(this.key(db, id));
  }

  /** Mailboxes of `db` carrying this tenure's mark. */
  heldIds(db: Db): string[] {
    const prefix = `${db.databaseName}:`;
    return [...this.held.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
  }

  /** The mark on a mailbox document when it is not this tenure's (counters maybe lost), else undefined. */
  foreignMark(db: Db, id: string, doc: object): string | undefined {
    const mark = (doc as { countersHeldBy?: unknown }).countersHeldBy;
    if (typeof mark !== 'string') return undefined;
    return mark === counterTenure && this.holds(db, id) ? undefined : mark;
  }

  /**
   * Moves the counters of the mailbox `id` in memory (ADR 0007, "Counters in the owner"): the
   * caller holds the mailbox's lock and its index entry is current. Answers the document before
   * and after, or undefined when this process holds no copy of it (then the caller writes the
   * counters to the database). The database gets the change with the next write of the mailbox's
   * counters (`takeAhead`).
   */
  advance(
    db: Db,
    id: string,
    delta: CounterDelta,
  ): { before: MailboxRecord; after: MailboxRecord } | undefined {
    if (!this.enabled) return undefined;
    const key = this.key(db, id);
    const before = this.records.get(key);
    if (before === undefined || (this.writing.get(key) ?? 0) > 0) return undefined;
    const after = withDelta(before, delta);
    if (after.deleted === undefined && delta.deleted !== undefined) after.deleted = delta.deleted;
    this.records.set(key, after);
    const ahead = this.ahead.get(key) ?? { userId: before.userId, delta: {} };
    addDelta(ahead.delta, delta);
    this.ahead.set(key, ahead);
    return { before: { ...before }, after: { ...after } };
  }

  /**
   * Raises the mailbox's `recentFloor` (RFC 3501 §2.3.2 \Recent: the UIDs a SELECT claimed) in
   * memory, as `advance` moves counters, written with the next write of the mailbox's counters:
   * a session's claim after every APPEND of another was one update of the mailbox each. Lost
   * with the process, which only makes messages claimed since the last write \Recent once more
   * to a session after the restart. Answers false when this process holds no copy of it.
   */
  raiseRecentFloor(db: Db, id: string, floor: number): boolean {
    if (!this.enabled) return false;
    const key = this.key(db, id);
    const copy = this.records.get(key);
    if (copy === undefined || (this.writing.get(key) ?? 0) > 0) return false;
    if ((copy.recentFloor ?? 1) >= floor) return true;
    this.records.set(key, { ...copy, recentFloor: floor });
    const ahead = this.ahead.get(key) ?? { userId: copy.userId, delta: {} };
    ahead.recentFloor = Math.max(ahead.recentFloor ?? 1, floor);
    this.ahead.set(key, ahead);
    return true;
  }

  /** Mailboxes of `db` whose counters are ahead of the database (held, or in a write not answered). */
  aheadIds(db: Db): string[] {
    const prefix = `${db.databaseName}:`;
    return [...new Set([...this.ahead.keys(), ...this.inflight.keys()])]
      .filter((k) => k.startsWith(prefix))
      .map((k) => k.slice(prefix.length));
  }

  /**
   * Takes the counters held ahead of the database for a write that carries them; until
   * `settleAhead` they still count in documents read (a read during the write may not see it).
   */
  takeAhead(db: Db, id: string): AheadCounters | undefined {
    const key = this.key(db, id);
    const ahead = this.ahead.get(key);
    this.ahead.delete(key);
    if (ahead === undefined || (isEmptyDelta(ahead.delta) && ahead.recentFloor === undefined))
      return undefined;
    const writes = this.inflight.get(key) ?? new Set<AheadCounters>();
    writes.add(ahead);
    this.inflight.set(key, writes);
    return ahead;
  }

  /** The write that took `taken` answered: written, or (not known to be written) held again. */
  settleAhead(db: Db, id: string, taken: AheadCounters, written: boolean): void {
    const key = this.key(db, id);
    const writes = this.inflight.get(key);
    if (writes?.delete(taken) !== true) return; // forgotten meanwhile (the mailbox was deleted)
    if (writes.size === 0) this.inflight.delete(key);
    if (!written) this.restoreAhead(db, id, taken.userId, taken.delta, taken.recentFloor);
  }

  /** Gives back counters a failed write took. */
  restoreAhead(db: Db, id: string, userId: string, delta: CounterDelta, recentFloor?: number): void {
    const key = this.key(db, id);
    const ahead = this.ahead.get(key) ?? { userId, delta: {} };
    addDelta(ahead.delta, delta);
    if (recentFloor !== undefined) ahead.recentFloor = Math.max(ahead.recentFloor ?? 1, recentFloor);
    this.ahead.set(key, ahead);
  }

  /** Forgets counters held for a mailbox that was deleted. */
  forgetAhead(db: Db, id: string): void {
    this.ahead.delete(this.key(db, id));
    this.inflight.delete(this.key(db, id));
    this.held.delete(this.key(db, id));
  }

  /** A document read from the database as this process knows it: with its counters held ahead. */
  overlay<T extends object>(db: Db, doc: T): T {
    if (this.ahead.size === 0 && this.inflight.size === 0) return doc;
    const id = idOf(doc);
    if (id === undefined) return doc;
    const key = this.key(db, id);
    const held = [this.ahead.get(key), ...(this.inflight.get(key) ?? [])];
    let out = doc;
    let floor: number | undefined;
    for (const ahead of held) {
      if (ahead === undefined) continue;
      out = withDelta(out, ahead.delta);
      if (ahead.recentFloor !== undefined) floor = Math.max(floor ?? 1, ahead.recentFloor);
    }
    if (floor === undefined || !('recentFloor' in doc || 'uidNext' in doc)) return out;
    const known = (out as { recentFloor?: number }).recentFloor ?? 1;
    return known >= floor ? out : { ...out, recentFloor: floor };
  }

  /** Runs a write of the mailbox `id` (of any mailbox when undefined). */
  async write<T>(db: Db, id: string | undefined, keepAfter: boolean, run: () => Promise<T>): Promise<T> {
    this.writesStarted++;
    if (id === undefined) {
      this.everything++;
      this.clear();
      try {
        return await run();
      } finally {
        this.everything++;
        this.clear();
      }
    }
    const key = this.key(db, id);
    const start = (this.generations.get(key) ?? 0) + 1;
    this.generations.set(key, start);
    this.writing.set(key, (this.writing.get(key) ?? 0) + 1);
    this.records.delete(key);
    let result: T | undefined;
    try {
      result = await run();
      return result;
    } finally {
      const left = (this.writing.get(key) ?? 1) - 1;
      if (left === 0) this.writing.delete(key);
      else this.writing.set(key, left);
      const alone = this.generations.get(key) === start && left === 0;
      this.generations.set(key, start + 1);
      const after = result as MailboxRecord | null | undefined;
      if (
        this.enabled &&
        keepAfter &&
        alone &&
        after !== null &&
        after !== undefined &&
        after._id !== undefined
      ) {
        this.records.set(key, { ...after });
        this.byPath.set(this.pathKey(db, after.userId, after.path), id);
      }
    }
  }
}

export const mailboxRecords = new MailboxRecords();

function idOf(value: unknown): string | undefined {
  const id = (value as { _id?: unknown } | null | undefined)?._id;
  if (id instanceof ObjectId) return id.toHexString();
  return undefined;
}

/**
 * The `mailboxes` collection. Writes through it keep the owner's copies (`mailboxRecords`) right;
 * every write of a mailbox document in the mailstore goes through here. Documents read through it
 * carry the counters the owner holds ahead of the database (`MailboxRecords.advance`), and a write
 * of a mailbox's counters by `_id` carries them to the database (in its `$inc`, or just before it
 * when it sets a counter otherwise).
 */
export function mailboxes(db: Db): Collection<MailboxRecord> {
  const collection = db.collection<MailboxRecord>(Collections.mailboxes);
  return new Proxy(collection, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof property !== 'string' || typeof value !== 'function') return value;
      const method = value as (...args: unknown[]) => unknown;
      if (property === 'findOne') {
        return async (...args: unknown[]) => {
          const found = (await method.apply(target, args)) as MailboxRecord | null;
          return found === null ? null : mailboxRecords.overlay(db, found);
        };
      }
      if (property === 'find') {
        return (...args: unknown[]) =>
          (method.apply(target, args) as FindCursor<MailboxRecord>).map((doc) =>
            mailboxRecords.overlay(db, doc),
          );
      }
      if (!WRITES.has(property)) return value;
      return (...args: unknown[]) => {
        const many =
          property === 'insertMany' ||
          property === 'bulkWrite' ||
          property === 'updateMany' ||
          property === 'deleteMany';
        const id = many ? undefined : idOf(args[0]);
        const options = args[2] as { returnDocument?: string } | undefined;
        const keepAfter = property === 'findOneAndUpdate' && options?.returnDocument === 'after';
        const run = async (): Promise<unknown> => {
          if (id === undefined) return method.apply(target, args);
          if (property === 'deleteOne' || property === 'findOneAndDelete') {
            mailboxRecords.forgetAhead(db, id);
            return method.apply(target, args);
          }
          if (property !== 'findOneAndUpdate' && property !== 'updateOne') {
            return method.apply(target, args);
          }
          const ahead = mailboxRecords.takeAhead(db, id);
          if (ahead === undefined) return method.apply(target, args);
          const { delta, recentFloor } = ahead;
          const update = args[1] as Record<string, unknown>;
          // What is held ahead, as update operators: `$inc` of the counters, `$max` of the floor.
          const carried = (into: Record<string, unknown>): Record<string, unknown> => {
            const out = { ...into };
            const inc = { ...((into.$inc as Record<string, number> | undefined) ?? {}) };
            for (const [field, n] of Object.entries(delta)) inc[field] = (inc[field] ?? 0) + n;
            if (Object.keys(inc).length > 0) out.$inc = inc;
            if (recentFloor !== undefined) {
              const max = { ...((into.$max as Record<string, number> | undefined) ?? {}) };
              max.recentFloor = Math.max(max.recentFloor ?? 1, recentFloor);
              out.$max = max;
            }
            return out;
          };
          try {
            const setsFloor = isObject(update.$set) && 'recentFloor' in update.$set;
            if (setsCounters(update) || setsFloor) {
              await target.updateOne({ _id: new ObjectId(id) }, carried({}));
              mailboxRecords.settleAhead(db, id, ahead, true);
            } else {
              const merged: unknown[] = [args[0], carried(update), ...args.slice(2)];
              const written: unknown = await method.apply(target, merged);
              mailboxRecords.settleAhead(db, id, ahead, true);
              // The document `before` (the default) is as the database had it: the owner had the
              // delta already, so its callers (allocating UIDs from it) get it added.
              if (
                property === 'findOneAndUpdate' &&
                options?.returnDocument !== 'after' &&
                isObject(written)
              ) {
                return withDelta(written, delta);
              }
              return written;
            }
          } catch (error) {
            // Not known to be written: held again for the next write. Counting twice (a write that
            // landed but failed to answer) only leaves a gap in UIDs and MODSEQs, and the next
            // index build recounts; counting none could hand a UID out twice.
            mailboxRecords.settleAhead(db, id, ahead, false);
            throw error;
          }
          return method.apply(target, args);
        };
        return mailboxRecords.write(db, id, keepAfter, async () => {
          let written = await run();
          // Allocating from the database counters: a mark of another tenure on the document means
          // its holder may have lost counters it moved in memory (ADR 0007), so what was just
          // allocated may repeat UIDs or MODSEQs it handed out (RFC 9051 §2.3.1.1). Recounted
          // from the messages and records, and allocated again (the first allocation is a gap).
          // The document returned, before or after the `$inc`, carries the mark as it stood.
          for (let attempt = 0; ; attempt++) {
            if (id === undefined || property !== 'findOneAndUpdate' || !allocates(args[1])) return written;
            if (!isObject(written)) return written;
            const mark = mailboxRecords.foreignMark(db, id, written);
            if (mark === undefined) return written;
            const recount = counterRecounts.get(db);
            if (recount === undefined || attempt >= 3) {
              throw new Error('mailbox counters held by another owner could not be recounted');
            }
            await recount(id, mark);
            written = await run();
          }
        });
      };
    },
  });
}

/** A user's quota usage: bytes (RFC 9208 §5.1 STORAGE) and messages (§5.2 MESSAGE). */
export interface UserUsage {
  bytes: number;
  messages: number;
}

/**
 * The quota usage of each of these users: the sums of the `size` and `messages` counters of their
 * mailboxes (one read of the mailboxes). Read through `mailboxes(db)`, so with the counters the
 * owner moved in memory and writes later (ADR 0007): an APPEND or EXPUNGE counts at once, and
 * neither writes the user's document. With `recount` (the owner), a mailbox whose document carries
 * the mark of a holder that may have lost counters (a crash before its flush) is recounted first
 * and read again, so usage is right after a crash too; without it (any replica: the RCPT check,
 * admin) such a mailbox counts as written. A user without mailboxes is absent.
 */
export async function usageOf(
  db: Db,
  userIds: readonly string[],
  recount?: CounterRecount,
): Promise<Map<string, UserUsage>> {
  const out = new Map<string, UserUsage>();
  if (userIds.length === 0) return out;
  const projection = { userId: 1, messages: 1, size: 1, countersHeldBy: 1 } as const;
  const boxes = await mailboxes(db)
    .find({ userId: { $in: [...new Set(userIds)] } }, { projection })
    .toArray();
  for (const [i, box] of boxes.entries()) {
    const mark =
      recount === undefined ? undefined : mailboxRecords.foreignMark(db, box._id.toHexString(), box);
    if (mark === undefined || recount === undefined) continue;
    await recount(box._id.toHexString(), mark);
    const again = await mailboxes(db).findOne({ _id: box._id }, { projection });
    if (again !== null) boxes[i] = again;
  }
  for (const box of boxes) {
    const usage = out.get(box.userId) ?? { bytes: 0, messages: 0 };
    usage.bytes += Math.max(0, box.size ?? 0);
    usage.messages += Math.max(0, box.messages ?? 0);
    out.set(box.userId, usage);
  }
  return out;
}

export function subscriptions(db: Db) {
  return db.collection<SubscriptionDoc>(MailstoreCollections.subscriptions);
}

/** The filter of a user's document, or null when the id cannot name one. */
export function userFilter(userId: string): { _id: ObjectId } | null {
  return /^[0-9a-f]{24}$/i.test(userId) ? { _id: new ObjectId(userId) } : null;
}

export function users(db: Db) {
  return db.collection<UserDoc>(Collections.users);
}

/**
 * A UIDVALIDITY greater than every one this user had (RFC 9051 §2.3.1.1: a recreated mailbox
 * MUST get a greater UIDVALIDITY), near the current time in seconds.
 */
export async function nextUidValidity(db: Db, userId: string): Promise<number> {
  const col = db.collection<UidValidityDoc>(MailstoreCollections.uidValidity);
  for (let attempt = 0; attempt < 20; attempt++) {
    const current = await col.findOne({ _id: userId });
    const next = Math.max(Math.floor(Date.now() / 1000), (current?.last ?? 0) + 1);
    if (current === null) {
      try {
        await col.insertOne({ _id: userId, last: next });
        return next;
      } catch (error) {
        if (!isDuplicateKey(error)) throw error;
        continue;
      }
    }
    const result = await col.updateOne({ _id: userId, last: current.last }, { $set: { last: next } });
    if (result.modifiedCount === 1) return next;
  }
  throw new MailstoreError(ErrorReason.CONFLICT, 'UIDVALIDITY allocation kept conflicting');
}

export async function newMailboxRecord(
  db: Db,
  userId: string,
  path: string,
  specialUse: string | null,
  subscribed: boolean,
): Promise<MailboxRecord> {
  return {
    _id: new ObjectId(),
    userId,
    path,
    specialUse,
    subscribed,
    uidValidity: await nextUidValidity(db, userId),
    uidNext: 1,
    highestModseq: 1,
    messages: 0,
    unseen: 0,
    size: 0,
    deleted: 0,
    recentFloor: 1,
    keyedMessages: true,
    createdAt: new Date(),
  };
}

/**
 * Inserts a mailbox; false when the path exists already (the unique `(userId, path)` index
 * decides, so concurrent creators cannot both win).
 */
export async function insertMailbox(db: Db, record: MailboxRecord): Promise<boolean> {
  try {
    await mailboxes(db).insertOne(record);
    return true;
  } catch (error) {
    if (isDuplicateKey(error)) return false;
    throw error;
  }
}

/** Creates the parents of `path` that do not exist; returns those it created, shallowest first. */
export async function ensureParents(db: Db, userId: string, path: string): Promise<string[]> {
  const parents = parentPaths(path);
  if (parents.length === 0) return [];
  const existing = new Set(
    (
      await mailboxes(db)
        .find({ userId, path: { $in: parents } }, { projection: { path: 1 } })
        .toArray()
    ).map((m) => m.path),
  );
  const created: string[] = [];
  for (const parent of parents) {
    if (existing.has(parent)) continue;
    const subscribed = await isSubscribed(db, userId, parent);
    if (await insertMailbox(db, await newMailboxRecord(db, userId, parent, null, subscribed))) {
      created.push(parent);
    }
  }
  return created;
}

export async function isSubscribed(db: Db, userId: string, path: string): Promise<boolean> {
  return (await subscriptions(db).countDocuments({ userId, path }, { limit: 1 })) > 0;
}

/**
 * Creates INBOX, Drafts, Sent, Junk, Trash and Archive with their SPECIAL-USE attributes
 * (RFC 6154 §2), all subscribed. Idempotent: existing mailboxes are left as they are.
 */
export async function createDefaultMailboxes(db: Db, userId: string): Promise<void> {
  const existing = await mailboxes(db)
    .find({ userId }, { projection: { path: 1, specialUse: 1 } })
    .toArray();
  const paths = new Set(existing.map((m) => m.path));
  const uses = new Set(existing.map((m) => m.specialUse).filter((u) => u !== null));
  for (const { path, specialUse } of DEFAULT_MAILBOXES) {
    if (paths.has(path)) continue;
    // A user who already gave the special use to another mailbox keeps it there.
    const use = specialUse !== null && uses.has(specialUse) ? null : specialUse;
    await insertMailbox(db, await newMailboxRecord(db, userId, path, use, true));
    await subscriptions(db).updateOne(
      { userId, path },
      { $setOnInsert: { _id: new ObjectId(), userId, path } },
      { upsert: true },
    );
  }
}

export interface ListRequest {
  readonly userId: string;
  readonly reference: string;
  readonly pattern: string;
  readonly subscribedOnly: boolean;
  readonly specialUse: readonly SpecialUseValue[];
}

export interface ListedMailbox {
  /** Null for a subscription whose mailbox does not exist (\NonExistent, RFC 5258 §3). */
  readonly record: MailboxRecord | null;
  readonly path: string;
  readonly subscribed: boolean;
  readonly hasChildren: boolean;
}

/** LIST / LSUB / LIST (SUBSCRIBED SPECIAL-USE): RFC 9051 §6.3.9, RFC 5258 §3, RFC 6154 §3. */
export async function listMailboxes(db: Db, request: ListRequest): Promise<ListedMailbox[]> {
  // RFC 9051 §6.3.9: an empty pattern asks for the delimiter; the imap service answers that.
  if (request.pattern === '') return [];
  const all = await mailboxes(db).find({ userId: request.userId }).toArray();
  const subscribed = new Set(
    (await subscriptions(db).find({ userId: request.userId }).toArray()).map((s) => canonicalPath(s.path)),
  );
  const byPath = new Map(all.map((m) => [m.path, m]));
  const parents = new Set(all.flatMap((m) => parentPaths(m.path)));
  const matcher = listMatcher(request.reference, request.pattern);
  const wanted = new Set(request.specialUse.map((u) => specialUseAttribute(u)).filter((a) => a !== null));
  const candidates = request.subscribedOnly ? [...subscribed] : [...byPath.keys()];
  const out: ListedMailbox[] = [];
  for (const path of candidates) {
    if (!matcher(path)) continue;
    const record = byPath.get(path) ?? null;
    if (wanted.size > 0 && (record?.specialUse === null || !wanted.has(record?.specialUse ?? ''))) continue;
    out.push({ record, path, subscribed: subscribed.has(path), hasChildren: parents.has(path) });
  }
  // Ordered by path; a parent is a prefix of its children, so it sorts before them.
  return out.sort((a, b) => comparePaths(a.path, b.path));
}

function comparePaths(a: string, b: string): number {
  const x = a.split(DELIMITER);
  const y = b.split(DELIMITER);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const p = x[i] ?? '';
    const q = y[i] ?? '';
    if (p !== q) return p < q ? -1 : 1;
  }
  return x.length - y.length;
}

export async function setSubscribed(
  db: Db,
  userId: string,
  rawPath: string,
  subscribed: boolean,
): Promise<void> {
  let path: string;
  try {
    // A subscription names a mailbox that may exist later (RFC 9051 §6.3.7), so it obeys the
    // rules of CREATE: no wildcards or controls, bounded length and depth.
    path = validateNewPath(rawPath, 'path');
  } catch (error) {
    // A subscription stored before names were checked can still be removed.
    if (subscribed || !(error instanceof MailstoreError) || !(await isSubscribed(db, userId, rawPath))) {
      throw error;
    }
    path = rawPath;
  }
  if (subscribed) {
    await subscriptions(db).updateOne(
      { userId, path },
      { $setOnInsert: { _id: new ObjectId(), userId, path } },
      { upsert: true },
    );
  } else {
    await subscriptions(db).deleteMany({ userId, path });
  }
  await mailboxes(db).updateOne({ userId, path }, { $set: { subscribed } });
}
