import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Kvm } from '@nats-io/kv';
import {
  Buckets,
  throttlePolicyOf,
  authFailuresCounter,
  InboundSpoolSweeper,
  KvAuthThrottle,
  MailEventOutbox,
  MaxDeliveriesDeadLetter,
  mailEvent,
  Subjects,
  openRateLimits,
  openSpool,
  type KV,
  type ObjectStore,
} from '@postmesh/bus';
import { runService, watchServedCertificate } from '@postmesh/runtime';
import { connectStorage } from '@postmesh/storage-client';
import { schema } from './config.js';
import { GrpcRecipientDirectory } from './directory.js';
import { RecipientCache, watchDirectoryChanges } from './recipient-cache.js';
import { cachingResolver, systemResolver } from './dns-cache.js';
import { writeHarakaRoot } from './haraka/config-dir.js';
import { startHaraka } from './haraka/server.js';
import { limitsHooks, SessionTracker, SharedRateCounter } from './plugins/limits.js';
import { queueHooks, recipientDomains } from './plugins/queue.js';
import { cachingReverseLookup, reverseDnsHooks } from './plugins/rdns.js';
import { recipientHooks } from './plugins/recipients.js';
import { senderAuthHooks } from './plugins/sender-auth.js';
import { contentFilterHooks } from './plugins/content-filter.js';
import { operatorDataHooks, operatorHooks, type OperatorPluginOptions } from './plugins/operator.js';
import { loadPlugins } from './operator-plugins/loader.js';
import { RspamdClient } from './content-filter/rspamd.js';
import { ensureTlsFiles } from './tls-cert.js';
import { submissionHooks } from './plugins/submission.js';
import { transactionTraceHooks } from './plugins/trace.js';
import { KvSendQuota } from './send-quota.js';

/** Retries a failed lazy open on the next use instead of caching the failure. */
function lazy<T>(open: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => {
    pending ??= open().catch((error: unknown) => {
      pending = undefined;
      throw error;
    });
    return pending;
  };
}

/**
 * smtp-inbound: receives mail on the MX port with Haraka and our plugins, and answers 250 only
 * once a message is durably queued in JetStream (DESIGN §2 steps 1–4).
 */
await runService({
  name: 'smtp-inbound',
  schema,
  async start({ config, logger, ops, bus, security }) {
    const root = mkdtempSync(join(tmpdir(), 'postmesh-haraka-'));
    // Removed only when the process exits: Haraka finishes some start-up work (its outbound
    // queue scan) asynchronously, and exits 1 if its directory vanishes under it during a stop.
    process.once('exit', () => rmSync(root, { recursive: true, force: true }));
    const tls = await ensureTlsFiles(
      { certFile: config.POSTMESH_TLS_CERT_FILE, keyFile: config.POSTMESH_TLS_KEY_FILE },
      { dataDir: resolve(config.POSTMESH_SMTP_DATA_DIR), scratchDir: root },
      config.POSTMESH_HOSTNAME,
    );
    logger.info({ cert: tls.certFile, generated: tls.generated }, 'TLS certificate for STARTTLS');

    // A short budget per call: the client waits for RCPT and AUTH answers (the SMTP session then
    // answers 451 rather than let Haraka's plugin timeout fire).
    const recipientCache = new RecipientCache();
    const directoryChanges = await watchDirectoryChanges(
      bus.nc,
      Subjects.directoryChanged,
      recipientCache,
      (error) => logger.warn({ err: error }, 'directory change feed failed; dropped the cached answers'),
    );
    const directory = new GrpcRecipientDirectory(
      connectStorage({
        address: config.POSTMESH_STORAGE_GRPC,
        security,
        policy: { unaryDeadlineMs: 5_000 },
      }),
      recipientCache,
    );
    ops.addCheck({ name: 'directory', check: () => directory.check() });

    const kv = lazy<KV>(() => openRateLimits(bus.nc));
    const spool = lazy<ObjectStore>(() => openSpool(bus.nc));
    const authFailures = lazy<KV>(() => new Kvm(bus.nc).open(Buckets.AUTH_FAILURES));
    const throttle = new KvAuthThrottle(
      authFailures,
      throttlePolicyOf(config),
      (error, what) => logger.warn({ err: error }, what),
      { resolveAccount: (login) => directory.accountOf(login) },
    );
    const counter = new SharedRateCounter(kv, (error) =>
      logger.warn({ err: error }, 'rate-limit counters not shared this round'),
    );
    counter.start();
    // Jobs that exhausted a consumer's max_deliver unseen go to MAIL_DLQ (one replica of any
    // service subscribed handles each advisory).
    const exhausted = MaxDeliveriesDeadLetter.startForMailQueues(bus, logger);
    const sessions = new SessionTracker();
    const mailEvents = new MailEventOutbox({ js: () => bus.js, logger });
    const authFailureCount = authFailuresCounter(ops.registry);
    const sweeper = new InboundSpoolSweeper({
      jsm: bus.jsm,
      spool,
      minAgeMs: config.POSTMESH_SPOOL_SWEEP_MIN_AGE_MS,
      intervalMs: config.POSTMESH_SPOOL_SWEEP_INTERVAL_MS,
      logger: logger.child({ component: 'spool-sweep' }),
    });
    if (config.POSTMESH_SPOOL_SWEEP_INTERVAL_MS > 0) sweeper.start();
    const resolver = cachingResolver(systemResolver(config.POSTMESH_DNS_SERVERS));

    const operatorPlugins =
      config.POSTMESH_SMTP_PLUGIN_DIR === undefined ? [] : await loadPlugins(config.POSTMESH_SMTP_PLUGIN_DIR);
    if (operatorPlugins.length > 0) {
      logger.info(
        { dir: config.POSTMESH_SMTP_PLUGIN_DIR, plugins: operatorPlugins.map((p) => p.name) },
        'operator SMTP plugins loaded (API version 1)',
      );
    }
    const operator: OperatorPluginOptions = {
      plugins: operatorPlugins,
      timeoutMs: config.POSTMESH_SMTP_PLUGIN_TIMEOUT_MS,
      onError: (error, plugin, hook) =>
        logger.error({ err: error, plugin, hook }, 'operator SMTP plugin failed; answered 451'),
      onVerdict: (plugin, hook, code, text) =>
        logger.info({ plugin, hook, code, text }, 'operator SMTP plugin verdict'),
    };

    writeHarakaRoot(root, {
      listenHost: config.POSTMESH_SMTP_HOST,
      listenPort: config.POSTMESH_SMTP_PORT,
      submissionPort: config.POSTMESH_SUBMISSION_PORT,
      submissionsPort: config.POSTMESH_SUBMISSIONS_PORT,
      hostname: config.POSTMESH_HOSTNAME,
      maxMessageBytes: config.POSTMESH_SMTP_MAX_MESSAGE_BYTES,
      idleTimeoutSeconds: config.POSTMESH_SMTP_IDLE_TIMEOUT_S,
      tls,
      proxyProtocol: config.POSTMESH_PROXY_PROTOCOL,
      queueTimeoutSeconds: Math.ceil(config.POSTMESH_SMTP_QUEUE_TIMEOUT_MS / 1000) + 120,
    });

    const haraka = await startHaraka(root, {
      postmesh_rdns: reverseDnsHooks(cachingReverseLookup()),
      postmesh_trace: transactionTraceHooks({ registry: ops.registry }),
      postmesh_limits: limitsHooks({
        counter,
        sessions,
        connectionsPerMinute: config.POSTMESH_SMTP_CONNECTIONS_PER_MINUTE,
        messagesPerMinute: config.POSTMESH_SMTP_MESSAGES_PER_MINUTE,
        maxConnectionsPerIp: config.POSTMESH_SMTP_MAX_CONNECTIONS_PER_IP,
        maxConnections: config.POSTMESH_SMTP_MAX_CONNECTIONS,
      }),
      postmesh_submission: submissionHooks({
        ports: [config.POSTMESH_SUBMISSION_PORT, config.POSTMESH_SUBMISSIONS_PORT].filter((p) => p > 0),
        authenticator: directory,
        directory,
        throttle,
        quota: new KvSendQuota(kv, config.POSTMESH_SUBMISSION_MESSAGES_PER_HOUR, (error) =>
          logger.warn({ err: error }, 'sending-limit counter unavailable; allowing the message'),
        ),
        recipientsPerMessage: config.POSTMESH_SUBMISSION_RECIPIENTS_PER_MESSAGE,
        hostname: config.POSTMESH_HOSTNAME,
        onAuth: (event) => {
          if (!event.outcome.startsWith('success')) authFailureCount.inc({ protocol: 'smtp' });
          logger.info(event, 'submission AUTH');
        },
        onError: (error) => logger.warn({ err: error }, 'submission: directory problem; answered 4xx'),
      }),
      postmesh_rcpt: recipientHooks({
        directory,
        maxRecipients: config.POSTMESH_SMTP_MAX_RECIPIENTS,
        onError: (error) => logger.warn({ err: error }, 'recipient lookup failed; answered 451'),
      }),
      postmesh_sender_auth: config.POSTMESH_SMTP_VERIFY_SENDERS
        ? senderAuthHooks({
            hostname: config.POSTMESH_HOSTNAME,
            directory,
            resolver,
            onError: (error) => logger.warn({ err: error }, 'sender verification failed; answered 451'),
          })
        : {},
      postmesh_content_filter:
        config.POSTMESH_RSPAMD_URL === undefined
          ? {}
          : contentFilterHooks({
              scanner: new RspamdClient({
                url: config.POSTMESH_RSPAMD_URL,
                timeoutMs: config.POSTMESH_RSPAMD_TIMEOUT_MS,
              }),
              hostname: config.POSTMESH_HOSTNAME,
              onFailure: config.POSTMESH_RSPAMD_ON_FAILURE,
              scanSubmissions: config.POSTMESH_RSPAMD_SCAN_SUBMISSIONS,
              onVerdict(event) {
                // Outgoing mail flagged as spam may be a compromised account: worth a warning.
                const flagged = event.action !== 'no action';
                if (flagged && event.submitted)
                  logger.warn(event, 'content filter flagged a submitted message');
                else logger.info(event, 'content filter verdict');
              },
              // A spam refusal is a hop of the message's trace (and the spam-rejected webhook).
              onRefused: (refused) =>
                void mailEvents.publish(
                  mailEvent({
                    eventId: `${refused.queueId}:rejected`,
                    service: 'smtp-inbound',
                    kind: 'rejected',
                    queueId: refused.queueId,
                    ...(refused.sender === '' ? {} : { sender: refused.sender }),
                    ...(refused.recipients[0] === undefined ? {} : { recipient: refused.recipients[0] }),
                    detail: refused.reply,
                    attributes: {
                      spam_action: refused.action,
                      ...(refused.score === undefined ? {} : { spam_score: refused.score.toFixed(2) }),
                      recipient_domains: recipientDomains(refused.recipients),
                    },
                  }),
                ),
              onFailureLogged: (error, queueId) =>
                logger.warn(
                  { err: error, queueId, policy: config.POSTMESH_RSPAMD_ON_FAILURE },
                  'content filter unavailable; applying the failure policy',
                ),
            }),
      postmesh_operator: operatorHooks(operator),
      postmesh_operator_data: operatorDataHooks(operator),
      postmesh_queue: queueHooks({
        js: () => bus.js,
        spool,
        timeoutMs: config.POSTMESH_SMTP_QUEUE_TIMEOUT_MS,
        ...(config.POSTMESH_STORAGE_OWNERSHIP ? { partitions: config.POSTMESH_STORAGE_PARTITIONS } : {}),
        onQueued({ spoolId, job, connection, queuedEvent, eventCarried }) {
          counter.hit('msg', connection.remote.ip, 0);
          logger.info(
            {
              spoolId,
              size: job.body.size,
              rcpts: job.envelope.rcptTo.length,
              remoteIp: job.envelope.remoteIp,
            },
            'queued',
          );
          // Mail for local recipients carries its `queued` event in the inbound job (storage
          // stores it with the delivery). Otherwise the event is published here; the message is
          // already durable, so the event must not hold up the 250: it is queued locally and
          // retried (MailEventOutbox) rather than awaited.
          if (!eventCarried) void mailEvents.publish(queuedEvent);
        },
        onError: (error, connection) =>
          logger.error(
            { err: error, remoteIp: connection.remote.ip },
            'could not queue a message; answered 451',
          ),
      }),
    });
    // Before readiness: the load balancer sends nothing to this pod until it is ready.
    if (config.POSTMESH_PROXY_PROTOCOL) haraka.requireProxyHeader();
    logger.info(
      { listen: haraka.addresses, hostname: config.POSTMESH_HOSTNAME },
      'SMTP (MX, submission) listening',
    );
    ops.addCheck({ name: 'smtp', check: () => (haraka.listening() ? true : 'SMTP listeners closed') });
    const certificate = watchServedCertificate({
      service: 'smtp-inbound',
      tls,
      config,
      js: () => bus.js,
      logger,
      onReload: (_context, pair) => haraka.replaceCertificate(pair),
    });

    return {
      async stop() {
        certificate.close();
        // Stop accepting; let open sessions finish within the drain budget (runService's timer).
        haraka.closeListeners();
        const left = await sessions.idle(Math.max(1_000, config.POSTMESH_SHUTDOWN_TIMEOUT_MS - 2_000));
        if (left > 0) logger.warn({ sessions: left }, 'sessions still open at the end of the drain');
        await counter.stop();
        await sweeper.stop();
        await exhausted.stop();
        await mailEvents.drain();
        directoryChanges.stop();
        directory.close();
      },
    };
  },
});
