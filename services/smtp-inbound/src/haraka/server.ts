/**
 * Runs Haraka inside this process (docs/adr/0004-haraka-integration.md): the plugins are our
 * compiled TypeScript and share this process's NATS connection, Directory client and logger.
 * Haraka reads `process.env.HARAKA` when its modules load, so the config dir is written and the
 * variable set before the first `require`.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Server as NetServer } from 'node:net';
import { Server as TlsServer, type SecureContextOptions } from 'node:tls';
import type { PostmeshPluginName } from './config-dir.js';
import { requireProxyHeader } from './proxy-front.js';
import type { PluginHooks } from './types.js';

const REGISTRY = Symbol.for('postmesh.smtp-inbound.plugins');

interface HarakaServerModule {
  listeners: (NetServer & { tlsServer?: TlsServer })[];
  createServer(params: Record<string, unknown>): void;
  stopListeners(): void;
}

/** Haraka's tls_socket.js: `certsByHost['*']` is the default TLS options object it serves from. */
interface HarakaTlsSocketModule {
  certsByHost: Record<string, (SecureContextOptions & Record<string, unknown>) | undefined>;
  /** Rebuilds the context its SNI callback hands out from `certsByHost['*']`. */
  load_default_opts(): void;
}

/** A PEM certificate (chain) and its private key. */
export interface CertificatePair {
  readonly cert: Buffer;
  readonly key: Buffer;
}

export interface RunningHaraka {
  /** Addresses Haraka listens on. */
  readonly addresses: readonly { address: string; port: number }[];
  /** True while every listener is open. */
  listening(): boolean;
  /** Every connection must start with a PROXY header (v1 or v2); see proxy-front.ts. */
  requireProxyHeader(): void;
  /**
   * Serve this certificate to every TLS handshake from now on (STARTTLS and implicit TLS, with
   * or without SNI); sessions already secured keep theirs. The pair must already be known to load.
   */
  replaceCertificate(pair: CertificatePair): void;
  /** Stop accepting connections; sessions already open carry on. */
  closeListeners(): void;
}

let started = false;

export async function startHaraka(
  root: string,
  plugins: Readonly<Record<PostmeshPluginName, PluginHooks>>,
  timeoutMs = 15_000,
): Promise<RunningHaraka> {
  // Haraka keeps module-level state (config, plugin registry): one instance per process.
  if (started) throw new Error('Haraka is already running in this process');
  started = true;
  process.env.HARAKA = root;
  (process as unknown as Record<symbol, unknown>)[REGISTRY] = plugins;
  const require = createRequire(import.meta.url);
  const server = require('Haraka/server.js') as HarakaServerModule;
  const tlsSocket = require('Haraka/tls_socket.js') as HarakaTlsSocketModule;
  server.createServer({});
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const bound = server.listeners.filter((l) => l.listening);
    if (bound.length >= expectedListeners(root) && bound.length === server.listeners.length) break;
    if (Date.now() > deadline) throw new Error(`Haraka did not listen within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const addresses = server.listeners.map((l) => {
    const a = l.address();
    return typeof a === 'object' && a !== null
      ? { address: a.address, port: a.port }
      : { address: '', port: 0 };
  });
  let closed = false;
  return {
    addresses,
    listening: () => !closed && server.listeners.every((l) => l.listening),
    requireProxyHeader() {
      for (const listener of server.listeners) requireProxyHeader(listener);
    },
    replaceCertificate(pair) {
      replaceCertificate(server, tlsSocket, pair);
    },
    closeListeners() {
      closed = true;
      server.stopListeners();
    },
  };
}

/**
 * Haraka holds its certificate in three places (Haraka 3.3 tls_socket.js and server.js): the
 * default options object `certsByHost['*']`, copied into a new TLSSocket at every STARTTLS; the
 * context its SNI callback returns, built from that object by `load_default_opts`; and the
 * implicit-TLS listener's own context, made once when the `tls.Server` was created (inside a
 * plain listener as `tlsServer` when Haraka reads PROXY lines itself). Node's
 * `Server.setSecureContext` replaces the last for new handshakes.
 */
function replaceCertificate(
  server: HarakaServerModule,
  tlsSocket: HarakaTlsSocketModule,
  pair: CertificatePair,
): void {
  const defaults = tlsSocket.certsByHost['*'];
  if (defaults === undefined) throw new Error('Haraka has no TLS configuration to update');
  // Haraka keeps key and cert as arrays (one entry per configured pair).
  defaults.key = [pair.key];
  defaults.cert = [pair.cert];
  tlsSocket.load_default_opts();
  for (const listener of server.listeners) {
    const secure = listener.tlsServer ?? listener;
    if (secure instanceof TlsServer) secure.setSecureContext(defaults);
  }
}

/**
 * Haraka opens its listeners one after another (one per `listen` address in smtp.ini): wait for
 * all of them, or the ones opened last would miss what is set up on them after start.
 */
function expectedListeners(root: string): number {
  const ini = readFileSync(join(root, 'config', 'smtp.ini'), 'utf8');
  const listen = /^listen=(.*)$/m.exec(ini)?.[1] ?? '';
  return Math.max(1, listen.split(',').filter((a) => a.trim() !== '').length);
}
