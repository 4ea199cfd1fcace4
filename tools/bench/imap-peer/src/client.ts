/**
 * A small IMAP client for benchmarks (RFC 9051 / RFC 3501 wire format): one tagged command at a
 * time, the response read whole (untagged lines, server literals `{n}` included) and timed from
 * the first byte written to the tagged status line. It keeps the view of the selected mailbox a
 * client must keep (RFC 9051 §7.4.1: `* n EXISTS` and `* n EXPUNGE` change the message count), so
 * the stress phase only ever names sequence numbers the server has announced.
 */
import { connect, type Socket } from 'node:net';

export type Status = 'OK' | 'NO' | 'BAD';

export interface Reply {
  readonly status: Status;
  /** The tagged line without the tag, e.g. `OK [READ-WRITE] SELECT completed`. */
  readonly text: string;
  /** Untagged lines, literals folded in as `{n}` placeholders. */
  readonly untagged: readonly string[];
  readonly ms: number;
}

/** The connection ended (BYE, reset, timeout) while a command was outstanding. */
export class ConnectionLost extends Error {
  override readonly name = 'ConnectionLost';
}

interface Pending {
  readonly tag: string;
  readonly started: number;
  readonly untagged: string[];
  readonly resolve: (reply: Reply) => void;
  readonly reject: (error: Error) => void;
  readonly onContinue?: () => void;
}

export class ImapClient {
  #buffer: Buffer = Buffer.alloc(0);
  #pending: Pending | null = null;
  #nextTag = 1;
  #closed: Error | null = null;
  #greeting: ((line: string) => void) | null = null;
  /** Messages in the selected mailbox, as announced by the server. */
  exists = 0;
  capabilities = new Set<string>();

  private constructor(
    private readonly socket: Socket,
    private readonly timeoutMs: number,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
      this.#drain();
    });
    const lost = (why: string): void => {
      if (this.#closed !== null) return;
      this.#closed = new ConnectionLost(why);
      this.#pending?.reject(this.#closed);
      this.#pending = null;
    };
    socket.on('error', (error) => lost(`socket error: ${error.message}`));
    socket.on('close', () => lost('connection closed by the server'));
    socket.setTimeout(timeoutMs, () => {
      lost(`no answer in ${timeoutMs} ms`);
      socket.destroy();
    });
  }

  static async open(host: string, port: number, timeoutMs = 60_000): Promise<ImapClient> {
    const socket = connect({ host, port });
    const client = new ImapClient(socket, timeoutMs);
    const greeting = await new Promise<string>((resolve, reject) => {
      client.#greeting = resolve;
      socket.once('error', reject);
      socket.once('close', () => reject(new ConnectionLost('closed before the greeting')));
    });
    if (!greeting.startsWith('* OK')) throw new ConnectionLost(`greeting: ${greeting}`);
    const caps = /\[CAPABILITY ([^\]]*)\]/i.exec(greeting)?.[1];
    if (caps === undefined) {
      const reply = await client.command('CAPABILITY');
      const line = reply.untagged.find((l) => /^\* CAPABILITY /i.test(l)) ?? '';
      client.#setCapabilities(line.slice('* CAPABILITY '.length));
    } else client.#setCapabilities(caps);
    return client;
  }

  #setCapabilities(list: string): void {
    this.capabilities = new Set(list.toUpperCase().split(' ').filter(Boolean));
  }

  /** Sends `<tag> <text>` and waits for the tagged reply. */
  command(text: string): Promise<Reply> {
    return this.#send(Buffer.from(`${text}\r\n`, 'utf8'), text);
  }

  /**
   * APPEND a message (RFC 9051 §6.3.12), with a non-synchronizing literal where the server
   * announced LITERAL+ or LITERAL- (RFC 7888) and the message is small enough for LITERAL-,
   * else a synchronizing one that waits for the server's `+`.
   */
  append(mailbox: string, message: Buffer, flags = ''): Promise<Reply> {
    const nonSync =
      this.capabilities.has('LITERAL+') || (this.capabilities.has('LITERAL-') && message.length <= 4096);
    const head = `APPEND ${mailbox}${flags === '' ? '' : ` (${flags})`} {${message.length}${nonSync ? '+' : ''}}\r\n`;
    if (nonSync)
      return this.#send(Buffer.concat([Buffer.from(head), message, Buffer.from('\r\n')]), 'APPEND');
    return this.#send(Buffer.from(head), 'APPEND', () => {
      this.socket.write(Buffer.concat([message, Buffer.from('\r\n')]));
    });
  }

  #send(bytes: Buffer, what: string, onContinue?: () => void): Promise<Reply> {
    if (this.#closed !== null) return Promise.reject(this.#closed);
    if (this.#pending !== null) return Promise.reject(new Error(`${what}: a command is already running`));
    const tag = `t${this.#nextTag++}`;
    return new Promise<Reply>((resolve, reject) => {
      this.#pending = {
        tag,
        started: performance.now(),
        untagged: [],
        resolve,
        reject,
        ...(onContinue === undefined ? {} : { onContinue }),
      };
      this.socket.write(Buffer.concat([Buffer.from(`${tag} `), bytes]));
    });
  }

  /** Splits the input into response lines, reading server literals (`{n}` at a line's end) whole. */
  #drain(): void {
    for (;;) {
      let scan = 0;
      let line = '';
      for (;;) {
        const end = this.#buffer.indexOf('\r\n', scan);
        if (end < 0) return;
        const piece = this.#buffer.toString('latin1', scan, end);
        const literal = /\{(\d+)\}$/.exec(piece);
        if (literal === null) {
          line += piece;
          scan = end + 2;
          break;
        }
        const size = Number(literal[1]);
        if (this.#buffer.length < end + 2 + size) return; // wait for the whole literal
        line += piece;
        scan = end + 2 + size;
      }
      this.#buffer = this.#buffer.subarray(scan);
      this.#onLine(line);
    }
  }

  #onLine(line: string): void {
    if (this.#greeting !== null) {
      const done = this.#greeting;
      this.#greeting = null;
      done(line);
      return;
    }
    const pending = this.#pending;
    if (line.startsWith('+')) {
      pending?.onContinue?.();
      return;
    }
    if (line.startsWith('* ')) {
      const counted = /^\* (\d+) (EXISTS|EXPUNGE)\b/i.exec(line);
      if (counted !== null) {
        const n = Number(counted[1]);
        if (counted[2]!.toUpperCase() === 'EXISTS') this.exists = n;
        else this.exists = Math.max(0, this.exists - 1);
      }
      const caps = /^\* (?:OK \[)?CAPABILITY ([^\]]*)/i.exec(line);
      if (caps !== null) this.#setCapabilities(caps[1]!);
      pending?.untagged.push(line);
      return;
    }
    if (pending === null || !line.startsWith(`${pending.tag} `)) return;
    this.#pending = null;
    const text = line.slice(pending.tag.length + 1);
    const status = text.slice(0, text.indexOf(' ') < 0 ? text.length : text.indexOf(' ')).toUpperCase();
    pending.resolve({
      status: status === 'OK' || status === 'NO' ? status : 'BAD',
      text,
      untagged: pending.untagged,
      ms: performance.now() - pending.started,
    });
  }

  get closed(): boolean {
    return this.#closed !== null;
  }

  close(): void {
    this.socket.destroy();
  }
}
