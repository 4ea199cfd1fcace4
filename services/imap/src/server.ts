/**
 * The listeners: the plain port (STARTTLS, RFC 9051 §6.2.1) and the implicit-TLS port (RFC 8314
 * §3.3), each connection served by a Session. On stop: stop accepting, let a running command
 * finish, send `* BYE` (RFC 9051 §7.1.5) and close every session within the drain budget.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { TLSSocket, type SecureContext } from 'node:tls';
import { serializeStatus } from '@postmesh/imap-protocol';
import type { ImapServices } from './commands/context.js';
import type { ChangeFeed } from './change-feed.js';
import { SessionClock } from './clock.js';
import { readProxyHeader } from './proxy-protocol.js';
import { Session } from './session.js';

export interface ImapServerOptions {
  readonly host: string;
  readonly port: number;
  /** 0 disables the implicit-TLS listener. */
  readonly tlsPort: number;
  readonly secureContext: SecureContext | null;
  readonly services: ImapServices;
  readonly changes: ChangeFeed;
  /** A HAProxy PROXY protocol header (v1 text or v2 binary) starts each connection. */
  readonly proxyProtocol: boolean;
  /** Open connections allowed in total and from one client address; over them: `* BYE`. */
  readonly maxConnections: number;
  readonly maxConnectionsPerAddress: number;
  /** Called for each connection refused over a cap (for the metric). */
  readonly onRefused?: (reason: 'total' | 'per_address') => void;
  /**
   * The listener for the IMAP proxy (storage-imap, ADR 0010): each connection starts with a PROXY
   * header carrying the client's address, then implicit TLS in which the peer must present a
   * certificate of the internal CA naming `trustedIdentity` — so only the proxy can claim a
   * client address. `secureContext` null (POSTMESH_INSECURE_INTERNAL, development): plaintext,
   * trusted as the rest of the internal traffic then is.
   */
  readonly backend?: {
    readonly port: number;
    readonly secureContext: SecureContext | null;
    readonly trustedIdentity: string;
  };
}

/** How long a refused connection may take to read its `* BYE` (and finish TLS) before it is cut. */
const REFUSAL_GRACE_MS = 5_000;

export class ImapServer {
  /** Replaced when the certificate files change (renewal); new connections and STARTTLS use it. */
  #secureContext: SecureContext | null;
  readonly #sessions = new Set<Session>();
  /** Open sessions per client address (after the PROXY header, when there is one). */
  readonly #perAddress = new Map<string, number>();
  readonly #servers: Server[] = [];
  /** One interval for every session's autologout deadline and IDLE poll. */
  readonly #clock: SessionClock;
  #nextId = 1;
  #stopping = false;

  constructor(private readonly options: ImapServerOptions) {
    this.#secureContext = options.secureContext;
    const limits = options.services.limits;
    this.#clock = new SessionClock(
      SessionClock.periodFor(Math.min(limits.preAuthTimeoutMs, limits.idleTimeoutMs, limits.idlePollMs)),
    );
  }

  /** A renewed certificate: connections from now on get it; open ones keep theirs. */
  setSecureContext(context: SecureContext): void {
    this.#secureContext = context;
  }

  get connections(): number {
    return this.#sessions.size;
  }

  async listen(): Promise<{ port: number; tlsPort: number | null; backendPort: number | null }> {
    const proxied = this.options.proxyProtocol;
    const plain = createServer((socket) => this.#accept(socket, false, proxied));
    const port = await listenOn(plain, this.options.host, this.options.port);
    this.#servers.push(plain);
    let tlsPort: number | null = null;
    if (this.#secureContext !== null && this.options.tlsPort !== 0) {
      const secure = createServer((socket) => this.#accept(socket, true, proxied));
      tlsPort = await listenOn(secure, this.options.host, this.options.tlsPort);
      this.#servers.push(secure);
    }
    let backendPort: number | null = null;
    const backend = this.options.backend;
    if (backend !== undefined) {
      const server = createServer((socket) =>
        this.#accept(socket, backend.secureContext !== null, true, backend),
      );
      backendPort = await listenOn(server, this.options.host, backend.port);
      this.#servers.push(server);
    }
    return { port, tlsPort, backendPort };
  }

  #accept(socket: Socket, tls: boolean, proxied: boolean, backend?: ImapServerOptions['backend']): void {
    if (this.#stopping) {
      socket.destroy();
      return;
    }
    socket.on('error', () => undefined);
    if (!proxied) {
      this.#start(socket, socket.remoteAddress ?? '', tls);
      return;
    }
    void readProxyHeader(socket).then((header) => {
      if (header === null) return;
      if (this.#stopping) {
        socket.destroy();
        return;
      }
      // The bytes after the header are back in the socket's buffer; a TLSSocket reads them first.
      this.#start(socket, header.remoteAddress, tls, backend);
      socket.resume();
    });
  }

  #start(stream: Duplex, rawAddress: string, tls: boolean, backend?: ImapServerOptions['backend']): void {
    const remoteAddress = rawAddress.startsWith('::ffff:') ? rawAddress.slice(7) : rawAddress;
    const fromAddress = this.#perAddress.get(remoteAddress) ?? 0;
    const over =
      this.#sessions.size >= this.options.maxConnections
        ? 'total'
        : fromAddress >= this.options.maxConnectionsPerAddress
          ? 'per_address'
          : null;
    if (over !== null) {
      this.options.onRefused?.(over);
      this.options.services.logger.info({ remote: remoteAddress, cap: over }, 'connection refused over cap');
      this.#refuse(stream, tls);
      return;
    }
    this.#perAddress.set(remoteAddress, fromAddress + 1);
    let socket = stream;
    if (tls) {
      const context = backend === undefined ? this.#secureContext : backend.secureContext;
      if (context === null) {
        stream.destroy();
        return;
      }
      const secure = new TLSSocket(stream, {
        isServer: true,
        secureContext: context,
        // The proxy's listener: only a certificate of the internal CA gets a session.
        ...(backend === undefined ? {} : { requestCert: true, rejectUnauthorized: true }),
      });
      secure.on('error', (error) =>
        this.options.services.logger.debug({ err: error }, 'TLS connection error'),
      );
      if (backend !== undefined) {
        secure.once('secure', () => {
          const uri = `URI:spiffe://postmesh/${backend.trustedIdentity}`;
          const names = (secure.getPeerCertificate().subjectaltname ?? '').split(', ');
          if (!names.includes(uri)) {
            this.options.services.logger.warn(
              { peer: stream instanceof TLSSocket ? undefined : (stream as Socket).remoteAddress },
              'refused a connection on the proxy listener: not the proxy identity',
            );
            secure.destroy();
          }
        });
      }
      socket = secure;
    }
    const session = new Session({
      socket,
      remoteAddress,
      tls,
      secureContext: this.#secureContext,
      services: this.options.services,
      id: this.#nextId++,
      subscribeChanges: (userId, onChange) => this.options.changes.subscribe(userId, onChange),
      onClose: () => {
        this.#sessions.delete(session);
        const left = (this.#perAddress.get(remoteAddress) ?? 1) - 1;
        if (left > 0) this.#perAddress.set(remoteAddress, left);
        else this.#perAddress.delete(remoteAddress);
      },
      clock: this.#clock,
    });
    this.#sessions.add(session);
    void session.run();
  }

  /**
   * Over a connection cap: the greeting may be `* BYE` (RFC 9051 §7.1.5), and the connection is
   * closed. On the implicit-TLS port that is said over TLS, as the client expects.
   */
  #refuse(stream: Duplex, tls: boolean): void {
    const bye = serializeStatus({
      tag: null,
      condition: 'BYE',
      text: 'Too many connections; try again later',
    });
    const timer = setTimeout(() => stream.destroy(), REFUSAL_GRACE_MS);
    timer.unref();
    stream.on('close', () => clearTimeout(timer));
    stream.on('error', () => stream.destroy());
    const context = this.#secureContext;
    if (!tls || context === null) {
      stream.end(bye);
      return;
    }
    const secure = new TLSSocket(stream, { isServer: true, secureContext: context });
    secure.on('error', () => stream.destroy());
    secure.once('secure', () => secure.end(bye));
  }

  /**
   * `* BYE [UNAVAILABLE]` to the sessions of the users `which` picks (their partition moved to
   * another replica): their clients reconnect through the proxy to the new owner.
   */
  closeUsers(which: (userId: string) => boolean, reason: string): number {
    let closed = 0;
    for (const session of this.#sessions) {
      const state = session.state;
      if ((state.kind === 'authenticated' || state.kind === 'selected') && which(state.user.id)) {
        closed += 1;
        void this.#closeWhenIdle(session, reason);
      }
    }
    return closed;
  }

  /** A command in progress ends first (its calls go to the new owner over gRPC), within 5 s. */
  async #closeWhenIdle(session: Session, reason: string): Promise<void> {
    const deadline = Date.now() + 5_000;
    while (session.busy && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await session.close(reason, { unavailable: true });
  }

  /** Stop accepting; BYE to every session; wait for them to close (at most `graceMs`). */
  async stop(graceMs: number): Promise<void> {
    this.#stopping = true;
    const closed = Promise.all(this.#servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    const deadline = Date.now() + graceMs;
    // Let commands in progress finish (bounded), then say goodbye.
    while ([...this.#sessions].some((s) => s.busy) && Date.now() < deadline - 500) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await Promise.race([
      Promise.all([...this.#sessions].map((s) => s.close('Server shutting down'))),
      new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now()))),
    ]);
    await Promise.race([closed, new Promise((r) => setTimeout(r, 100))]);
  }
}

function listenOn(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : port);
    });
  });
}
