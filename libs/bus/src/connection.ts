import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type Authenticator, type NatsConnection, type TlsOptions } from '@nats-io/transport-node';
import type { Logger } from '@postmesh/telemetry';
import { ensureTopology, type ConsumerName, type DlqLimits } from './topology.js';

export interface BusOptions {
  /** One or more server URLs, comma-separated (`nats://a:4222,nats://b:4222`). */
  readonly url: string;
  /** Connection name shown by the server (`postmesh-storage@host`). */
  readonly name: string;
  readonly logger: Logger;
  readonly replicas: number;
  /** Create or update streams, consumers and buckets at start (every service does). */
  readonly ensureTopology?: boolean;
  /** The consumers this connection creates with the topology (default all; see `ownedConsumers`). */
  readonly consumers?: readonly ConsumerName[];
  /** TLS to the server (the internal CA); absent only when insecure internal traffic is allowed. */
  readonly tls?: TlsOptions;
  /** This service's NATS user (its NKey seed or password). */
  readonly authenticator?: Authenticator;
  readonly dlq?: DlqLimits;
}

/**
 * One NATS connection per process. It reconnects forever: a NATS outage makes the service
 * not-ready (see `check()`), never makes it exit, and it recovers on its own when NATS returns.
 */
export class Bus {
  private connected = true;
  private constructor(
    readonly nc: NatsConnection,
    readonly js: JetStreamClient,
    readonly jsm: JetStreamManager,
    private readonly logger: Logger,
  ) {
    void this.watchStatus();
  }

  static async connect(options: BusOptions): Promise<Bus> {
    const nc = await connect({
      servers: options.url.split(',').map((s) => s.trim()),
      name: options.name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      reconnectJitter: 250,
      waitOnFirstConnect: true,
      pingInterval: 10_000,
      maxPingOut: 3,
      // nats.js otherwise builds two Errors (with stack traces) for every request, a JetStream
      // publish included, to have a caller's stack should it time out: a measurable share of the
      // CPU of each accepted message. Failures still carry their message and cause.
      noAsyncTraces: true,
      ...(options.tls === undefined ? {} : { tls: options.tls }),
      ...(options.authenticator === undefined ? {} : { authenticator: options.authenticator }),
    });
    const jsm = await jetstreamManager(nc);
    const bus = new Bus(nc, jetstream(nc), jsm, options.logger);
    options.logger.info({ server: nc.getServer() }, 'connected to NATS');
    if (options.ensureTopology ?? true) {
      // NATS may go away mid-way (a restart, a failover): retry until the topology is in place.
      for (let attempt = 1; ; attempt++) {
        try {
          await ensureTopology(nc, jsm, {
            replicas: options.replicas,
            ...(options.consumers === undefined ? {} : { consumers: options.consumers }),
            ...(options.dlq === undefined ? {} : { dlq: options.dlq }),
          });
          break;
        } catch (error) {
          if (nc.isClosed()) throw error;
          const delayMs = Math.min(5_000, 250 * 2 ** attempt);
          options.logger.warn(
            { err: error, attempt, delayMs },
            'could not create the JetStream topology yet; retrying',
          );
          await new Promise((r) => setTimeout(r, delayMs));
        }
      }
    }
    return bus;
  }

  private async watchStatus(): Promise<void> {
    for await (const status of this.nc.status()) {
      switch (status.type) {
        case 'disconnect':
          this.connected = false;
          this.logger.warn({ server: status.server }, 'disconnected from NATS; reconnecting');
          break;
        case 'reconnect':
          this.connected = true;
          this.logger.info({ server: status.server }, 'reconnected to NATS');
          break;
        case 'error':
          this.logger.error({ err: status.error }, 'NATS error');
          break;
        default:
          break;
      }
    }
  }

  /** Readiness: connected, and the server answers a round trip within the ops check budget. */
  async check(): Promise<true | string> {
    if (this.nc.isClosed()) return 'NATS connection closed';
    if (!this.connected) return 'NATS disconnected';
    try {
      await this.nc.rtt();
      return true;
    } catch (error) {
      return `NATS round trip failed: ${error instanceof Error ? error.message : String(error)}`;
    }
  }

  /** Flush what was published, unsubscribe, and close (graceful shutdown). */
  async drain(): Promise<void> {
    if (this.nc.isClosed()) return;
    await this.nc.drain();
  }
}

/**
 * DESIGN §2: JetStream must fsync before every ack. Reads the server's monitoring endpoint and
 * answers `true`, or a reason why this server is not durable enough.
 */
export async function checkJetStreamDurability(monitorUrl: string): Promise<true | string> {
  const response = await fetch(new URL('/varz', monitorUrl), { signal: AbortSignal.timeout(2_000) });
  if (!response.ok) return `NATS monitoring answered ${response.status}`;
  const varz = (await response.json()) as { jetstream?: { config?: { sync_always?: boolean } } };
  if (!varz.jetstream?.config) return 'JetStream is not enabled on the NATS server';
  return varz.jetstream.config.sync_always === true
    ? true
    : 'JetStream does not fsync before acknowledging (set sync_interval: always, or POSTMESH_ALLOW_WEAK_DURABILITY=true to accept the risk)';
}
