/**
 * The at-rest format of a message body (DESIGN §5): AES-256-GCM over fixed-size plaintext
 * segments, so a byte range or one MIME section decrypts only the segments it overlaps.
 *
 * Stored file = record 0 ‖ record 1 ‖ … ‖ record n-1, record i = ciphertext_i ‖ tag_i (16 octets),
 * each ciphertext_i as long as its plaintext segment (SEGMENT octets except the last, which may
 * be shorter or empty: an empty body is one record holding only a tag).
 *
 * Nonce_i = baseNonce XOR (i as a 96-bit big-endian integer); baseNonce is random per body, and
 * every content key encrypts exactly one body, so nonces never repeat under a key.
 * AAD_i = "pm-body-v1" ‖ blobId (12 octets) ‖ i (uint32 BE) ‖ final flag (1 octet). Binding the
 * index and the final flag makes a reordered, duplicated or truncated record fail authentication
 * (the STREAM construction of Hoang, Reyhanitabar, Rogaway and Vizár, 2015); binding the blob id
 * stops a record being spliced in from another body.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { BlobIntegrityError } from './errors.js';

/** Plaintext octets per record. */
export const SEGMENT = 64 * 1024;
export const TAG_BYTES = 16;
export const RECORD = SEGMENT + TAG_BYTES;
export const NONCE_BYTES = 12;
const AAD_LABEL = Buffer.from('pm-body-v1', 'ascii');

function nonceFor(baseNonce: Uint8Array, index: number): Buffer {
  const nonce = Buffer.from(baseNonce);
  // XOR the index into the last four octets (the index never exceeds 2^32 - 1: bodies are far
  // smaller than 2^32 segments of 64 KiB).
  const last = nonce.readUInt32BE(NONCE_BYTES - 4);
  nonce.writeUInt32BE((last ^ index) >>> 0, NONCE_BYTES - 4);
  return nonce;
}

function aadFor(blobId: Uint8Array, index: number, final: boolean): Buffer {
  const tail = Buffer.alloc(5);
  tail.writeUInt32BE(index, 0);
  tail[4] = final ? 1 : 0;
  return Buffer.concat([AAD_LABEL, blobId, tail]);
}

export interface BodyKey {
  readonly key: Uint8Array;
  readonly baseNonce: Uint8Array;
  /** The 12-octet blob id (ObjectId bytes). */
  readonly blobId: Uint8Array;
}

export function encryptSegment(k: BodyKey, index: number, final: boolean, plain: Uint8Array): Buffer {
  const cipher = createCipheriv('aes-256-gcm', k.key, nonceFor(k.baseNonce, index));
  cipher.setAAD(aadFor(k.blobId, index, final));
  const body = cipher.update(plain);
  cipher.final();
  return Buffer.concat([body, cipher.getAuthTag()]);
}

/** Throws BlobIntegrityError when the record was altered, moved or cut. */
export function decryptSegment(k: BodyKey, index: number, final: boolean, record: Uint8Array): Buffer {
  if (record.length < TAG_BYTES) throw new BlobIntegrityError(`body record ${index} is truncated`);
  const decipher = createDecipheriv('aes-256-gcm', k.key, nonceFor(k.baseNonce, index));
  decipher.setAAD(aadFor(k.blobId, index, final));
  decipher.setAuthTag(record.subarray(record.length - TAG_BYTES));
  const out = decipher.update(record.subarray(0, record.length - TAG_BYTES));
  try {
    decipher.final();
  } catch (cause) {
    throw new BlobIntegrityError(`body record ${index} failed authentication`, { cause });
  }
  return out;
}

/** Records in a stored file of `storedLength` octets. */
export function recordCount(storedLength: number): number {
  return Math.max(1, Math.ceil(storedLength / RECORD));
}

/** Plaintext length of a stored file, or an integrity error when the length is impossible. */
export function plainLength(storedLength: number): number {
  const n = recordCount(storedLength);
  const lastRecord = storedLength - (n - 1) * RECORD;
  if (lastRecord < TAG_BYTES) throw new BlobIntegrityError('stored body has an impossible length');
  return storedLength - n * TAG_BYTES;
}

/**
 * Incremental encryption: feed plaintext, get whole records out. The last segment is held back
 * until `end()`, because only then is it known to be final.
 */
export class BodyEncryptor {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private index = 0;
  private ended = false;

  constructor(private readonly k: BodyKey) {}

  update(chunk: Uint8Array): Buffer[] {
    if (this.ended) throw new Error('BodyEncryptor.update after end');
    this.pending.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.pendingBytes += chunk.byteLength;
    const out: Buffer[] = [];
    // Strictly more than one segment buffered: the first one is certainly not the last.
    while (this.pendingBytes > SEGMENT) {
      const all = Buffer.concat(this.pending);
      out.push(encryptSegment(this.k, this.index++, false, all.subarray(0, SEGMENT)));
      const rest = Buffer.from(all.subarray(SEGMENT));
      this.pending = [rest];
      this.pendingBytes = rest.length;
    }
    return out;
  }

  end(): Buffer {
    if (this.ended) throw new Error('BodyEncryptor.end twice');
    this.ended = true;
    return encryptSegment(this.k, this.index++, true, Buffer.concat(this.pending));
  }
}
