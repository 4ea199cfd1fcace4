import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { createWriteStream, mkdirSync, readFileSync, rmSync, writeFileSync, type WriteStream } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** Every child started through this module, so none outlives the test run or the stack. */
const living = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of living) child.kill('SIGKILL');
    releaseReservations();
  });
}

/**
 * Ports handed out by `freePort` come from below Linux's ephemeral range (32768+), so the kernel
 * never gives them to an outgoing connection or a `listen(0)`, and each is reserved with an
 * exclusive file until this process exits. Parallel test files (separate processes) therefore
 * never get the same port between "probed free" and "bound by the server we start".
 */
const PORT_MIN = 20_000;
const PORT_MAX = 32_000;
const reservationDir = join(tmpdir(), 'postmesh-port-reservations');
const reservedHere = new Set<number>();

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function reserve(port: number): boolean {
  mkdirSync(reservationDir, { recursive: true });
  const file = join(reservationDir, String(port));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      reservedHere.add(port);
      return true;
    } catch {
      // Taken: reclaim it only if its owner is gone.
      const owner = Number(readFileSync(file, { encoding: 'utf8', flag: 'r' }) || 0);
      if (owner && pidAlive(owner)) return false;
      rmSync(file, { force: true });
    }
  }
  return false;
}

function releaseReservations(): void {
  for (const port of reservedHere) rmSync(join(reservationDir, String(port)), { force: true });
  reservedHere.clear();
}

async function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A free TCP port on 127.0.0.1, reserved for this process (see above). */
export async function freePort(): Promise<number> {
  installExitHook();
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = PORT_MIN + randomInt(PORT_MAX - PORT_MIN);
    if (reservedHere.has(port) || !reserve(port)) continue;
    if (await bindable(port)) return port;
  }
  throw new Error(`no free port found between ${PORT_MIN} and ${PORT_MAX}`);
}

/** Resolve once something accepts TCP connections on host:port, or reject after `timeoutMs`. */
export async function waitForPort(
  port: number,
  host = '127.0.0.1',
  timeoutMs = 30_000,
  isAlive?: () => boolean,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect({ port, host });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (isAlive && !isAlive()) throw new Error(`process exited before ${host}:${port} accepted connections`);
    if (Date.now() > deadline) throw new Error(`nothing listened on ${host}:${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface ManagedProcessOptions {
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** Where stdout and stderr go (appended). */
  readonly logFile: string;
  readonly name: string;
  /**
   * Run in a process group of its own, so a terminal's Ctrl-C reaches only the parent, which
   * then stops its children in order (the local stack). Children still die with the parent.
   */
  readonly detached?: boolean;
  /** The signal `stop()` sends first (default SIGTERM); SIGKILL follows after the grace period. */
  readonly stopSignal?: NodeJS.Signals;
}

/** A child process with its output in a log file, stoppable gently (SIGTERM) or not (SIGKILL). */
export class ManagedProcess {
  private child: ChildProcess | undefined;
  private log: WriteStream | undefined;
  private exitPromise: Promise<number | null> = Promise.resolve(null);

  constructor(readonly options: ManagedProcessOptions) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves with the exit code (null when killed by a signal) once the current child exits. */
  get exited(): Promise<number | null> {
    return this.exitPromise;
  }

  start(): void {
    if (this.running) throw new Error(`${this.options.name} is already running`);
    installExitHook();
    mkdirSync(dirname(this.options.logFile), { recursive: true });
    this.log = createWriteStream(this.options.logFile, { flags: 'a' });
    // A failed log write must not crash the test runner; the log is a diagnostic.
    this.log.on('error', () => undefined);
    const child = spawn(this.options.command, [...this.options.args], {
      env: this.options.env ?? process.env,
      cwd: this.options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: this.options.detached ?? false,
    });
    this.child = child;
    living.add(child);
    child.stdout?.pipe(this.log, { end: false });
    child.stderr?.pipe(this.log, { end: false });
    this.exitPromise = new Promise((resolve) => {
      child.once('exit', (code) => {
        living.delete(child);
        resolve(code);
      });
      child.once('error', () => {
        living.delete(child);
        resolve(-1);
      });
    });
  }

  /** SIGTERM (or `stopSignal`), then SIGKILL if it has not exited within `graceMs`. */
  async stop(graceMs = 10_000): Promise<number | null> {
    const child = this.child;
    if (!child || !this.running) return this.exitPromise;
    child.kill(this.options.stopSignal ?? 'SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    const code = await this.exitPromise;
    clearTimeout(timer);
    // Output can still arrive after 'exit' (the pipes drain later, and a child's own children may
    // hold them): detach the pipes before ending the log, or the next chunk is a write after end.
    child.stdout?.unpipe();
    child.stderr?.unpipe();
    this.log?.end();
    return code;
  }

  /** `kill -9`: no chance to clean up, as in a crash or a power cut of the process. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    child.kill('SIGKILL');
    await this.exitPromise;
  }
}
