/**
 * The blob stores of one storage process: the one new bodies go to (POSTMESH_BLOB_STORE), and
 * every other kind a body already stored may be in, opened on first use. A message records
 * the store its body went to, so changing POSTMESH_BLOB_STORE leaves older bodies readable where
 * they are: GridFS always (it is the database storage already uses), the filesystem and S3 when
 * their settings are present. Reads of every store go through one read cache (read-cache.ts).
 */
import type { Db } from 'mongodb';
import { FsBlobStore } from './fs-store.js';
import { GridFsBlobStore } from './gridfs-store.js';
import { BlobReadCache, CachedBlobStore, DEFAULT_BLOB_READ_CACHE_BYTES } from './read-cache.js';
import type { S3BlobStoreOptions } from './s3-store.js';
import type { BlobStore, BlobStoreKind } from './types.js';

export interface BlobStoreSettings {
  /** Where new bodies are written. */
  readonly kind: BlobStoreKind;
  /** Root directory of the filesystem store (POSTMESH_BLOB_DIR). */
  readonly dir?: string;
  /** The S3 store's settings; required when `kind` is `s3`. */
  readonly s3?: S3BlobStoreOptions;
  /**
   * Octets of stored (encrypted) bodies kept in memory to be read again
   * (POSTMESH_BLOB_READ_CACHE_BYTES); 0 keeps none.
   */
  readonly readCacheBytes?: number;
  /** The `fs` store writes bodies held in memory on a thread (POSTMESH_BLOB_FS_WRITER). */
  readonly fsWriterThread?: boolean;
}

export class BlobStoreUnavailableError extends Error {
  override readonly name = 'BlobStoreUnavailableError';
}

export interface BlobStores {
  /** Where new bodies are written. */
  readonly primary: BlobStore;
  /** What the stores' reads are cached in (every store but `gridfs` below reads through it). */
  readonly readCache: BlobReadCache;
  /** The store of that kind; throws BlobStoreUnavailableError when it is not configured here. */
  get(kind: BlobStoreKind): BlobStore;
  /** The GridFS store itself, uncached (always there: it is storage's own database). */
  readonly gridfs: GridFsBlobStore;
  /** Every store opened so far (the sweeper's list). */
  opened(): readonly BlobStore[];
  close(): Promise<void>;
}

class ConfiguredBlobStores implements BlobStores {
  private readonly stores = new Map<BlobStoreKind, BlobStore>();
  readonly primary: BlobStore;
  readonly readCache: BlobReadCache;

  constructor(
    primary: BlobStore,
    readonly gridfs: GridFsBlobStore,
    private readonly settings: BlobStoreSettings,
    private readonly s3Factory: ((options: S3BlobStoreOptions) => BlobStore) | undefined,
  ) {
    this.readCache = new BlobReadCache(settings.readCacheBytes ?? DEFAULT_BLOB_READ_CACHE_BYTES);
    this.primary = new CachedBlobStore(primary, this.readCache);
    this.stores.set(primary.kind, this.primary);
  }

  get(kind: BlobStoreKind): BlobStore {
    const open = this.stores.get(kind);
    if (open !== undefined) return open;
    let store: BlobStore;
    switch (kind) {
      case 'gridfs':
        store = this.gridfs;
        break;
      case 'fs':
        if (this.settings.dir === undefined) {
          throw new BlobStoreUnavailableError(
            'a body is in the filesystem store, and POSTMESH_BLOB_DIR is not set',
          );
        }
        store = FsBlobStore.at(this.settings.dir);
        break;
      case 's3':
        if (this.settings.s3 === undefined || this.s3Factory === undefined) {
          throw new BlobStoreUnavailableError(
            'a body is in the S3 store, and POSTMESH_BLOB_S3_BUCKET is not set',
          );
        }
        store = this.s3Factory(this.settings.s3);
        break;
    }
    const cached = new CachedBlobStore(store, this.readCache);
    this.stores.set(kind, cached);
    return cached;
  }

  opened(): readonly BlobStore[] {
    return [...this.stores.values()];
  }

  async close(): Promise<void> {
    await Promise.all([...this.stores.values()].map((s) => s.close()));
  }
}

/** Opens the configured store (creating the filesystem store's root) and the registry around it. */
export async function openBlobStores(db: Db, settings: BlobStoreSettings): Promise<BlobStores> {
  // The AWS SDK is loaded only where S3 is configured.
  const s3Factory =
    settings.s3 === undefined
      ? undefined
      : await import('./s3-store.js').then(
          (m) => (options: S3BlobStoreOptions) => new m.S3BlobStore(options),
        );
  const gridfs = new GridFsBlobStore(db);
  let primary: BlobStore;
  switch (settings.kind) {
    case 'fs':
      if (settings.dir === undefined) throw new BlobStoreUnavailableError('POSTMESH_BLOB_DIR is required');
      primary = await FsBlobStore.open(settings.dir, { writerThread: settings.fsWriterThread === true });
      break;
    case 's3':
      if (settings.s3 === undefined || s3Factory === undefined) {
        throw new BlobStoreUnavailableError(
          'POSTMESH_BLOB_S3_BUCKET is required when POSTMESH_BLOB_STORE=s3',
        );
      }
      primary = s3Factory(settings.s3);
      break;
    case 'gridfs':
      primary = gridfs;
      break;
  }
  return new ConfiguredBlobStores(primary, gridfs, settings, s3Factory);
}
