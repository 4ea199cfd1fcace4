/**
 * A local S3-compatible server for the S3 blob store's tests: `moto` in server mode (PyPI
 * `moto[server]`, pinned in tools/deps.json `pip.moto`), installed on first use into a virtual
 * environment under `.bin/` and started on 127.0.0.1 on a free port. S3 itself cannot run here.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ManagedProcess, freePort, waitForPort } from './process.js';
import { binDir, repoRoot } from './repo.js';

const run = promisify(execFile);

function requirement(): string {
  const deps = JSON.parse(readFileSync(join(repoRoot(), 'tools', 'deps.json'), 'utf8')) as {
    pip?: { moto?: string };
  };
  const pin = deps.pip?.moto;
  if (pin === undefined) throw new Error('tools/deps.json has no pip.moto pin');
  return pin;
}

export function motoVenv(): string {
  return join(binDir(), 'moto-venv');
}

function stamp(): string {
  return join(motoVenv(), '.postmesh-requirement');
}

export function isMotoInstalled(): boolean {
  return existsSync(stamp()) && readFileSync(stamp(), 'utf8').trim() === requirement();
}

/**
 * Creates `.bin/moto-venv` with the pinned requirement unless it is there already. The venv is
 * built beside it and renamed into place, so a run cut short never leaves a half-installed one
 * that looks complete; it is run as `<venv>/bin/python -m moto.server`, which survives the move.
 */
export async function installMoto(log: (line: string) => void = () => {}): Promise<void> {
  if (isMotoInstalled()) return;
  const pin = requirement();
  const started = Date.now();
  log(`installing ${pin} into .bin/moto-venv (pip; first run only)`);
  const work = mkdtempSync(join(binDir(), '.moto-venv-'));
  try {
    await run('python3', ['-m', 'venv', work], { maxBuffer: 1 << 24 });
    await run(
      join(work, 'bin', 'python'),
      ['-m', 'pip', 'install', '--disable-pip-version-check', '-q', pin],
      {
        maxBuffer: 1 << 26,
        timeout: 15 * 60_000,
      },
    );
    writeFileSync(join(work, '.postmesh-requirement'), `${pin}\n`);
    rmSync(motoVenv(), { recursive: true, force: true });
    renameSync(work, motoVenv());
  } catch (error) {
    rmSync(work, { recursive: true, force: true });
    throw new Error(
      `could not install ${pin} with pip (python3 -m venv, then pip install): ${String(error)}`,
      {
        cause: error,
      },
    );
  }
  log(`installed ${pin} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

/** moto's S3 API on 127.0.0.1: `endpoint` for an S3 client with path-style addressing. */
export class MotoServer {
  private constructor(
    readonly process: ManagedProcess,
    readonly port: number,
    readonly dir: string,
  ) {}

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<MotoServer> {
    await installMoto();
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'postmesh-moto-'));
    const proc = new ManagedProcess({
      name: 'moto',
      command: join(motoVenv(), 'bin', 'python'),
      args: ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)],
      logFile: join(dir, 'moto.log'),
    });
    proc.start();
    try {
      await waitForPort(port, '127.0.0.1', 60_000, () => proc.running);
    } catch (error) {
      await proc.kill();
      throw new Error(`moto did not start: ${readFileSync(join(dir, 'moto.log'), 'utf8').slice(-2000)}`, {
        cause: error,
      });
    }
    return new MotoServer(proc, port, dir);
  }

  async stop(): Promise<void> {
    await this.process.stop(5_000);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
