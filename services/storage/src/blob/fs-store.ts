/**
 * Bodies as files on a local filesystem: the default on one machine.
 *
 * Layout: `<root>/<id[0,4)>/<id[4,6)>/<id>`. Blob ids are ObjectIds, whose leading digits are the
 * creation time, so the first level changes every 18 hours and the second every 256 seconds: no
 * directory grows without bound, and the sweeper lists a time window by reading only the
 * directories in it.
 *
 * Durability before the acknowledgement (a `put` resolves only after all of this): the body is
 * written to a temporary file in its final directory, the file is fsynced (its octets reach the
 * disk before its name does), renamed over its final name (atomic: a reader sees the whole body
 * or nothing), and the directory is fsynced (the rename survives a crash); a directory created
 * for it is made durable in its parent the same way. Temporary files left by a crash start with
 * `.` and end in `.tmp`; `list` never shows them and `removeAbandonedWrites` deletes them.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { FsBodyWriter } from './fs-writer.js';
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

const TEMP = /^\.([0-9a-f]{24})\.[0-9a-f]+\.tmp$/;

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

async function fsyncDirectory(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * fsync of a directory shared by the puts waiting on it: a put joins the next sync that has not
 * started yet (it starts after the put's rename, so it covers it), so concurrent puts into one
 * directory cost one or two fsyncs between them instead of one each.
 */
class DirectorySync {
  private readonly waiting = new Map<string, Promise<void>>();
  private readonly running = new Map<string, Promise<void>>();

  sync(path: string): Promise<void> {
    const queued = this.waiting.get(path);
    if (queued !== undefined) return queued;
    const before = this.running.get(path) ?? Promise.resolve();
    const next = before
      .catch(() => undefined)
      .then(() => {
        this.waiting.delete(path);
        const done = fsyncDirectory(path);
        this.running.set(path, done);
        return done.finally(() => {
          if (this.running.get(path) === done) this.running.delete(path);
        });
      });
    this.waiting.set(path, next);
    return next;
  }
}

async function sortedNames(path: string): Promise<string[]> {
  try {
    return (await readdir(path)).sort();
  } catch (error) {
    if (isMissing(error)) return [];
    throw error;
  }
}

/**
 * The chunks of `source` as one buffer when they end within `limit` octets; otherwise `rest`,
 * the whole source again (what was read, then what follows).
 */
async function gather(
  source: AsyncGenerator<Uint8Array>,
  limit: number,
): Promise<
  { bytes: Uint8Array; rest?: undefined } | { bytes?: undefined; rest: AsyncGenerator<Uint8Array> }
> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const next = await source.next();
    if (next.done === true) {
      return { bytes: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size) };
    }
    chunks.push(next.value);
    size += next.value.length;
    if (size > limit) break;
  }
  async function* rest(): AsyncGenerator<Uint8Array> {
    yield* chunks;
    for (;;) {
      const next = await source.next();
      if (next.done === true) return;
      yield next.value;
    }
  }
  return { rest: rest() };
}

async function writeAll(handle: FileHandle, chunk: Uint8Array): Promise<void> {
  let written = 0;
  while (written < chunk.length) {
    const { bytesWritten } = await handle.write(chunk, written, chunk.length - written);
    written += bytesWritten;
  }
}

/**
 * Bodies up to this size are gathered in memory and written by the body writer thread
 * (fs-writer.ts); a larger one streams to its file from the event loop, as it arrives.
 */
export const THREAD_PUT_LIMIT = 1024 * 1024;

export interface FsBlobStoreOptions {
  /** Write bodies up to THREAD_PUT_LIMIT on a thread of their own (fs-writer.ts). Default false. */
  readonly writerThread?: boolean;
}

export class FsBlobStore implements BlobStore {
  readonly kind = 'fs' as const;
  private readonly directorySync = new DirectorySync();

  private constructor(
    readonly root: string,
    private readonly writer?: FsBodyWriter,
  ) {}

  /** The store under `root` as it is (for reading bodies written there before). */
  static at(root: string): FsBlobStore {
    return new FsBlobStore(root);
  }

  /** The store under `root`, created (durably) when missing. */
  static async open(root: string, options: FsBlobStoreOptions = {}): Promise<FsBlobStore> {
    await mkdir(root, { recursive: true });
    await fsyncDirectory(root);
    return new FsBlobStore(root, options.writerThread === true ? new FsBodyWriter() : undefined);
  }

  directoryOf(blobId: string): string {
    return join(this.root, blobId.slice(0, 4), blobId.slice(4, 6));
  }

  pathOf(blobId: string): string {
    return join(this.directoryOf(checkBlobId(blobId)), blobId);
  }

  async put(blobId: string, data: BlobSource): Promise<BlobStat> {
    const path = this.pathOf(blobId);
    if (this.writer !== undefined && this.writer.failure() === undefined) {
      const gathered = await gather(blobChunks(data), THREAD_PUT_LIMIT);
      if (gathered.rest === undefined) {
        const level1 = join(this.root, blobId.slice(0, 4));
        const size = await this.writer.put(path, [level1, this.root], gathered.bytes);
        return { size, writtenAt: new Date() };
      }
      data = gathered.rest;
    }
    return this.putFromLoop(blobId, path, data);
  }

  private async putFromLoop(blobId: string, path: string, data: BlobSource): Promise<BlobStat> {
    const directory = this.directoryOf(blobId);
    const created = await mkdir(directory, { recursive: true });
    const temp = join(directory, `.${blobId}.${randomBytes(6).toString('hex')}.tmp`);
    const handle = await open(temp, 'wx', 0o600);
    let size = 0;
    try {
      for await (const chunk of blobChunks(data)) {
        await writeAll(handle, chunk);
        size += chunk.length;
      }
      await handle.datasync();
    } catch (error) {
      await handle.close().catch(() => undefined);
      await rm(temp, { force: true }).catch(() => undefined);
      throw error;
    }
    await handle.close();
    try {
      await rename(temp, path);
    } catch (error) {
      await rm(temp, { force: true }).catch(() => undefined);
      throw error;
    }
    if (created !== undefined) {
      // New directories: their own entries must be durable too (root ← level 1 ← level 2).
      await fsyncDirectory(join(this.root, blobId.slice(0, 4)));
      await fsyncDirectory(this.root);
    }
    await this.directorySync.sync(directory);
    return { size, writtenAt: new Date() };
  }

  async read(blobId: string, range: ByteRange): Promise<Buffer> {
    const path = this.pathOf(blobId);
    const start = Math.max(0, range.start);
    const length = Math.max(0, range.end - start);
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      if (isMissing(error)) throw new BlobNotFoundError(blobId, this.kind, { cause: error });
      throw error;
    }
    try {
      const buffer = Buffer.allocUnsafe(length);
      let filled = 0;
      while (filled < length) {
        const { bytesRead } = await handle.read(buffer, filled, length - filled, start + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      return buffer.subarray(0, filled);
    } finally {
      await handle.close();
    }
  }

  async stat(blobId: string): Promise<BlobStat | null> {
    try {
      const s = await stat(this.pathOf(blobId));
      return { size: s.size, writtenAt: s.mtime };
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
  }

  async delete(blobId: string): Promise<void> {
    try {
      await unlink(this.pathOf(blobId));
    } catch (error) {
      if (!isMissing(error)) throw error;
    }
  }

  async *list(range: BlobListRange): AsyncGenerator<string> {
    for await (const directory of this.directories(range)) {
      for (const name of await sortedNames(directory)) {
        if (isBlobId(name) && name > (range.after ?? '') && name < range.before) yield name;
      }
    }
  }

  /**
   * Deletes temporary files of puts that never finished (a crash between create and rename) in
   * the directories of `range`; answers how many. Call it only for a range whose puts are over.
   */
  async removeAbandonedWrites(range: BlobListRange): Promise<number> {
    let removed = 0;
    for await (const directory of this.directories(range)) {
      for (const name of await sortedNames(directory)) {
        const id = TEMP.exec(name)?.[1];
        if (id === undefined || id <= (range.after ?? '') || id >= range.before) continue;
        await rm(join(directory, name), { force: true });
        removed++;
      }
    }
    return removed;
  }

  /** The second-level directories that can hold ids of `range`, in id order. */
  private async *directories(range: BlobListRange): AsyncGenerator<string> {
    const low = range.after ?? '';
    const high = range.before;
    for (const top of await sortedNames(this.root)) {
      if (!/^[0-9a-f]{4}$/.test(top) || top < low.slice(0, 4) || top > high.slice(0, 4)) continue;
      for (const sub of await sortedNames(join(this.root, top))) {
        const prefix = top + sub;
        if (!/^[0-9a-f]{2}$/.test(sub) || prefix < low.slice(0, 6) || prefix > high.slice(0, 6)) continue;
        yield join(this.root, top, sub);
      }
    }
  }

  async close(): Promise<void> {
    await this.writer?.close();
  }
}
