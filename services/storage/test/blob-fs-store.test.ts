/**
 * The filesystem blob store (src/blob/fs-store.ts) on a real directory: the common contract,
 * its layout by id time, and what a crash mid-put leaves (a temporary file, never a partial body
 * under the final name), which `removeAbandonedWrites` clears.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FsBlobStore } from '../src/blob/index.js';
import { THREAD_PUT_LIMIT } from '../src/blob/fs-store.js';
import { blobIdAt, describeBlobStore } from './blob-contract.js';

describeBlobStore('filesystem', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postmesh-blob-fs-'));
  const store = await FsBlobStore.open(join(dir, 'blobs'));
  return {
    store,
    close: () => Promise.resolve(rmSync(dir, { recursive: true, force: true })),
  };
});

describeBlobStore('filesystem, bodies written by the writer thread', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postmesh-blob-fs-'));
  const store = await FsBlobStore.open(join(dir, 'blobs'), { writerThread: true });
  return {
    store,
    close: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('filesystem blob store, writer thread (fs-writer.ts)', () => {
  it('writes small bodies on the thread, streams large ones from the loop, and survives a removed directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'postmesh-blob-fs-'));
    const root = join(dir, 'blobs');
    const store = await FsBlobStore.open(root, { writerThread: true });
    try {
      // Several puts of one loop turn travel together, into new and shared directories.
      const ids = [blobIdAt(90_000), blobIdAt(3_600), blobIdAt(3_601), blobIdAt(10)];
      const stats = await Promise.all(ids.map((id, i) => store.put(id, Buffer.alloc(1000 + i, i + 1))));
      expect(stats.map((s) => s.size)).toEqual([1000, 1001, 1002, 1003]);
      for (const [i, id] of ids.entries()) {
        expect(await store.read(id, { start: 0, end: 5000 })).toEqual(Buffer.alloc(1000 + i, i + 1));
        // Only the body under its name: no temporary file left beside it.
        expect(readdirSync(store.directoryOf(id)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
      }
      // Chunks of an async source are gathered into one write.
      const chunked = blobIdAt(5);
      async function* pieces(): AsyncGenerator<Uint8Array> {
        for (let i = 0; i < 5; i++) yield await Promise.resolve(Buffer.from(`piece-${i};`));
      }
      expect((await store.put(chunked, pieces())).size).toBe(40);
      expect((await store.read(chunked, { start: 0, end: 100 })).toString()).toBe(
        'piece-0;piece-1;piece-2;piece-3;piece-4;',
      );
      // Over the limit: the loop streams what was gathered and the rest.
      const large = blobIdAt(4);
      const chunk = Buffer.alloc(256 * 1024, 7);
      async function* big(): AsyncGenerator<Uint8Array> {
        for (let i = 0; i < 6; i++) yield await Promise.resolve(chunk);
      }
      expect((await store.put(large, big())).size).toBe(6 * chunk.length);
      expect(6 * chunk.length).toBeGreaterThan(THREAD_PUT_LIMIT);
      const read = await store.read(large, { start: 0, end: 6 * chunk.length });
      expect(read.equals(Buffer.concat(Array.from({ length: 6 }, () => chunk)))).toBe(true);
      // A source that fails leaves nothing under the id.
      const failed = blobIdAt(3);
      async function* broken(): AsyncGenerator<Uint8Array> {
        yield await Promise.resolve(Buffer.from('half'));
        throw new Error('the source broke');
      }
      await expect(store.put(failed, broken())).rejects.toThrow('the source broke');
      expect(await store.stat(failed)).toBeNull();
      // A directory the thread has seen, removed (the sweeper empties old ones): made again.
      const again = blobIdAt(10);
      rmSync(store.directoryOf(again), { recursive: true, force: true });
      expect((await store.put(again, Buffer.from('again'))).size).toBe(5);
      expect((await store.read(again, { start: 0, end: 10 })).toString()).toBe('again');
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('answers puts after close with an error, and the store keeps reading', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'postmesh-blob-fs-'));
    const store = await FsBlobStore.open(join(dir, 'blobs'), { writerThread: true });
    try {
      const id = blobIdAt(20);
      await store.put(id, Buffer.from('kept'));
      await store.close();
      // The thread is gone: a later put falls back to the loop's own writes.
      const later = blobIdAt(19);
      expect((await store.put(later, Buffer.from('later'))).size).toBe(5);
      expect((await store.read(id, { start: 0, end: 10 })).toString()).toBe('kept');
      expect((await store.read(later, { start: 0, end: 10 })).toString()).toBe('later');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('filesystem blob store layout', () => {
  it('fans bodies out by the time in their id and keeps temporaries out of listings until swept', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'postmesh-blob-fs-'));
    try {
      const root = join(dir, 'blobs');
      const store = await FsBlobStore.open(root);
      const id = blobIdAt(7_200);
      await store.put(id, Buffer.from('sealed'));
      expect(readdirSync(join(root, id.slice(0, 4), id.slice(4, 6)))).toEqual([id]);
      // What a crash between create and rename leaves behind.
      const crashed = blobIdAt(7_100);
      await store.put(crashed, Buffer.from('x'));
      await store.delete(crashed);
      const temp = join(store.directoryOf(crashed), `.${crashed}.0a1b2c.tmp`);
      writeFileSync(temp, 'partial');
      const listed: string[] = [];
      for await (const found of store.list({ before: 'f'.repeat(24) })) listed.push(found);
      expect(listed).toEqual([id]);
      // A range that ends before it leaves it alone; one that covers it removes it.
      expect(await store.removeAbandonedWrites({ before: crashed })).toBe(0);
      expect(await store.removeAbandonedWrites({ before: blobIdAt(0) })).toBe(1);
      expect(existsSync(temp)).toBe(false);
      expect(await store.read(id, { start: 0, end: 100 })).toEqual(Buffer.from('sealed'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
