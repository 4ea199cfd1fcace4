/**
 * The event store behind the Trace gRPC (DESIGN §4 `events`): each event from MAIL_EVENTS is
 * stored once by `eventId` (a redelivered or re-published event is a no-op) with an `expiresAt`
 * that the TTL index honours, and read back by message id, queue id or address, in time order.
 *
 * An event's `_id` is its `eventId`, so storing one is a single insert whose duplicate-key
 * error means "already stored": FerretDB 1.24 answers `_id` from its primary key but decodes
 * every document for any other filter (docs/benchmarks.md, SMTP ingest). Events stored before
 * this have ObjectId `_id`s; the unique `eventId` index still turns a re-insert of one of them
 * into a duplicate-key error, so no migration is needed (they expire by TTL anyway).
 */
import { ErrorReason, trace } from '@postmesh/contracts';
import {
  MongoBulkWriteError,
  type Collection,
  type Db,
  type Filter,
  type ObjectId,
  type WriteError,
} from 'mongodb';
import { Collections, type EventDoc } from '../db/schema.js';
import { decodePageToken, encodePageToken, pageSizeOf } from '../directory/paging.js';
import { fail, isDuplicateKey, ok, type Result } from '../directory/result.js';
import { normaliseDomain } from '../directory/names.js';
import { MAIL_EVENT_KINDS, stripAngles, type MailEvent, type MailEventKind } from '@postmesh/bus';

const DAY_MS = 24 * 60 * 60 * 1000;

/** A stored event: `_id` is the `eventId` (older records: an ObjectId). */
type StoredEvent = Omit<EventDoc, '_id'> & { _id: string | ObjectId };

export class TraceStore {
  private readonly events: Collection<StoredEvent>;

  constructor(
    db: Db,
    private readonly retentionDays: number,
  ) {
    this.events = db.collection(Collections.events);
  }

  /**
   * Deletes events past their `expiresAt`, in bounded batches. Needed where the database has no
   * TTL indexes (FerretDB); harmless where it has (MongoDB deletes them first).
   */
  async sweepExpired(now = new Date(), maxBatches = 100): Promise<number> {
    let deleted = 0;
    for (let batch = 0; batch < maxBatches; batch += 1) {
      const ids = await this.events
        .find({ expiresAt: { $lte: now } }, { projection: { _id: 1 }, limit: 1_000 })
        .toArray();
      if (ids.length === 0) break;
      const result = await this.events.deleteMany({ _id: { $in: ids.map((d) => d._id) } });
      deleted += result.deletedCount;
    }
    return deleted;
  }

  /** Stores an event unless one with its `eventId` exists. Answers whether it was new. */
  async store(event: MailEvent & { readonly date: Date }): Promise<boolean> {
    try {
      await this.events.insertOne(this.docOf(event));
      return true;
    } catch (error) {
      // Stored before (same `_id`, or an older record with the same unique `eventId`).
      if (isDuplicateKey(error)) return false;
      throw error;
    }
  }

  /**
   * Stores events with one unordered bulk insert; an event stored before (same `eventId`) counts
   * as stored. Answers, by position in `events`, why each event that was not stored was refused;
   * a failure of the insert as a whole is thrown.
   */
  async storeMany(events: readonly (MailEvent & { readonly date: Date })[]): Promise<Map<number, string>> {
    if (events.length === 0) return new Map();
    try {
      await this.events.insertMany(
        events.map((e) => this.docOf(e)),
        { ordered: false },
      );
      return new Map();
    } catch (error) {
      if (!(error instanceof MongoBulkWriteError) || error.writeConcernError !== undefined) {
        if (events.length === 1 && isDuplicateKey(error)) return new Map();
        throw error;
      }
      const reported = error.writeErrors;
      const list = Array.isArray(reported) ? (reported as readonly WriteError[]) : [reported as WriteError];
      if (list.length === 0) throw error;
      const refused = new Map<number, string>();
      for (const e of list) {
        if (e.code !== 11000) refused.set(e.index, e.errmsg ?? `refused (code ${e.code})`);
      }
      return refused;
    }
  }

  private docOf(event: MailEvent & { readonly date: Date }): StoredEvent {
    return {
      _id: event.eventId,
      eventId: event.eventId,
      time: event.date,
      service: event.service,
      kind: event.kind,
      detail: { ...event.attributes },
      expiresAt: new Date(event.date.getTime() + this.retentionDays * DAY_MS),
      ...(event.queueId === undefined ? {} : { queueId: event.queueId }),
      ...(event.messageId === undefined ? {} : { messageId: event.messageId }),
      ...(event.sender === undefined ? {} : { sender: event.sender }),
      ...(event.recipient === undefined ? {} : { recipient: event.recipient }),
      ...(event.detail === undefined ? {} : { summary: event.detail }),
      ...(event.traceId === undefined ? {} : { traceId: event.traceId }),
    };
  }

  async query(req: trace.QueryEventsRequest): Promise<Result<trace.QueryEventsResponse>> {
    const filter = req.filter;
    if (filter === undefined || filter.value.trim() === '') {
      return fail(ErrorReason.INVALID_ARGUMENT, 'one of message_id, queue_id or address is required');
    }
    if (req.startTime !== undefined && req.endTime !== undefined && req.endTime < req.startTime) {
      return fail(ErrorReason.INVALID_ARGUMENT, 'end_time is before start_time', 'end_time');
    }
    const token = decodePageToken(req.pageToken);
    if (!token.ok) return token;
    const clauses: Filter<StoredEvent>[] = [];
    switch (filter.$case) {
      case 'messageId':
        clauses.push({ messageId: stripAngles(filter.value) });
        break;
      case 'queueId':
        clauses.push({ queueId: filter.value.trim() });
        break;
      case 'address': {
        const address = filter.value.trim().toLowerCase();
        clauses.push({ $or: [{ sender: address }, { recipient: address }] });
        break;
      }
    }
    const time: Record<string, Date> = {};
    if (req.startTime !== undefined) time.$gte = req.startTime;
    if (req.endTime !== undefined) time.$lt = req.endTime;
    if (Object.keys(time).length > 0) clauses.push({ time });
    if (req.domains.length > 0) {
      const domains: string[] = [];
      for (const raw of req.domains) {
        const domain = normaliseDomain(raw);
        if (domain === undefined) return fail(ErrorReason.INVALID_NAME, `not a domain: ${raw}`, 'domains');
        domains.push(domain.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&'));
      }
      const pattern = `@(?:${domains.join('|')})$`;
      clauses.push({ $or: [{ sender: { $regex: pattern } }, { recipient: { $regex: pattern } }] });
    }
    const after = token.value;
    if (after !== undefined) {
      const [ms, id] = after;
      if (typeof ms !== 'number' || typeof id !== 'string') {
        return fail(ErrorReason.INVALID_ARGUMENT, 'malformed page token', 'page_token');
      }
      const at = new Date(ms);
      clauses.push({ $or: [{ time: { $gt: at } }, { time: at, eventId: { $gt: id } }] });
    }
    const size = pageSizeOf(req.pageSize);
    const docs = await this.events
      .find(clauses.length === 1 ? (clauses[0] ?? {}) : { $and: clauses }, {
        sort: { time: 1, eventId: 1 },
        limit: size + 1,
      })
      .toArray();
    const page = docs.slice(0, size);
    const last = page[page.length - 1];
    return ok({
      events: page.map(eventOut),
      nextPageToken:
        docs.length > size && last !== undefined ? encodePageToken([last.time.getTime(), last.eventId]) : '',
    });
  }

  /**
   * The latest events of some kinds, newest first, within a time window (7 days unless told):
   * the overview's recent alerts and failed deliveries. Scoped to domains like `query`, except
   * that an alert belongs to the domain its `domain` attribute names (alerts about the whole
   * installation have none, so a scoped caller never sees them).
   */
  async recent(req: trace.RecentEventsRequest): Promise<Result<trace.RecentEventsResponse>> {
    const kinds = [...new Set(req.kinds.map((k) => KIND_NAMES.get(k)))];
    if (kinds.length === 0 || kinds.includes(undefined)) {
      return fail(ErrorReason.INVALID_ARGUMENT, 'kinds needs at least one known event kind', 'kinds');
    }
    const domains: string[] = [];
    for (const raw of req.domains) {
      const domain = normaliseDomain(raw);
      if (domain === undefined) return fail(ErrorReason.INVALID_NAME, `not a domain: ${raw}`, 'domains');
      domains.push(domain);
    }
    const since = req.startTime ?? new Date(Date.now() - 7 * DAY_MS);
    const clauses: Filter<StoredEvent>[] = [
      { kind: { $in: kinds as MailEventKind[] } },
      { time: { $gte: since } },
    ];
    if (domains.length > 0) {
      const escaped = domains.map((d) => d.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&'));
      const pattern = `@(?:${escaped.join('|')})$`;
      clauses.push({
        $or: [
          { kind: 'alert', 'detail.domain': { $in: domains } },
          { kind: { $ne: 'alert' }, sender: { $regex: pattern } },
          { kind: { $ne: 'alert' }, recipient: { $regex: pattern } },
        ],
      });
    }
    const limit = Math.min(Math.max(req.limit <= 0 ? 20 : req.limit, 1), 100);
    const docs = await this.events
      .find({ $and: clauses }, { sort: { time: -1, eventId: -1 }, limit })
      .toArray();
    return ok({ events: docs.map(eventOut) });
  }
}

const KIND_NAMES: ReadonlyMap<trace.EventKind, MailEventKind> = new Map(
  MAIL_EVENT_KINDS.map((kind) => [kindOut(kind), kind] as const),
);

function kindOut(kind: string): trace.EventKind {
  switch (kind as MailEventKind) {
    case 'received':
      return trace.EventKind.RECEIVED;
    case 'queued':
      return trace.EventKind.QUEUED;
    case 'delivered':
      return trace.EventKind.DELIVERED;
    case 'deferred':
      return trace.EventKind.DEFERRED;
    case 'relayed':
      return trace.EventKind.RELAYED;
    case 'bounced':
      return trace.EventKind.BOUNCED;
    case 'rejected':
      return trace.EventKind.REJECTED;
    case 'dlq':
      return trace.EventKind.DLQ;
    case 'delayed-notice':
      return trace.EventKind.DELAYED_NOTICE;
    case 'junked':
      return trace.EventKind.JUNKED;
    case 'alert':
      return trace.EventKind.ALERT;
    default:
      return trace.EventKind.UNSPECIFIED;
  }
}

function eventOut(doc: StoredEvent): trace.TraceEvent {
  return {
    id: doc.eventId,
    time: doc.time,
    service: doc.service,
    kind: kindOut(doc.kind),
    queueId: doc.queueId ?? '',
    messageId: doc.messageId ?? '',
    sender: doc.sender ?? '',
    recipient: doc.recipient ?? '',
    detail: doc.summary ?? '',
    attributes: doc.detail,
    traceId: doc.traceId ?? '',
  };
}
