/**
 * Loaded into the measured storage process with `node --import <this file> main.js`: lets the
 * memory benchmark ask, from outside, for the process's own view of its memory, after a full
 * garbage collection when asked, and for a heap snapshot. Nothing in storage exposes a GC, and a
 * figure taken after one separates what the process holds from garbage not yet collected.
 *
 * Protocol: the bench writes `{"id": n, "gc": bool, "snapshot": path?}` to
 * `$POSTMESH_MEMORY_HOOK_DIR/command.json` and sends SIGUSR2 (SIGUSR1 is Node's inspector); the
 * hook answers in `reply-<n>.json` (written to a temporary name, then renamed, so a reader never
 * sees half a file) with `process.memoryUsage()` and V8's heap statistics.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getHeapStatistics, setFlagsFromString, writeHeapSnapshot } from 'node:v8';
import { runInNewContext } from 'node:vm';

const dir = process.env.POSTMESH_MEMORY_HOOK_DIR;
if (dir) {
  // `--expose-gc` set at run time: the function appears in contexts created after it.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc');
  process.on('SIGUSR2', () => {
    let request;
    try {
      request = JSON.parse(readFileSync(join(dir, 'command.json'), 'utf8'));
    } catch {
      return;
    }
    const started = performance.now();
    if (request.gc) {
      // Twice: the first pass can leave objects that only a finalizer of it released.
      gc();
      gc();
    }
    const gcMs = performance.now() - started;
    let snapshot;
    if (typeof request.snapshot === 'string') snapshot = writeHeapSnapshot(request.snapshot);
    const reply = {
      id: request.id,
      gcMs,
      memory: process.memoryUsage(),
      heap: getHeapStatistics(),
      snapshot,
    };
    const file = join(dir, `reply-${request.id}.json`);
    writeFileSync(`${file}.tmp`, JSON.stringify(reply));
    renameSync(`${file}.tmp`, file);
  });
}
