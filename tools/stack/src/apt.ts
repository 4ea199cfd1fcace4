import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '@postmesh/testing';

const run = promisify(execFile);

function aptLists(): { test?: string[]; runtime?: string[]; database?: string[] } {
  const deps = JSON.parse(readFileSync(join(repoRoot(), 'tools', 'deps.json'), 'utf8')) as {
    apt?: { test?: string[]; runtime?: string[]; database?: string[] };
  };
  return deps.apt ?? {};
}

/** Debian packages the tests drive as real peers (tools/deps.json `apt.test`): swaks, mbsync, … */
export function testPackages(): string[] {
  return [...(aptLists().test ?? []), ...runtimePackages(), ...databasePackages()];
}

/**
 * FerretDB's optional backend (`apt.database`: Debian's PostgreSQL), installed by `npm start` when
 * it runs FerretDB on it (POSTMESH_STACK_DB=ferretdb POSTMESH_DB_BACKEND=postgresql) and by
 * `npm test`, whose suites run FerretDB on it too.
 */
export function databasePackages(): string[] {
  return aptLists().database ?? [];
}

/** Debian packages the local stack runs beside its own tools (`apt.runtime`): rspamd, Redis. */
export function runtimePackages(): string[] {
  return aptLists().runtime ?? [];
}

async function installed(pkg: string): Promise<boolean> {
  try {
    const { stdout } = await run('dpkg-query', ['-W', '-f=${Status}', pkg]);
    return stdout.includes('install ok installed');
  } catch {
    return false;
  }
}

/**
 * Install missing Debian packages (as root, which CI and our machines are). Elsewhere, say
 * exactly what to run instead of failing later inside a test.
 */
export async function ensureAptPackages(
  packages: readonly string[],
  log: (line: string) => void,
): Promise<void> {
  const missing: string[] = [];
  for (const pkg of packages) if (!(await installed(pkg))) missing.push(pkg);
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    throw new Error(
      `the tests need Debian packages that are missing: run 'sudo apt-get install -y ${missing.join(' ')}'`,
    );
  }
  const started = Date.now();
  log(`installing Debian packages the tests use: ${missing.join(', ')} (apt-get; first run only)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // Wait for another apt/dpkg run (unattended upgrades, a second test run) instead of failing at
  // once on its lock.
  const lockWait = ['-o', 'DPkg::Lock::Timeout=600'];
  await run('apt-get', [...lockWait, 'update', '-q'], { env, maxBuffer: 1 << 26 });
  await run('apt-get', [...lockWait, 'install', '-y', '-q', '--no-install-recommends', ...missing], {
    env,
    maxBuffer: 1 << 26,
  });
  log(`installed ${missing.join(', ')} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}
