/**
 * The in-memory mailbox index: per mailbox, the UID, MODSEQ, flags, size and INTERNALDATE of
 * every message, in UID order. It answers what SELECT, `FETCH 1:* (FLAGS)`, \Recent counts and
 * `[UNSEEN n]` ask (RFC 9051 §6.3.2, §6.4.5; RFC 3501 §7.1) without reading message documents,
 * which on FerretDB 1.24/SQLite costs a decoding scan of the whole collection per query
 * (docs/benchmarks.md "Storage"; ADR 0006).
 *
 * Correctness rests on one invariant of the mailstore: every change to a mailbox's messages
 * (append, flag change, copy or move in, expunge or move out) raises the mailbox's HIGHESTMODSEQ
 * with a `findOneAndUpdate` that tells the writer the value before and after (RFC 7162 §3.1.1
 * requires exactly that for CONDSTORE). An entry is stamped with the HIGHESTMODSEQ it reflects:
 *
 * - a reader uses an entry only when its stamp equals the mailbox document it just read;
 * - a writer that knows its change took the mailbox from `pre` to `post` patches the entry only
 *   when the entry's stamp is `pre` (so nothing happened in between that the entry missed), and
 *   drops it otherwise;
 * - an entry is built under the mailbox's lock from one read of its messages, stamped with the
 *   HIGHESTMODSEQ read under that lock.
 *
 * So a stale entry is never used; at worst it is rebuilt. The index is shared by every Mailstore
 * of the process (the delivery consumer's and the gRPC service's), like the mailbox locks, and
 * bounded by a total number of messages: the least recently used mailboxes are dropped first.
 */

/**
 * What `FETCH (ENVELOPE)` and the header and sent-date keys of SEARCH need of a message, kept
 * in the index next to its flags once the message was opened, so a mailbox larger than the
 * message cache (message-cache.ts) answers them without reading its messages back from the
 * database on every sync. A message's content never changes (its UID is never reused), so a
 * summary is never stale; it goes with the entry. Plaintext, like the opened metadata the
 * message cache keeps (the process holds the user's keys while it serves them).
 */
export interface MessageSummary {
  /** The ENVELOPE as storage sends it (`envelopeJson` of FetchMessages). */
  readonly envelopeJson: string;
  /** The Date: header's day (yyyymmdd; the INTERNALDATE's without one): SENTBEFORE/ON/SINCE. */
  readonly sentDay: number;
  /** SUBJECT and the address lists as SEARCH matches them, already folded (search.ts). */
  readonly subject: string;
  readonly from: string;
  readonly to: string;
  readonly cc: string;
  readonly bcc: string;
}

/** Approximate bytes a summary holds (strings at two bytes a character, plus the object). */
export function summaryBytes(s: MessageSummary): number {
  return (
    96 +
    2 * (s.envelopeJson.length + s.subject.length + s.from.length + s.to.length + s.cc.length + s.bcc.length)
  );
}

/**
 * A summary larger than this is not kept (a message with thousands of recipients): it is made
 * from the message each time instead, so one message cannot take a large share of the bound.
 */
export const MAX_SUMMARY_BYTES = 8 * 1024;

/** One message as the index holds it. */
export interface IndexedMessage {
  readonly uid: number;
  readonly modseq: number;
  readonly flags: readonly string[];
  readonly size: number;
  readonly internalDate: Date;
  /** Known once the message was opened (or written by this process). */
  readonly summary?: MessageSummary | undefined;
}

type Intervals = readonly (readonly [number, number])[];

/** The index of one mailbox: parallel arrays in ascending UID order. */
export class MailboxIndexEntry {
  private readonly uids: number[] = [];
  private readonly modseqs: number[] = [];
  private readonly flagSets: (readonly string[])[] = [];
  private readonly sizes: number[] = [];
  private readonly dates: number[] = [];
  private readonly summaries: (MessageSummary | undefined)[] = [];
  /** Bytes of the summaries held (`summaryBytes`). */
  summaryBytes = 0;
  /** Flag sets are shared between messages: most mailboxes have a handful of distinct ones. */
  private readonly interned = new Map<string, readonly string[]>();

  /**
   * No message left this mailbox after this HIGHESTMODSEQ (RFC 7162 VANISHED): the stamp at build
   * (what happened before is unknown), then each removal's.
   */
  removedUpTo: number;

  /**
   * The UIDs removed after `removalsKnownFrom`, each with the HIGHESTMODSEQ of its removal (the
   * MODSEQ of its tombstone), oldest first, so a session catching up after another one's EXPUNGE
   * learns what vanished (RFC 7162 §3.2.10) without reading the tombstones, which on FerretDB is a
   * scan of every tombstone ever written. Bounded: the oldest half goes when it is full.
   */
  private removals: { uid: number; modseq: number }[] = [];
  private removalsKnownFrom: number;

  /**
   * Every MODSEQ given to a message after `changesKnownFrom`, with its UID, in ascending MODSEQ
   * order: a session's poll (`select` with `since`, RFC 7162 CHANGEDSINCE and the sync after each
   * command) then looks at what changed since, not at every message of the mailbox. A UID may be
   * here more than once (its flags changed again) or no longer be in the mailbox. Bounded like
   * `removals`: the oldest half goes when it is full, and a poll from before what is kept scans.
   */
  private changeUids: number[] = [];
  private changeModseqs: number[] = [];
  private changesKnownFrom: number;

  constructor(
    readonly userId: string,
    public stamp: number,
  ) {
    this.removedUpTo = stamp;
    this.removalsKnownFrom = stamp;
    this.changesKnownFrom = stamp;
  }

  get size(): number {
    return this.uids.length;
  }

  /** The highest UID in the mailbox, 0 when empty. */
  get highestUid(): number {
    return this.uids[this.uids.length - 1] ?? 0;
  }

  /**
   * The mailbox's counters as its messages make them (an index build checks the mailbox document
   * against them: the owner writes its counters after the messages, ADR 0007).
   */
  counters(): { messages: number; size: number; unseen: number; deleted: number; highestModseq: number } {
    let size = 0;
    let unseen = 0;
    let deleted = 0;
    let highestModseq = 0;
    for (let i = 0; i < this.uids.length; i++) {
      size += this.sizes[i] ?? 0;
      const flags = this.flagSets[i] ?? [];
      if (!flags.includes('\\Seen')) unseen++;
      if (flags.includes('\\Deleted')) deleted++;
      highestModseq = Math.max(highestModseq, this.modseqs[i] ?? 0);
    }
    return { messages: this.uids.length, size, unseen, deleted, highestModseq };
  }

  private intern(flags: readonly string[]): readonly string[] {
    const key = [...flags].sort().join('\u0000');
    let shared = this.interned.get(key);
    if (shared === undefined) {
      shared = Object.freeze([...flags]);
      this.interned.set(key, shared);
    }
    return shared;
  }

  /** Position of the first UID ≥ `uid`. */
  private lowerBound(uid: number): number {
    let lo = 0;
    let hi = this.uids.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.uids[mid] ?? 0) < uid) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Notes that message `uid` got MODSEQ `modseq` (see `changeUids`). */
  private logChange(uid: number, modseq: number): void {
    if (modseq <= this.changesKnownFrom) return;
    const modseqs = this.changeModseqs;
    // MODSEQs are given in ascending order, so this is an append but for a patch replayed late.
    let at = modseqs.length;
    while (at > 0 && (modseqs[at - 1] ?? 0) > modseq) at--;
    if (at === modseqs.length) {
      modseqs.push(modseq);
      this.changeUids.push(uid);
    } else {
      modseqs.splice(at, 0, modseq);
      this.changeUids.splice(at, 0, uid);
    }
    if (modseqs.length > MAX_CHANGES) {
      const drop = modseqs.length - MAX_CHANGES / 2;
      this.changesKnownFrom = Math.max(this.changesKnownFrom, modseqs[drop - 1] ?? 0);
      this.changeModseqs = modseqs.slice(drop);
      this.changeUids = this.changeUids.slice(drop);
    }
  }

  /**
   * The positions of the messages whose MODSEQ is above `since`, in UID order, from the change
   * log; undefined when the log does not reach back to `since` (then every message is looked at).
   */
  private changedSince(since: number): number[] | undefined {
    if (since < this.changesKnownFrom) return undefined;
    const seen = new Set<number>();
    const positions: number[] = [];
    for (let i = this.changeModseqs.length - 1; i >= 0; i--) {
      if ((this.changeModseqs[i] ?? 0) <= since) break;
      const uid = this.changeUids[i] ?? 0;
      if (seen.has(uid)) continue;
      seen.add(uid);
      const at = this.lowerBound(uid);
      if (this.uids[at] === uid && (this.modseqs[at] ?? 0) > since) positions.push(at);
    }
    return positions.sort((a, b) => a - b);
  }

  /** Adds messages (new UIDs are above every UID in use, so this is usually an append). */
  add(messages: readonly IndexedMessage[]): void {
    for (const m of messages) {
      this.logChange(m.uid, m.modseq);
      const at = this.lowerBound(m.uid);
      if (this.uids[at] === m.uid) {
        this.modseqs[at] = m.modseq;
        this.flagSets[at] = this.intern(m.flags);
        this.sizes[at] = m.size;
        this.dates[at] = m.internalDate.getTime();
        // The content of a UID never changes: a summary already held stays.
        if (m.summary !== undefined) this.setSummaryAt(at, m.summary);
        continue;
      }
      this.uids.splice(at, 0, m.uid);
      this.modseqs.splice(at, 0, m.modseq);
      this.flagSets.splice(at, 0, this.intern(m.flags));
      this.sizes.splice(at, 0, m.size);
      this.dates.splice(at, 0, m.internalDate.getTime());
      this.summaries.splice(at, 0, undefined);
      if (m.summary !== undefined) this.setSummaryAt(at, m.summary);
    }
  }

  private setSummaryAt(at: number, summary: MessageSummary): boolean {
    if (this.summaries[at] !== undefined) return true;
    const bytes = summaryBytes(summary);
    if (bytes > MAX_SUMMARY_BYTES) return false;
    this.summaries[at] = summary;
    this.summaryBytes += bytes;
    return true;
  }

  /** Keeps the summary of message `uid` (false if the message is not here or it is too large). */
  setSummary(uid: number, summary: MessageSummary): boolean {
    const at = this.lowerBound(uid);
    if (this.uids[at] !== uid) return false;
    return this.setSummaryAt(at, summary);
  }

  /** Forgets every summary (the index's bound on summary bytes was reached). */
  clearSummaries(): void {
    this.summaries.fill(undefined);
    this.summaryBytes = 0;
  }

  /** Sets the flags and MODSEQ of one message (a STORE); unknown UIDs are ignored. */
  setFlags(uid: number, flags: readonly string[], modseq: number): void {
    const at = this.lowerBound(uid);
    if (this.uids[at] !== uid) return;
    this.flagSets[at] = this.intern(flags);
    this.modseqs[at] = modseq;
    this.logChange(uid, modseq);
  }

  /** Removes messages (EXPUNGE, MOVE out) at HIGHESTMODSEQ `modseq`. */
  remove(uids: Iterable<number>, modseq: number): void {
    this.removedUpTo = Math.max(this.removedUpTo, modseq);
    const gone = new Set(uids);
    if (gone.size === 0) return;
    if (modseq > this.removalsKnownFrom) {
      for (const uid of gone) this.removals.push({ uid, modseq });
      if (this.removals.length > MAX_REMOVALS) {
        const dropped = this.removals.splice(0, this.removals.length - MAX_REMOVALS / 2);
        this.removalsKnownFrom = Math.max(this.removalsKnownFrom, dropped.at(-1)?.modseq ?? 0);
      }
    }
    let w = 0;
    for (let r = 0; r < this.uids.length; r++) {
      if (gone.has(this.uids[r] ?? 0)) {
        const summary = this.summaries[r];
        if (summary !== undefined) this.summaryBytes -= summaryBytes(summary);
        continue;
      }
      this.uids[w] = this.uids[r] ?? 0;
      this.modseqs[w] = this.modseqs[r] ?? 0;
      this.flagSets[w] = this.flagSets[r] ?? [];
      this.sizes[w] = this.sizes[r] ?? 0;
      this.dates[w] = this.dates[r] ?? 0;
      this.summaries[w] = this.summaries[r];
      w++;
    }
    for (const a of [this.uids, this.modseqs, this.flagSets, this.sizes, this.dates, this.summaries]) {
      a.length = w;
    }
  }

  /**
   * The UIDs removed after HIGHESTMODSEQ `since` (what VANISHED (EARLIER) reports, RFC 7162
   * §3.2.5.2), or undefined when the entry does not know them all (removals before it was built,
   * or older than what it keeps): then the tombstones must be read.
   */
  removedSince(since: number): number[] | undefined {
    if (since >= this.removedUpTo) return [];
    if (since < this.removalsKnownFrom) return undefined;
    const out: number[] = [];
    for (let i = this.removals.length - 1; i >= 0; i--) {
      const r = this.removals[i];
      if (r === undefined || r.modseq <= since) break;
      out.push(r.uid);
    }
    return out.reverse();
  }

  /** The messages whose UIDs fall in `intervals` (ascending, disjoint), changed after `since`. */
  select(intervals: Intervals, since?: number): IndexedMessage[] {
    const out: IndexedMessage[] = [];
    const changed = since === undefined ? undefined : this.changedSince(since);
    if (changed !== undefined) {
      let k = 0;
      for (const i of changed) {
        const uid = this.uids[i] ?? 0;
        while (k < intervals.length && (intervals[k]?.[1] ?? 0) < uid) k++;
        if (k === intervals.length) break;
        if (uid < (intervals[k]?.[0] ?? 0)) continue;
        out.push(this.messageAt(i));
      }
      return out;
    }
    for (const [first, last] of intervals) {
      for (let i = this.lowerBound(first); i < this.uids.length; i++) {
        const uid = this.uids[i] ?? 0;
        if (uid > last) break;
        if (since !== undefined && (this.modseqs[i] ?? 0) <= since) continue;
        out.push(this.messageAt(i));
      }
    }
    return out;
  }

  private messageAt(i: number): IndexedMessage {
    return {
      uid: this.uids[i] ?? 0,
      modseq: this.modseqs[i] ?? 0,
      flags: this.flagSets[i] ?? [],
      size: this.sizes[i] ?? 0,
      internalDate: new Date(this.dates[i] ?? 0),
      summary: this.summaries[i],
    };
  }

  /** Messages with a UID ≥ `uid` (\Recent since a floor). */
  countFrom(uid: number): number {
    return this.uids.length - this.lowerBound(uid);
  }

  /** UID of the first message without `flag`, 0 for none. */
  firstWithout(flag: string): number {
    for (let i = 0; i < this.uids.length; i++) {
      if (!(this.flagSets[i] ?? []).includes(flag)) return this.uids[i] ?? 0;
    }
    return 0;
  }
}

/** Removals an entry remembers for VANISHED (about 16 bytes each). */
const MAX_REMOVALS = 4_096;

/** MODSEQ changes an entry remembers for polls (16 bytes each). */
const MAX_CHANGES = 4_096;

/** A change recorded while an entry is being built, replayed onto it afterwards. */
interface RecordedPatch {
  readonly pre: number;
  readonly post: number;
  readonly change: (entry: MailboxIndexEntry) => void;
}

/** A build in progress (one per mailbox at a time). */
export interface IndexBuild {
  readonly mailboxId: string;
  readonly userId: string;
  readonly stamp: number;
  readonly patches: RecordedPatch[];
  broken: boolean;
}

/** The process's mailbox indexes, least recently used first. */
export class MailboxIndex {
  private readonly entries = new Map<string, MailboxIndexEntry>();
  private readonly builds = new Map<string, IndexBuild>();

  /**
   * @param maxMessages messages held over all mailboxes; 0 turns the index off.
   * @param maxSummaryBytes bytes of message summaries held over all mailboxes; 0 keeps none.
   */
  constructor(
    public maxMessages: number,
    public maxSummaryBytes = DEFAULT_INDEX_SUMMARY_BYTES,
  ) {}

  /** Bytes of message summaries held now. */
  get summaryBytes(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.summaryBytes;
    return n;
  }

  /**
   * Keeps summaries of messages of `entry` (a current entry of `mailboxId`), dropping those of the
   * least recently used other mailboxes when the bound is reached; none are kept when this
   * mailbox's alone would pass it. True if every one was kept.
   */
  keepSummaries(
    mailboxId: string,
    entry: MailboxIndexEntry,
    summaries: readonly { readonly uid: number; readonly summary: MessageSummary }[],
  ): boolean {
    if (this.maxSummaryBytes <= 0 || this.entries.get(mailboxId) !== entry) return false;
    let adding = 0;
    for (const s of summaries) adding += summaryBytes(s.summary);
    let total = this.summaryBytes + adding;
    for (const [id, e] of this.entries) {
      if (total <= this.maxSummaryBytes) break;
      if (id === mailboxId || e.summaryBytes === 0) continue;
      total -= e.summaryBytes;
      e.clearSummaries();
    }
    if (total > this.maxSummaryBytes) return false;
    let all = true;
    for (const s of summaries) all = entry.setSummary(s.uid, s.summary) && all;
    return all;
  }

  get enabled(): boolean {
    return this.maxMessages > 0;
  }

  /** Messages held now. */
  get messages(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.size;
    return n;
  }

  /** Whether the mailbox has an entry at all, current or not. */
  has(mailboxId: string): boolean {
    return this.entries.has(mailboxId);
  }

  /** The entry of `mailboxId` if it reflects HIGHESTMODSEQ `stamp`. */
  get(mailboxId: string, stamp: number): MailboxIndexEntry | undefined {
    const entry = this.entries.get(mailboxId);
    if (entry?.stamp !== stamp) return undefined;
    this.entries.delete(mailboxId);
    this.entries.set(mailboxId, entry);
    return entry;
  }

  /** Keeps a freshly built entry, dropping the least recently used ones beyond the bound. */
  set(mailboxId: string, entry: MailboxIndexEntry): void {
    if (!this.enabled || entry.size > this.maxMessages) return;
    this.entries.delete(mailboxId);
    this.entries.set(mailboxId, entry);
    let total = this.messages;
    for (const [id, e] of this.entries) {
      if (total <= this.maxMessages || id === mailboxId) break;
      this.entries.delete(id);
      total -= e.size;
    }
  }

  /**
   * A writer's change took the mailbox from HIGHESTMODSEQ `pre` to `post`: applies it to the
   * entry if the entry is at `pre`, else drops the entry (it missed something).
   */
  patch(mailboxId: string, pre: number, post: number, change: (entry: MailboxIndexEntry) => void): void {
    this.builds.get(mailboxId)?.patches.push({ pre, post, change });
    const entry = this.entries.get(mailboxId);
    if (entry === undefined) return;
    if (entry.stamp !== pre) {
      this.entries.delete(mailboxId);
      return;
    }
    change(entry);
    entry.stamp = post;
  }

  drop(mailboxId: string): void {
    this.entries.delete(mailboxId);
    const build = this.builds.get(mailboxId);
    if (build !== undefined) build.broken = true;
  }

  dropUser(userId: string): void {
    for (const [id, e] of this.entries) if (e.userId === userId) this.entries.delete(id);
    for (const build of this.builds.values()) if (build.userId === userId) build.broken = true;
  }

  /** Drops the entries of every user `matches` selects (a partition moved to another replica). */
  dropUsersWhere(matches: (userId: string) => boolean): void {
    for (const [id, e] of this.entries) if (matches(e.userId)) this.entries.delete(id);
    for (const build of this.builds.values()) if (matches(build.userId)) build.broken = true;
  }

  /**
   * Starts building the entry of a mailbox at HIGHESTMODSEQ `stamp` (read under its lock): from
   * now on the patches of its writers are recorded, so the read of its messages can run without
   * the lock (deliveries and flag changes go on meanwhile) and be caught up afterwards.
   */
  beginBuild(mailboxId: string, userId: string, stamp: number): IndexBuild | undefined {
    if (this.builds.has(mailboxId)) return undefined; // another build is under way
    const build: IndexBuild = { mailboxId, userId, stamp, patches: [], broken: false };
    this.builds.set(mailboxId, build);
    return build;
  }

  abortBuild(build: IndexBuild): void {
    if (this.builds.get(build.mailboxId) === build) this.builds.delete(build.mailboxId);
  }

  /**
   * Ends a build (under the mailbox's lock, `current` read there): replays the recorded patches,
   * which must lead without a gap from the build's stamp to `current` — a change this process did
   * not make (another storage process) or a dropped mailbox leaves the entry out. Replaying a
   * change the read already saw is harmless: adds, flag updates and removals are idempotent and
   * applied in order.
   */
  finishBuild(build: IndexBuild, entry: MailboxIndexEntry, current: number): boolean {
    const mailboxId = build.mailboxId;
    if (this.builds.get(mailboxId) !== build) return false;
    this.builds.delete(mailboxId);
    if (build.broken) return false;
    let stamp = build.stamp;
    for (const p of build.patches) {
      if (p.pre !== stamp) return false;
      p.change(entry);
      stamp = p.post;
    }
    if (stamp !== current) return false;
    entry.stamp = stamp;
    this.set(mailboxId, entry);
    return this.entries.get(mailboxId) === entry;
  }
}

/** Messages the process indexes by default (about 50 bytes each): POSTMESH_MAILBOX_INDEX_MESSAGES. */
export const DEFAULT_INDEX_MESSAGES = 1_000_000;

/**
 * Bytes of message summaries the process keeps by default (POSTMESH_MAILBOX_INDEX_SUMMARY_BYTES):
 * about 1 KiB a message with ordinary headers, so the ENVELOPEs of about 100,000 messages.
 */
export const DEFAULT_INDEX_SUMMARY_BYTES = 128 * 1024 * 1024;

/** The process's index, shared by its Mailstores (set its bounds from the configuration). */
export const sharedMailboxIndex = new MailboxIndex(DEFAULT_INDEX_MESSAGES);
