import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { Logger } from 'pino';
import { EventLoopWatchdog } from './event-loop.js';

/** One readiness dependency: NATS connected, MongoDB reachable, listener bound, … */
export interface ReadinessCheck {
  readonly name: string;
  /** Resolve `true` when ready, or a short reason string when not. Rejections count as not ready. */
  readonly check: () => Promise<true | string> | true | string;
}

export interface OpsServerOptions {
  readonly service: string;
  readonly host: string;
  readonly port: number;
  readonly logger: Logger;
  readonly registry?: Registry;
  /** Per-check time budget; a check slower than this is "not ready". */
  readonly checkTimeoutMs?: number;
  /**
   * `/healthz/live` fails while the event loop is stalled longer than this, and for as long
   * again afterwards (see EventLoopWatchdog). 0 disables that; the lag metrics stay.
   */
  readonly eventLoopStallMs?: number;
}

export interface CheckResult {
  readonly name: string;
  readonly ready: boolean;
  readonly reason?: string;
}

/**
 * The ops HTTP server every service runs (DESIGN §1): `GET /healthz/live` (the process is
 * serving), `GET /healthz/ready` (every dependency check passes; 503 with the failing checks
 * otherwise), `GET /metrics` (Prometheus text format). It is never the place for user traffic.
 */
export class OpsServer {
  readonly registry: Registry;
  private readonly checks: ReadinessCheck[] = [];
  private server: Server | undefined;
  private draining = false;
  private started = false;
  private readonly watchdog: EventLoopWatchdog;

  constructor(private readonly options: OpsServerOptions) {
    this.registry = options.registry ?? new Registry();
    this.registry.setDefaultLabels({ service: options.service });
    collectDefaultMetrics({ register: this.registry });
    this.watchdog = new EventLoopWatchdog({
      registry: this.registry,
      stallThresholdMs: options.eventLoopStallMs ?? 0,
    });
  }

  addCheck(check: ReadinessCheck): void {
    this.checks.push(check);
  }

  /** Called once start-up is complete; until then readiness is 503 whatever the checks say. */
  markStarted(): void {
    this.started = true;
  }

  /** Once draining, readiness reports 503 so load balancers stop sending new work. */
  setDraining(): void {
    this.draining = true;
  }

  async runChecks(): Promise<CheckResult[]> {
    const timeoutMs = this.options.checkTimeoutMs ?? 2_000;
    return Promise.all(
      this.checks.map(async ({ name, check }): Promise<CheckResult> => {
        let timer: NodeJS.Timeout | undefined;
        try {
          const outcome = await Promise.race([
            Promise.resolve(check()),
            new Promise<string>((resolve) => {
              timer = setTimeout(() => resolve(`no answer within ${timeoutMs} ms`), timeoutMs);
            }),
          ]);
          return outcome === true ? { name, ready: true } : { name, ready: false, reason: outcome };
        } catch (error) {
          return { name, ready: false, reason: error instanceof Error ? error.message : String(error) };
        } finally {
          clearTimeout(timer);
        }
      }),
    );
  }

  async listen(): Promise<AddressInfo> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        this.options.logger.error({ err: error }, 'ops request failed');
        if (!res.headersSent) res.writeHead(500).end();
      });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    this.watchdog.stop();
    const server = this.server;
    if (!server) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const path = (req.url ?? '/').split('?')[0];
    switch (path) {
      case '/healthz/live': {
        const verdict = this.watchdog.liveness();
        if (verdict.live) sendJson(res, 200, { status: 'live', service: this.options.service });
        else {
          sendJson(res, 503, {
            status: 'stalled',
            service: this.options.service,
            reason: verdict.reason,
            stalledMs: Math.round(verdict.stalledMs),
          });
        }
        return;
      }
      case '/healthz/ready': {
        const checks = await this.runChecks();
        const ready = this.started && !this.draining && checks.every((c) => c.ready);
        sendJson(res, ready ? 200 : 503, {
          status: ready ? 'ready' : this.draining ? 'draining' : this.started ? 'not ready' : 'starting',
          service: this.options.service,
          checks,
        });
        return;
      }
      case '/metrics': {
        const body = await this.registry.metrics();
        res.writeHead(200, { 'content-type': this.registry.contentType }).end(body);
        return;
      }
      default:
        sendJson(res, 404, { error: 'not found' });
    }
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}
