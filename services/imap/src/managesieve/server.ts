/**
 * The ManageSieve listener (RFC 5804 §1.8: port 4190, TLS through STARTTLS). It lives in the imap
 * service and shares its certificate (renewals included), Directory and login throttle, and
 * reaches scripts only through storage's Sieve script RPCs. Connection caps as for IMAP: over
 * them, the greeting is `BYE` (§1.3).
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { SecureContext } from 'node:tls';
import { response } from './protocol.js';
import { ManageSieveSession, type ManageSieveServices } from './session.js';

export interface ManageSieveServerOptions {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly secureContext: SecureContext | null;
  readonly services: ManageSieveServices;
  readonly maxConnections: number;
  readonly maxConnectionsPerAddress: number;
}

export class ManageSieveServer {
  #secureContext: SecureContext | null;
  readonly #sessions = new Set<ManageSieveSession>();
  readonly #perAddress = new Map<string, number>();
  #server: Server | null = null;
  #nextId = 1;
  #stopping = false;

  constructor(private readonly options: ManageSieveServerOptions) {
    this.#secureContext = options.secureContext;
  }

  /** A renewed certificate: STARTTLS from now on uses it. */
  setSecureContext(context: SecureContext): void {
    this.#secureContext = context;
  }

  get connections(): number {
    return this.#sessions.size;
  }

  listen(): Promise<number> {
    const server = createServer((socket) => this.#accept(socket));
    this.#server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => {
        server.off('error', reject);
        const address = server.address();
        resolve(typeof address === 'object' && address !== null ? address.port : this.options.port);
      });
    });
  }

  #accept(socket: Socket): void {
    socket.on('error', () => undefined);
    if (this.#stopping) {
      socket.destroy();
      return;
    }
    const raw = socket.remoteAddress ?? '';
    const remoteAddress = raw.startsWith('::ffff:') ? raw.slice(7) : raw;
    const fromAddress = this.#perAddress.get(remoteAddress) ?? 0;
    if (
      this.#sessions.size >= this.options.maxConnections ||
      fromAddress >= this.options.maxConnectionsPerAddress
    ) {
      this.options.services.logger.info({ remote: remoteAddress }, 'ManageSieve connection refused over cap');
      socket.end(response('BYE', 'Too many connections; try again later'));
      setTimeout(() => socket.destroy(), 5_000).unref();
      return;
    }
    this.#perAddress.set(remoteAddress, fromAddress + 1);
    const session = new ManageSieveSession({
      socket,
      remoteAddress,
      tls: false,
      secureContext: () => this.#secureContext,
      services: this.options.services,
      id: this.#nextId++,
      onClose: () => {
        this.#sessions.delete(session);
        const left = (this.#perAddress.get(remoteAddress) ?? 1) - 1;
        if (left > 0) this.#perAddress.set(remoteAddress, left);
        else this.#perAddress.delete(remoteAddress);
      },
    });
    this.#sessions.add(session);
    session.start();
  }

  /** Stop accepting; let running commands finish (bounded); BYE to every session. */
  async stop(graceMs: number): Promise<void> {
    this.#stopping = true;
    const server = this.#server;
    const closed = server === null ? Promise.resolve() : new Promise<void>((r) => server.close(() => r()));
    const deadline = Date.now() + graceMs;
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
