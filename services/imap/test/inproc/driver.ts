/**
 * Runs real IMAP sessions (src/session.ts, the production command table) over in-memory pipes
 * against the in-memory Mailstore (fake-mailstore.ts): no sockets, no child processes, no NATS.
 * A test writes the client's bytes and reads back exactly what the server wrote.
 *
 *   const imap = new InprocImap();
 *   const c = await imap.login();              // greeting read, LOGIN done as alice
 *   expect(await c.command('a NOOP')).toEqual(['a OK NOOP completed']);
 *   await imap.close();
 */
import { Duplex } from 'node:stream';
import type { AuthThrottle } from '@postmesh/bus';
import { directory as dir } from '@postmesh/contracts';
import { createLogger } from '@postmesh/telemetry';
import { SessionClock } from '../../src/clock.js';
import type { ImapServices, SessionLimits } from '../../src/commands/context.js';
import { Session } from '../../src/session.js';
import type { Directory } from '../../src/storage.js';
import { FakeMailstore, type FakeUser } from './fake-mailstore.js';

/** The server end of an in-memory connection. */
class Pipe extends Duplex {
  readonly chunks: Buffer[] = [];
  #waiters: (() => void)[] = [];
  override _read(): void {}
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.chunks.push(Buffer.from(chunk));
    for (const wake of this.#waiters.splice(0)) wake();
    done();
  }
  override _final(done: (error?: Error | null) => void): void {
    // The server ended its side: end ours too, so the stream closes as a socket would.
    this.push(null);
    for (const wake of this.#waiters.splice(0)) wake();
    done();
  }
  /** Resolves at the next write of the server (or when it ends). */
  written(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
}

export const TEST_LIMITS: SessionLimits = {
  appendLimit: 64 * 1024,
  preAuthLiteralLimit: 4096,
  maxLineLength: 8 * 1024,
  idleTimeoutMs: 30 * 60_000,
  preAuthTimeoutMs: 60_000,
  commandRate: 10_000,
  commandBurst: 10_000,
  idlePollMs: 60_000,
  maxAuthFailuresPerConnection: 3,
};

export interface ConnectOptions {
  readonly limits?: Partial<SessionLimits>;
  /** Plaintext LOGIN without TLS (default true: the in-process suite has no TLS). */
  readonly allowPlaintext?: boolean;
  /** STARTTLS is offered (default false: no certificate in process). */
  readonly starttls?: boolean;
}

const WAIT_MS = 3_000;

/** The client end: writes lines, reads the server's output as text (latin1: bytes as chars). */
export class Connection {
  #read = 0;
  constructor(
    readonly pipe: Pipe,
    readonly session: Session,
  ) {}

  /** Everything the server wrote so far. */
  get output(): string {
    return Buffer.concat(this.pipe.chunks).toString('latin1');
  }

  /** Raw bytes the server wrote so far (COMPRESS). */
  get bytes(): Buffer {
    return Buffer.concat(this.pipe.chunks);
  }

  get ended(): boolean {
    return this.pipe.writableFinished;
  }

  write(data: string | Buffer): void {
    this.pipe.push(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** Waits until the unread output contains `marker`; returns the unread output up to its end. */
  async until(marker: string | RegExp, timeoutMs = WAIT_MS): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = this.output.slice(this.#read);
      const match = typeof marker === 'string' ? indexEnd(text, marker) : regexEnd(text, marker);
      if (match >= 0) {
        this.#read += match;
        return text.slice(0, match);
      }
      if (this.ended) throw new Error(`connection closed before ${String(marker)}; got:\n${text}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${String(marker)} within ${timeoutMs} ms; got:\n${text}`);
      await Promise.race([this.pipe.written(), new Promise((r) => setTimeout(r, Math.min(left, 100)))]);
    }
  }

  /** Output not read yet (without waiting). */
  unread(): string {
    const text = this.output.slice(this.#read);
    this.#read += text.length;
    return text;
  }

  /**
   * Sends one command (CRLF added unless `raw` already ends a line) and returns the response
   * lines up to and including the tagged one, without their CRLF.
   */
  async command(raw: string, timeoutMs = WAIT_MS): Promise<string[]> {
    const tag = raw.slice(0, raw.indexOf(' '));
    this.write(raw.endsWith('\r\n') ? raw : `${raw}\r\n`);
    return lines(
      await this.until(new RegExp(`(^|\\r\\n)${escape(tag)} (OK|NO|BAD)[^\\r\\n]*\\r\\n`), timeoutMs),
    );
  }

  /** The unread output up to and including the next line with `marker`, as lines. */
  async lines(marker: string | RegExp, timeoutMs = WAIT_MS): Promise<string[]> {
    const text = await this.until(marker, timeoutMs);
    const rest = this.output.slice(this.#read);
    const eol = rest.indexOf('\r\n');
    if (eol >= 0 && !text.endsWith('\r\n')) {
      this.#read += eol + 2;
      return lines(text + rest.slice(0, eol + 2));
    }
    return lines(text);
  }
}

function indexEnd(text: string, marker: string): number {
  const at = text.indexOf(marker);
  return at < 0 ? -1 : at + marker.length;
}

function regexEnd(text: string, marker: RegExp): number {
  const match = marker.exec(text);
  return match === null ? -1 : match.index + match[0].length;
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Response text → lines without CRLF (a literal's CRLFs split it too). */
export function lines(text: string): string[] {
  const out = text.split('\r\n');
  if (out.at(-1) === '') out.pop();
  return out;
}

const allowAll: AuthThrottle = {
  attempt: () =>
    Promise.resolve({
      kind: 'allowed',
      delayMs: 0,
      ticket: { ipKey: 'ip.test', accountKey: 'account.test', shared: false },
    }),
  succeeded: () => Promise.resolve(),
  release: () => Promise.resolve(),
  failed: () => undefined,
};

/** One in-process IMAP server: a fake mailstore with users alice and bob, and its sessions. */
export class InprocImap {
  readonly store = new FakeMailstore();
  readonly alice: FakeUser;
  readonly bob: FakeUser;
  readonly #clock = new SessionClock(50);
  readonly #sessions: Session[] = [];

  constructor() {
    this.alice = this.store.addUser('alice@example.test', 'alice-pw');
    this.bob = this.store.addUser('bob@example.test', 'bob-pw');
  }

  readonly directory: Directory = {
    authenticate: (request) => {
      const user = this.store.userByAddress(request.address);
      if (user === undefined || user.password !== request.password) {
        return Promise.resolve({
          result: {
            $case: 'failure',
            value: { reason: dir.AuthFailureReason.INVALID_CREDENTIALS },
          },
        });
      }
      return Promise.resolve({
        result: {
          $case: 'success',
          value: dir.AuthSuccess.fromPartial({ user: { id: user.id, address: user.address } }),
        },
      });
    },
  };

  services(options: ConnectOptions = {}): ImapServices {
    return {
      mailstore: this.store,
      directory: this.directory,
      throttle: allowAll,
      logger: createLogger('imap-inproc', 'silent'),
      limits: { ...TEST_LIMITS, ...options.limits },
      allowPlaintext: options.allowPlaintext ?? true,
      starttls: options.starttls ?? false,
      serverName: 'Postmesh IMAP',
      version: 'test',
    };
  }

  /** A new connection; the greeting is read and returned as `greeting`. */
  async connect(options: ConnectOptions = {}): Promise<Connection & { greeting: string }> {
    const pipe = new Pipe();
    const session = new Session({
      socket: pipe,
      remoteAddress: '127.0.0.1',
      tls: false,
      secureContext: null,
      services: this.services(options),
      id: this.#sessions.length + 1,
      subscribeChanges: (userId, onChange) => this.store.subscribe(userId, onChange),
      onClose: () => undefined,
      clock: this.#clock,
    });
    this.#sessions.push(session);
    void session.run();
    const connection = new Connection(pipe, session);
    const greeting = lines(await connection.until('\r\n'))[0] ?? '';
    return Object.assign(connection, { greeting });
  }

  /** A connection logged in as `user` (alice by default); the LOGIN response is consumed. */
  async login(user: FakeUser = this.alice, options: ConnectOptions = {}): Promise<Connection> {
    const connection = await this.connect(options);
    const response = await connection.command(`L1 LOGIN ${user.address} ${user.password}`);
    if (!response.at(-1)?.startsWith('L1 OK')) throw new Error(`login failed: ${response.join('\n')}`);
    return connection;
  }

  /** A logged-in connection with `mailbox` selected; the SELECT response is consumed. */
  async selected(mailbox = 'INBOX', user: FakeUser = this.alice): Promise<Connection> {
    const connection = await this.login(user);
    const response = await connection.command(`S1 SELECT ${mailbox}`);
    if (!response.at(-1)?.startsWith('S1 OK')) throw new Error(`select failed: ${response.join('\n')}`);
    return connection;
  }

  async close(): Promise<void> {
    await Promise.all(this.#sessions.splice(0).map((s) => s.close('test over')));
  }
}

/** A small RFC 5322 message with a few headers, CRLF line ends. */
export function message(
  options: {
    subject?: string;
    from?: string;
    to?: string;
    body?: string;
    date?: string;
    extra?: string;
  } = {},
): string {
  return (
    `From: ${options.from ?? 'Bob <bob@example.test>'}\r\n` +
    `To: ${options.to ?? 'Alice <alice@example.test>'}\r\n` +
    `Subject: ${options.subject ?? 'Hello'}\r\n` +
    `Date: ${options.date ?? 'Mon, 7 Dec 2026 10:00:00 +0000'}\r\n` +
    `Message-ID: <${(options.subject ?? 'hello').replace(/\W/g, '')}@example.test>\r\n` +
    (options.extra ?? '') +
    `\r\n` +
    `${options.body ?? 'Hi Alice.'}\r\n`
  );
}

/** A response line (read as latin1, one char per octet) as the UTF-8 text it carries. */
export function utf8(line: string): string {
  return Buffer.from(line, 'latin1').toString('utf8');
}
