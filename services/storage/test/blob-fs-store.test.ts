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
import { blobIdAt, describeBlobStore } from './blob-contract.js';

describeBlobStore('filesystem', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postmesh-blob-fs-'));
  const store = await FsBlobStore.open(join(dir, 'blobs'));
  return {
    store,
    close: () => Promise.resolve(rmSync(dir, { recursive: true, force: true })),
  };
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
