/** The blob store: where encrypted message bodies live (see types.ts). */
export {
  BlobNotFoundError,
  BlobStoreKinds,
  checkBlobId,
  isBlobId,
  type BlobListRange,
  type BlobSource,
  type BlobStat,
  type BlobStore,
  type BlobStoreKind,
  type ByteRange,
} from './types.js';
export { FsBlobStore } from './fs-store.js';
export { BlobReadCache, CachedBlobStore, DEFAULT_BLOB_READ_CACHE_BYTES } from './read-cache.js';
export { GridFsBlobStore, GRIDFS_CHUNK_BYTES, chunkId, type GridFsFileDoc } from './gridfs-store.js';
export type { S3BlobStoreOptions } from './s3-store.js';
export {
  BlobStoreUnavailableError,
  openBlobStores,
  type BlobStoreSettings,
  type BlobStores,
} from './stores.js';
export {
  addBlobRefs,
  blobRefs,
  insertBlobRefs,
  newBlobRef,
  releaseBlobRefs,
  type BlobRefCounts,
  type BlobRefDoc,
} from './refs.js';
export { BlobSweeper, type BlobSweeperOptions, type SweepReport } from './sweeper.js';
