/**
 * Consumer `storage-deliver` on MAIL_INBOUND (DESIGN §2 steps 5–8): every job accepted by
 * smtp-inbound reaches each recipient mailbox exactly once.
 *
 * - Exactly once: the Mailstore's `(spoolId, recipient)` record in `deliveries` makes a
 *   redelivered job a no-op that still acks (step 6). The recipient key is the resolved user's
 *   primary address, so a message sent to a user's alias *and* primary address lands once.
 * - One encrypted body per delivery, shared by all its recipients (Mailstore.deliverToMailboxes).
 * - Junk: the job's auth verdict (DMARC p=quarantine failure) routes to the Junk mailbox.
 * - Then a trace event per recipient (Nats-Msg-Id derived from spoolId and recipient, so a retry
 *   does not duplicate it), the ack, and the spool object's removal (step 7).
 * - A job that keeps failing goes to MAIL_DLQ with its error after max_deliver (ConsumerLoop,
 *   step 8); a malformed job goes there at once.
 */
import {
  ConsumerLoop,
  Consumers,
  JobOutcomes,
  Streams,
  Subjects,
  decodeInboundJob,
  openSpool,
  publishDurable,
  type Bus,
  type InboundJob,
  type JobOutcome,
  type JsMsg,
  type ObjectStore,
} from '@postmesh/bus';
import type { Logger } from '@postmesh/telemetry';
import type { DirectoryService } from '../directory/directory-service.js';
import type { DeliveryOutcome, DeliveryRecipient, Mailstore } from '../mailstore/index.js';
import type { MailEventPayload } from '../trace/event.js';

/** Where a recipient's copy goes, or why it has none. */
export type RecipientPlan =
  | { readonly kind: 'deliver'; readonly rcpt: string; readonly target: DeliveryRecipient }
  | { readonly kind: 'skip'; readonly rcpt: string; readonly reason: string };

export interface DeliveryDeps {
  readonly bus: Bus;
  readonly mailstore: Mailstore;
  readonly directory: Pick<DirectoryService, 'resolveRecipient'>;
  readonly logger: Logger;
  /** Attempts before MAIL_DLQ; mirrors the consumer's max_deliver (libs/bus topology). */
  readonly maxDeliver?: number;
  readonly concurrency?: number;
  readonly backoffMs?: readonly number[];
  /** Test hook: called before each job is handled (e.g. to make one always fail). */
  readonly beforeJob?: (job: InboundJob) => void | Promise<void>;
}

const JUNK = 'Junk';
const INBOX = 'INBOX';

/** Resolves every envelope recipient to the users that get a copy (deduplicated by user). */
export async function planRecipients(
  job: InboundJob,
  directory: Pick<DirectoryService, 'resolveRecipient'>,
): Promise<RecipientPlan[] | { readonly retry: string }> {
  const plans: RecipientPlan[] = [];
  const seenUsers = new Set<string>();
  const mailbox = job.authResults.junk ? JUNK : INBOX;
  for (const rcpt of new Set(job.envelope.rcptTo.map((r) => r.toLowerCase()))) {
    const answer = await directory.resolveRecipient({ address: rcpt, messageSize: 0 });
    if (!answer.ok) return { retry: `directory: ${answer.error.message}` };
    const result = answer.value.result;
    switch (result?.$case) {
      case 'users':
      case 'overQuota':
        for (const user of result.value.users) {
          if (seenUsers.has(user.userId)) continue;
          seenUsers.add(user.userId);
          plans.push({
            kind: 'deliver',
            rcpt,
            target: { recipient: user.address.toLowerCase(), userId: user.userId, mailbox },
          });
        }
        break;
      case 'notFound':
      case 'suspended':
      case 'forward':
      case undefined:
        // Gone since RCPT time (or not local): nothing to store for it; the trace says why.
        plans.push({ kind: 'skip', rcpt, reason: result?.$case ?? 'no result' });
        break;
    }
  }
  return plans;
}

/** An async body that opens the spool object only if some recipient still needs it. */
function spoolBody(open: () => Promise<ObjectStore>, name: string): AsyncIterable<Uint8Array> {
  return {
    async *[Symbol.asyncIterator]() {
      const store = await open();
      const result = await store.get(name);
      if (result === null) throw new Error(`spool object ${name} is missing`);
      const reader = result.data.getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        yield value;
      }
      if (!(await result.error)) return;
      throw new Error(`spool object ${name} could not be read completely`);
    },
  };
}

function traceEvent(
  job: InboundJob,
  kind: MailEventPayload['kind'],
  recipient: string,
  detail: string,
  attributes: Record<string, string>,
): MailEventPayload {
  return {
    eventId: `${job.spoolId}:${kind}:${recipient}`.slice(0, 200),
    time: new Date().toISOString(),
    service: 'storage',
    kind,
    queueId: job.spoolId,
    recipient,
    detail,
    attributes,
    ...(job.messageId === '' ? {} : { messageId: job.messageId }),
    ...(job.envelope.mailFrom === '' ? {} : { sender: job.envelope.mailFrom }),
  };
}

export class InboundDelivery {
  private spool: Promise<ObjectStore> | undefined;

  constructor(private readonly deps: DeliveryDeps) {}

  private openSpool(): Promise<ObjectStore> {
    this.spool ??= openSpool(this.deps.bus.nc).catch((error: unknown) => {
      this.spool = undefined;
      throw error;
    });
    return this.spool;
  }

  async handle(msg: JsMsg): Promise<JobOutcome> {
    const decoded = decodeInboundJob(msg.data);
    if (!decoded.ok) return JobOutcomes.reject(`malformed inbound job: ${decoded.problem}`);
    const { job, inlineBody } = decoded;
    await this.deps.beforeJob?.(job);
    const plans = await planRecipients(job, this.deps.directory);
    if ('retry' in plans) return JobOutcomes.retry(plans.retry);
    const targets = plans.flatMap((p) => (p.kind === 'deliver' ? [p.target] : []));
    const body =
      job.body.kind === 'inline'
        ? (inlineBody ?? new Uint8Array())
        : spoolBody(() => this.openSpool(), job.body.object);
    const receivedAt = new Date(job.receivedAt);
    let outcomes: DeliveryOutcome[] =
      targets.length === 0
        ? []
        : await this.deps.mailstore.deliverToMailboxes(job.spoolId, body, targets, receivedAt);
    // A user without a Junk mailbox gets quarantined mail in INBOX rather than not at all.
    const noJunk = outcomes.filter((o) => o.status === 'no-mailbox');
    if (noJunk.length > 0 && job.authResults.junk) {
      const again = targets
        .filter((t) => noJunk.some((o) => o.recipient === t.recipient))
        .map((t) => ({ ...t, mailbox: INBOX }));
      const body2 =
        job.body.kind === 'inline'
          ? (inlineBody ?? new Uint8Array())
          : spoolBody(() => this.openSpool(), job.body.object);
      const retried = await this.deps.mailstore.deliverToMailboxes(job.spoolId, body2, again, receivedAt);
      outcomes = [...outcomes.filter((o) => o.status !== 'no-mailbox'), ...retried];
    }
    const events: MailEventPayload[] = [];
    let overQuota = 0;
    for (const outcome of outcomes) {
      const attrs = { spf: job.authResults.spf, dkim: job.authResults.dkim, dmarc: job.authResults.dmarc };
      switch (outcome.status) {
        case 'delivered':
        case 'duplicate':
          events.push(
            traceEvent(
              job,
              job.authResults.junk ? 'junked' : 'delivered',
              outcome.recipient,
              `stored as UID ${outcome.uid}`,
              { ...attrs, mailbox_id: outcome.mailboxId, uid: String(outcome.uid) },
            ),
          );
          break;
        case 'over-quota':
          overQuota += 1;
          break;
        case 'no-mailbox':
          events.push(traceEvent(job, 'rejected', outcome.recipient, 'recipient has no INBOX', attrs));
          break;
      }
    }
    for (const plan of plans) {
      if (plan.kind === 'skip') {
        events.push(traceEvent(job, 'rejected', plan.rcpt, `recipient ${plan.reason} at delivery`, {}));
      }
    }
    for (const event of events) {
      await publishDurable(
        this.deps.bus.js,
        Subjects.events(event.kind),
        new TextEncoder().encode(JSON.stringify(event)),
        { msgId: event.eventId },
      );
    }
    if (overQuota > 0) {
      // Accepted mail is never dropped: keep trying; after max_deliver it waits in MAIL_DLQ.
      return JobOutcomes.retry(`${overQuota} recipient(s) over quota`, 60_000);
    }
    if (job.body.kind === 'object') {
      // Step 7: only MAIL_INBOUND references MX mail's spool object; it is done with it.
      await this.openSpool()
        .then((store) => store.delete(job.body.kind === 'object' ? job.body.object : ''))
        .catch((error: unknown) =>
          this.deps.logger.warn(
            { err: error, spoolId: job.spoolId },
            'spool object not removed; it is harmless',
          ),
        );
    }
    this.deps.logger.info(
      { spoolId: job.spoolId, delivered: outcomes.filter((o) => o.status === 'delivered').length },
      'inbound job delivered',
    );
    return JobOutcomes.ack;
  }
}

/** The `storage-deliver` loop; `start()` it, and `stop()` it before closing the database. */
export function createDeliveryConsumer(deps: DeliveryDeps): ConsumerLoop {
  const delivery = new InboundDelivery(deps);
  return new ConsumerLoop({
    js: deps.bus.js,
    stream: Streams.MAIL_INBOUND,
    consumer: Consumers.STORAGE_DELIVER,
    logger: deps.logger,
    maxDeliver: deps.maxDeliver ?? 10,
    concurrency: deps.concurrency ?? 16,
    ...(deps.backoffMs ? { backoffMs: deps.backoffMs } : {}),
    handler: (msg) => delivery.handle(msg),
  });
}
