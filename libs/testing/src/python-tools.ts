/**
 * Python tools the tests run (pinned in tools/deps.json under "pypi"), installed by `npm test`
 * (`npm run deps`) into a virtual environment under `.bin/python`, so a fresh CI machine gets
 * them from PyPI with pip and nothing is installed by hand. A stamp of the pins makes a changed
 * pin reinstall.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { binDir, repoRoot } from './repo.js';

const run = promisify(execFile);

function pins(): Record<string, string> {
  const deps = JSON.parse(readFileSync(join(repoRoot(), 'tools', 'deps.json'), 'utf8')) as {
    pypi?: Record<string, string>;
  };
  return Object.fromEntries(Object.entries(deps.pypi ?? {}).filter(([name]) => !name.startsWith('$')));
}

export function pythonVenv(): string {
  return join(binDir(), 'python');
}

/** Path of an executable the pinned Python packages install (e.g. `kubernetes-validate`). */
export function pythonTool(name: string): string {
  const path = join(pythonVenv(), 'bin', name);
  if (!existsSync(path)) {
    throw new Error(
      `${name} is not installed at ${path}: run 'npm run deps' (it installs tools/deps.json "pypi").`,
    );
  }
  return path;
}

export async function installPythonTools(log: (line: string) => void = () => {}): Promise<void> {
  const wanted = pins();
  const requirements = Object.entries(wanted).map(([name, version]) => `${name}==${version}`);
  const stamp = join(pythonVenv(), '.pins');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === requirements.join('\n')) return;
  log(`installing Python tools into .bin/python: ${requirements.join(', ')}`);
  rmSync(pythonVenv(), { recursive: true, force: true });
  await run('python3', ['-m', 'venv', pythonVenv()]);
  await run(
    join(pythonVenv(), 'bin', 'pip'),
    ['install', '--quiet', '--disable-pip-version-check', ...requirements],
    {
      maxBuffer: 1 << 24,
    },
  );
  writeFileSync(stamp, requirements.join('\n'));
}
