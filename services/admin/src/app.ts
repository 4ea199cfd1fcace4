/**
 * The admin application without process concerns: NestJS on Fastify with the REST API under
 * /api/v1, the OpenAPI document at /api/docs, the policy guard, the audit interceptor, the error
 * filter, and the web console's static files. `main.ts` wires it to configuration and signals;
 * tests build the same thing against a real storage process.
 */
import { setTraceUrlTemplate } from './api/views.js';
import 'reflect-metadata';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Module, type DynamicModule, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import type { InternalSecurity } from '@postmesh/identity';
import { connectStorage, type OwnerRoutes, type StorageClient } from '@postmesh/storage-client';
import type { Bus } from '@postmesh/bus';
import type { Logger } from '@postmesh/telemetry';
import { errorBody, ApiError } from './api/errors.js';
import { ApiExceptionFilter } from './api/filter.js';
import { AuditInterceptor } from './api/interceptor.js';
import { AuditLog } from './audit.js';
import { PolicyGuard } from './auth/guard.js';
import { Kvm } from '@nats-io/kv';
import { Buckets, DEFAULT_THROTTLE_POLICY, KvAuthThrottle, type AuthThrottle } from '@postmesh/bus';
import { AdminsController } from './controllers/admins.controller.js';
import { AuthController } from './controllers/auth.controller.js';
import { DocsController } from './controllers/docs.controller.js';
import { DomainsController } from './controllers/domains.controller.js';
import { WebhooksController } from './controllers/webhooks.controller.js';
import { OpsController } from './controllers/ops.controller.js';
import { OverviewController } from './controllers/overview.controller.js';
import { SieveController } from './controllers/sieve.controller.js';
import { TeamMailboxesController } from './controllers/team-mailboxes.controller.js';
import { UsersController } from './controllers/users.controller.js';
import { DEPS, type AdminDeps, type AdminSettings } from './deps.js';
import { HealthProbe } from './ops/health.js';
import { QueueInspector } from './ops/queue.js';
import { QueueOps } from './ops/queue-operations-client.js';

export interface AdminAppOptions {
  readonly storageTarget: string;
  /** The `admin` identity: mutual TLS to storage, held to storage's caller allow-list. */
  readonly storageSecurity: Pick<InternalSecurity, 'grpcClientCredentials'>;
  /** With storage ownership on: where each user's Mailstore calls go (ADR 0007, Routing). */
  readonly storageRoutes?: OwnerRoutes;
  readonly logger: Logger;
  readonly bus?: Bus;
  readonly host: string;
  /** 0 picks a free port (tests). */
  readonly port: number;
  readonly settings: AdminSettings;
  readonly healthTargets: ReadonlyMap<string, string>;
  readonly login: {
    readonly maxFailuresPerIp: number;
    readonly maxFailuresPerAccount: number;
    readonly windowSeconds: number;
    readonly baseDelayMs: number;
  };
  /** Proxy hops in front of the API whose X-Forwarded-For entries are trusted (0: none). */
  readonly trustProxyHops: number;
  /** The built console (index.html + assets); default dist/console next to this file. */
  readonly consoleDir?: string;
  /** Bootstrap owner (created in storage when missing). */
  readonly owner?: { readonly email: string; readonly password: string };
}

export interface AdminApp {
  readonly port: number;
  readonly url: string;
  readonly storage: StorageClient;
  /** Whether the bootstrap owner exists (or none was configured). */
  ownerReady(): boolean;
  stop(): Promise<void>;
}

/** JSON bodies above this are refused with 413 (hostile input must not cost memory). */
export const BODY_LIMIT_BYTES = 64 * 1024;

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
};

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

@Module({})
class AdminModule {
  static forRoot(deps: AdminDeps): DynamicModule {
    return {
      module: AdminModule,
      controllers: [
        AuthController,
        DomainsController,
        UsersController,
        OpsController,
        OverviewController,
        AdminsController,
        DocsController,
        WebhooksController,
        SieveController,
        TeamMailboxesController,
      ],
      providers: [{ provide: DEPS, useValue: deps }],
    };
  }
}

/**
 * Sign-in throttle (libs/bus auth-throttle, the one imap and smtp-inbound use): per client IP
 * under the console's own keys (`admin-ip.`, a stricter limit than the mail protocols'), per
 * canonical account under the keys shared with them, so guesses over IMAP, SMTP and the console
 * count against one account limit. Without NATS it counts in this process.
 */
function loginThrottle(options: AdminAppOptions, storage: StorageClient): AuthThrottle {
  const bus = options.bus;
  let opened: ReturnType<Kvm['open']> | null = null;
  const kv = (): ReturnType<Kvm['open']> => {
    if (bus === undefined) return Promise.reject(new Error('NATS is not connected'));
    opened ??= new Kvm(bus.nc).open(Buckets.AUTH_FAILURES);
    opened.catch(() => (opened = null));
    return opened;
  };
  return new KvAuthThrottle(
    kv,
    {
      ...DEFAULT_THROTTLE_POLICY,
      windowMs: options.login.windowSeconds * 1000,
      ipLockout: options.login.maxFailuresPerIp,
      accountLockout: options.login.maxFailuresPerAccount,
      baseDelayMs: options.login.baseDelayMs,
    },
    (error, what) => options.logger.warn({ err: error, component: 'login-throttle' }, what),
    {
      ipPrefix: 'admin-ip',
      // The directory user a login names: a mail user's aliases share their account's counter.
      resolveAccount: (login) => storage.accountOf(login),
    },
  );
}

export async function createAdminApp(options: AdminAppOptions): Promise<AdminApp> {
  setTraceUrlTemplate(options.settings.traceUrlTemplate);
  const { logger } = options;
  const storage = connectStorage({
    address: options.storageTarget,
    security: options.storageSecurity,
    ...(options.storageRoutes === undefined ? {} : { routes: options.storageRoutes }),
  });
  const queue = options.bus === undefined ? undefined : new QueueInspector(options.bus);
  const deps: AdminDeps = {
    settings: options.settings,
    storage,
    audit: new AuditLog(storage, logger.child({ component: 'audit' })),
    logger,
    throttle: loginThrottle(options, storage),
    queue,
    queueOps: options.bus === undefined ? undefined : new QueueOps(options.bus.nc),
    health: new HealthProbe(options.healthTargets, queue),
  };

  const adapter = new FastifyAdapter({
    bodyLimit: BODY_LIMIT_BYTES,
    // A number of hops, never `true`: with `true` any client could name its own address in
    // X-Forwarded-For and so pick the per-IP counter it is throttled by. proxy-addr asks about the
    // socket's peer (hop 0), then each X-Forwarded-For entry from the right: the first `hops` of
    // them are our proxies, and the next one is the client.
    trustProxy:
      options.trustProxyHops > 0 ? (_address: string, hop: number) => hop < options.trustProxyHops : false,
    // Deep or huge JSON is refused by size; prototype poisoning keys are refused outright.
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // Requests Node's HTTP parser or Fastify's router refuse before any route (a broken header
    // line, oversized headers, a URL with broken percent-encoding) get the API's error format too.
    clientErrorHandler: answerClientError,
    frameworkErrors: (...args: unknown[]) => {
      void (args[2] as ErrorReply)
        .status(400)
        .header('content-type', 'application/json; charset=utf-8')
        .send(errorBody(new ApiError('invalid_argument', 'malformed request URL'), ''));
    },
  });
  const fastify = adapter.getInstance();
  fastify.addHook('onSend', (_request, reply, payload, done) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) {
      if (!reply.hasHeader(name) || name === 'cache-control') reply.header(name, value);
    }
    done(null, payload);
  });
  // The API speaks JSON only: a body of any other type (an HTML form posted from another site,
  // text/plain …) is refused before it is parsed.
  fastify.addHook('onRequest', (request, reply, done) => {
    const type = String(request.headers['content-type'] ?? '');
    const hasBody =
      request.headers['content-length'] !== undefined && request.headers['content-length'] !== '0';
    if (
      (hasBody || request.headers['transfer-encoding'] !== undefined) &&
      !/^application\/json\b/i.test(type)
    ) {
      void reply
        .status(415)
        .header('content-type', 'application/json; charset=utf-8')
        .send(
          errorBody(new ApiError('unsupported_media_type', 'send JSON (Content-Type: application/json)'), ''),
        );
      return;
    }
    done();
  });
  registerConsole(fastify, options.consoleDir ?? fileURLToPath(new URL('./console/', import.meta.url)));

  const app: INestApplication = await NestFactory.create(AdminModule.forRoot(deps), adapter, {
    logger: false,
  });
  app.useGlobalGuards(new PolicyGuard(deps));
  app.useGlobalInterceptors(new AuditInterceptor(deps));
  app.useGlobalFilters(new ApiExceptionFilter(deps));
  await app.init();
  await app.listen(options.port, options.host);
  const address = fastify.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  logger.info({ http: `http://${options.host}:${port}` }, 'admin API and console listening');

  let ownerReady = options.owner === undefined;
  let stopped = false;
  const bootstrap = async (): Promise<void> => {
    // Storage may start after us: keep trying (bounded delay) until the owner exists.
    for (let attempt = 0; !stopped && options.owner !== undefined; attempt++) {
      try {
        const result = await storage.admin.ensureOwner(options.owner);
        ownerReady = true;
        if (result.created) logger.info({ email: result.admin?.email }, 'bootstrap owner created');
        return;
      } catch (error) {
        if (attempt % 10 === 0)
          logger.warn({ err: error }, 'could not ensure the bootstrap owner yet; retrying');
        await new Promise((r) => setTimeout(r, Math.min(5_000, 200 * 2 ** Math.min(attempt, 5))));
      }
    }
  };
  const bootstrapping = bootstrap();

  return {
    port,
    url: `http://${options.host}:${port}`,
    storage,
    ownerReady: () => ownerReady,
    async stop() {
      stopped = true;
      await app.close();
      await bootstrapping;
      storage.close();
    },
  };
}

interface ErrorReply {
  status(code: number): { header(name: string, value: string): { send(body: unknown): unknown } };
}

/** Fastify's clientErrorHandler, in the API's error format (it must answer on the raw socket). */
function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const apiError =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? new ApiError('headers_too_large', 'request headers too large')
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new ApiError('request_timeout', 'request timed out')
        : new ApiError('invalid_argument', 'malformed HTTP request');
  const body = JSON.stringify(errorBody(apiError, ''));
  // As Node's own handler does: no answer in the middle of one already being written (the rest
  // of an unread body that failed to parse as the next request, after an early refusal).
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
  if (socket.writable && inFlight?.headersSent !== true) {
    socket.write(
      `HTTP/1.1 ${apiError.status} ${STATUS_CODES[apiError.status] ?? 'Bad Request'}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Connection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

interface StaticFastify {
  get(
    path: string,
    handler: (
      request: { url: string },
      reply: { header(n: string, v: string): unknown; status(c: number): unknown; send(b: unknown): unknown },
    ) => unknown,
  ): unknown;
}

/** The console: files from its build directory; any other non-API path gets index.html (SPA). */
function registerConsole(fastify: StaticFastify, dir: string): void {
  const root = normalize(dir);
  fastify.get('/*', (request, reply) => {
    let path: string;
    try {
      path = decodeURIComponent(request.url.split('?')[0] ?? '/');
    } catch {
      reply.status(400);
      reply.header('content-type', 'application/json; charset=utf-8');
      return reply.send(errorBody(new ApiError('invalid_argument', 'malformed request URL'), ''));
    }
    if (path.startsWith('/api/')) {
      reply.status(404);
      reply.header('content-type', 'application/json; charset=utf-8');
      return reply.send(errorBody(new ApiError('not_found', 'no such endpoint'), ''));
    }
    let file = normalize(join(root, path));
    if (
      !file.startsWith(root.endsWith(sep) ? root : root + sep) ||
      !existsSync(file) ||
      !statSync(file).isFile()
    ) {
      file = join(root, 'index.html');
    }
    if (!existsSync(file)) {
      reply.status(404);
      reply.header('content-type', 'text/plain; charset=utf-8');
      return reply.send('The web console is not built (npm run build -w @postmesh/admin).');
    }
    reply.header('content-type', CONTENT_TYPES[extname(file)] ?? 'application/octet-stream');
    return reply.send(readFileSync(file));
  });
}
