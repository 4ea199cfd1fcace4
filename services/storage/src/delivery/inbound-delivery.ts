/**
 * Consumer `storage-deliver` on MAIL_INBOUND (DESIGN §2 steps 5–8): every job accepted by
 * smtp-inbound reaches each recipient mailbox exactly once.
 *
 * - In batches: the jobs that arrive within a few milliseconds of each other (up to
 *   `maxBatch`) are parsed and encrypted one by one, then committed together with one bulk write
 *   per collection (Mailstore.commitDeliveries), and acked only once that write is durable
 *   (`w: majority, j: true`). Each job keeps its own outcome: one that fails is retried or
 *   dead-lettered alone while the others of its batch are acked.
 * - Exactly once: the Mailstore's `(spoolId, recipient)` record in `deliveries` makes a
 *   redelivered job a no-op that still acks (step 6). The recipient key is the resolved user's
 *   primary address, so a message sent to a user's alias *and* primary address lands once.
 * - One encrypted body per delivery, shared by all its recipients.
 * - Junk: the job's auth verdict (DMARC p=quarantine failure) routes to the Junk mailbox (to
 *   INBOX for a user without one).
 * - Then the trace events of the batch (one per recipient, and smtp-inbound's `queued` event that
 *   the job carries) with one unordered insert into the event store, the same store the
 *   `storage-events` consumer fills from MAIL_EVENTS: no publish and no fsync of its own per
 *   message. Their ids derive from spoolId and recipient, so a retried job stores none twice; a
 *   job whose events were not stored is retried, so no hop goes missing. Then the ack, and the
 *   spool object's removal (step 7).
 * - A job that keeps failing goes to MAIL_DLQ with its error after max_deliver (step 8); a
 *   malformed job goes there at once.
 */
import {
  BatchConsumerLoop,
  Consumers,
  JobOutcomes,
  PartitionedInbound,
  Streams,
  decodeInboundJob,
  jobTraceContext,
  mailEvent,
  openSpool,
  validateMailEvent,
  type Bus,
  type InboundJob,
  type JobOutcome,
  type JsMsg,
  type MailEvent,
  type ObjectStore,
} from '@postmesh/bus';
import { hostname } from 'node:os';
import {
  SpanKind,
  context,
  contextFromTraceparent,
  trace,
  traceIdOf,
  tracer,
  type Logger,
  type Span,
} from '@postmesh/telemetry';
import type { DirectoryService } from '../directory/directory-service.js';
import type {
  BatchDelivery,
  BatchDeliveryResult,
  DeliveryOutcome,
  DeliveryRecipient,
  Mailstore,
  PreparedBody,
} from '../mailstore/index.js';
import type { BatchTag } from '../ownership/index.js';
import type { TraceStore } from '../trace/trace-store.js';
import { batchFilter } from '../ownership/index.js';
import type { ActiveScript, SieveDelivery, SievePlan } from '../sieve/index.js';
import { GroupedWrites } from './commit-group.js';
import type { DeliveryMetrics } from './metrics.js';
import { DEFAULT_OVER_QUOTA_POLICY, overQuotaOutcome, type OverQuotaPolicy } from './over-quota.js';

/** Where a recipient's copy goes, or why it has none. */
export type RecipientPlan =
  | { readonly kind: 'deliver'; readonly rcpt: string; readonly target: DeliveryRecipient }
  | { readonly kind: 'skip'; readonly rcpt: string; readonly reason: string };

export interface DeliveryDeps {
  readonly bus: Bus;
  readonly mailstore: Mailstore;
  readonly directory: Pick<DirectoryService, 'resolveRecipient'>;
  readonly logger: Logger;
  /** Where the delivery's trace events go (the Trace service's event store). */
  readonly traceStore: Pick<TraceStore, 'storeMany'>;
  /** Attempts before MAIL_DLQ; mirrors the consumer's max_deliver (libs/bus topology). */
  readonly maxDeliver?: number;
  /** Jobs of a batch parsed and encrypted at once. */
  readonly concurrency?: number;
  /** Jobs committed together at most. */
  readonly maxBatch?: number;
  /**
   * Delivery commits running at once in this process (default 1): partitions' batches that wait
   * meanwhile are committed together (commit-group.ts).
   */
  readonly commitConcurrency?: number;
  /** How long the first job of a batch waits for more. */
  readonly batchWaitMs?: number;
  readonly backoffMs?: readonly number[];
  /** Notices to the sender of mail for a recipient over quota (over-quota.ts); defaults otherwise. */
  readonly overQuota?: Partial<OverQuotaPolicy>;
  /** Delivery counters and latencies for the ops port. */
  readonly metrics?: DeliveryMetrics;
  /** A delivery write the database refused (the job is retried): the storage-write-errors rule. */
  readonly onWriteError?: (reason: string) => void;
  /** Test hook: called before each job is handled (e.g. to make one always fail). */
  readonly beforeJob?: (job: InboundJob) => void | Promise<void>;
  /** Test hook: called once a batch's writes are durable, before its jobs are acked. */
  readonly afterCommit?: (spoolIds: readonly string[]) => void | Promise<void>;
  /**
   * One owner per mailbox (ADR 0007): hands out the tag of a partition's batch and confirms it.
   * Needed for `handleBatch(msgs, { partition, epoch })`.
   */
  readonly coordinator?: DeliveryCoordinator;
  /** Users' Sieve scripts (sieve/): where each copy goes, and redirects, rejects, replies. */
  readonly sieve?: SieveDelivery;
}

/** What partitioned delivery needs of storage's PartitionCoordinator. */
export interface DeliveryCoordinator {
  partitionOf(userId: string): number;
  beginBatch(partition: number): BatchTag | undefined;
  confirm(tag: BatchTag): Promise<{ readonly ok: true } | { readonly ok: false; readonly reason: string }>;
  /** The batch of `tag` will not be confirmed (nothing to confirm, or it failed): writes after it need not wait. */
  abandon?(tag: BatchTag): void;
}

type TraceEventDoc = MailEvent & { readonly date: Date };

const JUNK = 'Junk';
const INBOX = 'INBOX';

/** Resolves every envelope recipient to the users that get a copy (deduplicated by user). */
export async function planRecipients(
  job: InboundJob,
  directory: Pick<DirectoryService, 'resolveRecipient'>,
  ownedUser: (userId: string) => boolean = () => true,
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
          if (seenUsers.has(user.userId) || !ownedUser(user.userId)) continue;
          seenUsers.add(user.userId);
          plans.push({
            kind: 'deliver',
            rcpt,
            target: {
              recipient: user.address.toLowerCase(),
              userId: user.userId,
              mailbox,
              // A user without a Junk mailbox gets quarantined mail in INBOX rather than not at all.
              ...(mailbox === INBOX ? {} : { fallbackMailbox: INBOX }),
            },
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
  kind: MailEvent['kind'],
  recipient: string,
  detail: string,
  attributes: Record<string, string>,
): MailEvent {
  // The job's trace (the delivery span is its child): also when no tracing SDK is set up, so the
  // event and the stored message name the same trace.
  const traceId = traceIdOf() ?? traceIdOf(contextFromTraceparent(job.traceparent));
  return mailEvent({
    ...(traceId === undefined ? {} : { traceId }),
    eventId: `${job.spoolId}:${kind}:${recipient}`.slice(0, 200),
    service: 'storage',
    kind,
    queueId: job.spoolId,
    recipient,
    detail,
    attributes,
    ...(job.messageId === '' ? {} : { messageId: job.messageId }),
    ...(job.envelope.mailFrom === '' ? {} : { sender: job.envelope.mailFrom }),
  });
}

/** A delivered job's trace events: one per recipient with a copy or without one. */
function jobEvents(p: PreparedJob, outcomes: readonly DeliveryOutcome[]): MailEvent[] {
  const { job, plans } = p;
  const events: MailEvent[] = [];
  const attrs = { spf: job.authResults.spf, dkim: job.authResults.dkim, dmarc: job.authResults.dmarc };
  for (const outcome of outcomes) {
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
        // No event: counted in `finish`, and the sender hears of it by a notice (over-quota.ts).
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
  return events;
}

/** A job read, planned and with its body stored, ready for its batch's commit. */
interface PreparedJob {
  readonly job: InboundJob;
  /** JetStream's delivery count of this attempt (the over-quota notices count them). */
  readonly deliveryCount: number;
  readonly inlineBody: Uint8Array | undefined;
  readonly plans: readonly RecipientPlan[];
  readonly targets: readonly DeliveryRecipient[];
  readonly body: PreparedBody | undefined;
  /** The subject it came on, when it is one partition's share of a job (partitions/delivery.ts). */
  readonly partitionedSubject: string | undefined;
  /** What the recipients' Sieve scripts decided, when any has one. */
  readonly sieve?: SievePlan | undefined;
}

/** Reads users' active Sieve scripts (SieveScripts.active). */
export type ActiveScriptsOf = (userIds: readonly string[]) => Promise<ReadonlyMap<string, ActiveScript>>;

/**
 * The active scripts of a batch's recipients, read once per user for the whole batch rather than
 * once per job (one query per job was a database round trip per delivered message). A script
 * activated meanwhile applies from the next batch, milliseconds later.
 */
export function scriptsOncePerBatch(read: ActiveScriptsOf): ActiveScriptsOf {
  const known = new Map<string, Promise<ActiveScript | undefined>>();
  return async (userIds) => {
    const missing = [...new Set(userIds)].filter((id) => !known.has(id));
    if (missing.length > 0) {
      const answer = read(missing);
      for (const id of missing)
        known.set(
          id,
          answer.then((scripts) => scripts.get(id)),
        );
    }
    const out = new Map<string, ActiveScript>();
    for (const id of userIds) {
      const script = await known.get(id);
      if (script !== undefined) out.set(id, script);
    }
    return out;
  };
}

/** `run` over every item, at most `limit` at a time. */
async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  run: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      for (let i = next++; i < items.length; i = next++) await run(items[i] as T, i);
    }),
  );
}

async function readAll(source: Uint8Array | AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  if (source instanceof Uint8Array) return source;
  const chunks: Uint8Array[] = [];
  for await (const chunk of source) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class InboundDelivery {
  private spool: Promise<ObjectStore> | undefined;

  /** Partitions' batches committed together, a few commits at a time (commit-group.ts). */
  private readonly commits: GroupedWrites<BatchDelivery, BatchDeliveryResult>;
  /** Their trace events likewise: one insert for the batches that wait. */
  private readonly traceWrites: GroupedWrites<TraceEventDoc, string | undefined>;

  constructor(private readonly deps: DeliveryDeps) {
    const concurrency = deps.commitConcurrency ?? 1;
    this.commits = new GroupedWrites((batch) => deps.mailstore.commitDeliveries(batch), concurrency);
    this.traceWrites = new GroupedWrites(
      async (events) => {
        const refused = await deps.traceStore.storeMany(events);
        return events.map((_, k) => refused.get(k));
      },
      concurrency,
      4_096,
    );
  }

  private openSpool(): Promise<ObjectStore> {
    this.spool ??= openSpool(this.deps.bus.nc).catch((error: unknown) => {
      this.spool = undefined;
      throw error;
    });
    return this.spool;
  }

  /** One job on its own (a batch of one). */
  async handle(msg: JsMsg): Promise<JobOutcome> {
    const [outcome] = await this.handleBatch([msg]);
    return outcome ?? JobOutcomes.retry('no outcome');
  }

  /**
   * Delivers a batch of jobs with one commit; answers each job's outcome, in order. With a
   * `partition` (the jobs of its consumer), commit-then-confirm (ADR 0007): the batch is written
   * tagged with the coordinator's (epoch, seq), the partition's commit pointer is moved in KV,
   * and only then are the jobs settled; an owner whose confirm fails removes what it wrote and
   * leaves the jobs to the partition's owner.
   */
  async handleBatch(
    msgs: readonly JsMsg[],
    owned?: { readonly partition: number; readonly epoch: number },
  ): Promise<JobOutcome[]> {
    let tag: BatchTag | undefined;
    if (owned !== undefined) {
      tag = this.deps.coordinator?.beginBatch(owned.partition);
      // Not (or no longer) ours, or ours again in another epoch, whose own consumer loop takes
      // over: the jobs go back at once for the partition's owner.
      if (tag === undefined || tag.epoch !== owned.epoch) {
        if (tag !== undefined) this.deps.coordinator?.abandon?.(tag);
        return msgs.map(() => JobOutcomes.retry(`not the owner of partition ${owned.partition}`, 500));
      }
    }
    // The jobs of a batch mostly go to the same few recipients: resolve each address once.
    const answers = new Map<string, ReturnType<DeliveryDeps['directory']['resolveRecipient']>>();
    const directory: DeliveryDeps['directory'] = {
      resolveRecipient: (req) => {
        let answer = answers.get(req.address);
        if (answer === undefined) {
          answer = this.deps.directory.resolveRecipient(req);
          answers.set(req.address, answer);
        }
        return answer;
      },
    };
    // One span per job, a child of the SMTP transaction that queued it (the job's headers); the
    // job's work runs inside it, so its trace events carry its trace id.
    const spans = msgs.map((msg) =>
      tracer().startSpan(
        'deliver to mailboxes',
        {
          kind: SpanKind.CONSUMER,
          attributes: {
            'messaging.system': 'nats',
            'messaging.destination.name': msg.subject,
            'messaging.message.delivery_count': msg.info.deliveryCount,
          },
        },
        jobTraceContext(msg),
      ),
    );
    const inSpanOf = <T>(i: number, work: () => Promise<T>): Promise<T> => {
      const span = spans[i];
      return span === undefined ? work() : context.with(trace.setSpan(context.active(), span), work);
    };
    try {
      return await this.deliverBatch(msgs, directory, inSpanOf, spans, tag);
    } finally {
      // A tag the batch did not confirm (nothing committed, or it failed) must not hold back the
      // confirms of the partition's later writes (a no-op once confirmed).
      if (tag !== undefined) this.deps.coordinator?.abandon?.(tag);
      for (const span of spans) span.end();
    }
  }

  private async deliverBatch(
    msgs: readonly JsMsg[],
    directory: DeliveryDeps['directory'],
    inSpanOf: <T>(i: number, work: () => Promise<T>) => Promise<T>,
    spans: readonly Span[],
    tag: BatchTag | undefined,
  ): Promise<JobOutcome[]> {
    const coordinator = this.deps.coordinator;
    const partition = tag?.partition;
    const outcomes: (JobOutcome | undefined)[] = msgs.map(() => undefined);
    const prepared: (PreparedJob | undefined)[] = msgs.map(() => undefined);
    const sieve = this.deps.sieve;
    const activeScripts = sieve && scriptsOncePerBatch((ids) => sieve.scripts.active(ids));
    await forEachLimited(msgs, this.deps.concurrency ?? 4, async (msg, i) => {
      try {
        const ready = await inSpanOf(i, () => this.prepare(msg, directory, partition, activeScripts));
        if ('outcome' in ready) outcomes[i] = ready.outcome;
        else prepared[i] = ready;
      } catch (error) {
        outcomes[i] = JobOutcomes.retry(reasonOf(error));
      }
    });

    const committing = prepared.flatMap((p, i) =>
      p?.body === undefined ? [] : [{ i, delivery: this.deliveryOf(p, p.body) }],
    );
    const writeTag = tag === undefined ? undefined : { p: tag.partition, e: tag.epoch, s: tag.seq };
    const commitStarted = performance.now();
    const results = await this.commits.submit(
      committing.map((c) => (writeTag === undefined ? c.delivery : { ...c.delivery, tag: writeTag })),
    );
    if (committing.length > 0)
      this.deps.metrics?.commitSeconds.observe((performance.now() - commitStarted) / 1_000);
    const delivered = new Map<number, readonly DeliveryOutcome[]>();
    for (const [k, { i, delivery }] of committing.entries()) {
      const result = results[k];
      if (result?.ok === true) {
        delivered.set(i, result.outcomes);
        continue;
      }
      outcomes[i] = JobOutcomes.retry(result === undefined ? 'not committed' : reasonOf(result.error));
      if (result !== undefined) this.deps.onWriteError?.(reasonOf(result.error));
      await this.deps.mailstore.discardPrepared(delivery.body).catch((error: unknown) => {
        this.deps.logger.warn(
          { err: error, spoolId: delivery.spoolId },
          'body of a failed delivery not removed',
        );
      });
    }
    if (tag !== undefined && writeTag !== undefined && committing.length > 0 && coordinator !== undefined) {
      const confirmed = await coordinator
        .confirm(tag)
        .catch((error: unknown) => ({ ok: false as const, reason: reasonOf(error) }));
      if (!confirmed.ok) {
        // Never counted: remove it now rather than leave it to the next owner's clean-up, and
        // let the jobs come back (to the owner, which delivers them again).
        this.deps.logger.warn(
          { partition: tag.partition, epoch: tag.epoch, seq: tag.seq, reason: confirmed.reason },
          'delivery batch not confirmed; discarding what it wrote',
        );
        await this.deps.mailstore
          .discardWrites(batchFilter(writeTag), batchFilter(writeTag))
          .catch((error: unknown) =>
            this.deps.logger.warn({ err: error }, 'unconfirmed batch not removed; the next owner removes it'),
          );
        for (const { i } of committing) {
          outcomes[i] ??= JobOutcomes.retry(`batch not confirmed: ${confirmed.reason}`, 500);
        }
      }
    }
    const done = prepared.flatMap((p, i) =>
      p === undefined || outcomes[i] !== undefined ? [] : [p.job.spoolId],
    );
    if (done.length > 0) await this.deps.afterCommit?.(done);

    await this.storeTraceEvents(prepared, outcomes, delivered, inSpanOf);

    let stored = 0;
    await Promise.all(
      prepared.map(async (p, i) => {
        if (p === undefined || outcomes[i] !== undefined) return;
        const result = delivered.get(i) ?? [];
        stored += result.filter((o) => o.status === 'delivered').length;
        outcomes[i] = await inSpanOf(i, () => this.finish(p, result));
      }),
    );
    if (stored > 0) this.deps.logger.debug({ jobs: msgs.length, stored }, 'inbound batch delivered');
    return outcomes.map((o, i) => {
      const outcome = o ?? JobOutcomes.retry('no outcome');
      spans[i]?.setAttribute('postmesh.job.outcome', outcome.kind);
      return outcome;
    });
  }

  /**
   * The trace events of a batch, with one insert: each delivered job's events (a job whose events
   * are refused is retried, and stores them again then) and the `queued` event every job carries,
   * also of jobs that are retried (the hop is visible while the job waits; stored once by its id).
   */
  private async storeTraceEvents(
    prepared: readonly (PreparedJob | undefined)[],
    outcomes: (JobOutcome | undefined)[],
    delivered: ReadonlyMap<number, readonly DeliveryOutcome[]>,
    inSpanOf: <T>(i: number, work: () => Promise<T>) => Promise<T>,
  ): Promise<void> {
    const events: (MailEvent & { readonly date: Date })[] = [];
    /** The job each event belongs to, when its storing decides the job's outcome. */
    const owners: (number | undefined)[] = [];
    const kinds = new Map<number, MailEvent['kind'][]>();
    for (const [i, p] of prepared.entries()) {
      if (p === undefined) continue;
      const deciding = outcomes[i] === undefined ? i : undefined;
      const queued = p.job.queuedEvent === undefined ? undefined : validateMailEvent(p.job.queuedEvent);
      if (queued?.ok === true) {
        events.push(queued.event);
        owners.push(deciding);
      }
      if (deciding === undefined) continue;
      // Built in the job's span: the events carry its trace id.
      const own = await inSpanOf(i, () => Promise.resolve(jobEvents(p, delivered.get(i) ?? [])));
      kinds.set(
        i,
        own.map((e) => e.kind),
      );
      for (const event of own) {
        events.push({ ...event, date: new Date(event.time) });
        owners.push(i);
      }
    }
    const refused = new Map<number, string>();
    try {
      const problems = await this.traceWrites.submit(events);
      problems.forEach((problem, k) => {
        if (problem !== undefined) refused.set(k, problem);
      });
    } catch (error) {
      // Stored already; the retry finds its copies delivered and stores the events again.
      for (const i of new Set(owners)) {
        if (i !== undefined) outcomes[i] ??= JobOutcomes.retry(`trace events: ${reasonOf(error)}`);
      }
      return;
    }
    for (const [k, problem] of refused) {
      const i = owners[k];
      if (i !== undefined) outcomes[i] ??= JobOutcomes.retry(`trace event refused: ${problem}`);
    }
    for (const [i, list] of kinds) {
      if (outcomes[i] !== undefined) continue;
      for (const kind of list) this.deps.metrics?.deliveries.inc({ outcome: kind, destination: 'local' });
    }
  }

  private deliveryOf(p: PreparedJob, body: PreparedBody): BatchDelivery {
    const traceId = traceIdOf(contextFromTraceparent(p.job.traceparent));
    return {
      spoolId: p.job.spoolId,
      body,
      recipients: p.targets,
      receivedAt: new Date(p.job.receivedAt),
      ...(traceId === undefined ? {} : { traceId }),
    };
  }

  /** Reads a job, resolves its recipients and stores its body (if anyone gets a copy). */
  private async prepare(
    msg: JsMsg,
    directory: DeliveryDeps['directory'],
    partition: number | undefined,
    activeScripts: ActiveScriptsOf | undefined,
  ): Promise<PreparedJob | { readonly outcome: JobOutcome }> {
    const decoded = decodeInboundJob(msg.data);
    if (!decoded.ok) return { outcome: JobOutcomes.reject(`malformed inbound job: ${decoded.problem}`) };
    const { job, inlineBody } = decoded;
    if (msg.info.deliveryCount === 1) {
      const waited = (Date.now() - Date.parse(job.receivedAt)) / 1_000;
      if (waited >= 0) this.deps.metrics?.queueWaitSeconds.observe({ stream: Streams.MAIL_INBOUND }, waited);
    }
    await this.deps.beforeJob?.(job);
    const coordinator = this.deps.coordinator;
    const split = job.users ?? [];
    // A partition's share delivers to that partition's users, and to a user no share names (an
    // alias changed since RCPT), who would otherwise get no copy.
    const ownedUser =
      partition === undefined || coordinator === undefined
        ? undefined
        : (userId: string) => coordinator.partitionOf(userId) === partition || !split.includes(userId);
    const plans = await planRecipients(job, directory, ownedUser);
    if ('retry' in plans) return { outcome: JobOutcomes.retry(plans.retry) };
    let targets = plans.flatMap((p) => (p.kind === 'deliver' ? [p.target] : []));
    const deliveryCount = msg.info.deliveryCount;
    const partitionedSubject =
      PartitionedInbound.partitionOfSubject(msg.subject) === undefined ? undefined : msg.subject;
    let source: Uint8Array | AsyncIterable<Uint8Array> =
      job.body.kind === 'inline'
        ? (inlineBody ?? new Uint8Array())
        : spoolBody(() => this.openSpool(), job.body.object);
    const sieve = await this.deps.sieve?.plan(
      job,
      plans.flatMap((p) => (p.kind === 'deliver' ? [p] : [])),
      () => readAll(source),
      activeScripts,
    );
    if (sieve) [targets, source] = [[...sieve.targets], sieve.raw];
    if (targets.length === 0)
      return { job, deliveryCount, inlineBody, plans, targets, body: undefined, partitionedSubject, sieve };
    return {
      job,
      deliveryCount,
      inlineBody,
      plans,
      targets,
      body: await this.deps.mailstore.prepareDelivery(source),
      partitionedSubject,
      sieve,
    };
  }

  /** The job's outcome after its trace events: over-quota notices, and the spool object's removal (step 7). */
  private async finish(p: PreparedJob, outcomes: readonly DeliveryOutcome[]): Promise<JobOutcome> {
    const { job } = p;
    const overQuota = outcomes.flatMap((o) => (o.status === 'over-quota' ? [o.recipient] : []));
    if (overQuota.length > 0) {
      this.deps.metrics?.deliveries.inc({ outcome: 'over-quota', destination: 'local' }, overQuota.length);
    }
    if (p.sieve !== undefined && this.deps.sieve !== undefined) {
      // After the commit: a retry finds the copies stored and the side effects in the ledger.
      try {
        await this.deps.sieve.carryOut(job, p.sieve);
      } catch (error) {
        return JobOutcomes.retry(`sieve: ${reasonOf(error)}`);
      }
    }
    if (overQuota.length > 0) {
      // We answered 250: the sender hears of it (a delay notice while retrying, a failure DSN
      // when we give up), and the job never ends silently in MAIL_DLQ.
      let outcome: JobOutcome;
      try {
        outcome = await overQuotaOutcome({
          js: this.deps.bus.js,
          logger: this.deps.logger,
          policy: { ...DEFAULT_OVER_QUOTA_POLICY, reportingMta: hostname(), ...this.deps.overQuota },
          job,
          body:
            job.body.kind === 'inline'
              ? (p.inlineBody ?? new Uint8Array())
              : spoolBody(() => this.openSpool(), job.body.object),
          recipients: overQuota,
          deliveryCount: p.deliveryCount,
          maxDeliver: this.deps.maxDeliver ?? 10,
          senderIsLocal: async (address) => {
            const answer = await this.deps.directory.resolveRecipient({ address, messageSize: 0 });
            if (!answer.ok) throw new Error(`directory: ${answer.error.message}`);
            const kind = answer.value.result?.$case;
            return kind === 'users' || kind === 'overQuota';
          },
        });
      } catch (error) {
        return JobOutcomes.retry(`over-quota notice: ${reasonOf(error)}`);
      }
      if (outcome.kind !== 'ack') return outcome;
    }
    if (job.body.kind === 'object' && !(await this.spoolSharedWithAnotherShare(job.spoolId, p))) {
      // Step 7: only MAIL_INBOUND references MX mail's spool object; it is done with it.
      const object = job.body.object;
      await this.openSpool()
        .then((store) => store.delete(object))
        .catch((error: unknown) =>
          this.deps.logger.warn(
            { err: error, spoolId: job.spoolId },
            'spool object not removed; it is harmless',
          ),
        );
    }
    return JobOutcomes.ack;
  }

  /**
   * Whether another partition's share of a split job is still queued: the shares use one spool
   * object, which the last to finish deletes (when two finish at once, neither does, and the
   * spool sweep removes it later).
   */
  private async spoolSharedWithAnotherShare(spoolId: string, p: PreparedJob): Promise<boolean> {
    if (p.partitionedSubject === undefined) return false;
    try {
      const info = await this.deps.bus.jsm.streams.info(Streams.MAIL_INBOUND, {
        subjects_filter: `mail.inbound.*.${spoolId}`,
      });
      return Object.keys(info.state.subjects ?? {}).some((subject) => subject !== p.partitionedSubject);
    } catch (error) {
      this.deps.logger.warn(
        { err: error, spoolId },
        'could not tell whether the spool object is shared; kept',
      );
      return true;
    }
  }
}

/** The `storage-deliver` loop; `start()` it, and `stop()` it before closing the database. */
export function createDeliveryConsumer(deps: DeliveryDeps): BatchConsumerLoop {
  const delivery = new InboundDelivery(deps);
  return new BatchConsumerLoop({
    js: deps.bus.js,
    stream: Streams.MAIL_INBOUND,
    consumer: Consumers.STORAGE_DELIVER,
    logger: deps.logger,
    maxDeliver: deps.maxDeliver ?? 10,
    maxBatch: deps.maxBatch ?? 64,
    maxWaitMs: deps.batchWaitMs ?? 20,
    // One batch at a time, the next growing meanwhile (group commit): a batch costs the database
    // about what one job costs, so under load fewer, larger batches are what keeps pace; as
    // partitioned delivery does (partitioned-delivery.ts).
    batchesInFlight: 1,
    ...(deps.backoffMs ? { backoffMs: deps.backoffMs } : {}),
    handler: (msgs) => delivery.handleBatch(msgs),
  });
}
