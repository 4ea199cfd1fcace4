/**
 * One connection to a backend (a storage-imap replica's proxy listener, ADR 0010): TCP, a PROXY
 * protocol v1 header naming the client (haproxy.org proxy-protocol.txt §2.1), TLS verified against
 * the internal CA with the proxy's own client certificate (the backend trusts the header only
 * from that identity), then the backend's greeting.
 */
import { connect as connectTcp, isIP, isIPv4, isIPv6, type Socket } from 'node:net';
import { connect as connectTls, type TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';

/** The internal identity material the proxy presents to backends; null: plaintext (development). */
export interface BackendTls {
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
  /** The name the backends' certificate is checked against; default the address's host. */
  readonly servername?: string;
}

/** Where the client connected from and to, for the PROXY header. */
export interface ClientEndpoints {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
}

export interface OpenBackend {
  readonly socket: Duplex;
  /** Sends `bytes`, then reads response lines until the one tagged `tag` (bounded). */
  exchange(
    tag: string,
    bytes: Buffer,
    timeoutMs: number,
  ): Promise<{ lines: Buffer; tagged: string; rest: Buffer }>;
  close(): void;
}

/** Longest answer to a replayed LOGIN/AUTHENTICATE the proxy reads before giving up. */
const MAX_ANSWER = 64 * 1024;

export function splitHostPort(address: string): { host: string; port: number } {
  const match = /^\[?([^\]]*?)\]?:(\d+)$/.exec(address);
  if (match === null) throw new Error(`not host:port: ${address}`);
  return { host: match[1] ?? '', port: Number(match[2]) };
}

/** A PROXY v1 line; both addresses in one family (an IPv4 client of an IPv6 listener is mapped). */
export function proxyLine(endpoints: ClientEndpoints): string {
  const unmapped = (a: string): string => a.replace(/^::ffff:(?=\d+\.)/, '');
  const remote = unmapped(endpoints.remoteAddress);
  const local = unmapped(endpoints.localAddress);
  if (isIPv4(remote) && isIPv4(local)) {
    return `PROXY TCP4 ${remote} ${local} ${endpoints.remotePort} ${endpoints.localPort}\r\n`;
  }
  const as6 = (a: string): string => (isIPv4(a) ? `::ffff:${a}` : isIPv6(a) ? a : '::');
  return `PROXY TCP6 ${as6(remote)} ${as6(local)} ${endpoints.remotePort} ${endpoints.localPort}\r\n`;
}

export async function openBackend(options: {
  readonly address: string;
  readonly client: ClientEndpoints;
  readonly tls: BackendTls | null;
  readonly timeoutMs: number;
}): Promise<OpenBackend> {
  const { host, port } = splitHostPort(options.address);
  const raw: Socket = connectTcp({ host, port, allowHalfOpen: true });
  raw.setNoDelay(true);
  let socket: Duplex = raw;
  const timer = setTimeout(
    () => raw.destroy(new Error(`backend ${options.address}: no greeting in time`)),
    options.timeoutMs,
  );
  try {
    await new Promise<void>((resolve, reject) => {
      raw.once('connect', resolve);
      raw.once('error', reject);
    });
    raw.write(proxyLine(options.client));
    if (options.tls !== null) {
      const name = options.tls.servername ?? host;
      const secure: TLSSocket = connectTls({
        socket: raw,
        ca: options.tls.ca,
        cert: options.tls.cert,
        key: options.tls.key,
        // SNI takes no IP address (RFC 6066 §3); the certificate is checked against `host` then.
        ...(isIP(name) === 0 ? { servername: name } : { host: name }),
        minVersion: 'TLSv1.2',
      });
      await new Promise<void>((resolve, reject) => {
        secure.once('secureConnect', resolve);
        secure.once('error', reject);
        raw.once('close', () => reject(new Error(`backend ${options.address} closed during TLS`)));
      });
      socket = secure;
    }
    const reader = new LineReader(socket);
    const greeting = await reader.line();
    if (!greeting.toString('latin1').startsWith('* OK')) {
      throw new Error(`backend ${options.address} greeted with ${greeting.toString('latin1').slice(0, 80)}`);
    }
    clearTimeout(timer);
    socket.on('error', () => undefined);
    return {
      socket,
      async exchange(tag, bytes, timeoutMs) {
        const deadline = setTimeout(
          () => socket.destroy(new Error(`backend ${options.address}: no answer in time`)),
          timeoutMs,
        );
        try {
          socket.write(bytes);
          const lines: Buffer[] = [];
          let size = 0;
          const prefix = `${tag} `;
          for (;;) {
            const line = await reader.line();
            size += line.length;
            if (size > MAX_ANSWER) throw new Error(`backend ${options.address}: answer too long`);
            lines.push(line);
            const text = line.toString('latin1');
            if (text.startsWith(prefix)) {
              return {
                lines: Buffer.concat(lines),
                tagged: text.slice(prefix.length),
                rest: reader.detach(),
              };
            }
          }
        } finally {
          clearTimeout(deadline);
        }
      },
      close() {
        socket.destroy();
      },
    };
  } catch (error) {
    clearTimeout(timer);
    socket.destroy();
    raw.destroy();
    throw error;
  }
}

/** Reads CRLF-terminated lines off a stream; `detach` hands back what was read beyond them. */
class LineReader {
  #buffer: Buffer = Buffer.alloc(0);
  #waiting: { resolve: () => void; reject: (e: Error) => void } | undefined;
  #failed: Error | undefined;
  readonly #onData = (chunk: Buffer): void => {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    this.#waiting?.resolve();
  };
  readonly #onEnd = (): void => this.#fail(new Error('backend closed the connection'));
  readonly #onError = (error: Error): void => this.#fail(error);

  constructor(private readonly stream: Duplex) {
    stream.on('data', this.#onData);
    stream.once('end', this.#onEnd);
    stream.once('close', this.#onEnd);
    stream.once('error', this.#onError);
  }

  #fail(error: Error): void {
    this.#failed ??= error;
    this.#waiting?.reject(error);
  }

  /** The next line with its CRLF. */
  async line(): Promise<Buffer> {
    for (;;) {
      const lf = this.#buffer.indexOf(0x0a);
      if (lf >= 0) {
        const line = this.#buffer.subarray(0, lf + 1);
        this.#buffer = this.#buffer.subarray(lf + 1);
        return line;
      }
      if (this.#buffer.length > MAX_ANSWER) throw new Error('backend line too long');
      if (this.#failed !== undefined) throw this.#failed;
      await new Promise<void>((resolve, reject) => (this.#waiting = { resolve, reject }));
      this.#waiting = undefined;
    }
  }

  /** Stops reading (the stream is paused) and returns the unread bytes. */
  detach(): Buffer {
    this.stream.off('data', this.#onData);
    this.stream.off('end', this.#onEnd);
    this.stream.off('close', this.#onEnd);
    this.stream.off('error', this.#onError);
    this.stream.pause();
    const rest = this.#buffer;
    this.#buffer = Buffer.alloc(0);
    return rest;
  }
}
