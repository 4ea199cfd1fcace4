import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the nearest ancestor holding `tools/deps.json`. */
export function repoRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (;;) {
    if (existsSync(join(dir, 'tools', 'deps.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find the Postmesh repository root above ${from}`);
    dir = parent;
  }
}

/** Where the pinned native binaries live (git-ignored). */
export function binDir(): string {
  return process.env.POSTMESH_BIN_DIR ?? join(repoRoot(), '.bin');
}
