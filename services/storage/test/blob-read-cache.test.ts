/**
 * The blob read cache (src/blob/read-cache.ts) in front of the real filesystem store: a second
 * read of a body does not touch its file, a deleted blob is not answered from memory, the cache
 * stays within its bytes, and what it holds is ciphertext that is authenticated on every read.
 * The file is changed or removed behind the store's back to see which reads reach it.
 */
import { mkdtempSync, rmSync, unlinkSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Registry } from '@postmesh/telemetry';
import { ObjectId } from 'mongodb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  BlobNotFoundError,
  BlobReadCache,
  CachedBlobStore,
  FsBlobStore,
  type BlobStores,
} from '../src/blob/index.js';
import { readBlobBytes, storedBodyInfo, writeBody } from '../src/mailstore/blob-store.js';
import { BlobIntegrityError } from '../src/mailstore/errors.js';
import { blobIdAt, describeBlobStore } from './blob-contract.js';

// The cached store keeps the store's contract (read after delete, ranges cut at the end, …).
describeBlobStore('filesystem behind the read cache', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postmesh-blob-cache-'));
  const store = new CachedBlobStore(await FsBlobStore.open(join(dir, 'blobs')), new BlobReadCache(1 << 20));
  return {
    store,
    close: () => Promise.resolve(rmSync(dir, { recursive: true, force: true })),
  };
});

describe('blob read cache', () => {
  let dir: string;
  let fs: FsBlobStore;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'postmesh-blob-cache-'));
    fs = await FsBlobStore.open(join(dir, 'blobs'));
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers a second read of a blob, and any shorter read from the same start, without its file', async () => {
    const cache = new BlobReadCache(1 << 20);
    const registry = new Registry();
    cache.instrument(registry);
    const store = new CachedBlobStore(fs, cache);
    const id = blobIdAt(1_000);
    const bytes = randomBytes(10_000);
    await store.put(id, bytes);
    expect(await store.read(id, { start: 0, end: 10_000 })).toEqual(bytes);
    unlinkSync(fs.pathOf(id));
    expect(await store.read(id, { start: 0, end: 10_000 })).toEqual(bytes);
    expect(await store.read(id, { start: 0, end: 100 })).toEqual(bytes.subarray(0, 100));
    // Another start, or more than was read, is the store's again (and the file is gone).
    await expect(store.read(id, { start: 100, end: 200 })).rejects.toBeInstanceOf(BlobNotFoundError);
    await expect(store.read(id, { start: 0, end: 20_000 })).rejects.toBeInstanceOf(BlobNotFoundError);
    expect({ hits: cache.hits, misses: cache.misses, bytes: cache.bytes }).toEqual({
      hits: 2,
      misses: 3,
      bytes: 10_000,
    });
    const text = await registry.metrics();
    expect(text).toContain('postmesh_storage_body_cache_reads_total{result="hit"} 2');
    expect(text).toContain('postmesh_storage_body_cache_reads_total{result="miss"} 3');
    expect(text).toContain('postmesh_storage_body_cache_bytes 10000');
  });

  it('forgets a deleted blob', async () => {
    const cache = new BlobReadCache(1 << 20);
    const store = new CachedBlobStore(fs, cache);
    const id = blobIdAt(2_000);
    await store.put(id, Buffer.from('sealed body'));
    await store.read(id, { start: 0, end: 11 });
    expect(cache.size).toBe(1);
    await store.delete(id);
    expect(cache.size).toBe(0);
    await expect(store.read(id, { start: 0, end: 11 })).rejects.toBeInstanceOf(BlobNotFoundError);
  });

  it('holds at most its bytes, dropping the least recently read first, and never one large read', async () => {
    const cache = new BlobReadCache(40_000, 8_000);
    const store = new CachedBlobStore(fs, cache);
    const ids = Array.from({ length: 8 }, (_, i) => blobIdAt(3_000 + i));
    for (const id of ids) await store.put(id, randomBytes(7_000));
    for (const id of ids.slice(0, 5)) await store.read(id, { start: 0, end: 7_000 });
    expect(cache.bytes).toBe(35_000);
    // Reading the first again makes the second the least recently used.
    await store.read(ids[0] as string, { start: 0, end: 7_000 });
    await store.read(ids[5] as string, { start: 0, end: 7_000 });
    expect(cache.bytes).toBe(35_000);
    expect(cache.size).toBe(5);
    for (const id of ids) unlinkSync(fs.pathOf(id));
    await expect(store.read(ids[1] as string, { start: 0, end: 7_000 })).rejects.toBeInstanceOf(
      BlobNotFoundError,
    );
    expect((await store.read(ids[0] as string, { start: 0, end: 7_000 })).length).toBe(7_000);
    // Over the per-read limit: read from the store, not kept.
    const large = blobIdAt(4_000);
    await store.put(large, randomBytes(9_000));
    await store.read(large, { start: 0, end: 9_000 });
    expect(cache.bytes).toBe(35_000);
    unlinkSync(fs.pathOf(large));
    await expect(store.read(large, { start: 0, end: 9_000 })).rejects.toBeInstanceOf(BlobNotFoundError);
  });

  it('keeps nothing when its size is 0', async () => {
    const cache = new BlobReadCache(0);
    const store = new CachedBlobStore(fs, cache);
    const id = blobIdAt(5_000);
    await store.put(id, Buffer.from('sealed'));
    await store.read(id, { start: 0, end: 6 });
    unlinkSync(fs.pathOf(id));
    await expect(store.read(id, { start: 0, end: 6 })).rejects.toBeInstanceOf(BlobNotFoundError);
    expect(cache.bytes).toBe(0);
  });

  it('keeps a body once written, holds ciphertext only, and authenticates it on every read', async () => {
    const cache = new BlobReadCache(1 << 20);
    const store = new CachedBlobStore(fs, cache);
    const stores = { primary: store, get: () => store, readCache: cache } as unknown as BlobStores;
    const key = randomBytes(32);
    const secret = `plaintext-${randomBytes(8).toString('hex')}`;
    const plain = Buffer.from(`Subject: cached\r\n\r\n${secret}\r\n`);
    const blobId = new ObjectId();
    const body = await writeBody(stores, blobId, key, [plain]);
    const info = storedBodyInfo(blobId, body);
    const path = fs.pathOf(blobId.toHexString());
    const stored = readFileSync(path);
    // Written, then kept: the first read does not reach the file.
    expect(cache.bytes).toBe(body.length);
    unlinkSync(path);
    expect(await readBlobBytes(stores, info, key, 0, plain.length)).toEqual(plain);
    expect(cache.hits).toBe(1);
    // What is held is what the store holds: no plaintext in it.
    const held = await store.read(blobId.toHexString(), { start: 0, end: body.length });
    expect(held.equals(stored)).toBe(true);
    expect(held.includes(Buffer.from(secret))).toBe(false);

    // Damaged at rest and no longer cached (evicted, or after a restart): the read that brings it
    // back fails, and so does every read of it from the cache.
    const damaged = Buffer.from(stored);
    damaged[10] = (damaged[10] ?? 0) ^ 0x40;
    writeFileSync(path, damaged);
    cache.clear();
    await expect(readBlobBytes(stores, info, key, 0, plain.length)).rejects.toBeInstanceOf(
      BlobIntegrityError,
    );
    expect(cache.size).toBe(1);
    await expect(readBlobBytes(stores, info, key, 0, plain.length)).rejects.toBeInstanceOf(
      BlobIntegrityError,
    );
    expect(cache.hits).toBe(3);
    // Repaired (restored from a backup) and the damaged copy dropped: read and decrypted again.
    writeFileSync(path, stored);
    cache.clear();
    expect(await readBlobBytes(stores, info, key, 0, plain.length)).toEqual(plain);
  });

  it('keeps no body written while it is off, nor one larger than its longest read', async () => {
    for (const cache of [new BlobReadCache(0), new BlobReadCache(1 << 20, 100)]) {
      const store = new CachedBlobStore(fs, cache);
      const stores = { primary: store, get: () => store, readCache: cache } as unknown as BlobStores;
      await writeBody(stores, new ObjectId(), randomBytes(32), [randomBytes(500)]);
      expect(cache.bytes).toBe(0);
    }
  });
});
