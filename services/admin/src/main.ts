import { OwnershipView } from '@postmesh/bus';
import { runService } from '@postmesh/runtime';
import { createAdminApp } from './app.js';
import { schema } from './config.js';
import { parseHealthTargets } from './ops/health.js';

/**
 * admin: the admin REST API and web console (DESIGN §1, §6). Ready when the HTTP server is up;
 * calls that need storage answer 503 while it is unreachable, and the bootstrap owner is created
 * as soon as storage answers.
 */
await runService({
  name: 'admin',
  schema,
  async start({ config, logger, ops, bus, security }) {
    const owner =
      config.POSTMESH_OWNER_EMAIL !== undefined && config.POSTMESH_OWNER_PASSWORD !== undefined
        ? { email: config.POSTMESH_OWNER_EMAIL, password: config.POSTMESH_OWNER_PASSWORD }
        : undefined;
    if (owner === undefined)
      logger.warn('POSTMESH_OWNER_EMAIL/POSTMESH_OWNER_PASSWORD not set: no bootstrap owner');
    // With ownership on, a user's Mailstore calls go to the replica that owns the user (ADR 0007).
    const routes = config.POSTMESH_STORAGE_OWNERSHIP
      ? await OwnershipView.open(bus.nc, { partitions: config.POSTMESH_STORAGE_PARTITIONS })
      : undefined;
    const app = await createAdminApp({
      storageTarget: config.POSTMESH_STORAGE_GRPC,
      storageSecurity: security,
      ...(routes === undefined ? {} : { storageRoutes: routes }),
      logger,
      bus,
      host: config.POSTMESH_HTTP_HOST,
      port: config.POSTMESH_HTTP_PORT,
      settings: {
        cookieSecure: config.POSTMESH_COOKIE_SECURE,
        sessionIdleSeconds: config.POSTMESH_SESSION_IDLE_SECONDS,
        sessionAbsoluteSeconds: config.POSTMESH_SESSION_ABSOLUTE_SECONDS,
        mailHost: config.POSTMESH_MAIL_HOST,
        dnsServers: (config.POSTMESH_DNS_SERVERS ?? '')
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== ''),
        tlsCheckTargets: (config.POSTMESH_TLS_CHECK_TARGETS ?? '')
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== ''),
        ...(config.POSTMESH_TRACE_URL_TEMPLATE === undefined
          ? {}
          : { traceUrlTemplate: config.POSTMESH_TRACE_URL_TEMPLATE }),
      },
      healthTargets: parseHealthTargets(config.POSTMESH_HEALTH_TARGETS),
      login: {
        maxFailuresPerIp: config.POSTMESH_LOGIN_MAX_FAILURES_PER_IP,
        maxFailuresPerAccount: config.POSTMESH_LOGIN_MAX_FAILURES_PER_ACCOUNT,
        windowSeconds: config.POSTMESH_LOGIN_WINDOW_SECONDS,
        baseDelayMs: config.POSTMESH_LOGIN_BASE_DELAY_MS,
      },
      trustProxyHops:
        config.POSTMESH_TRUST_PROXY_HOPS > 0
          ? config.POSTMESH_TRUST_PROXY_HOPS
          : config.POSTMESH_TRUST_PROXY
            ? 1
            : 0,
      ...(config.POSTMESH_CONSOLE_DIR === undefined ? {} : { consoleDir: config.POSTMESH_CONSOLE_DIR }),
      ...(owner === undefined ? {} : { owner }),
    });
    ops.addCheck({
      name: 'bootstrap-owner',
      check: () => (app.ownerReady() ? true : 'waiting for storage to create the bootstrap owner'),
    });
    return {
      stop: async () => {
        await app.stop();
        routes?.stop();
      },
    };
  },
});
