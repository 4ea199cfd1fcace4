/**
 * Outbound queue and dead-letter queue inspection over JetStream (DESIGN §2 steps 8–10, §3).
 *
 * - Outbound: deferred mail is mta-delivery's (retry state, backoff, the last error); the API lists,
 *   retries and cancels it through mta-delivery's queue operations (queue-operations-client.ts), not here.
 * - DLQ (`MAIL_DLQ`): list entries with the headers the consumer loop writes (`Postmesh-Error`,
 *   `Postmesh-Original-Subject` …), re-drive one (republish its data to the original subject with a
 *   new Nats-Msg-Id, then delete the DLQ entry) or discard it.
 */
import { randomUUID } from 'node:crypto';
import { publishDurable, Streams, type Bus } from '@postmesh/bus';

export interface QueueEntry {
  readonly seq: number;
  readonly subject: string;
  readonly time: string;
  readonly size: number;
  readonly spoolId: string;
  readonly messageId: string;
  readonly sender: string;
  /** The sender's domain (what a domain-admin's scope is about); '' for the null sender. */
  readonly senderDomain: string;
  readonly recipients: readonly string[];
  readonly receivedAt: string;
}

export interface DlqEntry extends QueueEntry {
  readonly error: string;
  readonly originalSubject: string;
  readonly originalStream: string;
  readonly attempts: number;
}

export interface Page<T> {
  readonly items: readonly T[];
  readonly nextPageToken: string;
}

interface Stored {
  readonly subject: string;
  readonly seq: number;
  readonly data: Uint8Array;
  readonly time: Date;
  readonly header?: { get(name: string): string } | undefined;
}

/** Reads the JSON head of a job frame (`[u32 length][JSON][raw]`, libs/bus jobs.ts), leniently. */
function jobSummary(
  data: Uint8Array,
): Pick<QueueEntry, 'spoolId' | 'messageId' | 'sender' | 'senderDomain' | 'recipients' | 'receivedAt'> {
  const empty = { spoolId: '', messageId: '', sender: '', senderDomain: '', recipients: [], receivedAt: '' };
  try {
    let json: unknown;
    if (data.length >= 4) {
      const length = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0, false);
      if (4 + length <= data.length && data[4] === 0x7b)
        json = JSON.parse(new TextDecoder().decode(data.subarray(4, 4 + length)));
    }
    if (json === undefined && data[0] === 0x7b) json = JSON.parse(new TextDecoder().decode(data));
    if (typeof json !== 'object' || json === null) return empty;
    const job = json as Record<string, unknown>;
    const envelope = (job.envelope ?? {}) as Record<string, unknown>;
    const sender = typeof envelope.mailFrom === 'string' ? envelope.mailFrom : '';
    return {
      spoolId: typeof job.spoolId === 'string' ? job.spoolId : '',
      messageId: typeof job.messageId === 'string' ? job.messageId : '',
      sender,
      senderDomain: sender.includes('@') ? sender.slice(sender.lastIndexOf('@') + 1).toLowerCase() : '',
      recipients: Array.isArray(envelope.rcptTo)
        ? envelope.rcptTo.filter((r): r is string => typeof r === 'string')
        : [],
      receivedAt: typeof job.receivedAt === 'string' ? job.receivedAt : '',
    };
  } catch {
    return empty;
  }
}

const entryOf = (m: Stored): QueueEntry => ({
  seq: m.seq,
  subject: m.subject,
  time: m.time.toISOString(),
  size: m.data.length,
  ...jobSummary(m.data),
});

const dlqEntryOf = (m: Stored): DlqEntry => ({
  ...entryOf(m),
  error: m.header?.get('Postmesh-Error') ?? '',
  originalSubject: m.header?.get('Postmesh-Original-Subject') ?? '',
  originalStream: m.header?.get('Postmesh-Original-Stream') ?? '',
  attempts: Number(m.header?.get('Postmesh-Attempts') ?? '0') || 0,
});

export class QueueInspector {
  constructor(private readonly bus: Bus) {}

  private async next(stream: string, subjects: string, seq: number): Promise<Stored | undefined> {
    try {
      const m = await this.bus.jsm.direct.getMessage(stream, { seq, next_by_subj: subjects });
      return m ?? undefined;
    } catch {
      return undefined;
    }
  }

  private async get(stream: string, seq: number): Promise<Stored | undefined> {
    try {
      const m = await this.bus.jsm.streams.getMessage(stream, { seq });
      return m ?? undefined;
    } catch {
      return undefined;
    }
  }

  /** Pages by stream sequence; `keep` filters (a domain scope), bounded scanning per call. */
  private async page<T extends QueueEntry>(
    stream: string,
    subjects: string,
    map: (m: Stored) => T,
    pageSize: number,
    pageToken: string,
    keep: (entry: T) => boolean,
  ): Promise<Page<T>> {
    let seq = pageToken === '' ? 1 : Number(pageToken);
    if (!Number.isSafeInteger(seq) || seq < 1) seq = 1;
    const items: T[] = [];
    for (let scanned = 0; scanned < 10_000 && items.length < pageSize; scanned++) {
      const m = await this.next(stream, subjects, seq);
      if (m === undefined) return { items, nextPageToken: '' };
      const entry = map(m);
      if (keep(entry)) items.push(entry);
      seq = m.seq + 1;
    }
    return { items, nextPageToken: String(seq) };
  }

  dlq(pageSize: number, pageToken: string): Promise<Page<DlqEntry>> {
    return this.page(Streams.MAIL_DLQ, 'mail.dlq.>', dlqEntryOf, pageSize, pageToken, () => true);
  }

  async dlqEntry(seq: number): Promise<DlqEntry | undefined> {
    const m = await this.get(Streams.MAIL_DLQ, seq);
    return m === undefined ? undefined : dlqEntryOf(m);
  }

  /**
   * Re-drive: publish the job again to its original subject (new Nats-Msg-Id, so the original's
   * dedup window does not swallow it), and only after the PubAck delete the DLQ entry. A crash in
   * between leaves both: the job may run twice, which the consumers' idempotency absorbs.
   */
  async redrive(seq: number): Promise<{ subject: string; newSeq: number } | undefined> {
    const m = await this.get(Streams.MAIL_DLQ, seq);
    if (m === undefined) return undefined;
    const entry = dlqEntryOf(m);
    if (!/^mail\.(inbound|outbound)\./.test(entry.originalSubject)) {
      throw new Error(`DLQ entry ${seq} has no re-drivable original subject`);
    }
    const ack = await publishDurable(this.bus.js, entry.originalSubject, m.data, {
      msgId: `redrive:${seq}:${randomUUID()}`,
      headers: { 'Postmesh-Redriven-From': `${Streams.MAIL_DLQ}:${seq}` },
    });
    await this.bus.jsm.streams.deleteMessage(Streams.MAIL_DLQ, seq);
    return { subject: entry.originalSubject, newSeq: ack.seq };
  }

  async discard(seq: number): Promise<boolean> {
    try {
      return await this.bus.jsm.streams.deleteMessage(Streams.MAIL_DLQ, seq);
    } catch {
      return false;
    }
  }

  /** Messages and consumer lag per stream, for the health page. */
  async streams(): Promise<
    {
      name: string;
      messages: number;
      bytes: number;
      consumers: { name: string; pending: number; ackPending: number }[];
    }[]
  > {
    const out = [];
    for (const name of Object.values(Streams)) {
      try {
        const info = await this.bus.jsm.streams.info(name);
        const consumers = [];
        for await (const c of this.bus.jsm.consumers.list(name)) {
          consumers.push({ name: c.name, pending: c.num_pending, ackPending: c.num_ack_pending });
        }
        out.push({ name, messages: info.state.messages, bytes: info.state.bytes, consumers });
      } catch {
        out.push({ name, messages: -1, bytes: -1, consumers: [] });
      }
    }
    return out;
  }
}
