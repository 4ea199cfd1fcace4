/** A tiny SMTP client over a raw socket, for tests that must send exactly the bytes they mean. */
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

export interface Reply {
  readonly code: number;
  readonly lines: readonly string[];
  readonly text: string;
}

export class WireClient {
  private buffer = '';
  private closed = false;
  private waiters: (() => void)[] = [];

  private constructor(private socket: Socket) {
    this.attach(socket);
  }

  private attach(socket: Socket): void {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buffer += d;
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {
      this.closed = true;
      this.wake();
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /**
   * `implicitTls`: TLS from the first octet (submissions, RFC 8314 §3.3); the test CA is not
   * checked. `localAddress` (plain connections): the client address the server sees.
   */
  static async open(
    port: number,
    { implicitTls = false, timeoutMs = 15_000, localAddress = undefined as string | undefined } = {},
  ): Promise<{ client: WireClient; greeting: Reply }> {
    const socket = implicitTls
      ? tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false })
      : connect({ port, host: '127.0.0.1', localAddress });
    await new Promise<void>((resolve, reject) => {
      socket.once(implicitTls ? 'secureConnect' : 'connect', resolve);
      socket.once('error', reject);
    });
    const client = new WireClient(socket);
    return { client, greeting: await client.reply(timeoutMs) };
  }

  /** RFC 3207: after the server's 220 to STARTTLS, the TLS handshake on the same connection. */
  async upgradeToTls(): Promise<void> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    plain.removeAllListeners('error');
    const secure = tlsConnect({ socket: plain, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    this.buffer = '';
    this.socket = secure;
    this.attach(secure);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** The next complete (possibly multi-line) reply, or a rejection on close/timeout. */
  async reply(timeoutMs = 15_000): Promise<Reply> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lines: string[] = [];
      let consumed = 0;
      let complete = false;
      for (;;) {
        const end = this.buffer.indexOf('\r\n', consumed);
        if (end < 0) break;
        const line = this.buffer.slice(consumed, end);
        consumed = end + 2;
        lines.push(line);
        if (/^\d{3}(?: |$)/.test(line)) {
          complete = true;
          break;
        }
      }
      if (complete) {
        this.buffer = this.buffer.slice(consumed);
        const last = lines.at(-1) ?? '';
        return { code: Number(last.slice(0, 3)), lines, text: lines.map((l) => l.slice(4)).join('\n') };
      }
      if (this.closed) throw new Error(`connection closed; pending ${JSON.stringify(this.buffer)}`);
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`no reply within ${timeoutMs} ms; pending ${JSON.stringify(this.buffer)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async command(line: string, timeoutMs?: number): Promise<Reply> {
    this.write(`${line}\r\n`);
    return this.reply(timeoutMs);
  }

  /** Resolves when the server has closed the connection (bounded). */
  async waitClosed(timeoutMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.closed;
  }

  close(): void {
    this.socket.destroy();
  }
}
