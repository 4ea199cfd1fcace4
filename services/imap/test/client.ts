/**
 * A minimal IMAP test client over a real socket: writes exactly the bytes given and collects
 * exactly the bytes the server sends, so tests can compare whole conversations.
 */
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

export class TestClient {
  #socket: Socket | TLSSocket;
  #buffer = Buffer.alloc(0);
  #waiters: (() => void)[] = [];
  #closed = false;

  private constructor(socket: Socket | TLSSocket) {
    this.#socket = socket;
    this.#listen(socket);
  }

  #listen(socket: Socket | TLSSocket): void {
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#wake();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#wake();
    });
    socket.on('error', () => undefined);
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  static async connect(port: number, tls = false): Promise<TestClient> {
    const socket = tls
      ? tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false })
      : connect({ port, host: '127.0.0.1' });
    await new Promise<void>((resolve, reject) => {
      socket.once(tls ? 'secureConnect' : 'connect', () => resolve());
      socket.once('error', reject);
    });
    return new TestClient(socket);
  }

  get closed(): boolean {
    return this.#closed;
  }

  write(data: string | Buffer): void {
    this.#socket.write(data);
  }

  /** Upgrades to TLS (after `OK Begin TLS`). */
  async startTls(): Promise<void> {
    const plain = this.#socket;
    plain.removeAllListeners('data');
    const secure = tlsConnect({ socket: plain, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.#socket = secure;
    this.#listen(secure);
  }

  /** Waits until the received bytes satisfy `done`; returns and consumes them. */
  async readUntil(done: (text: string) => number, timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = this.#buffer.toString('latin1');
      const end = done(text);
      if (end >= 0) {
        this.#buffer = this.#buffer.subarray(end);
        return text.slice(0, end);
      }
      if (this.#closed) throw new Error(`connection closed; received so far:\n${text}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; received so far:\n${text}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Reads through the first line starting with `prefix` (e.g. the tagged response). */
  readLine(prefix: string, timeoutMs?: number): Promise<string> {
    return this.readUntil((text) => {
      const at = text.startsWith(prefix) ? 0 : text.indexOf(`\r\n${prefix}`);
      if (at < 0) return -1;
      const start = at === 0 && text.startsWith(prefix) ? 0 : at + 2;
      const end = text.indexOf('\r\n', start);
      return end < 0 ? -1 : end + 2;
    }, timeoutMs);
  }

  /** Sends `<tag> <command>\r\n` and returns everything up to and including the tagged response. */
  async command(tag: string, command: string | Buffer, timeoutMs?: number): Promise<string> {
    this.write(
      typeof command === 'string'
        ? `${tag} ${command}\r\n`
        : Buffer.concat([Buffer.from(`${tag} `), command, Buffer.from('\r\n')]),
    );
    return this.readLine(`${tag} `, timeoutMs);
  }

  /** Bytes received and not yet read, after waiting `ms` for more. */
  async drain(ms = 100): Promise<string> {
    await new Promise((r) => setTimeout(r, ms));
    const text = this.#buffer.toString('latin1');
    this.#buffer = Buffer.alloc(0);
    return text;
  }

  close(): void {
    this.#socket.destroy();
  }

  async waitClosed(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    if (!this.#closed) throw new Error('connection still open');
  }
}

/** Logs in over the plaintext port (allowed in tests) and returns the client. */
export async function loggedIn(
  port: number,
  user: { address: string; password: string },
): Promise<TestClient> {
  const client = await TestClient.connect(port);
  await client.readLine('* OK');
  const response = await client.command('L', `LOGIN ${user.address} ${quote(user.password)}`);
  if (!response.includes('L OK')) throw new Error(`login failed: ${response}`);
  return client;
}

export function quote(s: string): string {
  return `"${s.replace(/(["\\])/g, '\\$1')}"`;
}
