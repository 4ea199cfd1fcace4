/**
 * Where the writes of the in-process SQLite database run (ADR 0011).
 *
 * `ThreadWriter` (the default): one worker thread per storage process owns the write connection.
 * The event loop sends each write as BSON and awaits its answer; the thread commits whatever has
 * arrived as one transaction and fsyncs it, so neither the writes' work nor the fsync's wait is
 * on the event loop, and the wait for one fsync gathers the next group. Reads stay on the event
 * loop's own connection: SQLite's WAL lets them read the last commit while the thread writes.
 *
 * `InlineWriter`: the same ops on the event loop's connection (one thread; for tools and tests
 * that want it, and where worker threads are not wanted).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { SqliteStore, StoreEvent } from './store.js';
import { decode, decodeError, encode, executeWrite, transferable, type WriteOp } from './write-ops.js';

export interface Writer {
  submit(command: string, collection: string, op: WriteOp): Promise<unknown>;
  /** Transactions committed and the writes they carried (as last reported by the writer). */
  stats(): { commits: number; writes: number };
  /** Why writes cannot run any more (the writer thread died), or undefined. */
  failure(): Error | undefined;
  /** Writes asked and not answered for at least `minMs`. */
  longerThan(minMs: number): { command: string; collection: string; statements: number; runningMs: number }[];
  close(): Promise<void>;
}

export class InlineWriter implements Writer {
  constructor(private readonly store: SqliteStore) {}

  submit(command: string, collection: string, op: WriteOp): Promise<unknown> {
    // A copy, as the thread gets: what the caller changes after the call is not what it wrote.
    const copy = decode(encode(op)) as WriteOp;
    return this.store.write(command, collection, () => executeWrite(this.store, collection, copy));
  }

  stats(): { commits: number; writes: number } {
    return { ...this.store.stats };
  }

  failure(): Error | undefined {
    return this.store.isClosed() ? new Error('the database is closed') : undefined;
  }

  longerThan(): { command: string; collection: string; statements: number; runningMs: number }[] {
    // Inline writes run within the loop turn after they are asked: none can wait for long.
    return [];
  }

  close(): Promise<void> {
    this.store.close();
    return Promise.resolve();
  }
}

/** Messages to the writer thread: the writes of one event-loop turn go as one message. */
export interface WriteRequest {
  id: number;
  command: string;
  collection: string;
  op: Uint8Array;
}
export type ToWriter = { type: 'writes'; writes: WriteRequest[] } | { id: number; type: 'close' };
/** Its answers (those ready at once travel as one array). */
export type WriteAnswer =
  | { id: number; ok: true; value: Uint8Array; commits: number; writes: number }
  | { id: number; ok: false; error: Uint8Array; commits: number; writes: number };
export type FromWriter = WriteAnswer[] | { id: 0; ok: false; fatal: string };

/** The compiled thread script, also when this module runs from source (the test runner). */
function threadScript(): string {
  const here = fileURLToPath(import.meta.url);
  const beside = here.replace(/\.ts$/, '.js').replace(/writer\.js$/, 'writer-thread.js');
  if (here.endsWith('.js') && existsSync(beside)) return beside;
  const built = here.replace(/\/src\/db\/sqlite\/writer\.(ts|js)$/, '/dist/db/sqlite/writer-thread.js');
  if (existsSync(built)) return built;
  throw new Error(`the SQLite writer thread's script is missing (${built}): build @postmesh/storage first`);
}

export class ThreadWriter implements Writer {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly waiting = new Map<
    number,
    {
      resolve: (v: unknown) => void;
      reject: (e: Error) => void;
      command: string;
      collection: string;
      started: number;
    }
  >();
  private failed: Error | undefined;
  private counted = { commits: 0, writes: 0 };
  private outbox: WriteRequest[] = [];
  private closing: Promise<void> | undefined;

  constructor(
    file: string,
    private readonly observe?: (event: StoreEvent) => void,
  ) {
    this.worker = new Worker(threadScript(), { workerData: { file } });
    this.worker.on('message', (m: FromWriter) => {
      if (Array.isArray(m)) for (const a of m) this.answer(a);
      else this.fail(new Error(`the SQLite writer thread failed: ${m.fatal}`));
    });
    this.worker.on('error', (error) => this.fail(error));
    this.worker.on('exit', (code) => {
      if (this.closing === undefined) this.fail(new Error(`the SQLite writer thread exited (code ${code})`));
    });
    // An idle storage process may exit; the thread does not hold it open.
    this.worker.unref();
  }

  private fail(error: Error): void {
    this.failed ??= error;
    for (const [id, w] of this.waiting) {
      this.waiting.delete(id);
      w.reject(error);
    }
  }

  private answer(m: WriteAnswer): void {
    this.counted = { commits: m.commits, writes: m.writes };
    const w = this.waiting.get(m.id);
    if (w === undefined) return;
    this.waiting.delete(m.id);
    if (this.waiting.size === 0) this.worker.unref();
    this.observe?.({
      command: w.command,
      collection: w.collection,
      durationMs: performance.now() - w.started,
      failed: !m.ok,
    });
    if (m.ok) w.resolve(decode(m.value));
    else w.reject(decodeError(m.error));
  }

  stats(): { commits: number; writes: number } {
    return { ...this.counted };
  }

  failure(): Error | undefined {
    return this.failed;
  }

  longerThan(
    minMs: number,
  ): { command: string; collection: string; statements: number; runningMs: number }[] {
    const now = performance.now();
    const out: { command: string; collection: string; statements: number; runningMs: number }[] = [];
    for (const w of this.waiting.values()) {
      const runningMs = now - w.started;
      if (runningMs >= minMs)
        out.push({
          command: w.command,
          collection: w.collection,
          statements: 1,
          runningMs: Math.round(runningMs),
        });
    }
    return out;
  }

  submit(command: string, collection: string, op: WriteOp): Promise<unknown> {
    if (this.failed !== undefined) return Promise.reject(this.failed);
    if (this.closing !== undefined) return Promise.reject(new Error('the database is closed'));
    const id = this.nextId++;
    const request: WriteRequest = { id, command, collection, op: encode(op) };
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, command, collection, started: performance.now() });
      // Held open while a write waits for its answer.
      this.worker.ref();
      this.outbox.push(request);
      if (this.outbox.length === 1) setImmediate(() => this.send());
    });
  }

  /** The writes asked since the last send, as one message. */
  private send(): void {
    const writes = this.outbox;
    this.outbox = [];
    if (writes.length === 0) return;
    // The encoded operations are moved to the thread, not copied: nothing reads them here after.
    this.worker.postMessage(
      { type: 'writes', writes } satisfies ToWriter,
      transferable(writes.map((w) => w.op)),
    );
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.failed === undefined) {
        const id = this.nextId++;
        this.worker.ref();
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 10_000);
          this.worker.on('message', (m: FromWriter) => {
            if (Array.isArray(m) && m.some((a) => a.id === id)) {
              clearTimeout(timer);
              resolve();
            }
          });
          this.send();
          this.worker.postMessage({ id, type: 'close' } satisfies ToWriter);
        });
      }
      await this.worker.terminate();
    })();
    return this.closing;
  }
}
