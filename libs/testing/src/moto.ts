/**
 * A local S3-compatible server for the S3 blob store's tests: `moto` in server mode (PyPI
 * `moto[server]`, pinned in tools/deps.json "pypi" and installed with the other Python tools into
 * `.bin/python` by `npm run deps`, or here on first use), started on 127.0.0.1 on a free port.
 * S3 itself cannot run here.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ManagedProcess, freePort, waitForPort } from './process.js';
import { installPythonTools, pythonVenv } from './python-tools.js';

const run = promisify(execFile);

async function motoInstalled(python: string): Promise<boolean> {
  try {
    await run(python, ['-c', 'import moto.server']);
    return true;
  } catch {
    return false;
  }
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
    const python = join(pythonVenv(), 'bin', 'python');
    if (!(await motoInstalled(python))) await installPythonTools();
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'postmesh-moto-'));
    const proc = new ManagedProcess({
      name: 'moto',
      command: python,
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
