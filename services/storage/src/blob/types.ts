/**
 * The blob store: where the encrypted bodies of messages live (DESIGN §4), behind one small
 * interface so a body read costs the same whatever the mailbox holds. Implementations: the
 * filesystem (one machine), S3 (AWS), GridFS (a real MongoDB, and bodies written before the
 * other stores existed). A store only ever sees ciphertext: bodies are sealed before `put`
 * (mailstore/body-cipher.ts) and opened after `read`, with content keys it never holds.
 */

export const BlobStoreKinds = ['fs', 's3', 'gridfs'] as const;
export type BlobStoreKind = (typeof BlobStoreKinds)[number];

/**
 * Blob ids are ObjectIds in lowercase hex: their first eight digits are the creation time in
 * seconds, which the stores use to lay blobs out by age and the sweeper to list them by age.
 */
const BLOB_ID = /^[0-9a-f]{24}$/;

export function isBlobId(id: string): boolean {
  return BLOB_ID.test(id);
}

/** Refuses anything but a blob id before it becomes part of a path or an object key. */
export function checkBlobId(id: string): string {
  if (!BLOB_ID.test(id)) throw new TypeError(`not a blob id: ${JSON.stringify(id)}`);
  return id;
}

/** Octets `[start, end)` of a blob. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

export interface BlobStat {
  /** Octets stored. */
  readonly size: number;
  /** When the blob was written (file mtime, S3 LastModified, GridFS uploadDate). */
  readonly writtenAt: Date;
}

/** What `put` stores: the whole blob, or its octets in order (consumed once). */
export type BlobSource = Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/** Ids strictly after `after` (all when absent) and strictly before `before`, ascending. */
export interface BlobListRange {
  readonly after?: string;
  readonly before: string;
}

export interface BlobStore {
  readonly kind: BlobStoreKind;
  /**
   * Stores `data` under `blobId` and resolves only once it is durable (it survives a crash of
   * this process and of the machine). If `data` throws, or the write fails, nothing is left
   * under `blobId` that a reader could see, and the error is rethrown. Blob ids are never reused,
   * so a put never replaces a blob someone reads.
   */
  put(blobId: string, data: BlobSource): Promise<BlobStat>;
  /**
   * Octets `range` of the blob, cut at its end (an empty buffer past it). Throws
   * BlobNotFoundError when there is no such blob.
   */
  read(blobId: string, range: ByteRange): Promise<Buffer>;
  /** Null when there is no such blob. */
  stat(blobId: string): Promise<BlobStat | null>;
  /** Removes the blob; removing one that is not there is not an error. */
  delete(blobId: string): Promise<void>;
  /** Ids of stored blobs in `range` (the sweeper's view of the store). */
  list(range: BlobListRange): AsyncIterable<string>;
  /**
   * Removes what puts of blobs in `range` left when they never finished (temporary files,
   * chunks without a file, unfinished multipart uploads); answers how many. Only for a range
   * whose puts are long over (the sweeper's age threshold).
   */
  removeAbandonedWrites(range: BlobListRange): Promise<number>;
  /** Releases clients and handles. */
  close(): Promise<void>;
}

export class BlobNotFoundError extends Error {
  override readonly name = 'BlobNotFoundError';
  constructor(
    readonly blobId: string,
    readonly store: BlobStoreKind,
    options?: { cause?: unknown },
  ) {
    super(`blob ${blobId} is not in the ${store} blob store`, options);
  }
}

/** `data` as a sequence of buffers. */
export async function* blobChunks(data: BlobSource): AsyncGenerator<Uint8Array> {
  if (data instanceof Uint8Array) {
    yield data;
    return;
  }
  for await (const chunk of data) yield chunk;
}
