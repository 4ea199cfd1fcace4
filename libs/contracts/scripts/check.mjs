#!/usr/bin/env node
// Fails when the committed generated code is stale: regenerates from proto/ into a temporary
// directory and compares it file by file with libs/contracts/src/gen.
//
//   node scripts/check.mjs                  compare with src/gen
//   node scripts/check.mjs --against DIR    compare with DIR instead (used by the tests)
//
// Exit status: 0 up to date, 1 stale (the differing files are listed), 2 generation failed.
import { readFileSync, rmSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { genDir, generateToTemp, listFiles } from './generate.mjs';

/**
 * Compares two generated trees. Returns the relative paths that differ, grouped by how.
 * @param {string} expectedDir freshly generated tree
 * @param {string} actualDir committed tree
 */
function compareTrees(expectedDir, actualDir) {
  const expected = listFiles(expectedDir);
  const actual = new Set(listFiles(actualDir));
  const changed = [];
  const missing = [];
  for (const file of expected) {
    if (!actual.has(file)) {
      missing.push(file);
      continue;
    }
    actual.delete(file);
    if (!readFileSync(join(expectedDir, file)).equals(readFileSync(join(actualDir, file))))
      changed.push(file);
  }
  return { changed, missing, extra: [...actual].sort() };
}

function main() {
  const i = process.argv.indexOf('--against');
  const againstDir = i >= 0 && process.argv[i + 1] ? resolve(process.argv[i + 1]) : genDir;
  let fresh;
  try {
    fresh = generateToTemp();
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    return 2;
  }
  try {
    const { changed, missing, extra } = compareTrees(fresh, againstDir);
    const shown = relative(process.cwd(), againstDir) || '.';
    if (changed.length + missing.length + extra.length === 0) {
      console.log(`${shown} is up to date with proto/`);
      return 0;
    }
    const lines = [
      ...changed.map((f) => `  changed: ${f}`),
      ...missing.map((f) => `  missing: ${f}`),
      ...extra.map((f) => `  not generated (remove): ${f}`),
    ];
    console.error(
      `${shown} is stale: it does not match what proto/ generates.\n${lines.join('\n')}\n` +
        'Run `npm run proto` at the repository root and commit the result (never edit generated files by hand).',
    );
    return 1;
  } finally {
    rmSync(dirname(fresh), { recursive: true, force: true });
  }
}

process.exitCode = main();
