/**
 * A remote MTA for tests: smtp-server on 127.0.0.1 (STARTTLS with smtp-server's own self-signed
 * certificate unless `cert` is given), whose RCPT replies are scripted per recipient, and which
 * records every message it accepted with whether the session was encrypted.
 */
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';

export interface Received {
  readonly from: string;
  readonly to: readonly string[];
  readonly secure: boolean;
  readonly data: Buffer;
  readonly user: string | undefined;
  /** When the end of data arrived (ms since epoch); the reply follows after `dataDelayMs`. */
  readonly at: number;
}

export interface SinkOptions {
  readonly port: number;
  readonly host?: string;
  /** Reply for a RCPT: undefined accepts; otherwise `{code, message}`. */
  readonly rcpt?: (address: string, count: number) => { code: number; message: string } | undefined;
  readonly noStartTls?: boolean;
  readonly cert?: { key: string; cert: string };
  readonly auth?: { user: string; pass: string };
  /** Wait this long before answering the end of data (a slow remote MTA). */
  readonly dataDelayMs?: number;
}

export class SmtpSink {
  readonly received: Received[] = [];
  readonly rcptCounts = new Map<string, number>();
  private readonly server: SMTPServer;

  constructor(readonly options: SinkOptions) {
    const config: SMTPServerOptions = {
      logger: false,
      banner: 'test sink',
      disabledCommands: [...(options.noStartTls ? ['STARTTLS'] : []), ...(options.auth ? [] : ['AUTH'])],
      authOptional: options.auth === undefined,
      ...(options.cert ? { key: options.cert.key, cert: options.cert.cert } : {}),
      onAuth: (auth, _session, callback) => {
        if (options.auth && auth.username === options.auth.user && auth.password === options.auth.pass) {
          callback(null, { user: auth.username });
        } else {
          callback(Object.assign(new Error('5.7.8 authentication failed'), { responseCode: 535 }));
        }
      },
      onRcptTo: (address, _session, callback) => {
        const rcpt = address.address.toLowerCase();
        const count = (this.rcptCounts.get(rcpt) ?? 0) + 1;
        this.rcptCounts.set(rcpt, count);
        const reply = options.rcpt?.(rcpt, count);
        if (reply === undefined) callback();
        else callback(Object.assign(new Error(reply.message), { responseCode: reply.code }));
      },
      onData: (stream, session, callback) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          this.received.push({
            from: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address,
            to: session.envelope.rcptTo.map((r) => r.address.toLowerCase()),
            secure: session.secure,
            data: Buffer.concat(chunks),
            user: typeof session.user === 'string' ? session.user : undefined,
            at: Date.now(),
          });
          setTimeout(() => callback(null, '2.0.0 Ok: queued'), options.dataDelayMs ?? 0);
        });
      },
    };
    this.server = new SMTPServer(config);
    this.server.on('error', () => undefined);
  }

  listen(): Promise<void> {
    return new Promise((resolve) =>
      this.server.listen(this.options.port, this.options.host ?? '127.0.0.1', resolve),
    );
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  for(rcpt: string): Received[] {
    return this.received.filter((r) => r.to.includes(rcpt));
  }
}

/**
 * A remote MTA whose STARTTLS is broken: it advertises STARTTLS (RFC 3207 §4), answers the
 * command with 220 and then, instead of a TLS ServerHello, sends plain text and closes the
 * connection, so the client's handshake fails. Plaintext sessions (no STARTTLS) get a minimal
 * SMTP server (RFC 5321 §4.1) that accepts everything and records what it got.
 */
export class BrokenStartTlsSink {
  readonly received: Received[] = [];
  /** STARTTLS commands seen (each one a failed handshake for the client). */
  startTlsAttempts = 0;
  private readonly server: NetServer;
  private readonly sockets = new Set<Socket>();

  constructor(readonly options: { readonly port: number; readonly host: string }) {
    this.server = createNetServer((socket) => this.session(socket));
    this.server.on('error', () => undefined);
  }

  private session(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffer = '';
    let inData = false;
    let from = '';
    let to: string[] = [];
    const reply = (line: string) => socket.write(`${line}\r\n`);
    reply('220 broken.test ESMTP');
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      for (;;) {
        if (inData) {
          // RFC 5321 §4.1.1.4: the data ends with CRLF.CRLF.
          const end = buffer.indexOf('\r\n.\r\n');
          if (end < 0) return;
          const data = Buffer.from(buffer.slice(0, end + 2), 'latin1');
          buffer = buffer.slice(end + 5);
          inData = false;
          this.received.push({ from, to, secure: false, data, user: undefined, at: Date.now() });
          reply('250 2.0.0 queued in plaintext');
          continue;
        }
        const eol = buffer.indexOf('\r\n');
        if (eol < 0) return;
        const line = buffer.slice(0, eol);
        buffer = buffer.slice(eol + 2);
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') reply('250-broken.test\r\n250-STARTTLS\r\n250 8BITMIME');
        else if (verb === 'HELO') reply('250 broken.test');
        else if (line.toUpperCase() === 'STARTTLS') {
          this.startTlsAttempts += 1;
          // Wait for the client's ClientHello, then answer garbage where the ServerHello should
          // be, and reset.
          socket.removeAllListeners('data');
          socket.once('data', () => {
            socket.write('this is not a TLS record\r\n');
            socket.destroy();
          });
          reply('220 2.0.0 Ready to start TLS');
          return;
        } else if (verb === 'MAIL') {
          from = /<([^>]*)>/.exec(line)?.[1] ?? '';
          to = [];
          reply('250 2.1.0 Ok');
        } else if (verb === 'RCPT') {
          to.push((/<([^>]*)>/.exec(line)?.[1] ?? '').toLowerCase());
          reply('250 2.1.5 Ok');
        } else if (verb === 'DATA') {
          inData = true;
          reply('354 End data with <CR><LF>.<CR><LF>');
        } else if (verb === 'RSET' || verb === 'NOOP') reply('250 2.0.0 Ok');
        else if (verb === 'QUIT') {
          reply('221 2.0.0 Bye');
          socket.end();
          return;
        } else reply('502 5.5.2 Command not implemented');
      }
    });
  }

  listen(): Promise<void> {
    return new Promise((resolve) => this.server.listen(this.options.port, this.options.host, resolve));
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  for(rcpt: string): Received[] {
    return this.received.filter((r) => r.to.includes(rcpt));
  }
}
