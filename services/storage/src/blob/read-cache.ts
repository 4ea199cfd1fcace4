/**
 * A bounded cache of the octets read from the blob stores: a body FETCHed again (an IMAP client
 * opening the same message twice, or a second client of the same mailbox) is then answered from
 * memory instead of opening, reading and closing its file (or asking S3 or GridFS) once more.
 * Bodies just written are put in too (mailstore/blob-store.ts), once durable: new mail is what
 * clients fetch next.
 *
 * It holds exactly what the stores hold: ciphertext, sealed records that are authenticated and
 * decrypted on every read as before (mailstore/blob-store.ts), so no plaintext body stays in
 * memory after a read and a damaged record fails every read of it (ADR 0002). Blobs are never
 * rewritten and their ids never reused, so an entry cannot go stale; a deleted blob's entries go
 * with it (`CachedBlobStore.delete`). What the cache answers was authentic when it was read or
 * written; a change to the stored copy afterwards (damage at rest) is found on the first read
 * after the entry is gone (evicted, or the process restarted). Entries are keyed by store, blob and the range's first
 * octet (a body is always read from its first record, whether on its own or in a pack), and
 * answer any read of that start that ends within them.
 */
import { Counter, Gauge, type Registry } from '@postmesh/telemetry';
import type { BlobListRange, BlobSource, BlobStat, BlobStore, BlobStoreKind, ByteRange } from './types.js';

/** Bytes cached when POSTMESH_BLOB_READ_CACHE_BYTES is not set. */
export const DEFAULT_BLOB_READ_CACHE_BYTES = 64 * 1024 * 1024;

interface Entry {
  readonly blob: string;
  readonly start: number;
  readonly bytes: Buffer;
}

export class BlobReadCache {
  /** Least recently used first (a Map keeps insertion order; a hit moves its entry to the end). */
  private readonly entries = new Map<string, Entry>();
  /** Keys of each blob's entries, for `evictBlob`. */
  private readonly byBlob = new Map<string, Set<string>>();
  private used = 0;
  private reads: Counter<'result'> | undefined;
  hits = 0;
  misses = 0;

  /** The longest read kept (a quarter of `maxBytes` at most). */
  readonly maxEntryBytes: number;

  /**
   * @param maxBytes octets held at most; 0 turns the cache off.
   * @param maxEntryBytes a read longer than this is not kept (one large message must not push
   *   out hundreds of the small ones a mailbox is mostly made of).
   */
  constructor(
    readonly maxBytes: number,
    maxEntryBytes = 1024 * 1024,
  ) {
    this.maxEntryBytes = Math.min(maxEntryBytes, Math.floor(maxBytes / 4));
  }

  get enabled(): boolean {
    return this.maxBytes > 0;
  }

  /** Octets held now. */
  get bytes(): number {
    return this.used;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Octets `range` of the blob if a cached read covers them. */
  get(kind: BlobStoreKind, blobId: string, range: ByteRange): Buffer | undefined {
    if (!this.enabled) return undefined;
    const key = entryKey(kind, blobId, range.start);
    const entry = this.entries.get(key);
    if (entry === undefined || range.end - range.start > entry.bytes.length) {
      this.misses++;
      this.reads?.inc({ result: 'miss' });
      return undefined;
    }
    this.entries.delete(key);
    this.entries.set(key, entry);
    this.hits++;
    this.reads?.inc({ result: 'hit' });
    return entry.bytes.subarray(0, Math.max(0, range.end - range.start));
  }

  /**
   * Keeps octets of `blobId` from `start`: what a read returned, or what a write just made
   * durable (`bytes` is not changed afterwards).
   */
  put(kind: BlobStoreKind, blobId: string, start: number, bytes: Buffer): void {
    if (!this.enabled || bytes.length === 0) return;
    if (bytes.length > this.maxEntryBytes) return;
    const blob = blobKey(kind, blobId);
    const key = entryKey(kind, blobId, start);
    const old = this.entries.get(key);
    if (old !== undefined) {
      if (old.bytes.length >= bytes.length) return;
      this.remove(key, old);
    }
    // A small read may be a view of a shared pool slab (Buffer.allocUnsafe): keep only its octets.
    const own = bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.length ? bytes : copy(bytes);
    this.entries.set(key, { blob, start, bytes: own });
    let keys = this.byBlob.get(blob);
    if (keys === undefined) this.byBlob.set(blob, (keys = new Set()));
    keys.add(key);
    this.used += own.length;
    for (const [oldest, entry] of this.entries) {
      if (this.used <= this.maxBytes) break;
      this.remove(oldest, entry);
    }
  }

  /** Drops every cached read of the blob (it was deleted). */
  evictBlob(kind: BlobStoreKind, blobId: string): void {
    const keys = this.byBlob.get(blobKey(kind, blobId));
    if (keys === undefined) return;
    for (const key of [...keys]) {
      const entry = this.entries.get(key);
      if (entry !== undefined) this.remove(key, entry);
    }
  }

  clear(): void {
    this.entries.clear();
    this.byBlob.clear();
    this.used = 0;
  }

  /** Registers `postmesh_storage_body_cache_*` (docs/metrics.md). */
  instrument(registry: Registry): void {
    this.reads = new Counter({
      name: 'postmesh_storage_body_cache_reads_total',
      help: 'Body reads from the blob stores, answered from the read cache (hit) or by the store (miss)',
      labelNames: ['result'] as const,
      registers: [registry],
    });
    // Both results exist from the start, so a rate over them is defined before the first miss.
    this.reads.inc({ result: 'hit' }, 0);
    this.reads.inc({ result: 'miss' }, 0);
    const held = (): number => this.used;
    new Gauge({
      name: 'postmesh_storage_body_cache_bytes',
      help: 'Octets of (encrypted) bodies the blob read cache holds',
      registers: [registry],
      collect() {
        this.set(held());
      },
    });
  }

  private remove(key: string, entry: Entry): void {
    this.entries.delete(key);
    this.used -= entry.bytes.length;
    const keys = this.byBlob.get(entry.blob);
    keys?.delete(key);
    if (keys?.size === 0) this.byBlob.delete(entry.blob);
  }
}

function blobKey(kind: BlobStoreKind, blobId: string): string {
  return `${kind}:${blobId}`;
}

function entryKey(kind: BlobStoreKind, blobId: string, start: number): string {
  return `${kind}:${blobId}:${start}`;
}

function copy(bytes: Buffer): Buffer {
  const out = Buffer.allocUnsafeSlow(bytes.length);
  bytes.copy(out);
  return out;
}

/** A blob store whose reads go through `cache` first; everything else is the store's. */
export class CachedBlobStore implements BlobStore {
  constructor(
    readonly inner: BlobStore,
    private readonly cache: BlobReadCache,
  ) {}

  get kind(): BlobStoreKind {
    return this.inner.kind;
  }

  put(blobId: string, data: BlobSource): Promise<BlobStat> {
    return this.inner.put(blobId, data);
  }

  async read(blobId: string, range: ByteRange): Promise<Buffer> {
    const cached = this.cache.get(this.inner.kind, blobId, range);
    if (cached !== undefined) return cached;
    const bytes = await this.inner.read(blobId, range);
    this.cache.put(this.inner.kind, blobId, range.start, bytes);
    return bytes;
  }

  stat(blobId: string): Promise<BlobStat | null> {
    return this.inner.stat(blobId);
  }

  async delete(blobId: string): Promise<void> {
    this.cache.evictBlob(this.inner.kind, blobId);
    await this.inner.delete(blobId);
    // A read that was in flight while the blob went may have put it back.
    this.cache.evictBlob(this.inner.kind, blobId);
  }

  list(range: BlobListRange): AsyncIterable<string> {
    return this.inner.list(range);
  }

  removeAbandonedWrites(range: BlobListRange): Promise<number> {
    return this.inner.removeAbandonedWrites(range);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
