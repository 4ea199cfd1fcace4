/**
 * imap-proxy (ADR 0010, step 2): the IMAP listeners clients connect to. Each connection is
 * greeted and read up to LOGIN or AUTHENTICATE, then spliced to the storage-imap replica that
 * owns the user's partition (connection.ts, router.ts). Stateless: any number of replicas.
 */
import { hostname } from 'node:os';
import { createServer, type Server, type Socket } from 'node:net';
import { resolve } from 'node:path';
import { TLSSocket } from 'node:tls';
import { OwnershipView, ReplicaMembers } from '@postmesh/bus';
import { readIdentityMaterial } from '@postmesh/identity';
import { capabilityList, serializeStatus } from '@postmesh/imap-protocol';
import {
  loadListenerTls,
  readProxyHeader,
  watchServedCertificate,
  type ServiceDefinition,
} from '@postmesh/runtime';
import { connectStorage } from '@postmesh/storage-client';
import { Counter, Gauge } from '@postmesh/telemetry';
import type { BackendTls, ClientEndpoints } from './backend.js';
import { schema } from './config.js';
import { ClientConnection, type ProxyServices } from './connection.js';
import { Router } from './router.js';

export const imapProxyService = {
  name: 'imap-proxy',
  // Its gRPC (Directory.GetUser) and NATS (the ownership buckets) needs are imap's.
  identity: 'imap',
  schema,
  async start({ config, logger, ops, bus, security }) {
    let tls = loadListenerTls({
      name: 'imap-proxy',
      certFile: config.POSTMESH_TLS_CERT_FILE,
      keyFile: config.POSTMESH_TLS_KEY_FILE,
      dataDir: resolve(config.POSTMESH_IMAP_PROXY_DATA_DIR),
      hostname: config.POSTMESH_HOSTNAME ?? hostname(),
    });
    if (tls.generated) logger.warn({ cert: tls.certFile }, 'generated a self-signed TLS certificate');
    if (config.POSTMESH_IMAP_ALLOW_PLAINTEXT) {
      logger.warn('POSTMESH_IMAP_ALLOW_PLAINTEXT=true: passwords are accepted without TLS');
    }
    const backendTls: BackendTls | null =
      security.insecure || config.POSTMESH_IDENTITY_ROOT === undefined
        ? null
        : {
            ...readIdentityMaterial(config.POSTMESH_IDENTITY_ROOT, 'imap'),
            ...(config.POSTMESH_IMAP_PROXY_BACKEND_SERVERNAME === undefined
              ? {}
              : { servername: config.POSTMESH_IMAP_PROXY_BACKEND_SERVERNAME }),
          };
    const routes = await OwnershipView.open(bus.nc, { partitions: config.POSTMESH_STORAGE_PARTITIONS });
    const members = await ReplicaMembers.open(bus.nc);
    const storage = connectStorage({ address: config.POSTMESH_STORAGE_GRPC, security });
    const router = new Router({ routes, members, accountOf: (login) => storage.accountOf(login) });
    ops.addCheck({
      name: 'imap-backends',
      check: () => (router.available ? true : 'no storage-imap replica publishes an IMAP address'),
    });

    const logins = new Counter({
      name: 'postmesh_imap_proxy_logins_total',
      help: 'Logins the proxy replayed to a backend, by route (owner, other) and result (ok, no)',
      labelNames: ['route', 'result'] as const,
      registers: [ops.registry],
    });
    const fallbacks = new Counter({
      name: 'postmesh_imap_proxy_fallbacks_total',
      help: "Logins sent to a backend other than the user's owner, by reason",
      labelNames: ['reason'] as const,
      registers: [ops.registry],
    });
    const backendErrors = new Counter({
      name: 'postmesh_imap_proxy_backend_errors_total',
      help: 'Backends that could not be reached or failed during a login (the next one is tried)',
      registers: [ops.registry],
    });
    const unavailable = new Counter({
      name: 'postmesh_imap_proxy_unavailable_total',
      help: 'Connections or logins refused with UNAVAILABLE: no backend reachable',
      registers: [ops.registry],
    });
    const refused = new Counter({
      name: 'postmesh_imap_proxy_connections_refused_total',
      help: 'Client connections refused over POSTMESH_IMAP_MAX_CONNECTIONS',
      registers: [ops.registry],
    });
    const connections = new Set<Socket>();
    new Gauge({
      name: 'postmesh_imap_proxy_connections',
      help: 'Open client connections (before login and spliced)',
      registers: [ops.registry],
      collect() {
        this.set(connections.size);
      },
    });

    const services: ProxyServices = {
      logger,
      router,
      backendTls,
      allowPlaintext: config.POSTMESH_IMAP_ALLOW_PLAINTEXT,
      capabilities: (secure) =>
        capabilityList({
          state: 'notAuthenticated',
          tls: secure,
          starttls: true,
          allowPlaintext: config.POSTMESH_IMAP_ALLOW_PLAINTEXT,
          appendLimit: config.POSTMESH_IMAP_APPEND_LIMIT,
        }),
      metrics: {
        login: (route, result) => logins.inc({ route, result }),
        fallback: (reason) => fallbacks.inc({ reason }),
        backendError: () => backendErrors.inc(),
        unavailable: () => unavailable.inc(),
      },
      limits: {
        maxLine: config.POSTMESH_IMAP_PROXY_MAX_LINE,
        preAuthTimeoutMs: config.POSTMESH_IMAP_PREAUTH_TIMEOUT_MS,
        idleTimeoutMs: config.POSTMESH_IMAP_PROXY_IDLE_TIMEOUT_MS,
        connectTimeoutMs: config.POSTMESH_IMAP_PROXY_CONNECT_TIMEOUT_MS,
        maxAuthFailures: config.POSTMESH_IMAP_PROXY_MAX_AUTH_FAILURES,
      },
    };

    let stopping = false;
    const begin = (raw: Socket, implicitTls: boolean, endpoints: ClientEndpoints): void => {
      if (stopping) {
        raw.destroy();
        return;
      }
      let socket: Socket | TLSSocket = raw;
      if (implicitTls) {
        socket = new TLSSocket(raw, { isServer: true, secureContext: tls.context });
      }
      if (connections.size >= config.POSTMESH_IMAP_MAX_CONNECTIONS) {
        refused.inc();
        socket.on('error', () => raw.destroy());
        socket.end(
          serializeStatus({ tag: null, condition: 'BYE', text: 'Too many connections; try again later' }),
        );
        setTimeout(() => raw.destroy(), 5_000).unref();
        return;
      }
      connections.add(raw);
      const connection = new ClientConnection(
        raw,
        socket,
        implicitTls,
        endpoints,
        () => tls.context,
        services,
        () => connections.delete(raw),
      );
      connection.start();
    };
    const accept = (raw: Socket, implicitTls: boolean): void => {
      raw.on('error', () => undefined);
      raw.setNoDelay(true);
      const own: ClientEndpoints = {
        remoteAddress: raw.remoteAddress ?? '',
        remotePort: raw.remotePort ?? 0,
        localAddress: raw.localAddress ?? '',
        localPort: raw.localPort ?? 0,
      };
      if (!config.POSTMESH_PROXY_PROTOCOL) return begin(raw, implicitTls, own);
      void readProxyHeader(raw).then((proxied) => {
        if (proxied === null) return;
        const header = proxied.header;
        begin(raw, implicitTls, {
          remoteAddress: proxied.remoteAddress,
          remotePort: proxied.remotePort,
          localAddress: header.kind === 'proxied' ? header.destinationAddress : own.localAddress,
          localPort: header.kind === 'proxied' ? header.destinationPort : own.localPort,
        });
        raw.resume();
      });
    };
    const servers: Server[] = [];
    const listen = async (port: number, implicitTls: boolean): Promise<number> => {
      const server = createServer({ allowHalfOpen: true }, (raw) => accept(raw, implicitTls));
      servers.push(server);
      return new Promise((done, reject) => {
        server.once('error', reject);
        server.listen(port, config.POSTMESH_IMAP_HOST, () => {
          server.off('error', reject);
          const address = server.address();
          done(typeof address === 'object' && address !== null ? address.port : port);
        });
      });
    };
    const port = await listen(config.POSTMESH_IMAP_PORT, false);
    const tlsPort = await listen(config.POSTMESH_IMAPS_PORT, true);
    logger.info(
      { host: config.POSTMESH_IMAP_HOST, port, tlsPort, backends: members.imapServers().length },
      'IMAP proxy listening',
    );
    const certificate = watchServedCertificate({
      service: 'imap-proxy',
      tls,
      config,
      js: () => bus.js,
      logger,
      onReload(context) {
        tls = { ...tls, context };
      },
    });
    return {
      async stop() {
        stopping = true;
        certificate.close();
        await Promise.race([
          Promise.all(servers.map((s) => new Promise<void>((done) => s.close(() => done())))),
          new Promise((done) =>
            setTimeout(done, Math.max(1_000, config.POSTMESH_SHUTDOWN_TIMEOUT_MS - 1_000)),
          ),
        ]);
        // Spliced sessions end with the process; their clients reconnect through another proxy.
        for (const raw of connections) raw.destroy();
        storage.close();
        routes.stop();
        members.stop();
      },
    };
  },
} satisfies ServiceDefinition<typeof schema>;
