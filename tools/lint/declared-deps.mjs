#!/usr/bin/env node
// Every package a workspace project imports must be declared in that project's package.json:
// production code from `dependencies`, tests and tools also from `devDependencies`. npm's hoisting
// makes an undeclared import work here and break in a pruned image (tools/image/stage.sh installs
// each service's own dependencies only). ESLint's module-boundary rule sees `import`, not a
// `require()` made by `createRequire`, which is how smtp-inbound loads Haraka; this check sees
// both, plus dynamic `import()`.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative } from 'node:path';

// `--root DIR` checks another tree (the checker's own test uses a fixture).
const rootArg = process.argv.indexOf('--root');
const root = rootArg > 0 ? process.argv[rootArg + 1] : new URL('../..', import.meta.url).pathname;
const rootPkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const builtins = new Set(builtinModules);
// The test runner and its helpers (vitest, fast-check) are the root's, shared by every project.
const rootDev = new Set(Object.keys(rootPkg.devDependencies ?? {}));
const SKIP_DIRS = new Set(['node_modules', 'dist', 'gen', '.tmp', 'test-artifacts', 'coverage']);
const SOURCE = /\.(?:ts|tsx|mts|js|mjs)$/;
// `import x from 'p'`, `export … from 'p'`, `import 'p'`, `import('p')`, `require('p')`.
// Statements only (at the start of a line), so a `from "…"` inside a string or a Sieve script in
// a test is not taken for an import.
const SPECIFIERS = [
  /^\s*(?:import|export)\s[^'"`;]*?\sfrom\s+['"]([^'"]+)['"]/gm,
  /^\s*import\s+['"]([^'"]+)['"]/gm,
  /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
  /\brequire\(\s*['"]([^'"]+)['"]\s*\)/g,
];
/** npm package names (Haraka's capital H included). */
const PACKAGE_NAME = /^(?:@[\w.~-]+\/)?[\w.~-]+$/;

function* files(dir) {
  for (const name of readdirSync(dir)) {
    if (SKIP_DIRS.has(name) || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* files(path);
    else if (SOURCE.test(name) && !name.endsWith('.d.ts')) yield path;
  }
}

function packageOf(specifier) {
  if (specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('#')) return null;
  if (specifier.startsWith('node:') || builtins.has(specifier.split('/')[0])) return null;
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
  return PACKAGE_NAME.test(name) ? name : null;
}

function stripComments(text) {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

const projects = [];
for (const group of ['libs', 'services', 'tools', 'tools/bench']) {
  const base = join(root, group);
  let names;
  try {
    names = readdirSync(base);
  } catch {
    continue;
  }
  for (const name of names) {
    const dir = join(base, name);
    try {
      projects.push({ dir, pkg: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) });
    } catch {
      // not a workspace project (a plain folder of scripts)
    }
  }
}

const problems = [];
for (const { dir, pkg } of projects) {
  const prod = new Set([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})]);
  const dev = new Set([...prod, ...Object.keys(pkg.devDependencies ?? {})]);
  for (const file of files(dir)) {
    const rel = relative(dir, file);
    const isTest = /(^|\/)(test|tests|e2e)\//.test(rel) || /\.test\.[mc]?[tj]sx?$/.test(rel);
    // Config files at a project's root (vite, vitest) run with the root's dev tools.
    const isConfig = !rel.includes('/') && /config\./.test(rel);
    // The console is bundled by vite at build time: its imports ship inside the bundle, not as
    // runtime packages, so they are build (dev) dependencies.
    const isBundled = /(^|\/)console\//.test(rel);
    const allowed = isTest || isBundled ? dev : prod;
    const text = stripComments(readFileSync(file, 'utf8'));
    for (const pattern of SPECIFIERS) {
      for (const m of text.matchAll(pattern)) {
        const name = packageOf(m[1]);
        if (name === null || name === pkg.name || allowed.has(name)) continue;
        if ((isTest || isConfig || isBundled) && rootDev.has(name)) continue;
        if (!isTest && dev.has(name)) {
          problems.push(
            `${relative(root, file)}: '${name}' is a devDependency of ${pkg.name} but production code imports it`,
          );
        } else {
          problems.push(
            `${relative(root, file)}: '${name}' is not declared in ${relative(root, dir)}/package.json`,
          );
        }
      }
    }
  }
}

const unique = [...new Set(problems)];
if (unique.length > 0) {
  process.stderr.write(`${unique.join('\n')}\n${unique.length} undeclared import(s)\n`);
  process.exit(1);
}
process.stdout.write(`declared-deps: ${projects.length} projects, every import declared\n`);
