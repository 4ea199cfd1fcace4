/**
 * SMTP client side of RFC 5321 (with RFC 3207 STARTTLS and RFC 4954 AUTH) on nodemailer's
 * SMTPConnection, plus what an MTA needs around it: a pool of idle connections per destination
 * (reused for the next message: MAIL FROM after the previous 250, RSET after a failed
 * transaction), per-recipient results as values, and the TLS details of each session.
 */
import type { TLSSocket } from 'node:tls';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';

/**
 * - `opportunistic`: STARTTLS when offered, certificate not verified (RFC 7435); plaintext otherwise.
 * - `verified`: STARTTLS required and the certificate must be valid for `servername` (RFC 8461 §4.2).
 * - `implicit`: TLS from the first byte (RFC 8314), verified.
 * - `none`: never TLS (after an opportunistic handshake failure, RFC 7435 §4 fallback).
 */
export type TlsMode = 'opportunistic' | 'verified' | 'implicit' | 'none';

export interface Destination {
  /** Address (or name) to connect to. */
  readonly host: string;
  readonly port: number;
  /** Name the certificate is checked against and sent in SNI: the MX host name. */
  readonly servername: string;
  readonly tls: TlsMode;
  readonly auth?: { readonly user: string; readonly pass: string };
}

export interface TlsDetails {
  readonly protocol: string;
  readonly cipher: string;
  readonly verified: boolean;
}

export interface RecipientReply {
  readonly rcpt: string;
  readonly code: number;
  readonly reply: string;
}

export type SendResult =
  /** DATA answered 2xx for `accepted`; `rejected` got a non-2xx at RCPT. */
  | {
      readonly kind: 'sent';
      readonly accepted: readonly string[];
      readonly rejected: readonly RecipientReply[];
      readonly reply: string;
      readonly tls: TlsDetails | undefined;
    }
  /** The transaction was refused as a whole (MAIL FROM, every RCPT, DATA or after the data). */
  | {
      readonly kind: 'refused';
      readonly code: number;
      readonly reply: string;
      readonly rejected: readonly RecipientReply[];
      readonly tls: TlsDetails | undefined;
    }
  /** No SMTP transaction happened: connect, greeting, EHLO, TLS or AUTH failed. */
  | {
      readonly kind: 'no-connection';
      readonly reason: string;
      readonly tlsFailure: string | undefined;
      readonly code: number;
    };

export interface SmtpClientOptions {
  readonly hostname: string;
  readonly connectTimeoutMs: number;
  readonly commandTimeoutMs: number;
  readonly idleMs: number;
  readonly ca?: string;
}

interface SmtpError extends Error {
  code?: string;
  responseCode?: number;
  response?: string;
  command?: string;
  recipient?: string;
  rejectedErrors?: SmtpError[];
}

interface Idle {
  readonly conn: SMTPConnection;
  readonly timer: NodeJS.Timeout;
}

interface Live {
  readonly conn: SMTPConnection;
  closed: boolean;
}

const oneLine = (s: string): string => s.replace(/\s*\r?\n\s*/g, ' ').trim();

function tlsOf(conn: SMTPConnection): TlsDetails | undefined {
  // nodemailer does not expose the socket; its TLS details are needed for trace and TLS-RPT.
  const socket = (conn as unknown as { _socket?: Partial<TLSSocket> })._socket;
  if (!conn.secure || socket?.getProtocol === undefined) return undefined;
  return {
    protocol: socket.getProtocol() ?? '',
    cipher: socket.getCipher?.()?.name ?? '',
    verified: socket.authorized === true,
  };
}

const keyOf = (d: Destination): string => [d.host, d.port, d.tls, d.servername, d.auth?.user ?? ''].join('|');

export class SmtpClient {
  private readonly idle = new Map<string, Idle[]>();
  private readonly live = new WeakMap<SMTPConnection, Live>();
  private closing = false;

  constructor(private readonly options: SmtpClientOptions) {}

  /** One transaction; a reused connection that turns out dead is replaced once. */
  async send(
    dest: Destination,
    mailFrom: string,
    rcptTo: readonly string[],
    message: Uint8Array,
  ): Promise<SendResult> {
    const reused = this.takeIdle(dest);
    if (reused !== undefined) {
      const result = await this.transact(reused, dest, mailFrom, rcptTo, message);
      if (result.kind !== 'no-connection') return result;
    }
    const opened = await this.open(dest);
    if ('kind' in opened) return opened;
    return this.transact(opened, dest, mailFrom, rcptTo, message);
  }

  private takeIdle(dest: Destination): SMTPConnection | undefined {
    const list = this.idle.get(keyOf(dest));
    while (list !== undefined && list.length > 0) {
      const entry = list.pop() as Idle;
      clearTimeout(entry.timer);
      if (this.live.get(entry.conn)?.closed === false) return entry.conn;
    }
    return undefined;
  }

  private release(dest: Destination, conn: SMTPConnection): void {
    if (this.closing || this.options.idleMs === 0 || this.live.get(conn)?.closed !== false) {
      this.quit(conn);
      return;
    }
    const key = keyOf(dest);
    const list = this.idle.get(key) ?? [];
    const timer = setTimeout(() => {
      const at = list.findIndex((i) => i.conn === conn);
      if (at >= 0) list.splice(at, 1);
      this.quit(conn);
    }, this.options.idleMs);
    timer.unref();
    list.push({ conn, timer });
    this.idle.set(key, list);
  }

  private quit(conn: SMTPConnection): void {
    try {
      conn.quit();
    } catch {
      conn.close();
    }
  }

  private open(dest: Destination): Promise<SMTPConnection | Extract<SendResult, { kind: 'no-connection' }>> {
    const verify = dest.tls === 'verified' || dest.tls === 'implicit';
    const options: SMTPConnection.Options & { servername: string; allowInternalNetworkInterfaces: boolean } =
      {
        host: dest.host,
        port: dest.port,
        name: this.options.hostname,
        secure: dest.tls === 'implicit',
        // RFC 8461 §4.2 / RFC 3207 §4: STARTTLS must succeed when the policy requires TLS.
        requireTLS: dest.tls === 'verified',
        ignoreTLS: dest.tls === 'none',
        opportunisticTLS: dest.tls === 'opportunistic',
        servername: dest.servername,
        allowInternalNetworkInterfaces: true,
        connectionTimeout: this.options.connectTimeoutMs,
        greetingTimeout: this.options.commandTimeoutMs,
        socketTimeout: this.options.commandTimeoutMs,
        tls: {
          servername: dest.servername,
          rejectUnauthorized: verify,
          minVersion: 'TLSv1.2',
          ...(this.options.ca === undefined ? {} : { ca: this.options.ca }),
        },
      };
    const conn = new SMTPConnection(options);
    const live: Live = { conn, closed: false };
    this.live.set(conn, live);
    conn.on('end', () => (live.closed = true));
    return new Promise((resolve) => {
      let settled = false;
      const fail = (error: SmtpError): void => {
        live.closed = true;
        if (settled) return;
        settled = true;
        conn.close();
        // nodemailer reports a failed handshake as a socket error (code ESOCKET) while its
        // `upgrading` flag is still set; a refused STARTTLS command as ETLS.
        const upgrading = (conn as unknown as { upgrading?: boolean }).upgrading === true;
        const tlsFailure =
          error.code === 'ETLS' ||
          upgrading ||
          (dest.tls === 'implicit' && /certificate|ssl|tls|self.signed|altnames/i.test(error.message)) ||
          (error.message.includes('STARTTLS') && dest.tls !== 'none')
            ? oneLine(error.message)
            : undefined;
        resolve({
          kind: 'no-connection',
          reason: oneLine(error.message),
          tlsFailure,
          code: error.responseCode ?? 0,
        });
      };
      conn.on('error', fail);
      conn.connect(() => {
        if (dest.auth === undefined) {
          settled = true;
          resolve(conn);
          return;
        }
        conn.login({ user: dest.auth.user, pass: dest.auth.pass }, (error) => {
          if (error) {
            fail(error);
            return;
          }
          settled = true;
          resolve(conn);
        });
      });
    });
  }

  private transact(
    conn: SMTPConnection,
    dest: Destination,
    mailFrom: string,
    rcptTo: readonly string[],
    message: Uint8Array,
  ): Promise<SendResult> {
    return new Promise((resolve) => {
      const tls = tlsOf(conn);
      conn.send(
        { from: mailFrom, to: [...rcptTo], size: message.length },
        Buffer.from(message.buffer, message.byteOffset, message.byteLength),
        (error, info) => {
          if (!error) {
            const rejected = (info.rejectedErrors ?? []).map((e: SmtpError) => ({
              rcpt: e.recipient ?? '',
              code: e.responseCode ?? 0,
              reply: oneLine(e.response ?? e.message),
            }));
            this.release(dest, conn);
            resolve({
              kind: 'sent',
              accepted: info.accepted.map(String),
              rejected,
              reply: oneLine(info.response),
              tls,
            });
            return;
          }
          const e = error as SmtpError;
          if (e.responseCode === undefined) {
            // No reply: the connection broke (or a reused one had been closed by the peer).
            const live = this.live.get(conn);
            if (live) live.closed = true;
            conn.close();
            resolve({ kind: 'no-connection', reason: oneLine(e.message), tlsFailure: undefined, code: 0 });
            return;
          }
          const rejected = (e.rejectedErrors ?? []).map((r) => ({
            rcpt: r.recipient ?? '',
            code: r.responseCode ?? 0,
            reply: oneLine(r.response ?? r.message),
          }));
          const reply = oneLine(e.response ?? e.message);
          // RFC 5321 §4.1.1.5: RSET so the connection can carry the next transaction.
          if (e.responseCode === 421) {
            conn.close();
          } else {
            conn.reset((resetError) => (resetError ? conn.close() : this.release(dest, conn)));
          }
          resolve({ kind: 'refused', code: e.responseCode, reply, rejected, tls });
        },
      );
    });
  }

  /** Close idle connections (QUIT); in-flight transactions finish on their own. */
  close(): void {
    this.closing = true;
    for (const list of this.idle.values()) {
      for (const { conn, timer } of list) {
        clearTimeout(timer);
        this.quit(conn);
      }
    }
    this.idle.clear();
  }
}
