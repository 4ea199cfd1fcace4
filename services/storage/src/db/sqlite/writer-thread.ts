/**
 * The SQLite writer thread (writer.ts): owns the write connection, runs each write it is sent
 * inside the store's group commit, and answers once the commit is on disk.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SqliteStore } from './store.js';
import { decode, encode, encodeError, executeWrite, type WriteOp } from './write-ops.js';
import type { FromWriter, ToWriter } from './writer.js';

const port = parentPort;
if (port === null) throw new Error('writer-thread.js runs as a worker thread');
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

port.on('message', (m: ToWriter) => {
  if (m.type === 'close') {
    store.close();
    port.postMessage({ id: m.id, ok: true, value: encode(null), ...store.stats } satisfies FromWriter);
    return;
  }
  let op: WriteOp;
  try {
    op = decode(m.op) as WriteOp;
  } catch (error) {
    port.postMessage({ id: m.id, ok: false, error: encodeError(error), ...store.stats } satisfies FromWriter);
    return;
  }
  store
    .write(m.command, m.collection, () => executeWrite(store, m.collection, op))
    .then(
      (value) =>
        port.postMessage({ id: m.id, ok: true, value: encode(value), ...store.stats } satisfies FromWriter),
      (error: unknown) =>
        port.postMessage({
          id: m.id,
          ok: false,
          error: encodeError(error),
          ...store.stats,
        } satisfies FromWriter),
    );
});
