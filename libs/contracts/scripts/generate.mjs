#!/usr/bin/env node
// Regenerates libs/contracts/src/gen from proto/ with buf + ts-proto (buf.gen.yaml).
//
//   node scripts/generate.mjs            replace src/gen
//   node scripts/generate.mjs --out DIR  write the generated tree to DIR instead
//
// Also imported by check.mjs, which generates into a temporary directory and compares.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const repoRoot = resolve(packageDir, '../..');
export const protoDir = join(repoRoot, 'proto');
export const genDir = join(packageDir, 'src', 'gen');

function findBuf() {
  const bin = join(repoRoot, 'node_modules', '.bin', 'buf');
  if (!existsSync(bin)) {
    throw new Error(`buf not found at ${bin}; run \`npm install\` at the repository root`);
  }
  return bin;
}

/** Lists files under `dir` as sorted paths relative to it. */
export function listFiles(dir) {
  const out = [];
  const walk = (d) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  if (existsSync(dir)) walk(dir);
  return out.sort();
}

/**
 * Runs `buf generate` into a new temporary directory and returns the path of the generated tree
 * (`<tmp>/gen`). The caller owns (and should remove) `dirname(result)`.
 */
export function generateToTemp() {
  const tmp = mkdtempSync(join(tmpdir(), 'postmesh-contracts-'));
  const result = spawnSync(findBuf(), ['generate', protoDir, '--template', 'buf.gen.yaml', '-o', tmp], {
    cwd: packageDir,
    encoding: 'utf8',
  });
  if (result.status !== 0) {
    rmSync(tmp, { recursive: true, force: true });
    const why = result.error ? String(result.error) : `${result.stderr}${result.stdout}`.trim();
    throw new Error(`buf generate failed (exit ${String(result.status)}):\n${why}`);
  }
  const out = join(tmp, 'gen');
  writeFileSync(join(out, 'README.md'), readmeText(), 'utf8');
  return out;
}

/** Generates into `outDir`, replacing whatever was there. */
export function generate(outDir = genDir) {
  const fresh = generateToTemp();
  try {
    rmSync(outDir, { recursive: true, force: true });
    renameOrCopy(fresh, outDir);
  } finally {
    rmSync(dirname(fresh), { recursive: true, force: true });
  }
  return listFiles(outDir);
}

function readmeText() {
  return [
    '# Generated code: do not edit',
    '',
    'Everything in this folder is generated from `proto/` by `libs/contracts/scripts/generate.mjs`',
    '(`npm run proto` at the repository root). Change the `.proto` files and regenerate;',
    '`npm run proto:check` fails when this folder is stale.',
    '',
  ].join('\n');
}

function renameOrCopy(from, to) {
  try {
    renameSync(from, to);
  } catch {
    // Different filesystems (tmpfs vs the checkout): fall back to a recursive copy.
    const result = spawnSync('cp', ['-R', from, to], { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`could not copy ${from} to ${to}: ${result.stderr}`);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--out');
  const outDir = i >= 0 && process.argv[i + 1] ? resolve(process.argv[i + 1]) : genDir;
  try {
    const files = generate(outDir);
    console.log(`generated ${files.length} files into ${relative(process.cwd(), outDir) || '.'}`);
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  }
}
