/**
 * A raw ManageSieve client for exact-bytes tests: sends bytes, returns every byte the server
 * answers up to and including the next OK/NO/BYE line (RFC 5804 §1.3), skipping over the
 * octets of `{n}` literals so a script's text cannot end a response early.
 */
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

export class SieveTestClient {
  #buffer = Buffer.alloc(0);
  #waiters: (() => void)[] = [];
  #closed = false;

  private constructor(private socket: Socket | TLSSocket) {
    this.#listen(socket);
  }

  static async connect(port: number): Promise<SieveTestClient> {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new SieveTestClient(socket);
  }

  get closed(): boolean {
    return this.#closed;
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

  /** The greeting (or anything else pending) up to its OK/NO/BYE line. */
  async response(timeoutMs = 15_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const end = completeResponse(this.#buffer);
      if (end !== null) {
        const text = this.#buffer.subarray(0, end).toString('utf8');
        this.#buffer = this.#buffer.subarray(end);
        return text;
      }
      if (this.#closed) return `${this.#buffer.toString('utf8')}<closed>`;
      if (Date.now() > deadline)
        throw new Error(`no complete response; got ${JSON.stringify(String(this.#buffer))}`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  /** One line (a SASL challenge), CRLF included. */
  async line(timeoutMs = 15_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const crlf = this.#buffer.indexOf('\r\n');
      if (crlf >= 0) {
        const text = this.#buffer.subarray(0, crlf + 2).toString('utf8');
        this.#buffer = this.#buffer.subarray(crlf + 2);
        return text;
      }
      if (this.#closed || Date.now() > deadline) throw new Error('no line');
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  /** Sends `command` (CRLF added unless it is a Buffer) and returns the response. */
  async send(command: string | Buffer): Promise<string> {
    this.socket.write(typeof command === 'string' ? `${command}\r\n` : command);
    return this.response();
  }

  write(bytes: string | Buffer): void {
    this.socket.write(bytes);
  }

  /** After `STARTTLS` answered OK: the TLS handshake over the same connection. */
  async startTls(): Promise<void> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    const secure = tlsConnect({ socket: plain, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    this.socket = secure;
    this.#listen(secure);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** The length of the first complete response in `buf`, or null. */
function completeResponse(buf: Buffer): number | null {
  let pos = 0;
  for (;;) {
    const crlf = buf.indexOf('\r\n', pos);
    if (crlf < 0) return null;
    const line = buf.toString('latin1', pos, crlf);
    if (/^(OK|NO|BYE)\b/.test(line)) return crlf + 2;
    const literal = /\{(\d+)\}$/.exec(line);
    pos = crlf + 2 + (literal === null ? 0 : Number(literal[1]));
    if (pos > buf.length) return null;
  }
}

/** `AUTHENTICATE "PLAIN"` initial response for a login and password (RFC 4616). */
export function plain(login: string, password: string, authzid = ''): string {
  return Buffer.from(`${authzid}\0${login}\0${password}`).toString('base64');
}
