/**
 * Consumer `mta-delivery` on MAIL_OUTBOUND (DESIGN §2 steps 9–10). One job = one message for the
 * recipients of one domain. Per attempt: route (RFC 5321 §5.1, RFC 7505, or the relay), TLS
 * policy (RFC 8461 MTA-STS, else opportunistic STARTTLS per RFC 7435/3207), DKIM signature of the
 * From: domain (RFC 6376), one SMTP transaction under the destination's concurrency and rate
 * limits, then per recipient: 2xx delivered, 5xx bounced (RFC 3464 DSN to the sender), 4xx or
 * no connection deferred (retry on the schedule until the queue lifetime, RFC 5321 §4.5.4.1).
 *
 * Duplicates: the remote 250 and our ack are not atomic. If the process dies after a 250 and
 * before the ack (or before the queue record is written), JetStream redelivers the job after
 * `ack_wait` and those recipients get the message again. The window is one SMTP transaction per
 * job in flight, so at most POSTMESH_MTA_CONCURRENCY messages are duplicated by one crash.
 */
import { createHash, randomUUID } from 'node:crypto';
import {
  JobOutcomes,
  MailEventOutbox,
  Streams,
  Subjects,
  decodeOutboundJob,
  encodeInboundJob,
  jobMessageId,
  mailEvent,
  publishDurable,
  type InboundJob,
  type JobOutcome,
  type JsMsg,
  type KV,
  type ObjectStore,
  type OutboundJob,
} from '@postmesh/bus';
import type { JetStreamClient } from '@nats-io/jetstream';
import { DestinationLimiter, retryDelay } from './backoff.js';
import type { ByteBudget } from './body-budget.js';
import type { DomainLimit } from './config.js';
import { signMessage, type SigningKeySource } from './dkim.js';
import type { Resolver } from './dns.js';
import { buildDsn, statusOf, type DsnRecipient } from '@postmesh/mime';
import { fromDomain, headerSection } from './message.js';
import { mxMatches, type StsPolicyCache } from './mta-sts.js';
import { queueKey, type QueueRecord, type QueueStore, type Versioned } from './queue-store.js';
import { resolveRoute } from './routes.js';
import type { Destination, SmtpClient, TlsDetails } from './smtp-client.js';
import type { Counter, Logger } from '@postmesh/telemetry';

export interface RelaySettings {
  readonly host: string;
  readonly port: number;
  readonly tls: 'starttls' | 'tls' | 'none';
  readonly user: string | undefined;
  readonly password: string | undefined;
}

export interface DeliverySettings {
  readonly hostname: string;
  readonly smtpPort: number;
  readonly relay: RelaySettings | undefined;
  readonly retryScheduleMs: readonly number[];
  readonly jitterPct: number;
  readonly lifetimeMs: number;
  readonly delayNoticeMs: number;
  readonly tickMs: number;
  readonly domainConcurrency: number;
  readonly domainLimits: Readonly<Record<string, DomainLimit>>;
}

/** What a job holds in memory while attempted: its body and, while signing and sending, a signed copy. */
export function bodyCost(job: OutboundJob): number {
  return 2 * job.body.size;
}

export interface DeliveryDeps {
  /** `postmesh_deliveries_total{outcome, destination="remote"}`, per recipient and attempt. */
  readonly deliveries?: Counter<'outcome' | 'destination'>;
  /** Bytes of bodies in memory at once (see ByteBudget); none = no limit. */
  readonly bodies?: ByteBudget;
  readonly js: JetStreamClient;
  readonly queue: QueueStore;
  readonly tlsReports: KV;
  /** SPOOL_REF_BUCKET: which jobs sharing a spool object are final. */
  readonly spoolRefs: KV;
  readonly spool: () => Promise<ObjectStore>;
  readonly resolver: Resolver;
  readonly sts: StsPolicyCache;
  readonly smtp: SmtpClient;
  readonly keys: SigningKeySource | undefined;
  readonly settings: DeliverySettings;
  readonly logger: Logger;
  readonly now?: () => number;
}

type RcptOutcome =
  | {
      readonly rcpt: string;
      readonly kind: 'delivered';
      readonly reply: string;
      readonly remoteMta: string;
      readonly remoteIp: string;
      readonly tls: TlsDetails | undefined;
    }
  | {
      readonly rcpt: string;
      readonly kind: 'failed' | 'deferred';
      readonly code: number;
      readonly reply: string;
      /** Where the reply came from; undefined for our own reasons (DNS, policy, no connection). */
      readonly remoteMta: string | undefined;
      readonly local: boolean;
    };

/** RFC 8460 §4.3 result types we record. */
type TlsResultType =
  | 'starttls-not-supported'
  | 'certificate-not-trusted'
  | 'certificate-host-mismatch'
  | 'validation-failure'
  | 'sts-policy-fetch-error'
  | 'sts-policy-invalid';

type EventKind = 'queued' | 'delivered' | 'relayed' | 'deferred' | 'bounced' | 'delayed-notice';

function tlsResultOf(reason: string): TlsResultType {
  if (/hostname|altnames|does not match/i.test(reason)) return 'certificate-host-mismatch';
  if (/self.signed|unable to (get|verify)|certificate/i.test(reason)) return 'certificate-not-trusted';
  if (/STARTTLS/i.test(reason)) return 'starttls-not-supported';
  return 'validation-failure';
}

export class OutboundDelivery {
  private readonly limiters = new Map<string, DestinationLimiter>();
  private readonly mailEvents: MailEventOutbox;
  private readonly now: () => number;

  constructor(private readonly deps: DeliveryDeps) {
    this.now = deps.now ?? Date.now;
    this.mailEvents = new MailEventOutbox({ js: () => deps.js, logger: deps.logger });
  }

  async handle(msg: JsMsg): Promise<JobOutcome> {
    const decoded = decodeOutboundJob(msg.data);
    if (!decoded.ok) return JobOutcomes.reject(`malformed outbound job: ${decoded.problem}`);
    const { job, inlineBody } = decoded;
    const key = queueKey(job.spoolId, job.domain);
    const { tickMs } = this.deps.settings;
    if (msg.info.deliveryCount > 1 && (await this.isFinal(job))) {
      // Final before a crash or a lost ack (its spool object may be gone already): finish the
      // cleanup and ack, never deliver again.
      await this.releaseSpool(job);
      return JobOutcomes.ack;
    }
    // A first delivery has no queue record yet: skip the read (the hot path of most mail).
    const stored = msg.info.deliveryCount > 1 ? await this.deps.queue.get(key) : undefined;
    const now = this.now();
    if (stored?.record.cancelled !== undefined) {
      await this.deps.queue.remove(key);
      await this.releaseSpool(job);
      return JobOutcomes.drop(`cancelled by ${stored.record.cancelled.by}`);
    }
    if (stored !== undefined) {
      const due = Date.parse(stored.record.nextAttemptAt);
      if (due > now) return JobOutcomes.retry('not due yet', Math.min(due - now, tickMs));
    }
    if (stored === undefined && msg.info.deliveryCount === 1) {
      this.events(job, 'queued', job.envelope.rcptTo, 'queued for delivery', {});
    }
    // The body (and its signed copy) is loaded only within the replica's byte budget; waiting
    // here keeps the job in progress (ConsumerLoop's heartbeat), not loaded.
    const release = await this.deps.bodies?.acquire(bodyCost(job));
    try {
      return await this.attemptWithBody(job, inlineBody, stored);
    } finally {
      release?.();
    }
  }

  /** The rest of `handle`, once the job may load its body. */
  private async attemptWithBody(
    job: OutboundJob,
    inlineBody: Uint8Array | undefined,
    stored: Versioned | undefined,
  ): Promise<JobOutcome> {
    const key = queueKey(job.spoolId, job.domain);
    const { tickMs } = this.deps.settings;
    const now = this.now();
    const remaining = stored?.record.remaining ?? job.envelope.rcptTo;
    const queuedAt = Date.parse(job.queuedAt);
    const expiry = queuedAt + this.deps.settings.lifetimeMs;
    const attemptNo = (stored?.record.attempts ?? 0) + 1;

    if (now >= expiry) {
      // RFC 5321 §4.5.4.1: give up after the queue lifetime; RFC 3463 4.4.7 "delivery time expired".
      const last = stored?.record.lastError ?? 'no attempt succeeded';
      const outcomes: RcptOutcome[] = remaining.map((rcpt) => ({
        rcpt,
        kind: 'failed',
        code: 0,
        reply: `4.4.7 message expired after ${Math.round(this.deps.settings.lifetimeMs / 3_600_000)} h in the queue; last error: ${last}`,
        remoteMta: stored?.record.remoteMta || undefined,
        local: true,
      }));
      // The DSN quotes the original header section: from the body, or, if the spool object is
      // gone (swept after a very long outage), from the queue record.
      const original = await this.body(job, inlineBody).catch(
        () => new Uint8Array(Buffer.from(stored?.record.originalHeaders ?? '', 'base64')),
      );
      await this.finish(job, outcomes, attemptNo, 'expired', original);
      if (stored !== undefined) await this.deps.queue.remove(key);
      await this.releaseSpool(job);
      return JobOutcomes.ack;
    }

    const body = await this.body(job, inlineBody);
    const signed = await this.sign(job, body);
    if (signed.kind === 'retry') {
      return JobOutcomes.retry(signed.reason, Math.min(tickMs, 60_000));
    }
    const outcomes = await this.attempt(job, remaining, signed.message);

    await this.finish(job, outcomes, attemptNo, 'attempt', body);
    const deferred = outcomes.filter((o) => o.kind === 'deferred');
    if (deferred.length === 0) {
      if (stored !== undefined) await this.deps.queue.remove(key);
      await this.releaseSpool(job);
      return JobOutcomes.ack;
    }
    const first = deferred[0];
    const lastError = first && first.kind === 'deferred' ? first.reply : 'deferred';
    const nextAt = Math.min(
      this.now() + retryDelay(this.deps.settings.retryScheduleMs, attemptNo, this.deps.settings.jitterPct),
      expiry,
    );
    const noticeDue =
      this.deps.settings.delayNoticeMs > 0 &&
      stored?.record.delayNoticeSent !== true &&
      this.now() - queuedAt >= this.deps.settings.delayNoticeMs;
    let record: QueueRecord = {
      spoolId: job.spoolId,
      domain: job.domain,
      sender: job.envelope.mailFrom,
      messageId: job.messageId,
      queuedAt: job.queuedAt,
      traceparent: job.traceparent,
      remaining: deferred.map((o) => o.rcpt),
      attempts: attemptNo,
      lastAttemptAt: new Date(now).toISOString(),
      nextAttemptAt: new Date(nextAt).toISOString(),
      lastError,
      remoteMta: (first?.kind === 'deferred' ? first.remoteMta : undefined) ?? '',
      delayNoticeSent: (stored?.record.delayNoticeSent ?? false) || noticeDue,
      originalHeaders:
        stored?.record.originalHeaders ??
        Buffer.from(headerSection(body).subarray(0, 16 * 1024)).toString('base64'),
    };
    if (!(await this.deps.queue.write(key, record, stored?.revision))) {
      // Someone (an operator) changed the record during the attempt: their word wins on cancel.
      const current = await this.deps.queue.get(key);
      if (current?.record.cancelled !== undefined) {
        await this.deps.queue.remove(key);
        await this.releaseSpool(job);
        return JobOutcomes.drop(`cancelled by ${current.record.cancelled.by}`);
      }
      record = { ...record, nextAttemptAt: current?.record.nextAttemptAt ?? record.nextAttemptAt };
      await this.deps.queue.write(key, record, current?.revision);
    }
    if (noticeDue) await this.delayNotice(job, deferred, attemptNo, body, expiry);
    return JobOutcomes.retry(
      lastError,
      Math.max(0, Math.min(Date.parse(record.nextAttemptAt) - this.now(), tickMs)),
    );
  }

  /** Whether this job was already final (its entry is in SPOOL_REF_BUCKET). */
  private async isFinal(job: OutboundJob): Promise<boolean> {
    if (job.body.kind !== 'object' || job.body.sharedBy === undefined) return false;
    const entry = await this.deps.spoolRefs.get(queueKey(job.spoolId, job.domain));
    return entry !== null && entry.operation === 'PUT';
  }

  /**
   * Reference counting of a shared spool object (`body.sharedBy`), safe across crashes: a final
   * job first records itself as final, then reads its siblings' records; only when all are final
   * is the object deleted. Of two siblings finishing at once at least the later writer sees both
   * records (each writes before it reads), so the object is deleted, maybe twice (harmless). A
   * crash between the record and the ack redelivers the job, which `isFinal` turns into this
   * cleanup again. Failures here only leave the object behind for the sweeper (`SpoolSweeper`).
   */
  private async releaseSpool(job: OutboundJob): Promise<void> {
    const body = job.body;
    if (body.kind !== 'object' || body.sharedBy === undefined) return;
    try {
      const refs = this.deps.spoolRefs;
      await refs.put(
        queueKey(job.spoolId, job.domain),
        JSON.stringify({ at: new Date(this.now()).toISOString() }),
      );
      for (const domain of body.sharedBy) {
        if (domain === job.domain) continue;
        const entry = await refs.get(queueKey(job.spoolId, domain));
        if (entry === null || entry.operation !== 'PUT') return;
      }
      const store = await this.deps.spool();
      await store.delete(body.object);
      this.deps.logger.info(
        { spoolId: job.spoolId, object: body.object },
        'spool object deleted: every job is final',
      );
    } catch (error) {
      this.deps.logger.warn(
        { err: error, spoolId: job.spoolId },
        'spool object not released; the sweeper will remove it',
      );
    }
  }

  private async body(job: OutboundJob, inline: Uint8Array | undefined): Promise<Uint8Array> {
    if (job.body.kind === 'inline') return inline ?? new Uint8Array();
    const store = await this.deps.spool();
    const data = await store.getBlob(job.body.object);
    if (data === null) throw new Error(`spool object ${job.body.object} is missing`);
    return data;
  }

  private async sign(
    job: OutboundJob,
    body: Uint8Array,
  ): Promise<{ kind: 'ok'; message: Uint8Array } | { kind: 'retry'; reason: string }> {
    const keys = this.deps.keys;
    const domain = fromDomain(body);
    if (keys === undefined || domain === undefined) return { kind: 'ok', message: body };
    const answer = await keys.signingKey(domain);
    switch (answer.kind) {
      case 'none':
        return { kind: 'ok', message: body };
      case 'unavailable':
        // Sending unsigned would fail DMARC at the receiver: wait for the Directory instead.
        return { kind: 'retry', reason: `Directory unavailable for the DKIM key: ${answer.reason}` };
      case 'keys':
        try {
          return { kind: 'ok', message: await signMessage(body, answer.keys) };
        } catch (error) {
          this.deps.logger.error(
            { err: error, spoolId: job.spoolId, keyIds: answer.keys.map((k) => k.keyId) },
            'DKIM signing failed; sending unsigned',
          );
          return { kind: 'ok', message: body };
        }
    }
  }

  private limiter(domain: string): DestinationLimiter {
    let limiter = this.limiters.get(domain);
    if (limiter === undefined) {
      const limit = this.deps.settings.domainLimits[domain];
      limiter = new DestinationLimiter(
        limit?.concurrency ?? this.deps.settings.domainConcurrency,
        limit?.perMinute,
      );
      this.limiters.set(domain, limiter);
    }
    return limiter;
  }

  /** One delivery attempt for `rcpts`; every recipient gets an outcome. */
  private async attempt(
    job: OutboundJob,
    rcpts: readonly string[],
    message: Uint8Array,
  ): Promise<RcptOutcome[]> {
    const all = (kind: 'failed' | 'deferred', reply: string, remoteMta?: string): RcptOutcome[] =>
      rcpts.map((rcpt) => ({ rcpt, kind, code: 0, reply, remoteMta, local: true }));
    const relay = this.deps.settings.relay;
    let candidates: { name: string; addresses: readonly string[] }[];
    let verifiedOnly = false;
    let port = this.deps.settings.smtpPort;
    if (relay !== undefined) {
      candidates = [{ name: relay.host, addresses: [relay.host] }];
      port = relay.port;
    } else {
      const route = await resolveRoute(job.domain, this.deps.resolver);
      switch (route.kind) {
        case 'null-mx':
          // RFC 7505 §4.2: a null MX domain accepts no mail; fail at once with 5.1.10.
          return all('failed', `556 5.1.10 ${job.domain} does not accept mail (null MX, RFC 7505)`);
        case 'no-domain':
          return all('failed', `550 5.1.2 ${route.detail}`);
        case 'temp':
          return all('deferred', `451 4.4.3 ${route.detail}`);
        case 'hosts':
          candidates = route.hosts.map((h) => ({ name: h.name, addresses: h.addresses }));
          break;
      }
      const sts = await this.deps.sts.lookup(job.domain);
      if (sts.failure !== undefined) {
        await this.tlsReport(job.domain, sts.failure.type, '', '', sts.failure.detail);
      }
      if (sts.policy?.mode === 'enforce') {
        verifiedOnly = true;
        const patterns = sts.policy.mx;
        // RFC 8461 §5: an enforce-mode domain is never sent to an MX that does not match.
        const matching = candidates.filter((c) => mxMatches(c.name, patterns));
        if (matching.length === 0) {
          await this.tlsReport(
            job.domain,
            'validation-failure',
            candidates[0]?.name ?? '',
            '',
            'no MX matches the MTA-STS policy',
          );
          return all(
            'deferred',
            `451 4.7.5 no MX of ${job.domain} matches its MTA-STS policy (RFC 8461 §4.1)`,
          );
        }
        candidates = matching;
      }
    }

    const release = await this.limiter(job.domain).acquire();
    let lastProblem = `451 4.4.1 no MX of ${job.domain} could be reached`;
    let lastHost: string | undefined;
    try {
      for (const host of candidates) {
        if (host.addresses.length === 0) lastProblem = `451 4.4.4 ${host.name} has no address`;
        for (const address of host.addresses) {
          const dest: Destination =
            relay !== undefined
              ? {
                  host: relay.host,
                  port,
                  servername: relay.host,
                  tls: relay.tls === 'tls' ? 'implicit' : relay.tls === 'none' ? 'none' : 'verified',
                  ...(relay.user !== undefined
                    ? { auth: { user: relay.user, pass: relay.password ?? '' } }
                    : {}),
                }
              : {
                  host: address,
                  port,
                  servername: host.name,
                  tls: verifiedOnly ? 'verified' : 'opportunistic',
                };
          let result = await this.deps.smtp.send(dest, job.envelope.mailFrom, rcpts, message);
          if (result.kind === 'no-connection' && result.tlsFailure !== undefined) {
            await this.tlsReport(
              job.domain,
              tlsResultOf(result.tlsFailure),
              host.name,
              address,
              result.tlsFailure,
            );
            if (dest.tls === 'opportunistic') {
              // RFC 7435 §4 (opportunistic security): a failed handshake falls back to plaintext.
              result = await this.deps.smtp.send(
                { ...dest, tls: 'none' },
                job.envelope.mailFrom,
                rcpts,
                message,
              );
            }
          }
          switch (result.kind) {
            case 'no-connection':
              lastProblem = `${result.code >= 400 ? result.code : 451} 4.4.1 ${host.name} [${address}]: ${result.reason}`;
              lastHost = host.name;
              continue;
            case 'sent': {
              const out: RcptOutcome[] = result.accepted.map((rcpt) => ({
                rcpt,
                kind: 'delivered',
                reply: result.reply,
                remoteMta: host.name,
                remoteIp: address,
                tls: result.tls,
              }));
              for (const r of result.rejected) {
                out.push({
                  rcpt: r.rcpt,
                  kind: r.code >= 500 ? 'failed' : 'deferred',
                  code: r.code,
                  reply: r.reply,
                  remoteMta: host.name,
                  local: false,
                });
              }
              return out;
            }
            case 'refused': {
              const byRcpt = new Map(result.rejected.map((r) => [r.rcpt, r]));
              return rcpts.map((rcpt) => {
                const r = byRcpt.get(rcpt) ?? { code: result.code, reply: result.reply };
                return {
                  rcpt,
                  kind: r.code >= 500 ? 'failed' : 'deferred',
                  code: r.code,
                  reply: r.reply,
                  remoteMta: host.name,
                  local: false,
                };
              });
            }
          }
        }
      }
    } finally {
      release();
    }
    return all('deferred', lastProblem, lastHost);
  }

  /** Trace events for an attempt, and the failure DSN for bounced recipients. */
  private async finish(
    job: OutboundJob,
    outcomes: readonly RcptOutcome[],
    attemptNo: number,
    phase: 'attempt' | 'expired',
    body: Uint8Array,
  ): Promise<void> {
    const relayed = this.deps.settings.relay !== undefined;
    for (const o of outcomes) {
      switch (o.kind) {
        case 'delivered':
          this.events(job, relayed ? 'relayed' : 'delivered', [o.rcpt], o.reply, {
            remote_mta: o.remoteMta,
            remote_ip: o.remoteIp,
            attempt: String(attemptNo),
            tls: o.tls === undefined ? 'none' : o.tls.protocol,
            ...(o.tls === undefined
              ? {}
              : { tls_cipher: o.tls.cipher, tls_verified: String(o.tls.verified) }),
          });
          break;
        case 'deferred':
          this.events(job, 'deferred', [o.rcpt], o.reply, {
            attempt: String(attemptNo),
            ...(o.remoteMta === undefined ? {} : { remote_mta: o.remoteMta }),
          });
          break;
        case 'failed':
          this.events(job, 'bounced', [o.rcpt], o.reply, {
            attempt: String(attemptNo),
            ...(o.remoteMta === undefined ? {} : { remote_mta: o.remoteMta }),
          });
          break;
      }
    }
    const failed = outcomes.flatMap((o) => (o.kind === 'failed' ? [o] : []));
    if (failed.length === 0) return;
    const now = new Date(this.now());
    await this.sendDsn(
      job,
      failed.map((o) => ({
        rcpt: o.rcpt,
        action: 'failed',
        status:
          phase === 'expired'
            ? '4.4.7'
            : o.code > 0
              ? statusOf(o.code, o.reply)
              : (/\b([45]\.\d{1,3}\.\d{1,3})\b/.exec(o.reply)?.[1] ?? '5.0.0'),
        ...(o.remoteMta === undefined ? {} : { remoteMta: o.remoteMta }),
        diagnostic: o.reply,
        diagnosticType: o.local ? 'x-postmesh' : 'smtp',
        lastAttempt: now,
      })),
      `failed:${attemptNo}`,
      undefined,
      body,
    );
  }

  private async delayNotice(
    job: OutboundJob,
    deferred: readonly RcptOutcome[],
    attemptNo: number,
    body: Uint8Array,
    expiry: number,
  ): Promise<void> {
    const now = new Date(this.now());
    await this.sendDsn(
      job,
      deferred.map((o) => ({
        rcpt: o.rcpt,
        action: 'delayed',
        status: o.kind === 'deferred' && o.code > 0 ? statusOf(o.code, o.reply) : '4.4.1',
        ...(o.kind === 'deferred' && o.remoteMta !== undefined ? { remoteMta: o.remoteMta } : {}),
        diagnostic: o.reply,
        diagnosticType: o.kind === 'deferred' && !o.local ? 'smtp' : 'x-postmesh',
        lastAttempt: now,
      })),
      `delayed:${attemptNo}`,
      new Date(expiry),
      body,
    );
    this.events(
      job,
      'delayed-notice',
      deferred.map((o) => o.rcpt),
      'delay notice sent to the sender',
      {},
    );
  }

  /** Publishes the DSN as an inbound job for the sender (storage puts it in their INBOX). */
  async sendDsn(
    job: Pick<OutboundJob, 'spoolId' | 'domain' | 'envelope' | 'queuedAt' | 'traceparent'> & {
      body?: OutboundJob['body'];
    },
    recipients: readonly DsnRecipient[],
    discriminator: string,
    willRetryUntil: Date | undefined,
    original: Uint8Array | undefined,
    originalHeaders?: Uint8Array,
  ): Promise<boolean> {
    // RFC 5321 §4.5.5 / RFC 3464 §2: never a DSN to the null reverse-path.
    if (job.envelope.mailFrom === '' || recipients.length === 0) return false;
    const headers =
      originalHeaders ?? (original !== undefined ? headerSection(original) : await this.originalHeaders(job));
    const dsn = buildDsn({
      reportingMta: this.deps.settings.hostname,
      sender: job.envelope.mailFrom,
      queueId: job.spoolId,
      arrival: new Date(job.queuedAt),
      recipients,
      originalHeaders: headers.subarray(0, 64 * 1024),
      date: new Date(this.now()),
      ...(willRetryUntil === undefined ? {} : { willRetryUntil }),
    });
    // Deterministic id: a retried handler publishes the same DSN, deduplicated by JetStream and storage.
    const spoolId = `dsn_${createHash('sha256').update(`${job.spoolId}:${job.domain}:${discriminator}`).digest('base64url').slice(0, 40)}`;
    const inbound: InboundJob = {
      version: 1,
      spoolId,
      envelope: {
        mailFrom: '',
        rcptTo: [job.envelope.mailFrom],
        remoteIp: '127.0.0.1',
        helo: this.deps.settings.hostname,
      },
      authResults: { spf: 'none', dkim: 'none', dmarc: 'none', arc: 'none', dmarcPolicy: '', junk: false },
      receivedAt: new Date(this.now()).toISOString(),
      messageId: `${job.spoolId}.dsn@${this.deps.settings.hostname}`,
      traceparent: job.traceparent,
      body: { kind: 'inline', size: dsn.length },
    };
    await publishDurable(this.deps.js, Subjects.inbound(spoolId), encodeInboundJob(inbound, dsn), {
      msgId: jobMessageId(spoolId, Streams.MAIL_INBOUND),
      expectStream: Streams.MAIL_INBOUND,
    });
    return true;
  }

  private async originalHeaders(job: { body?: OutboundJob['body'] }): Promise<Uint8Array> {
    if (job.body?.kind !== 'object') return new Uint8Array();
    const store = await this.deps.spool();
    const data = await store.getBlob(job.body.object);
    return data === null ? new Uint8Array() : headerSection(data);
  }

  /**
   * Trace events do not hold up the job: a delivered message must not wait for (or be sent
   * again because of) its trace. They go through a MailEventOutbox, which holds an event
   * JetStream did not take and publishes it again; `drain()` flushes it at shutdown.
   */
  private events(
    job: OutboundJob,
    kind: EventKind,
    rcpts: readonly string[],
    detail: string,
    attributes: Record<string, string>,
  ): void {
    const traceId = /^00-([0-9a-f]{32})-/.exec(job.traceparent)?.[1];
    if (kind !== 'queued' && kind !== 'delayed-notice') {
      this.deps.deliveries?.inc({ outcome: kind, destination: 'remote' }, rcpts.length);
    }
    for (const recipient of rcpts) {
      void this.mailEvents.publish(
        mailEvent({
          service: 'mta-delivery',
          kind,
          time: new Date(this.now()),
          queueId: job.spoolId,
          ...(job.messageId === '' ? {} : { messageId: job.messageId }),
          ...(job.envelope.mailFrom === '' ? {} : { sender: job.envelope.mailFrom }),
          recipient,
          detail,
          attributes,
          ...(traceId === undefined ? {} : { traceId }),
        }),
      );
    }
  }

  /** Waits for trace events still being published (graceful shutdown). */
  async drain(): Promise<void> {
    await this.mailEvents.drain();
  }

  /** RFC 8460: remember a TLS problem for the daily TLS-RPT report (reporting itself is later work). */
  private async tlsReport(
    policyDomain: string,
    resultType: TlsResultType,
    mx: string,
    ip: string,
    detail: string,
  ): Promise<void> {
    const day = new Date(this.now()).toISOString().slice(0, 10).replace(/-/g, '');
    const record = {
      time: new Date(this.now()).toISOString(),
      policyDomain,
      resultType,
      receivingMxHostname: mx,
      receivingIp: ip,
      detail: detail.slice(0, 500),
    };
    try {
      await this.deps.tlsReports.put(
        `${day}.${policyDomain}.${randomUUID()}`,
        new TextEncoder().encode(JSON.stringify(record)),
      );
    } catch (error) {
      this.deps.logger.warn({ err: error, policyDomain }, 'TLS failure not recorded');
    }
    this.deps.logger.warn(record, 'TLS failure');
  }
}
