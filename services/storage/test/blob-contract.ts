/**
 * What every blob store promises (src/blob/types.ts), as one suite each implementation runs
 * against a real backend: the filesystem, GridFS on FerretDB, S3 on a local S3-compatible server.
 */
import { randomBytes } from 'node:crypto';
import { ObjectId } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlobNotFoundError, type BlobStore } from '../src/blob/index.js';

export interface OpenedStore {
  readonly store: BlobStore;
  close(): Promise<void>;
}

/** A fresh blob id of `secondsAgo` seconds ago (ids sort by their time). */
export function blobIdAt(secondsAgo = 0): string {
  return (
    ObjectId.createFromTime(Math.floor(Date.now() / 1000) - secondsAgo)
      .toHexString()
      .slice(0, 8) + new ObjectId().toHexString().slice(8)
  );
}

async function* pieces(bytes: Buffer, sizes: readonly number[]): AsyncGenerator<Uint8Array> {
  let at = 0;
  for (let i = 0; at < bytes.length; i++) {
    const size = sizes[i % sizes.length] ?? 1;
    yield bytes.subarray(at, at + size);
    at += size;
    await Promise.resolve();
  }
}

export function describeBlobStore(
  name: string,
  open: () => Promise<OpenedStore>,
  openTimeoutMs?: number,
): void {
  describe(`${name} blob store`, () => {
    let opened: OpenedStore;
    let store: BlobStore;
    beforeAll(async () => {
      opened = await open();
      store = opened.store;
    }, openTimeoutMs);
    afterAll(async () => {
      await opened?.close();
    });

    it('stores bytes given whole or in pieces and reads back any range of them', async () => {
      const small = randomBytes(1_000);
      const large = randomBytes(300_000);
      const a = blobIdAt();
      const b = blobIdAt();
      expect(await store.put(a, small)).toMatchObject({ size: 1_000 });
      expect(await store.put(b, pieces(large, [1, 70_000, 13, 65_552, 4_096]))).toMatchObject({
        size: 300_000,
      });
      expect(await store.read(a, { start: 0, end: 1_000 })).toEqual(small);
      expect(await store.read(b, { start: 0, end: 300_000 })).toEqual(large);
      // Ranges across the 64 KiB + 16 boundaries GridFS chunks at, and cut at the end.
      for (const [start, end] of [
        [65_551, 65_553],
        [100_000, 231_105],
        [299_999, 300_000],
        [299_000, 400_000],
      ] as const) {
        expect(await store.read(b, { start, end })).toEqual(large.subarray(start, end));
      }
      expect(await store.read(b, { start: 300_000, end: 300_010 })).toHaveLength(0);
      expect(await store.read(a, { start: 5_000, end: 6_000 })).toHaveLength(0);
      expect((await store.stat(b))?.size).toBe(300_000);
      const empty = blobIdAt();
      await store.put(empty, Buffer.alloc(0));
      expect((await store.stat(empty))?.size).toBe(0);
      expect(await store.read(empty, { start: 0, end: 10 })).toHaveLength(0);
    });

    it('leaves nothing readable when the source fails midway, and rethrows its error', async () => {
      const id = blobIdAt();
      async function* failing(): AsyncGenerator<Uint8Array> {
        yield randomBytes(200_000);
        await Promise.resolve();
        throw new Error('client went away');
      }
      await expect(store.put(id, failing())).rejects.toThrow('client went away');
      expect(await store.stat(id)).toBeNull();
      await expect(store.read(id, { start: 0, end: 10 })).rejects.toBeInstanceOf(BlobNotFoundError);
      const listed: string[] = [];
      for await (const found of store.list({ before: 'f'.repeat(24) })) listed.push(found);
      expect(listed).not.toContain(id);
    });

    it('deletes idempotently; a missing blob is null to stat and an error to read', async () => {
      const id = blobIdAt();
      await store.put(id, randomBytes(10));
      await store.delete(id);
      await store.delete(id);
      expect(await store.stat(id)).toBeNull();
      const error = await store.read(id, { start: 0, end: 10 }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(BlobNotFoundError);
      expect((error as BlobNotFoundError).store).toBe(store.kind);
    });

    it('lists ids in ascending order within an exclusive range', async () => {
      const ids = [
        blobIdAt(3 * 86_400),
        blobIdAt(86_400),
        blobIdAt(4_000),
        blobIdAt(100),
        blobIdAt(1),
      ].sort();
      for (const id of ids) await store.put(id, Buffer.from(id));
      const between: string[] = [];
      for await (const id of store.list({ after: ids[0], before: ids[4] as string })) {
        if (ids.includes(id)) between.push(id);
      }
      expect(between).toEqual(ids.slice(1, 4));
      const all: string[] = [];
      for await (const id of store.list({ before: 'f'.repeat(24) })) all.push(id);
      expect(all).toEqual([...all].sort());
      expect(all).toEqual(expect.arrayContaining(ids));
    });

    it('refuses anything but a blob id before it reaches a path or a key', async () => {
      for (const bad of ['../../../etc/passwd', 'ABCDEF0123456789abcdef01', '0123', `${'a'.repeat(24)}/x`]) {
        await expect(store.put(bad, Buffer.from('x'))).rejects.toBeInstanceOf(TypeError);
        await expect(store.read(bad, { start: 0, end: 1 })).rejects.toBeInstanceOf(TypeError);
      }
    });
  });
}
