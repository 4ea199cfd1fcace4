import { readFileSync } from 'node:fs';
import { Kvm } from '@nats-io/kv';
import {
  ConsumerLoop,
  Consumers,
  MaxDeliveriesDeadLetter,
  Streams,
  openSpool,
  type ObjectStore,
} from '@postmesh/bus';
import { runService } from '@postmesh/runtime';
import { Counter } from '@postmesh/telemetry';
import { connectStorage } from '@postmesh/storage-client';
import { schema } from './config.js';
import { ByteBudget } from './body-budget.js';
import { DirectorySigningKeys } from './dkim.js';
import { systemResolver } from './dns.js';
import { OutboundDelivery } from './delivery.js';
import { StsPolicyCache, httpsPolicyFetcher } from './mta-sts.js';
import { QueueOperations } from './queue-operations-server.js';
import { QUEUE_BUCKET, QueueStore, SPOOL_REF_BUCKET, TLS_REPORT_BUCKET } from './queue-store.js';
import { SmtpClient } from './smtp-client.js';
import { SPOOL_MARGIN_MS, SpoolSweeper } from './spool-sweeper.js';

/** mta-delivery: sends queued mail out (DESIGN §2 steps 9-10); see README.md. */
await runService({
  name: 'mta-delivery',
  schema,
  async start({ config, logger, bus, security, ops: opsServer }) {
    const kvm = new Kvm(bus.nc);
    const replicas = config.POSTMESH_STREAM_REPLICAS;
    const queue = new QueueStore(await kvm.create(QUEUE_BUCKET, { history: 1, replicas }));
    const tlsReports = await kvm.create(TLS_REPORT_BUCKET, { history: 1, replicas, ttl: 3 * 24 * 3_600_000 });
    // Kept as long as a sibling job can still be in the queue (its lifetime), plus a margin.
    const spoolRefs = await kvm.create(SPOOL_REF_BUCKET, {
      history: 1,
      replicas,
      ttl: config.POSTMESH_MTA_QUEUE_LIFETIME_MS + SPOOL_MARGIN_MS,
    });
    const resolver = systemResolver(config.POSTMESH_DNS_SERVERS);
    const ca =
      config.POSTMESH_MTA_TLS_CA_FILE === undefined
        ? undefined
        : readFileSync(config.POSTMESH_MTA_TLS_CA_FILE, 'utf8');
    const smtp = new SmtpClient({
      hostname: config.POSTMESH_HOSTNAME,
      connectTimeoutMs: config.POSTMESH_MTA_CONNECT_TIMEOUT_MS,
      commandTimeoutMs: config.POSTMESH_MTA_COMMAND_TIMEOUT_MS,
      idleMs: config.POSTMESH_MTA_IDLE_CONNECTION_MS,
      ...(ca === undefined ? {} : { ca }),
    });
    const keys = config.POSTMESH_MTA_DKIM
      ? new DirectorySigningKeys(connectStorage({ address: config.POSTMESH_STORAGE_GRPC, security }))
      : undefined;
    let spool: Promise<ObjectStore> | undefined;
    const delivery = new OutboundDelivery({
      deliveries: new Counter({
        name: 'postmesh_deliveries_total',
        help: 'Delivery outcomes per recipient, by outcome and destination (local, remote)',
        labelNames: ['outcome', 'destination'] as const,
        registers: [opsServer.registry],
      }),
      bodies: new ByteBudget(config.POSTMESH_MTA_BODY_BUDGET_BYTES),
      js: bus.js,
      queue,
      tlsReports,
      spoolRefs,
      spool: () => (spool ??= openSpool(bus.nc)),
      resolver,
      sts: new StsPolicyCache(resolver, httpsPolicyFetcher(config.POSTMESH_MTA_STS_FETCH_BASE)),
      smtp,
      keys,
      logger,
      settings: {
        hostname: config.POSTMESH_HOSTNAME,
        smtpPort: config.POSTMESH_MTA_SMTP_PORT,
        relay:
          config.POSTMESH_RELAY_HOST === undefined
            ? undefined
            : {
                host: config.POSTMESH_RELAY_HOST,
                port: config.POSTMESH_RELAY_PORT,
                tls: config.POSTMESH_RELAY_TLS,
                user: config.POSTMESH_RELAY_USER,
                password: config.POSTMESH_RELAY_PASSWORD,
              },
        retryScheduleMs: config.POSTMESH_MTA_RETRY_SCHEDULE_MS,
        jitterPct: config.POSTMESH_MTA_RETRY_JITTER_PCT,
        lifetimeMs: config.POSTMESH_MTA_QUEUE_LIFETIME_MS,
        delayNoticeMs: config.POSTMESH_MTA_DELAY_NOTICE_MS,
        tickMs: config.POSTMESH_MTA_QUEUE_TICK_MS,
        domainConcurrency: config.POSTMESH_MTA_DOMAIN_CONCURRENCY,
        domainLimits: config.POSTMESH_MTA_DOMAIN_LIMITS,
      },
    });
    const ops = new QueueOperations({
      nc: bus.nc,
      queue,
      logger,
      cancelDsn: (record) =>
        delivery.sendDsn(
          {
            spoolId: record.spoolId,
            domain: record.domain,
            envelope: { mailFrom: record.sender, rcptTo: record.remaining },
            queuedAt: record.queuedAt,
            traceparent: record.traceparent ?? '',
          },
          record.remaining.map((rcpt) => ({
            rcpt,
            action: 'failed',
            status: '5.0.0',
            diagnostic: `cancelled by an administrator; last error: ${record.lastError}`,
            diagnosticType: 'x-postmesh',
            lastAttempt: new Date(record.lastAttemptAt),
            ...(record.remoteMta === '' ? {} : { remoteMta: record.remoteMta }),
          })),
          `cancelled`,
          undefined,
          undefined,
          Buffer.from(record.originalHeaders, 'base64'),
        ),
    });
    ops.start();
    const sweeper = new SpoolSweeper({
      spool: () => (spool ??= openSpool(bus.nc)),
      lifetimeMs: config.POSTMESH_MTA_QUEUE_LIFETIME_MS,
      intervalMs: config.POSTMESH_MTA_SPOOL_SWEEP_MS,
      logger,
    });
    sweeper.start();
    // Jobs that exhausted a consumer's max_deliver unseen go to MAIL_DLQ (one replica of any
    // service subscribed handles each advisory).
    const exhausted = MaxDeliveriesDeadLetter.startForMailQueues(bus, logger);
    const loop = new ConsumerLoop({
      js: bus.js,
      stream: Streams.MAIL_OUTBOUND,
      consumer: Consumers.MTA_DELIVERY,
      logger,
      // The consumer has max_deliver -1: retries run until the queue lifetime, then a DSN.
      maxDeliver: -1,
      concurrency: config.POSTMESH_MTA_CONCURRENCY,
      handler: (msg) => delivery.handle(msg),
    });
    loop.start();
    logger.info(
      { relay: config.POSTMESH_RELAY_HOST ?? null, dkim: config.POSTMESH_MTA_DKIM },
      'delivering MAIL_OUTBOUND',
    );
    return {
      async stop() {
        ops.stop();
        await sweeper.stop();
        await exhausted.stop();
        await loop.stop();
        await delivery.drain();
        smtp.close();
        keys?.close();
      },
    };
  },
});
