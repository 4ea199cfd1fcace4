/**
 * A remote MTA for tests: smtp-server on 127.0.0.1 (STARTTLS with smtp-server's own self-signed
 * certificate unless `cert` is given), whose RCPT replies are scripted per recipient, and which
 * records every message it accepted with whether the session was encrypted.
 */
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';

export interface Received {
  readonly from: string;
  readonly to: readonly string[];
  readonly secure: boolean;
  readonly data: Buffer;
  readonly user: string | undefined;
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
