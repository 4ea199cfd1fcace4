/**
 * Encrypted message bodies (DESIGN §4, §5) over the blob store (../blob): a body is sealed as it
 * streams in (body-cipher.ts records, under a content key of its own that is wrapped for each
 * recipient) and put once, shared by every mailbox copy of one delivery; a reader decrypts only
 * the records a byte range overlaps. The store sees ciphertext only. Plus the small sealed values
 * (metadata, search text) kept in message documents under the same content key.
 *
 * What a reader needs besides the content key (the store, the base nonce, the stored length) is
 * recorded in the message document (`StoredBody`), so opening a body costs no database read.
 * Messages stored before that have no such record: their bodies are in GridFS, with the cipher
 * parameters in the file document (`metadata.format`, `metadata.baseNonce`).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { Binary, MongoServerError, ObjectId } from 'mongodb';
import { BlobNotFoundError, type BlobStoreKind, type BlobStores } from '../blob/index.js';
import { BodyEncryptor, RECORD, SEGMENT, decryptSegment, plainLength, recordCount } from './body-cipher.js';
import { BlobIntegrityError } from './errors.js';

/** Where and how a body is stored: the `blob` field of a message document. */
export interface StoredBody {
  readonly store: BlobStoreKind;
  readonly baseNonce: Binary;
  /** Stored (ciphertext) octets. */
  readonly length: number;
  /**
   * The pack the body is in, when it shares one blob with the other bodies of its delivery
   * batch (`writePack`): its octets are `[offset, offset + length)` of blob `pack`, and the
   * reference count (`blob_refs`) is the pack's. Absent: the body is blob `blobId` on its own.
   */
  readonly pack?: ObjectId;
  readonly offset?: number;
}

/** What a reader needs about a stored body besides its content key. */
export interface BlobInfo {
  readonly blobId: ObjectId;
  readonly store: BlobStoreKind;
  readonly storedLength: number;
  readonly baseNonce: Uint8Array;
  /** The blob that holds the body, and where in it the body starts (a pack), if not `blobId` at 0. */
  readonly pack?: { readonly id: string; readonly offset: number };
}

/**
 * The id of the blob whose reference count a message holds: its delivery batch's pack, or its
 * own body.
 */
export function bodyRefId(blobId: ObjectId, body: StoredBody | undefined): ObjectId {
  return body?.pack ?? blobId;
}

/** A body sealed in memory, waiting to be written into its batch's pack (`writePack`). */
export interface SealedBody {
  readonly baseNonce: Buffer;
  readonly records: readonly Buffer[];
  /** Stored (ciphertext) octets. */
  readonly length: number;
}

/**
 * Seals `plaintext` under `contentKey` in memory (the same records `writeBody` stores), for a
 * body small enough to wait for its batch's pack.
 */
export async function sealBody(
  blobId: ObjectId,
  contentKey: Uint8Array,
  plaintext: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): Promise<SealedBody> {
  const baseNonce = randomBytes(12);
  const encryptor = new BodyEncryptor({ key: contentKey, baseNonce, blobId: blobId.id });
  const records: Buffer[] = [];
  for await (const chunk of plaintext) records.push(...encryptor.update(chunk));
  records.push(encryptor.end());
  let length = 0;
  for (const record of records) length += record.length;
  return { baseNonce, records, length };
}

/**
 * Puts the sealed bodies of one delivery batch as one blob (a pack) under a new id and resolves,
 * once it is durable, with where each body is. One blob per batch instead of one per body: on
 * the filesystem store a new file costs far more CPU than its octets (create, fsync of the file
 * and of its directory; docs/benchmarks.md), and the durability before the ack is the same, one
 * fsync covering the whole batch. A pack is deleted when the last message of any of its bodies
 * goes (its reference count is the sum of theirs).
 */
export async function writePack(
  stores: BlobStores,
  bodies: readonly SealedBody[],
): Promise<{ readonly packId: ObjectId; readonly stored: StoredBody[] }> {
  const packId = new ObjectId();
  const store = stores.primary;
  const stored: StoredBody[] = [];
  const parts: Buffer[] = [];
  let offset = 0;
  for (const body of bodies) {
    stored.push({
      store: store.kind,
      baseNonce: new Binary(body.baseNonce),
      length: body.length,
      pack: packId,
      offset,
    });
    parts.push(...body.records);
    offset += body.length;
  }
  // One buffer, one write: the store's put writes each chunk it is given with a call of its own.
  const { size } = await store.put(packId.toHexString(), Buffer.concat(parts, offset));
  if (size !== offset) throw new Error(`pack ${packId.toHexString()} stored ${size} of ${offset} octets`);
  // New mail is what IMAP clients fetch next: each body's stored octets, now durable, are kept
  // where its first read looks (the blob read cache; ciphertext, authenticated on every read).
  bodies.forEach((body, i) => {
    const at = stored[i]?.offset ?? 0;
    if (body.length <= stores.readCache.maxEntryBytes) {
      stores.readCache.put(store.kind, packId.toHexString(), at, Buffer.concat(body.records, body.length));
    }
  });
  return { packId, stored };
}

/**
 * Seals `plaintext` under `contentKey` and puts it under `blobId`; resolves once it is durable.
 * An error thrown by `plaintext` (a size limit, a client gone) is rethrown after the store has
 * removed what it had written.
 */
export async function writeBody(
  stores: BlobStores,
  blobId: ObjectId,
  contentKey: Uint8Array,
  plaintext: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): Promise<StoredBody> {
  const baseNonce = randomBytes(12);
  const encryptor = new BodyEncryptor({ key: contentKey, baseNonce, blobId: blobId.id });
  // A small body's records are kept for the read cache as they stream to the store (see writePack).
  const cache = stores.readCache;
  let kept: Buffer[] | undefined = cache.enabled ? [] : undefined;
  let keptBytes = 0;
  const keep = (record: Buffer): Buffer => {
    if (kept === undefined) return record;
    keptBytes += record.length;
    if (keptBytes > cache.maxEntryBytes) kept = undefined;
    else kept.push(record);
    return record;
  };
  async function* records(): AsyncGenerator<Uint8Array> {
    for await (const chunk of plaintext) for (const record of encryptor.update(chunk)) yield keep(record);
    yield keep(encryptor.end());
  }
  const store = stores.primary;
  const { size } = await store.put(blobId.toHexString(), records());
  if (kept !== undefined && keptBytes === size) {
    cache.put(store.kind, blobId.toHexString(), 0, Buffer.concat(kept, size));
  }
  return { store: store.kind, baseNonce: new Binary(baseNonce), length: size };
}

export function storedBodyInfo(blobId: ObjectId, body: StoredBody): BlobInfo {
  return {
    blobId,
    store: body.store,
    storedLength: body.length,
    baseNonce: body.baseNonce.buffer,
    ...(body.pack === undefined ? {} : { pack: { id: body.pack.toHexString(), offset: body.offset ?? 0 } }),
  };
}

/** A body stored before messages recorded where: in GridFS, cipher parameters in its file. */
export async function legacyBodyInfo(stores: BlobStores, blobId: ObjectId): Promise<BlobInfo | undefined> {
  const file = await stores.gridfs.file(blobId.toHexString());
  if (file === null) return undefined;
  const nonce = file.metadata?.baseNonce;
  if (file.metadata?.format !== 'pm-body-v1' || nonce === undefined) {
    throw new BlobIntegrityError(`blob ${blobId.toHexString()} has no cipher metadata`);
  }
  return { blobId, store: 'gridfs', storedLength: file.length, baseNonce: nonce.buffer };
}

/** Records read from the store in one request (1 MiB of plaintext). */
const READ_RECORDS = 16;

/** Records `[first, last]` as stored, or fewer when the body is cut short. */
function readRecords(stores: BlobStores, info: BlobInfo, first: number, last: number): Promise<Buffer[]> {
  const read = Promise.resolve()
    .then(() =>
      stores.get(info.store).read(info.pack?.id ?? info.blobId.toHexString(), {
        start: (info.pack?.offset ?? 0) + first * RECORD,
        end: (info.pack?.offset ?? 0) + Math.min((last + 1) * RECORD, info.storedLength),
      }),
    )
    .catch((error: unknown) => {
      if (!(error instanceof BlobNotFoundError)) throw error;
      throw new BlobIntegrityError(`blob ${info.blobId.toHexString()} is missing`, { cause: error });
    })
    .then((bytes) => {
      const records: Buffer[] = [];
      for (let at = 0; at < bytes.length; at += RECORD) records.push(bytes.subarray(at, at + RECORD));
      return records;
    });
  // A read-ahead whose reader stopped early must not become an unhandled rejection; the reader
  // that awaits it still sees the failure.
  read.catch(() => undefined);
  return read;
}

/**
 * Decrypts plaintext octets `[start, end)` of a stored body, reading only the records that
 * overlap the range (the next group is requested while the current one is decrypted). Every
 * record read is authenticated before any of its bytes are yielded; a missing or altered record
 * throws BlobIntegrityError.
 */
export async function* readBlobRange(
  stores: BlobStores,
  info: BlobInfo,
  contentKey: Uint8Array,
  start: number,
  end: number,
): AsyncGenerator<Buffer> {
  const total = plainLength(info.storedLength);
  const from = Math.max(0, Math.min(start, total));
  const to = Math.max(from, Math.min(end, total));
  if (to <= from) return;
  const key = { key: contentKey, baseNonce: info.baseNonce, blobId: info.blobId.id };
  const records = recordCount(info.storedLength);
  const first = Math.floor(from / SEGMENT);
  const last = Math.floor((to - 1) / SEGMENT);
  const group = (at: number) => readRecords(stores, info, at, Math.min(last, at + READ_RECORDS - 1));
  let next = group(first);
  for (let at = first; at <= last; at += READ_RECORDS) {
    const stored = await next;
    if (at + READ_RECORDS <= last) next = group(at + READ_RECORDS);
    for (let index = at; index <= Math.min(last, at + READ_RECORDS - 1); index++) {
      const record = stored[index - at];
      if (record === undefined) {
        throw new BlobIntegrityError(`record ${index} of blob ${info.blobId.toHexString()} is missing`);
      }
      const plain = decryptSegment(key, index, index === records - 1, record);
      const base = index * SEGMENT;
      const a = Math.max(from - base, 0);
      const b = Math.min(to - base, plain.length);
      if (b > a) yield plain.subarray(a, b);
    }
  }
}

export async function readBlobBytes(
  stores: BlobStores,
  info: BlobInfo,
  contentKey: Uint8Array,
  start: number,
  end: number,
): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of readBlobRange(stores, info, contentKey, start, end)) parts.push(part);
  return Buffer.concat(parts);
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
