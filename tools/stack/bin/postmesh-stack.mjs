#!/usr/bin/env node
// Entry point of `npm start`, `npm test`, `npm run deps` and `npm run stack:reset`.
// Plain JavaScript on purpose: on a fresh clone nothing is installed or built yet, so this file
// installs the npm dependencies and builds the workspace before handing over to the typed
// stack tool in tools/stack/dist.
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const command = process.argv[2] ?? 'start';
const say = (line) => process.stdout.write(`postmesh | ${line}\n`);

function run(cmd, args, what) {
  say(`${what}…`);
  const started = Date.now();
  const result = spawnSync(cmd, args, {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true' },
  });
  if (result.status !== 0) {
    say(`${what} failed (exit ${result.status ?? result.signal}); see the output above.`);
    process.exit(result.status ?? 1);
  }
  say(`${what}: done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

if (command === 'reset') {
  const dataDir = resolve(root, process.env.POSTMESH_DATA_DIR ?? '.data');
  rmSync(dataDir, { recursive: true, force: true });
  say(`removed ${dataDir}: the next 'npm start' begins with empty NATS and database storage`);
  process.exit(0);
}

const major = Number(process.versions.node.split('.')[0]);
if (major < 20) {
  say(`Node.js 20 or newer is needed (this is ${process.versions.node}).`);
  process.exit(1);
}
if (!existsSync(join(root, 'node_modules', '.package-lock.json'))) {
  run('npm', ['ci', '--no-audit', '--no-fund'], 'installing npm dependencies (npm ci)');
}
// POSTMESH_SKIP_BUILD=1: the caller has just built everything (the stack's own integration test).
if (process.env.POSTMESH_SKIP_BUILD !== '1') {
  run('npx', ['nx', 'run-many', '-t', 'build', '--outputStyle=static'], 'building the workspace');
}

const { main } = await import(pathToFileURL(join(root, 'tools', 'stack', 'dist', 'main.js')).href);
process.exitCode = await main(command, process.argv.slice(3));
