/**
 * The mutable side of a deferred job. A JetStream message cannot change, so what changes between
 * attempts (recipients still to do, attempt count, last error, next attempt, cancellation) lives
 * in the KV bucket `mta-queue` under `<spoolId>.<domain>`; the job message stays unacked and
 * comes back at least every queue tick (nak with delay) to look at it. Writes use the entry's
 * revision (compare-and-set) so an operator's cancel and a running attempt never overwrite each
 * other silently.
 */
import type { KV } from '@postmesh/bus';

export const QUEUE_BUCKET = 'mta-queue';
export const TLS_REPORT_BUCKET = 'mta-tls-reports';
/**
 * Final outbound jobs whose body is a shared `mail-spool` object: `<spoolId>.<domain>` → time.
 * The last job of a message to become final sees every sibling's entry and deletes the object.
 */
export const SPOOL_REF_BUCKET = 'mta-spool-refs';

export interface QueueRecord {
  readonly spoolId: string;
  readonly domain: string;
  readonly sender: string;
  readonly messageId: string;
  readonly queuedAt: string;
  readonly remaining: readonly string[];
  readonly attempts: number;
  readonly lastAttemptAt: string;
  readonly nextAttemptAt: string;
  readonly lastError: string;
  readonly remoteMta: string;
  readonly delayNoticeSent: boolean;
  /** Base64 of the message's header section (at most 16 KiB), for a DSN on cancel. */
  readonly originalHeaders: string;
  /** W3C traceparent of the message's trace, so a DSN sent on cancel joins it (older records: none). */
  readonly traceparent?: string;
  /** Set by the `cancel` queue operation; the job is dropped at its next pickup. */
  readonly cancelled?: { readonly by: string; readonly at: string };
}

export const queueKey = (spoolId: string, domain: string): string => `${spoolId}.${domain}`;
/** `<spoolId>:<domain>` as the queue operations name an entry. */
export const entryId = (spoolId: string, domain: string): string => `${spoolId}:${domain}`;
export function parseEntryId(id: string): { spoolId: string; domain: string } | undefined {
  const m = /^([A-Za-z0-9_-]{8,64}):([a-z0-9.-]{1,253})$/.exec(id);
  return m ? { spoolId: m[1] as string, domain: m[2] as string } : undefined;
}

export interface Versioned {
  readonly record: QueueRecord;
  readonly revision: number;
}

export class QueueStore {
  constructor(readonly kv: KV) {}

  async get(key: string): Promise<Versioned | undefined> {
    const entry = await this.kv.get(key);
    if (entry === null || entry.operation !== 'PUT' || entry.length === 0) return undefined;
    return { record: entry.json<QueueRecord>(), revision: entry.revision };
  }

  /** Compare-and-set: `revision` undefined creates; false when someone else wrote first. */
  async write(key: string, record: QueueRecord, revision: number | undefined): Promise<boolean> {
    const data = new TextEncoder().encode(JSON.stringify(record));
    try {
      if (revision === undefined) await this.kv.create(key, data);
      else await this.kv.update(key, data, revision);
      return true;
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      if (/wrong last sequence|key exists|exists/i.test(text)) return false;
      throw error;
    }
  }

  async remove(key: string): Promise<void> {
    await this.kv.purge(key);
  }

  async *all(): AsyncGenerator<Versioned & { key: string }> {
    const keys: string[] = [];
    for await (const key of await this.kv.keys()) keys.push(key);
    for (const key of keys) {
      const v = await this.get(key);
      if (v !== undefined) yield { key, ...v };
    }
  }
}
