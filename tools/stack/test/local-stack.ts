/**
 * `npm start` as the stack suites run it: the stack's CLI as a child process, every port it opens
 * moved to a free one of 127.0.0.1, its data in the suite's directory, and never left running.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { freePort, repoRoot } from '@postmesh/testing';

/** What the stack writes to `<data dir>/stack.json` (the parts the suites read). */
export interface StackJson {
  endpoints: { name: string; port: number; listening: boolean; process: string }[];
  ops: { process: string; services: string[]; port: number; ready: string; metrics: string }[];
  processes: { name: string; pid: number }[];
  /** Storage's database: its SQLite file (POSTMESH_STACK_DB=sqlite) or FerretDB's port. */
  database:
    | { kind: 'sqlite'; file: string; process: string }
    | { kind: 'ferretdb'; backend: string; url: string; port: number; process: 'ferretdb' };
  /** Partitions each storage replica owns, with POSTMESH_STACK_STORAGE_REPLICAS > 1. */
  partitions?: Record<string, number>;
}

export const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The `POSTMESH_<name>` ports every stack opens. */
const STACK_PORTS = [
  'NATS_PORT',
  'NATS_MONITOR_PORT',
  'MONGO_PORT',
  'SMTP_PORT',
  'SUBMISSION_PORT',
  'SUBMISSIONS_PORT',
  'IMAP_PORT',
  'IMAPS_PORT',
  'MANAGESIEVE_PORT',
  'HTTP_PORT',
  'GRPC_PORT',
  'SMTP_INBOUND_OPS_PORT',
  'STORAGE_OPS_PORT',
  'IMAP_OPS_PORT',
  'MTA_DELIVERY_OPS_PORT',
  'ADMIN_OPS_PORT',
];

/** A free port for each of the stack's `POSTMESH_*_PORT` variables and for each of `extra`. */
export async function freeStackPorts(extra: readonly string[] = []): Promise<Record<string, string>> {
  const ports: Record<string, string> = {};
  for (const name of [...STACK_PORTS, ...extra]) ports[`POSTMESH_${name}`] = String(await freePort());
  return ports;
}

/** A running `postmesh-stack start`. */
export interface LocalStack {
  /** What it printed so far (stdout and stderr). */
  output(): string;
  /** Its exit code, once it exits. */
  readonly exited: Promise<number | null>;
  /** Waits for stack.json and the "Press Ctrl-C" status, and reads stack.json. */
  untilUp(timeoutMs: number): Promise<StackJson>;
  /** Ctrl-C. */
  interrupt(): void;
}

/**
 * Starts the stack with `env` (on top of this process's, the ports, the data directory and no
 * build), runs `use`, and stops the stack with SIGINT if it still runs, whatever `use` did.
 */
export async function withLocalStack(
  options: { dataDir: string; ports: Record<string, string>; env: Record<string, string> },
  use: (stack: LocalStack) => Promise<void>,
): Promise<void> {
  const child = spawn(
    process.execPath,
    [join(repoRoot(), 'tools', 'stack', 'bin', 'postmesh-stack.mjs'), 'start'],
    {
      env: {
        ...process.env,
        ...options.ports,
        POSTMESH_DATA_DIR: options.dataDir,
        POSTMESH_SKIP_BUILD: '1',
        ...options.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stack: LocalStack = {
    output: () => output,
    exited,
    async untilUp(timeoutMs) {
      const stackFile = join(options.dataDir, 'stack.json');
      const deadline = Date.now() + timeoutMs;
      while (!existsSync(stackFile) || !output.includes('Press Ctrl-C')) {
        if (Date.now() > deadline || child.exitCode !== null) {
          throw new Error(`stack did not come up:\n${output}`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
      return JSON.parse(readFileSync(stackFile, 'utf8')) as StackJson;
    },
    interrupt: () => child.kill('SIGINT'),
  };
  try {
    await use(stack);
  } finally {
    // A failed check must not leave the stack running (it stops its children on SIGINT).
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGINT');
      await exited;
    }
  }
}

/**
 * Signs in to the console's API as its owner (admin@example.test, the stack's dev password) and
 * answers the API's base URL and the headers that authenticate a request (session cookie, CSRF).
 */
export async function consoleSession(
  httpPort: string | undefined,
  password: string,
): Promise<{ api: string; auth: { cookie: string; 'x-csrf-token': string } }> {
  const api = `http://127.0.0.1:${httpPort}`;
  const login = await fetch(`${api}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'admin@example.test', password }),
  });
  if (login.status !== 200) throw new Error(`console login answered ${login.status}`);
  const { csrfToken } = (await login.json()) as { csrfToken: string };
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  return { api, auth: { cookie, 'x-csrf-token': csrfToken } };
}

/** The UID of the message with `subject` in the selected mailbox, searched for up to 30 s. */
/** An IMAP client (not connected) for `user` on the stack's plaintext IMAP port. */
export function stackImap(ports: Readonly<Record<string, string>>, user: string, pass: string): ImapFlow {
  return new ImapFlow({
    host: '127.0.0.1',
    port: Number(ports.POSTMESH_IMAP_PORT),
    secure: false,
    doSTARTTLS: false,
    auth: { user, pass },
    logger: false,
  });
}

export async function uidBySubject(client: ImapFlow, subject: string): Promise<number | undefined> {
  for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
    const found = await client.search({ subject }, { uid: true });
    const uid = Array.isArray(found) ? found[0] : undefined;
    if (uid !== undefined) return uid;
    await new Promise((r) => setTimeout(r, 300));
  }
  return undefined;
}
