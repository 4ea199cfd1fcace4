/**
 * Encrypted bodies in the bucket `blobs` (DESIGN §4), shared by every mailbox copy of one
 * delivery and reference-counted in `blob_refs`; plus the small sealed values (metadata, search
 * text) kept in message documents under the same content key.
 *
 * Layout (GridFS-compatible, so GridFS tools can still read it): `blobs.files` holds one document
 * per body (`length`, `chunkSize`, `metadata.format`, `metadata.baseNonce`), `blobs.chunks` one
 * document per cipher record (body-cipher.ts) with `files_id`, `n` and `data`. Unlike the
 * driver's GridFSBucket, the chunks get deterministic ids `<blobId hex>:<n, 8 digits>` and the
 * mailstore reads and deletes them by `_id`: FerretDB 1.24 on SQLite answers any other filter by
 * decoding every chunk of every body in the database (a 10 KB body took 2.8–3.3 s to find among
 * 10,000 by `files_id`, and 57–79 ms by `_id`, measured), and on MongoDB `_id` is the primary
 * index. Such bodies carry `metadata.keyedChunks: true`; bodies written before (chunk ids were
 * ObjectIds) are still read and deleted by `files_id`.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { Binary, MongoServerError, type Db, type ObjectId } from 'mongodb';
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
  /** Chunk `_id`s are `chunkId(blobId, n)`. */
  readonly keyedChunks?: boolean;
}

export interface BlobRefDoc {
  _id: ObjectId;
  refs: number;
}

interface ChunkDoc {
  _id: string | ObjectId;
  files_id: ObjectId;
  n: number;
  data: Binary;
}

interface BlobFileDoc {
  _id: ObjectId;
  length: number;
  chunkSize: number;
  uploadDate: Date;
  filename: string;
  metadata?: { format?: string; baseNonce?: Binary; keyedChunks?: boolean };
}

/** The `_id` of record `n` of a body: zero-padded, so ids sort in record order. */
export function chunkId(blobId: ObjectId, n: number): string {
  return `${blobId.toHexString()}:${String(n).padStart(8, '0')}`;
}

function chunks(db: Db) {
  return db.collection<ChunkDoc>(`${Collections.blobs}.chunks`);
}

function files(db: Db) {
  return db.collection<BlobFileDoc>(`${Collections.blobs}.files`);
}

/** Records are written in groups of this many (one insert each), bounding what is held. */
const WRITE_GROUP = 16;

/** Streams an encrypted body into the bucket; call `end()` once, or `abort()` on failure. */
export class BlobWriter {
  private readonly encryptor: BodyEncryptor;
  private pending: ChunkDoc[] = [];
  private records = 0;
  private storedLength = 0;

  private constructor(
    private readonly db: Db,
    private readonly baseNonce: Buffer,
    key: BodyKey,
    readonly blobId: ObjectId,
  ) {
    this.encryptor = new BodyEncryptor(key);
  }

  static open(db: Db, blobId: ObjectId, contentKey: Uint8Array): BlobWriter {
    const baseNonce = randomBytes(12);
    return new BlobWriter(db, baseNonce, { key: contentKey, baseNonce, blobId: blobId.id }, blobId);
  }

  async write(chunk: Uint8Array): Promise<void> {
    for (const record of this.encryptor.update(chunk)) await this.push(record);
  }

  /**
   * Writes the last records and the file document, side by side: no message refers to the body
   * before `end()` returns, so their order does not matter (a crash in between leaks a body, as
   * any crash before the message is written does).
   */
  async end(): Promise<void> {
    await this.push(this.encryptor.end());
    const metadata: BlobFileMetadata = {
      format: 'pm-body-v1',
      baseNonce: new Binary(this.baseNonce),
      keyedChunks: true,
    };
    const last = this.flush();
    const file = files(this.db).insertOne({
      _id: this.blobId,
      length: this.storedLength,
      chunkSize: RECORD,
      uploadDate: new Date(),
      filename: this.blobId.toHexString(),
      metadata,
    });
    await Promise.all([last, file]);
  }

  /** Removes whatever was written (a failed or refused append). */
  async abort(db: Db): Promise<void> {
    this.pending = [];
    await deleteChunksById(db, this.blobId, this.records);
    await files(db).deleteOne({ _id: this.blobId });
  }

  private async push(record: Buffer): Promise<void> {
    this.pending.push({
      _id: chunkId(this.blobId, this.records),
      files_id: this.blobId,
      n: this.records,
      data: new Binary(record),
    });
    this.records++;
    this.storedLength += record.length;
    if (this.pending.length >= WRITE_GROUP) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const group = this.pending;
    this.pending = [];
    await chunks(this.db).insertMany(group, { ordered: true });
  }
}

async function deleteChunksById(db: Db, blobId: ObjectId, records: number): Promise<void> {
  if (records <= 0) return;
  // One equality filter per record: FerretDB answers `_id` equality in SQLite, `$in` by decoding
  // every chunk (see the header comment).
  await chunks(db).bulkWrite(
    Array.from({ length: records }, (_, n) => ({ deleteOne: { filter: { _id: chunkId(blobId, n) } } })),
    { ordered: false },
  );
}

async function deleteBlobFile(db: Db, blobId: ObjectId): Promise<void> {
  const file = await files(db).findOne({ _id: blobId }, { projection: { length: 1, metadata: 1 } });
  if (file?.metadata?.keyedChunks === true) {
    await deleteChunksById(db, blobId, recordCount(file.length));
  } else {
    // Bodies written by GridFSBucket (ObjectId chunk ids), or whose file document is missing.
    await chunks(db).deleteMany({ files_id: blobId });
  }
  await files(db).deleteOne({ _id: blobId });
}

/** What a reader needs about a stored body besides its content key. */
export interface BlobInfo {
  readonly blobId: ObjectId;
  readonly storedLength: number;
  readonly baseNonce: Uint8Array;
  readonly keyedChunks: boolean;
}

export async function blobInfos(db: Db, blobIds: readonly ObjectId[]): Promise<Map<string, BlobInfo>> {
  const found = await files(db)
    // Equality on `_id` for the common single blob: FerretDB answers it in SQLite but decodes
    // the collection for `$in`.
    .find(blobIds.length === 1 ? { _id: blobIds[0] } : { _id: { $in: [...blobIds] } })
    .toArray();
  const out = new Map<string, BlobInfo>();
  for (const file of found) {
    const nonce = file.metadata?.baseNonce;
    if (file.metadata?.format !== 'pm-body-v1' || nonce === undefined) {
      throw new BlobIntegrityError(`blob ${file._id.toHexString()} has no cipher metadata`);
    }
    out.set(file._id.toHexString(), {
      blobId: file._id,
      storedLength: file.length,
      baseNonce: nonce.buffer,
      keyedChunks: file.metadata.keyedChunks === true,
    });
  }
  return out;
}

/** The stored bytes of record `n`, or null when it is missing. */
function readRecord(db: Db, info: BlobInfo, n: number): Promise<Buffer | null> {
  const read = chunks(db)
    .findOne(info.keyedChunks ? { _id: chunkId(info.blobId, n) } : { files_id: info.blobId, n }, {
      projection: { data: 1 },
    })
    .then((doc) => (doc === null ? null : Buffer.from(doc.data.buffer)));
  // A read-ahead whose reader stopped early must not become an unhandled rejection; the reader
  // that awaits it still sees the failure.
  read.catch(() => undefined);
  return read;
}

/**
 * Decrypts plaintext octets `[start, end)` of a stored body, reading only the records that
 * overlap the range (the next one is requested while the current one is decrypted). Every
 * record read is authenticated before any of its bytes are yielded; a missing or altered record
 * throws BlobIntegrityError.
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
  let next: Promise<Buffer | null> = readRecord(db, info, first);
  for (let index = first; index <= last; index++) {
    const record = await next;
    if (index < last) next = readRecord(db, info, index + 1);
    if (record === null) {
      throw new BlobIntegrityError(`record ${index} of blob ${info.blobId.toHexString()} is missing`);
    }
    const plain = decryptSegment(key, index, index === records - 1, record);
    const base = index * SEGMENT;
    const a = Math.max(from - base, 0);
    const b = Math.min(to - base, plain.length);
    if (b > a) yield plain.subarray(a, b);
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
