/**
 * The filesystem store's writes of bodies held in memory, on a thread of their own (ADR 0012).
 *
 * A put on the event loop is some nine calls through libuv's pool, each a promise and a callback
 * on the loop: make the directory, open the temporary file, write, fdatasync, close, rename, and
 * open, fsync and close the directory. The IMAP server and the mailstore share that loop, and it
 * is their CPU that bounds the commands a second (docs/benchmarks.md). Here the loop posts the
 * body and awaits one answer; the thread makes the same calls, synchronously, in the same order,
 * for every put that has arrived, then fsyncs each directory they went into once, and answers
 * them together (fs-writer-thread.ts). The durability is `FsBlobStore.put`'s: nothing resolves
 * before the file and its directory entry are on disk.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

export interface BodyPut {
  id: number;
  /** The blob's final path; its directory is made when missing. */
  path: string;
  /** The directories to fsync when the file's directory had to be made (parents first). */
  parents: string[];
  bytes: Uint8Array;
}
export type ToBodyWriter = { type: 'puts'; puts: BodyPut[] };
export type BodyPutAnswer =
  { id: number; ok: true; size: number } | { id: number; ok: false; message: string; code?: string };

function threadScript(): string {
  const here = fileURLToPath(import.meta.url);
  const beside = here.replace(/fs-writer\.(ts|js)$/, 'fs-writer-thread.js');
  if (here.endsWith('.js') && existsSync(beside)) return beside;
  const built = here.replace(/\/src\/blob\/fs-writer\.(ts|js)$/, '/dist/blob/fs-writer-thread.js');
  if (existsSync(built)) return built;
  throw new Error(`the body writer thread's script is missing (${built}): build @postmesh/storage first`);
}

export class FsBodyWriter {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly waiting = new Map<
    number,
    { resolve: (size: number) => void; reject: (e: Error) => void }
  >();
  private outbox: BodyPut[] = [];
  private failed: Error | undefined;
  private closed = false;

  constructor() {
    this.worker = new Worker(threadScript());
    this.worker.on('message', (answers: BodyPutAnswer[]) => {
      for (const a of answers) {
        const waiter = this.waiting.get(a.id);
        if (waiter === undefined) continue;
        this.waiting.delete(a.id);
        if (a.ok) waiter.resolve(a.size);
        else waiter.reject(Object.assign(new Error(a.message), a.code === undefined ? {} : { code: a.code }));
      }
    });
    this.worker.on('error', (error) => this.fail(error));
    this.worker.on('exit', (code) => {
      if (!this.closed) this.fail(new Error(`the body writer thread exited (code ${code})`));
    });
    // It does not keep an idle storage process alive.
    this.worker.unref();
  }

  /** Why puts cannot go to the thread any more, or undefined. */
  failure(): Error | undefined {
    return this.failed;
  }

  /** Writes `bytes` durably at `path`; resolves with the size written. */
  put(path: string, parents: string[], bytes: Uint8Array): Promise<number> {
    if (this.failed !== undefined) return Promise.reject(this.failed);
    if (this.closed) return Promise.reject(new Error('the body writer is closed'));
    const id = this.nextId++;
    // The puts of one loop turn travel as one message.
    this.outbox.push({ id, path, parents, bytes });
    if (this.outbox.length === 1) {
      queueMicrotask(() => {
        const puts = this.outbox;
        this.outbox = [];
        if (this.failed !== undefined) return;
        this.worker.postMessage({ type: 'puts', puts } satisfies ToBodyWriter);
      });
    }
    return new Promise<number>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.worker.terminate();
    this.fail(new Error('the body writer is closed'));
  }

  private fail(error: Error): void {
    this.failed ??= error;
    for (const [id, waiter] of this.waiting) {
      this.waiting.delete(id);
      waiter.reject(this.failed);
    }
    this.outbox = [];
  }
}
