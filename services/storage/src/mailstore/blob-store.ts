/**
 * Encrypted bodies in the GridFS bucket `blobs` (DESIGN §4), shared by every mailbox copy of one
 * delivery and reference-counted in `blob_refs`; plus the small sealed values (metadata, search
 * text) kept in message documents under the same content key.
 *
 * GridFS chunks are sized to one cipher record (body-cipher.ts), so a range read fetches and
 * decrypts only the records it overlaps.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { Binary, GridFSBucket, MongoServerError, type Db, type ObjectId } from 'mongodb';
import { Collections } from '../db/schema.js';
import {
  BodyEncryptor,
  RECORD,
  SEGMENT,
  decryptSegment,
  plainLength,
  recordCount,
  type BodyKey,
} from './body-cipher.js';
import { BlobIntegrityError } from './errors.js';

export interface BlobFileMetadata {
  readonly format: 'pm-body-v1';
  readonly baseNonce: Binary;
}

export interface BlobRefDoc {
  _id: ObjectId;
  refs: number;
}

export function blobBucket(db: Db): GridFSBucket {
  return new GridFSBucket(db, { bucketName: Collections.blobs, chunkSizeBytes: RECORD });
}

/** Streams an encrypted body into GridFS; call `end()` once, or `abort()` on failure. */
export class BlobWriter {
  private readonly encryptor: BodyEncryptor;
  private readonly upload;
  private failure: Error | null = null;

  private constructor(
    bucket: GridFSBucket,
    key: BodyKey,
    readonly blobId: ObjectId,
  ) {
    this.encryptor = new BodyEncryptor(key);
    const metadata: BlobFileMetadata = {
      format: 'pm-body-v1',
      baseNonce: new Binary(Buffer.from(key.baseNonce)),
    };
    this.upload = bucket.openUploadStreamWithId(blobId, blobId.toHexString(), {
      chunkSizeBytes: RECORD,
      metadata,
    });
    this.upload.on('error', (error: Error) => {
      this.failure = error;
    });
  }

  static open(db: Db, blobId: ObjectId, contentKey: Uint8Array): BlobWriter {
    const baseNonce = randomBytes(12);
    return new BlobWriter(blobBucket(db), { key: contentKey, baseNonce, blobId: blobId.id }, blobId);
  }

  async write(chunk: Uint8Array): Promise<void> {
    for (const record of this.encryptor.update(chunk)) await this.push(record);
  }

  async end(): Promise<void> {
    await this.push(this.encryptor.end());
    await new Promise<void>((resolve, reject) => {
      if (this.failure !== null) {
        reject(this.failure);
        return;
      }
      this.upload.once('error', reject);
      this.upload.end(() => resolve());
    });
  }

  /** Removes whatever was written (a failed or refused append). */
  async abort(db: Db): Promise<void> {
    this.upload.destroy();
    await deleteBlobFile(db, this.blobId);
  }

  private async push(record: Buffer): Promise<void> {
    if (this.failure !== null) throw this.failure;
    if (!this.upload.write(record)) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = (): void => {
          this.upload.off('error', onError);
          resolve();
        };
        const onError = (error: Error): void => {
          this.upload.off('drain', onDrain);
          reject(error);
        };
        this.upload.once('drain', onDrain);
        this.upload.once('error', onError);
      });
    }
  }
}

async function deleteBlobFile(db: Db, blobId: ObjectId): Promise<void> {
  // Delete chunks and the file document directly: GridFSBucket.delete throws when the file
  // document is missing, which is the case for an upload that never finished.
  await db.collection(`${Collections.blobs}.chunks`).deleteMany({ files_id: blobId });
  await db.collection(`${Collections.blobs}.files`).deleteOne({ _id: blobId });
}

interface BlobFileDoc {
  _id: ObjectId;
  length: number;
  metadata?: { format?: string; baseNonce?: Binary };
}

/** What a reader needs about a stored body besides its content key. */
export interface BlobInfo {
  readonly blobId: ObjectId;
  readonly storedLength: number;
  readonly baseNonce: Uint8Array;
}

export async function blobInfos(db: Db, blobIds: readonly ObjectId[]): Promise<Map<string, BlobInfo>> {
  const files = await db
    .collection<BlobFileDoc>(`${Collections.blobs}.files`)
    // Equality on `_id` for the common single blob: FerretDB answers it from its primary key but
    // scans the collection for `$in`.
    .find(blobIds.length === 1 ? { _id: blobIds[0] } : { _id: { $in: [...blobIds] } })
    .toArray();
  const out = new Map<string, BlobInfo>();
  for (const file of files) {
    const nonce = file.metadata?.baseNonce;
    if (file.metadata?.format !== 'pm-body-v1' || nonce === undefined) {
      throw new BlobIntegrityError(`blob ${file._id.toHexString()} has no cipher metadata`);
    }
    out.set(file._id.toHexString(), {
      blobId: file._id,
      storedLength: file.length,
      baseNonce: nonce.buffer,
    });
  }
  return out;
}

/**
 * Decrypts plaintext octets `[start, end)` of a stored body, reading only the records that
 * overlap the range. Every record read is authenticated before any of its bytes are yielded;
 * a missing or altered record throws BlobIntegrityError.
 */
export async function* readBlobRange(
  db: Db,
  info: BlobInfo,
  contentKey: Uint8Array,
  start: number,
  end: number,
): AsyncGenerator<Buffer> {
  const total = plainLength(info.storedLength);
  const from = Math.max(0, Math.min(start, total));
  const to = Math.max(from, Math.min(end, total));
  if (to <= from) return;
  const key: BodyKey = { key: contentKey, baseNonce: info.baseNonce, blobId: info.blobId.id };
  const records = recordCount(info.storedLength);
  const first = Math.floor(from / SEGMENT);
  const last = Math.floor((to - 1) / SEGMENT);
  const stream = blobBucket(db).openDownloadStream(info.blobId, {
    start: first * RECORD,
    end: Math.min((last + 1) * RECORD, info.storedLength),
  });
  let index = first;
  let buffered: Buffer[] = [];
  let bufferedBytes = 0;
  const emit = (record: Buffer): Buffer | null => {
    const plain = decryptSegment(key, index, index === records - 1, record);
    const base = index * SEGMENT;
    index++;
    const a = Math.max(from - base, 0);
    const b = Math.min(to - base, plain.length);
    return b > a ? plain.subarray(a, b) : null;
  };
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    buffered.push(chunk);
    bufferedBytes += chunk.length;
    while (bufferedBytes >= RECORD && index <= last) {
      const all = Buffer.concat(buffered);
      const out = emit(all.subarray(0, RECORD));
      const rest = all.subarray(RECORD);
      buffered = [rest];
      bufferedBytes = rest.length;
      if (out !== null) yield out;
    }
  }
  if (index === last && index === records - 1 && bufferedBytes > 0) {
    const out = emit(Buffer.concat(buffered));
    if (out !== null) yield out;
  } else if (index <= last) {
    throw new BlobIntegrityError(`blob ${info.blobId.toHexString()} is shorter than its records`);
  }
}

export async function readBlobBytes(
  db: Db,
  info: BlobInfo,
  contentKey: Uint8Array,
  start: number,
  end: number,
): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of readBlobRange(db, info, contentKey, start, end)) parts.push(part);
  return Buffer.concat(parts);
}

/** Sets the reference count of a new blob (one per mailbox copy about to be written). */
export async function createBlobRef(db: Db, blobId: ObjectId, refs: number): Promise<void> {
  await db.collection<BlobRefDoc>(Collections.blobRefs).insertOne({ _id: blobId, refs });
}

/**
 * Adds references before the copies that hold them are written: a crash in between leaks a blob
 * (found by a sweep) but never deletes one still in use.
 */
export async function addBlobRefs(db: Db, counts: ReadonlyMap<string, { id: ObjectId; n: number }>) {
  if (counts.size === 0) return;
  await db.collection<BlobRefDoc>(Collections.blobRefs).bulkWrite(
    [...counts.values()].map(({ id, n }) => ({
      updateOne: { filter: { _id: id }, update: { $inc: { refs: n } }, upsert: true },
    })),
    { ordered: false },
  );
}

/** Drops references; a blob whose last reference goes is deleted from GridFS. */
export async function releaseBlobRefs(db: Db, counts: ReadonlyMap<string, { id: ObjectId; n: number }>) {
  const refs = db.collection<BlobRefDoc>(Collections.blobRefs);
  for (const { id, n } of counts.values()) {
    const after = await refs.findOneAndUpdate(
      { _id: id },
      { $inc: { refs: -n } },
      { returnDocument: 'after' },
    );
    if (after === null || after.refs <= 0) {
      await deleteBlobFile(db, id);
      await refs.deleteOne({ _id: id, refs: { $lte: 0 } });
    }
  }
}

const SEAL_VERSION = 1;

/** AES-256-GCM with a random nonce: version ‖ nonce ‖ ciphertext ‖ tag, AAD label ‖ blob id. */
export function seal(key: Uint8Array, label: string, blobId: ObjectId, plain: Uint8Array): Binary {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.concat([Buffer.from(label, 'ascii'), blobId.id]));
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return new Binary(Buffer.concat([Buffer.of(SEAL_VERSION), nonce, body, cipher.getAuthTag()]));
}

export function unseal(key: Uint8Array, label: string, blobId: ObjectId, sealed: Binary): Buffer {
  const bytes = Buffer.from(sealed.buffer);
  if (bytes.length < 1 + 12 + 16 || bytes[0] !== SEAL_VERSION) {
    throw new BlobIntegrityError(`sealed ${label} of blob ${blobId.toHexString()} is malformed`);
  }
  const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(1, 13));
  decipher.setAAD(Buffer.concat([Buffer.from(label, 'ascii'), blobId.id]));
  decipher.setAuthTag(bytes.subarray(bytes.length - 16));
  const out = decipher.update(bytes.subarray(13, bytes.length - 16));
  try {
    return Buffer.concat([out, decipher.final()]);
  } catch (cause) {
    throw new BlobIntegrityError(`sealed ${label} of blob ${blobId.toHexString()} failed authentication`, {
      cause,
    });
  }
}

export function isDuplicateKey(error: unknown): boolean {
  return error instanceof MongoServerError && error.code === 11000;
}
