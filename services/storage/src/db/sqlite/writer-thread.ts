/**
 * The SQLite writer thread (writer.ts): owns the write connection, runs each write it is sent
 * inside the store's group commit, and answers once the commit is on disk.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SqliteStore } from './store.js';
import { decode, encode, encodeError, executeWrite, transferable, type WriteOp } from './write-ops.js';
import type { FromWriter, ToWriter, WriteAnswer, WriteRequest } from './writer.js';

if (parentPort === null) throw new Error('writer-thread.js runs as a worker thread');
const port = parentPort;
const { file } = workerData as { file: string };

let store: SqliteStore;
try {
  store = new SqliteStore({ file });
} catch (error) {
  port.postMessage({
    id: 0,
    ok: false,
    fatal: error instanceof Error ? error.message : String(error),
  } satisfies FromWriter);
  throw error;
}

/** Answers ready in one turn of this thread's loop go back as one message. */
let answers: WriteAnswer[] = [];
function answer(a: WriteAnswer): void {
  answers.push(a);
  if (answers.length === 1)
    setImmediate(() => {
      const out = answers;
      answers = [];
      // Each answer's bytes are its own: moved to the main thread, not copied.
      port.postMessage(out satisfies FromWriter, transferable(out.map((a) => (a.ok ? a.value : a.error))));
    });
}

function write(m: WriteRequest): void {
  let op: WriteOp;
  try {
    op = decode(m.op) as WriteOp;
  } catch (error) {
    answer({ id: m.id, ok: false, error: encodeError(error), ...store.stats });
    return;
  }
  store
    .write(m.command, m.collection, () => executeWrite(store, m.collection, op))
    .then(
      (value) => answer({ id: m.id, ok: true, value: encode(value), ...store.stats }),
      (error: unknown) => answer({ id: m.id, ok: false, error: encodeError(error), ...store.stats }),
    );
}

port.on('message', (m: ToWriter) => {
  if (m.type === 'close') {
    store.close();
    port.postMessage([{ id: m.id, ok: true, value: encode(null), ...store.stats }] satisfies FromWriter);
    return;
  }
  for (const w of m.writes) write(w);
});
