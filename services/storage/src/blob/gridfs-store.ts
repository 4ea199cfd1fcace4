/**
 * Bodies in the database, in the GridFS layout of the bucket `blobs` (`blobs.files`,
 * `blobs.chunks`), so GridFS tools can still read them: the store for a deployment on a real
 * MongoDB, and the one that still holds the bodies written before the other stores existed.
 *
 * Chunks get deterministic ids `<blobId>:<n, 8 digits>` and are read and deleted by `_id`:
 * FerretDB 1.24 on SQLite answers any other filter by decoding every chunk of every body in the
 * database (a 10 KB body took 2.8–3.3 s to find among 10,000 by `files_id`, and 57–79 ms by
 * `_id`, measured), and on MongoDB `_id` is the primary index. Such files carry
 * `metadata.keyedChunks: true`; files written by a GridFSBucket (ObjectId chunk ids) are still
 * read and deleted by `files_id`.
 *
 * Durability: every write uses the client's write concern (`w: majority, j: true` in storage).
 * The file document is written last, after every chunk, and a failed put deletes its chunks.
 */
import { Binary, ObjectId, type Db } from 'mongodb';
import {
  BlobNotFoundError,
  blobChunks,
  checkBlobId,
  isBlobId,
  type BlobListRange,
  type BlobSource,
  type BlobStat,
  type BlobStore,
  type ByteRange,
} from './types.js';

/**
 * Octets per chunk: one sealed body record (mailstore/body-cipher.ts RECORD: 64 KiB of
 * plaintext and a 16-octet tag), so a record is one chunk, as bodies have always been stored.
 */
export const GRIDFS_CHUNK_BYTES = 64 * 1024 + 16;

/** Chunks are inserted in groups of this many (one insert each), bounding what is held. */
const WRITE_GROUP = 16;

interface ChunkDoc {
  _id: string | ObjectId;
  files_id: ObjectId;
  n: number;
  data: Binary;
}

export interface GridFsFileDoc {
  _id: ObjectId;
  length: number;
  chunkSize: number;
  uploadDate: Date;
  filename: string;
  metadata?: { format?: string; baseNonce?: Binary; keyedChunks?: boolean };
}

/** The `_id` of chunk `n` of a file: zero-padded, so ids sort in chunk order. */
export function chunkId(blobId: string, n: number): string {
  return `${blobId}:${String(n).padStart(8, '0')}`;
}

export class GridFsBlobStore implements BlobStore {
  readonly kind = 'gridfs' as const;

  constructor(
    private readonly db: Db,
    private readonly bucket = 'blobs',
    private readonly chunkSize = GRIDFS_CHUNK_BYTES,
  ) {}

  private chunks() {
    return this.db.collection<ChunkDoc>(`${this.bucket}.chunks`);
  }

  private files() {
    return this.db.collection<GridFsFileDoc>(`${this.bucket}.files`);
  }

  /** The file document (length, upload date, and the cipher metadata of older bodies). */
  file(blobId: string): Promise<GridFsFileDoc | null> {
    return this.files().findOne({ _id: new ObjectId(checkBlobId(blobId)) });
  }

  async put(blobId: string, data: BlobSource): Promise<BlobStat> {
    const id = new ObjectId(checkBlobId(blobId));
    let pending: ChunkDoc[] = [];
    let n = 0;
    let length = 0;
    let carry: Buffer = Buffer.alloc(0);
    const flush = async (): Promise<void> => {
      if (pending.length === 0) return;
      const group = pending;
      pending = [];
      await this.chunks().insertMany(group, { ordered: true });
    };
    const push = async (data: Buffer): Promise<void> => {
      pending.push({ _id: chunkId(blobId, n), files_id: id, n, data: new Binary(data) });
      n++;
      if (pending.length >= WRITE_GROUP) await flush();
    };
    try {
      for await (const chunk of blobChunks(data)) {
        length += chunk.length;
        carry = carry.length === 0 ? Buffer.from(chunk) : Buffer.concat([carry, chunk]);
        while (carry.length >= this.chunkSize) {
          await push(carry.subarray(0, this.chunkSize));
          carry = carry.subarray(this.chunkSize);
        }
      }
      if (carry.length > 0 || n === 0) await push(carry);
      await flush();
      const uploadDate = new Date();
      await this.files().insertOne({
        _id: id,
        length,
        chunkSize: this.chunkSize,
        uploadDate,
        filename: blobId,
        metadata: { keyedChunks: true },
      });
      return { size: length, writtenAt: uploadDate };
    } catch (error) {
      pending = [];
      await this.deleteKeyedChunks(blobId, n).catch(() => undefined);
      throw error;
    }
  }

  async read(blobId: string, range: ByteRange): Promise<Buffer> {
    checkBlobId(blobId);
    const start = Math.max(0, range.start);
    if (range.end <= start) {
      if ((await this.stat(blobId)) === null) throw new BlobNotFoundError(blobId, this.kind);
      return Buffer.alloc(0);
    }
    const first = Math.floor(start / this.chunkSize);
    const last = Math.floor((range.end - 1) / this.chunkSize);
    const indexes = Array.from({ length: last - first + 1 }, (_, i) => first + i);
    let found = await Promise.all(
      indexes.map((n) => this.chunks().findOne({ _id: chunkId(blobId, n) }, { projection: { data: 1 } })),
    );
    if (found[0] === null) {
      // Not a keyed file: written by a GridFSBucket, past its end, or not there at all.
      const file = await this.file(blobId);
      if (file === null) throw new BlobNotFoundError(blobId, this.kind);
      if (file.metadata?.keyedChunks === true) return Buffer.alloc(0);
      const id = new ObjectId(blobId);
      found = await Promise.all(
        indexes.map((n) => this.chunks().findOne({ files_id: id, n }, { projection: { data: 1 } })),
      );
    }
    const parts: Buffer[] = [];
    for (const doc of found) {
      // A missing chunk ends what can be read: the reader sees a short body.
      if (doc === null) break;
      parts.push(Buffer.from(doc.data.buffer));
    }
    const joined = Buffer.concat(parts);
    const base = first * this.chunkSize;
    return joined.subarray(start - base, range.end - base);
  }

  async stat(blobId: string): Promise<BlobStat | null> {
    const file = await this.file(blobId);
    return file === null ? null : { size: file.length, writtenAt: file.uploadDate };
  }

  async delete(blobId: string): Promise<void> {
    const file = await this.file(blobId);
    if (file?.metadata?.keyedChunks === true) {
      await this.deleteKeyedChunks(blobId, Math.max(1, Math.ceil(file.length / file.chunkSize)));
    } else {
      // Files written by a GridFSBucket (ObjectId chunk ids), or whose file document is missing.
      await this.chunks().deleteMany({ files_id: new ObjectId(blobId) });
    }
    await this.files().deleteOne({ _id: new ObjectId(blobId) });
  }

  async *list(range: BlobListRange): AsyncGenerator<string> {
    const filter = {
      _id: {
        ...(range.after === undefined ? {} : { $gt: new ObjectId(checkBlobId(range.after)) }),
        $lt: new ObjectId(checkBlobId(range.before)),
      },
    };
    for await (const file of this.files().find(filter, { projection: { _id: 1 }, sort: { _id: 1 } })) {
      yield file._id.toHexString();
    }
  }

  /**
   * Deletes keyed chunks of `range` that have no file document (a put cut short by a crash: the
   * file document is written last); answers how many bodies they belonged to.
   */
  async removeAbandonedWrites(range: BlobListRange): Promise<number> {
    const owners = new Set<string>();
    const filter = { _id: { $gt: range.after ?? '', $lt: checkBlobId(range.before) } };
    for await (const chunk of this.chunks().find(filter, { projection: { _id: 1 } })) {
      if (typeof chunk._id === 'string') owners.add(chunk._id.slice(0, 24));
    }
    let removed = 0;
    for (const blobId of owners) {
      if (!isBlobId(blobId) || blobId <= (range.after ?? '')) continue;
      if ((await this.file(blobId)) !== null) continue;
      await this.chunks().deleteMany({ files_id: new ObjectId(blobId) });
      removed++;
    }
    return removed;
  }

  private async deleteKeyedChunks(blobId: string, count: number): Promise<void> {
    if (count <= 0) return;
    // One equality filter per chunk: FerretDB answers `_id` equality in SQLite, `$in` by
    // decoding every chunk (see the header comment).
    await this.chunks().bulkWrite(
      Array.from({ length: count }, (_, n) => ({ deleteOne: { filter: { _id: chunkId(blobId, n) } } })),
      { ordered: false },
    );
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
