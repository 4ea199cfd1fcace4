/**
 * A bounded cache of the parts of a message document that never change once written: its body
 * reference, wrapped content key and sealed metadata (ENVELOPE, BODYSTRUCTURE, part offsets, the
 * raw header), still encrypted as at rest (ADR 0002), plus the body's file record. A message's
 * `_id` names its mailbox and UID, and neither is ever reused (UIDs only grow; RENAME of INBOX and
 * COPY/MOVE write new ids), so an entry can never describe another message.
 *
 * It serves ENVELOPE/BODYSTRUCTURE fetches and whole-message reads of mailboxes with a current
 * mailbox index entry (ADR 0006): the index says which messages exist and their flags and MODSEQ
 * (the mutable parts); this cache says what they are. A message not in a current index entry is
 * never answered from here, so an expunged message's leftover entry is harmless until evicted.
 */
import type { BlobInfo } from './blob-store.js';
import type { MessageRecord } from './types.js';

interface Cached {
  readonly doc: MessageRecord;
  blob: BlobInfo | undefined;
  readonly bytes: number;
}

export class MessageCache {
  private readonly entries = new Map<string, Cached>();
  private used = 0;

  /** @param maxBytes approximate bytes held; 0 turns the cache off. */
  constructor(public maxBytes: number) {}

  get enabled(): boolean {
    return this.maxBytes > 0;
  }

  get bytes(): number {
    return this.used;
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  /** The cached document (its flags and MODSEQ may be stale: take them from the index). */
  get(id: string): { doc: MessageRecord; blob: BlobInfo | undefined } | undefined {
    const hit = this.entries.get(id);
    if (hit === undefined) return undefined;
    this.entries.delete(id);
    this.entries.set(id, hit);
    return hit;
  }

  put(id: string, doc: MessageRecord): void {
    if (!this.enabled || this.entries.has(id)) return;
    // The sealed metadata dominates; the rest of the document is a few hundred bytes.
    const bytes = 512 + doc.meta.length();
    this.entries.set(id, { doc, blob: undefined, bytes });
    this.used += bytes;
    for (const [key, entry] of this.entries) {
      if (this.used <= this.maxBytes) break;
      this.entries.delete(key);
      this.used -= entry.bytes;
    }
  }

  /** Forgets every entry (all of it can be read again from the database). */
  clear(): void {
    this.entries.clear();
    this.used = 0;
  }

  setBlob(id: string, blob: BlobInfo): void {
    const hit = this.entries.get(id);
    if (hit !== undefined) hit.blob = blob;
  }
}

/** Bytes the process caches by default: POSTMESH_MESSAGE_CACHE_BYTES. */
export const DEFAULT_MESSAGE_CACHE_BYTES = 64 * 1024 * 1024;

/** The process's cache, shared by its Mailstores like the mailbox index. */
export const sharedMessageCache = new MessageCache(DEFAULT_MESSAGE_CACHE_BYTES);
