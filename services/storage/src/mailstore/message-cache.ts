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
import { Binary } from 'mongodb';
import type { BlobInfo } from './blob-store.js';
import type { MessageRecord, SealedMeta } from './types.js';

/**
 * A cached message's content key and metadata once opened, and the ENVELOPE/BODYSTRUCTURE JSON
 * made from them: FETCH ENVELOPE and header SEARCH of a hot mailbox then decrypt nothing. They
 * are in memory only, like the user data keys the process already holds while it serves a user
 * (crypto/user-keyring.ts), and go with the entry.
 */
export interface OpenedMessage {
  readonly key: Uint8Array;
  readonly meta: SealedMeta;
  envelopeJson?: string;
  bodystructureJson?: string;
  /** The raw header's bytes, decoded from `meta.rawHeader` once (FETCH of header fields). */
  rawHeaderBytes?: Buffer;
}

interface Cached {
  readonly doc: MessageRecord;
  blob: BlobInfo | undefined;
  opened: OpenedMessage | undefined;
  bytes: number;
  /** Read since eviction last came by (a second chance, see `evict`). */
  used: boolean;
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
    if (hit !== undefined) hit.used = true;
    return hit;
  }

  put(id: string, doc: MessageRecord): void {
    if (!this.enabled || this.entries.has(id)) return;
    // The sealed metadata dominates; the rest of the document is a few hundred bytes.
    const bytes = 512 + doc.meta.length();
    this.entries.set(id, { doc: ownedCopy(doc), blob: undefined, opened: undefined, bytes, used: false });
    this.used += bytes;
    this.evict();
  }

  /**
   * Least recently used out first, approximately (the CLOCK algorithm): entries go oldest first,
   * but one read since eviction last reached it moves to the back instead, once. A read then
   * only sets a mark, rather than moving its entry in the Map, which a FETCH of many messages
   * would pay for each of them.
   */
  private evict(): void {
    let chances = this.entries.size;
    for (const [key, entry] of this.entries) {
      if (this.used <= this.maxBytes) break;
      this.entries.delete(key);
      if (entry.used && chances-- > 0) {
        entry.used = false;
        this.entries.set(key, entry);
        continue;
      }
      this.used -= entry.bytes;
    }
  }

  /** The opened key and metadata of a cached message, if they were kept. */
  opened(id: string): OpenedMessage | undefined {
    return this.entries.get(id)?.opened;
  }

  /** Keeps what opening a cached message gave (nothing if the message is not cached). */
  setOpened(id: string, opened: OpenedMessage): void {
    const hit = this.entries.get(id);
    if (hit === undefined || hit.opened !== undefined) return;
    hit.opened = opened;
    // The parsed metadata holds about what its sealed form does, and its JSON as much again.
    const more = 2 * hit.doc.meta.length();
    hit.bytes += more;
    this.used += more;
    this.evict();
  }

  /** Counts `bytes` more for `opened` (something kept with it), if it is a cached message's. */
  grew(id: string, opened: OpenedMessage, bytes: number): void {
    const hit = this.entries.get(id);
    if (hit === undefined || hit.opened !== opened) return;
    hit.bytes += bytes;
    this.used += bytes;
    this.evict();
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

/**
 * `doc` with binary fields (top level and one level down, e.g. the wrapped content key) that own
 * exactly their bytes. A small Buffer is often a view into a larger ArrayBuffer (Node's 8 KiB
 * allocation pool, or a whole database reply), and a cached view keeps all of it alive: measured
 * with 100,000 delivered messages, each cached message pinned an 8 KiB pool slab for its ~1 KB
 * of sealed metadata, four times what the cache counts (docs/benchmarks.md, "Memory at 100,000
 * messages").
 */
function ownedCopy(doc: MessageRecord): MessageRecord {
  const copy: Record<string, unknown> = { ...doc };
  for (const [key, value] of Object.entries(copy)) {
    if (value instanceof Binary) copy[key] = ownedBinary(value);
    else if (
      value !== null &&
      typeof value === 'object' &&
      Object.getPrototypeOf(value) === Object.prototype
    ) {
      const inner: Record<string, unknown> = { ...(value as Record<string, unknown>) };
      for (const [k, v] of Object.entries(inner)) if (v instanceof Binary) inner[k] = ownedBinary(v);
      copy[key] = inner;
    }
  }
  return copy as unknown as MessageRecord;
}

function ownedBinary(binary: Binary): Binary {
  const bytes = binary.buffer.subarray(0, binary.length());
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength) return binary;
  // `new Uint8Array(view)` copies into an ArrayBuffer of its own, outside the pool.
  return new Binary(new Uint8Array(bytes), binary.sub_type);
}

/** Bytes the process caches by default: POSTMESH_MESSAGE_CACHE_BYTES. */
export const DEFAULT_MESSAGE_CACHE_BYTES = 64 * 1024 * 1024;

/** The process's cache, shared by its Mailstores like the mailbox index. */
export const sharedMessageCache = new MessageCache(DEFAULT_MESSAGE_CACHE_BYTES);
