/**
 * The at-rest body format (DESIGN §5, src/mailstore/body-cipher.ts): chunked AES-256-GCM whose
 * records authenticate their index, their finality and the blob id, so any change, cut or
 * reordering is an error rather than different bytes.
 */
import { randomBytes } from 'node:crypto';
import { ObjectId } from 'mongodb';
import { describe, expect, it } from 'vitest';
import {
  BodyEncryptor,
  RECORD,
  SEGMENT,
  TAG_BYTES,
  decryptSegment,
  plainLength,
  recordCount,
  type BodyKey,
} from '../src/mailstore/body-cipher.js';
import { BlobIntegrityError } from '../src/mailstore/errors.js';

function keyFor(): BodyKey {
  return { key: randomBytes(32), baseNonce: randomBytes(12), blobId: new ObjectId().id };
}

function encrypt(k: BodyKey, plain: Buffer, pieces = 7): Buffer {
  const enc = new BodyEncryptor(k);
  const out: Buffer[] = [];
  const step = Math.max(1, Math.ceil(plain.length / pieces));
  for (let i = 0; i < plain.length; i += step) out.push(...enc.update(plain.subarray(i, i + step)));
  out.push(enc.end());
  return Buffer.concat(out);
}

function decryptAll(k: BodyKey, stored: Buffer): Buffer {
  const n = recordCount(stored.length);
  const parts: Buffer[] = [];
  for (let i = 0; i < n; i++)
    parts.push(decryptSegment(k, i, i === n - 1, stored.subarray(i * RECORD, (i + 1) * RECORD)));
  return Buffer.concat(parts);
}

describe('chunked body cipher', () => {
  it.each([0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 3 * SEGMENT + 17])('round-trips %i octets', (size) => {
    const k = keyFor();
    const plain = randomBytes(size);
    const stored = encrypt(k, plain);
    expect(stored.length).toBe(size + recordCount(stored.length) * TAG_BYTES);
    expect(plainLength(stored.length)).toBe(size);
    expect(decryptAll(k, stored).equals(plain)).toBe(true);
  });

  it('does not depend on how the plaintext was split', () => {
    const k = keyFor();
    const plain = randomBytes(2 * SEGMENT + 5);
    expect(encrypt(k, plain, 1).equals(encrypt(k, plain, 1000))).toBe(true);
  });

  it('detects a flipped ciphertext byte', () => {
    const k = keyFor();
    const stored = encrypt(k, randomBytes(SEGMENT + 100));
    stored[10] = (stored[10] ?? 0) ^ 0x01;
    expect(() => decryptAll(k, stored)).toThrow(BlobIntegrityError);
  });

  it('detects truncation at a record boundary (the new last record was not final)', () => {
    const k = keyFor();
    const stored = encrypt(k, randomBytes(2 * SEGMENT + 100));
    expect(() => decryptAll(k, stored.subarray(0, 2 * RECORD))).toThrow(BlobIntegrityError);
  });

  it('detects swapped records and records from another blob', () => {
    const k = keyFor();
    const stored = encrypt(k, randomBytes(3 * SEGMENT));
    const swapped = Buffer.concat([
      stored.subarray(RECORD, 2 * RECORD),
      stored.subarray(0, RECORD),
      stored.subarray(2 * RECORD),
    ]);
    expect(() => decryptAll(k, swapped)).toThrow(BlobIntegrityError);
    const other: BodyKey = { ...k, blobId: new ObjectId().id };
    expect(() => decryptAll(other, stored)).toThrow(BlobIntegrityError);
  });

  it('hides the plaintext', () => {
    const k = keyFor();
    const plain = Buffer.from('Subject: quarterly numbers are secret\r\n\r\n'.repeat(100));
    const stored = encrypt(k, plain);
    expect(stored.includes(Buffer.from('quarterly'))).toBe(false);
  });
});
