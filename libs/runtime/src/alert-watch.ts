/**
 * The alert rules every service evaluates for what it owns (docs/alerts.md):
 *
 * - certificate-expiry: the TLS certificate a service serves (smtp-inbound, imap) expires within
 *   POSTMESH_CERT_EXPIRY_WARN_DAYS. Checked at start and every POSTMESH_CERT_EXPIRY_CHECK_MS,
 *   reading the file each time (a renewal is picked up). The alert's id is the certificate's
 *   fingerprint, so every check, restart and service serving it raise one alert.
 * - queue-depth / consumer-lag: the work queues (streams) of the consumers a service owns
 *   holding more than POSTMESH_ALERT_QUEUE_DEPTH messages, and each owned consumer more than
 *   POSTMESH_ALERT_CONSUMER_LAG jobs behind; checked every POSTMESH_ALERT_CHECK_INTERVAL_MS. The
 *   owner is the one service that reads them (its NATS user may inspect them), so each queue is
 *   watched once per replica, and the alert id (per stream or consumer and hour) makes replicas'
 *   alerts one.
 *
 * Alerts are published on MAIL_EVENTS; storage stores and mails them (rate limited).
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { SecureContext } from 'node:tls';
import {
  certificateExpiryAlert,
  consumerLagAlert,
  publishMailEvent,
  queueDepthAlert,
  type Bus,
  type MailEvent,
} from '@postmesh/bus';

type JetStreamClient = Bus['js'];
type JetStreamManager = Bus['jsm'];
import type { Logger } from '@postmesh/telemetry';
import { watchCertificate, type CertificatePair } from './tls-reload.js';

const DAY_MS = 86_400_000;

export interface CertificateExpiryOptions {
  readonly service: string;
  readonly certFile: string;
  readonly warnDays: number;
  readonly intervalMs: number;
  readonly js: () => JetStreamClient;
  readonly logger: Logger;
  readonly now?: () => number;
}

/** What the certificate file holds: the leaf (first PEM block) of the served chain. */
export function readCertificate(certFile: string): {
  fingerprint: string;
  subject: string;
  notAfter: Date;
} {
  const certificate = new X509Certificate(readFileSync(certFile));
  const dns = /DNS:([^,\s]+)/.exec(certificate.subjectAltName ?? '')?.[1];
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(certificate.subject)?.[1];
  return {
    fingerprint: certificate.fingerprint256.replace(/:/g, '').toLowerCase(),
    subject: dns ?? cn ?? certificate.subject.replace(/\n/g, ', '),
    notAfter: new Date(certificate.validTo),
  };
}

/** Checks now and periodically; `close()` stops. Never throws (problems are logged). */
export function watchCertificateExpiry(options: CertificateExpiryOptions): { close(): void } {
  const raised = new Set<string>();
  const check = async (): Promise<void> => {
    const now = (options.now ?? Date.now)();
    let found: ReturnType<typeof readCertificate>;
    try {
      found = readCertificate(options.certFile);
    } catch (error) {
      options.logger.warn({ err: error, cert: options.certFile }, 'certificate expiry not checked');
      return;
    }
    if (found.notAfter.getTime() - now > options.warnDays * DAY_MS || raised.has(found.fingerprint)) return;
    options.logger.warn(
      { cert: options.certFile, subject: found.subject, notAfter: found.notAfter.toISOString() },
      'TLS certificate expires soon',
    );
    try {
      await publishMailEvent(
        options.js(),
        certificateExpiryAlert({ service: options.service, file: options.certFile, now, ...found }),
      );
      raised.add(found.fingerprint);
    } catch (error) {
      // Not raised: the next check tries again.
      options.logger.warn({ err: error }, 'certificate expiry alert not published yet');
    }
  };
  void check();
  const timer = setInterval(() => void check(), options.intervalMs);
  timer.unref();
  return { close: () => clearInterval(timer) };
}

export interface QueueWatchOptions {
  readonly service: string;
  readonly jsm: () => JetStreamManager;
  readonly js: () => JetStreamClient;
  /** The consumers this service owns, with their streams. */
  readonly consumers: readonly { readonly stream: string; readonly consumer: string }[];
  /** Work queues (streams) whose depth is watched, among the owned consumers' streams. */
  readonly queues: readonly string[];
  readonly queueDepth: number;
  readonly consumerLag: number;
  readonly intervalMs: number;
  readonly logger: Logger;
}

/**
 * Evaluates queue depth and consumer lag once; answers the alerts raised (published). An alert
 * whose id is in `raised` (this hour's, published before) is not published again.
 */
export async function checkQueues(
  options: QueueWatchOptions,
  now = Date.now(),
  raised: Set<string> = new Set(),
): Promise<MailEvent[]> {
  const jsm = options.jsm();
  const alerts: MailEvent[] = [];
  const streams = new Set(options.consumers.map((c) => c.stream).filter((s) => options.queues.includes(s)));
  for (const stream of streams) {
    const info = await jsm.streams.info(stream).catch(() => undefined);
    if (info !== undefined && info.state.messages > options.queueDepth) {
      alerts.push(
        queueDepthAlert({
          service: options.service,
          stream,
          messages: info.state.messages,
          threshold: options.queueDepth,
          now,
        }),
      );
    }
  }
  for (const { stream, consumer } of options.consumers) {
    const info = await jsm.consumers.info(stream, consumer).catch(() => undefined);
    if (info !== undefined && info.num_pending > options.consumerLag) {
      alerts.push(
        consumerLagAlert({
          service: options.service,
          stream,
          consumer,
          pending: info.num_pending,
          threshold: options.consumerLag,
          now,
        }),
      );
    }
  }
  const fresh = alerts.filter((a) => !raised.has(a.eventId));
  for (const alert of fresh) {
    await publishMailEvent(options.js(), alert);
    raised.add(alert.eventId);
  }
  return fresh;
}

/** Checks every `intervalMs`; `close()` stops. Problems are logged, the next check tries again. */
export function watchQueues(options: QueueWatchOptions): { close(): void } {
  let running = false;
  const raised = new Set<string>();
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    // Ids carry the hour: older ones can never come again.
    if (raised.size > 1_000) raised.clear();
    checkQueues(options, Date.now(), raised)
      .then((raised) => {
        for (const alert of raised) options.logger.warn({ alert: alert.attributes }, alert.detail ?? 'alert');
      })
      .catch((error: unknown) => options.logger.warn({ err: error }, 'queue alerts not checked'))
      .finally(() => (running = false));
  }, options.intervalMs);
  timer.unref();
  return { close: () => clearInterval(timer) };
}

export interface ServedCertificateOptions {
  readonly service: string;
  /** The served pair; a `generated` (self-signed, development) pair is not watched for renewal. */
  readonly tls: { readonly certFile: string; readonly keyFile: string; readonly generated: boolean };
  /** The common variables that set the checks (libs/runtime's service schema). */
  readonly config: {
    readonly POSTMESH_CERT_EXPIRY_WARN_DAYS: number;
    readonly POSTMESH_CERT_EXPIRY_CHECK_MS: number;
    readonly POSTMESH_TLS_RELOAD_POLL_MS: number;
  };
  readonly js: () => JetStreamClient;
  readonly logger: Logger;
  /** Serve the renewed pair to new connections (`pair` for servers that build their own contexts). */
  readonly onReload: (context: SecureContext, pair: CertificatePair) => void;
}

/**
 * The certificate a mail protocol server presents: an alert while there is time to renew
 * (docs/alerts.md; re-read at each check), and, since cert-manager renews the mounted pair in
 * place, the new pair served without a restart. A pair that does not load is logged and the
 * current one stays in use.
 */
export function watchServedCertificate(options: ServedCertificateOptions): { close(): void } {
  const { tls, logger } = options;
  const expiry = watchCertificateExpiry({
    service: options.service,
    certFile: tls.certFile,
    warnDays: options.config.POSTMESH_CERT_EXPIRY_WARN_DAYS,
    intervalMs: options.config.POSTMESH_CERT_EXPIRY_CHECK_MS,
    js: options.js,
    logger: logger.child({ component: 'alerts' }),
  });
  const renewal = tls.generated
    ? undefined
    : watchCertificate(
        { certFile: tls.certFile, keyFile: tls.keyFile },
        {
          pollMs: options.config.POSTMESH_TLS_RELOAD_POLL_MS,
          contextOptions: { minVersion: 'TLSv1.2' },
          onReload(context, pair) {
            options.onReload(context, pair);
            logger.info({ cert: tls.certFile }, 'TLS certificate reloaded');
          },
          onError: (error) =>
            logger.warn({ err: error }, 'TLS certificate changed but did not load; keeping the current one'),
        },
      );
  return {
    close() {
      renewal?.close();
      expiry.close();
    },
  };
}
