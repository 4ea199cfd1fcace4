/**
 * The body writer thread (fs-writer.ts): writes the bodies it is sent as `FsBlobStore.put` does
 * on the loop — temporary file in the final directory, fdatasync, rename, directory fsync — with
 * synchronous calls, one message's puts at a time, and fsyncs each directory once per message.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fdatasyncSync,
  fsyncSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parentPort } from 'node:worker_threads';
import type { BodyPutAnswer, ToBodyWriter } from './fs-writer.js';

if (parentPort === null) throw new Error('fs-writer-thread.js runs as a worker thread');
const port = parentPort;

/** Directories known to exist (made or seen by an earlier put of this thread). */
const known = new Set<string>();

function syncDirectory(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes one body; adds the directories whose entries must be made durable to `dirty`. */
function writeOne(path: string, parents: string[], bytes: Uint8Array, dirty: Set<string>): number {
  const directory = dirname(path);
  if (!known.has(directory)) {
    if (mkdirSync(directory, { recursive: true }) !== undefined)
      for (const parent of parents) dirty.add(parent);
    known.add(directory);
  }
  const temp = join(directory, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  let fd: number;
  try {
    fd = openSync(temp, 'wx', 0o600);
  } catch (error) {
    // A directory this thread saw may have been removed since (an emptied one, by the sweeper).
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || !known.delete(directory)) throw error;
    return writeOne(path, parents, bytes, dirty);
  }
  try {
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
    fdatasyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(temp, { force: true });
    throw error;
  }
  closeSync(fd);
  try {
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
  dirty.add(directory);
  return bytes.length;
}

function failure(id: number, error: unknown): BodyPutAnswer {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return {
    id,
    ok: false,
    message: error instanceof Error ? error.message : String(error),
    ...(code === undefined ? {} : { code }),
  };
}

port.on('message', (m: ToBodyWriter) => {
  const answers: BodyPutAnswer[] = [];
  const dirty = new Set<string>();
  for (const put of m.puts) {
    try {
      answers.push({ id: put.id, ok: true, size: writeOne(put.path, put.parents, put.bytes, dirty) });
    } catch (error) {
      answers.push(failure(put.id, error));
    }
  }
  // The renames (and made directories) survive a crash once their directories are synced; until
  // then no put of this message is answered as done.
  let synced: unknown;
  for (const directory of [...dirty].sort((a, b) => b.length - a.length)) {
    try {
      syncDirectory(directory);
    } catch (error) {
      synced ??= error;
      known.delete(directory);
    }
  }
  port.postMessage(synced === undefined ? answers : answers.map((a) => (a.ok ? failure(a.id, synced) : a)));
});
