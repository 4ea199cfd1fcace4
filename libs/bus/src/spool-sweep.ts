/**
 * The backstop of inbound spool cleanup (DESIGN §2 step 7). Storage deletes a large message's
 * `msg/<spoolId>` object once its MAIL_INBOUND job is delivered. An object can still be left
 * behind: smtp-inbound keeps an object whenever a job may reference it (a publish that was
 * acknowledged, or whose PubAck never came and so may have been stored), a delete that failed
 * while NATS was away, a job dead-lettered and later discarded by an admin. Such an object is
 * deleted when it is older than `minAgeMs` (the longest an inbound job can wait, retries
 * included) and nothing references it: no job for its spoolId in MAIL_INBOUND and no
 * dead-lettered inbound job in MAIL_DLQ naming it (an admin may still retry that one).
 * `out/` objects are mta-delivery's (services/mta-delivery spool-sweeper) and never touched here.
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import type { Logger } from '@postmesh/telemetry';
import { decodeInboundJob, spoolObjectName } from './jobs.js';
import type { ObjectStore } from './spool.js';
import { Streams, Subjects } from './topology.js';

/** Prefix of the objects of inbound jobs (`spoolObjectName`). */
export const INBOUND_SPOOL_PREFIX = spoolObjectName('');

export interface InboundSpoolSweepOptions {
  readonly jsm: JetStreamManager;
  readonly spool: () => Promise<ObjectStore>;
  /** Objects younger than this are never deleted. */
  readonly minAgeMs: number;
  readonly logger: Logger;
  readonly now?: () => number;
  /** A progress log line every this many objects checked. */
  readonly progressEvery?: number;
}

export interface SweepReport {
  /** `msg/` objects old enough to be looked at. */
  readonly candidates: number;
  readonly deleted: number;
  /** Old but still referenced by a queued or dead-lettered job. */
  readonly referenced: number;
  readonly failed: number;
}

/** Spool objects named by the dead-lettered inbound jobs in MAIL_DLQ. */
async function deadLetteredObjects(jsm: JetStreamManager): Promise<Set<string>> {
  const names = new Set<string>();
  const subject = Subjects.dlq(Streams.MAIL_INBOUND);
  let seq = 1;
  // One direct get per dead-lettered inbound job: MAIL_DLQ is bounded (its max age and bytes).
  for (;;) {
    const stored = await jsm.direct.getMessage(Streams.MAIL_DLQ, { seq, next_by_subj: subject });
    if (stored === null) return names;
    const decoded = decodeInboundJob(stored.data);
    if (decoded.ok && decoded.job.body.kind === 'object') names.add(decoded.job.body.object);
    seq = stored.seq + 1;
  }
}

/**
 * Whether MAIL_INBOUND holds a job of this spoolId: unpartitioned (`mail.inbound.<spoolId>`) or
 * for one partition's recipients (`mail.inbound.<partition>.<spoolId>`, partitions/delivery.ts).
 */
async function jobQueued(jsm: JetStreamManager, spoolId: string): Promise<boolean> {
  for (const filter of [Subjects.inbound(spoolId), `mail.inbound.*.${spoolId}`]) {
    const info = await jsm.streams.info(Streams.MAIL_INBOUND, { subjects_filter: filter });
    if (Object.keys(info.state.subjects ?? {}).length > 0) return true;
  }
  return false;
}

/** One sweep over the `mail-spool` bucket; see the file comment. */
export async function sweepInboundSpool(options: InboundSpoolSweepOptions): Promise<SweepReport> {
  const { jsm, logger } = options;
  const now = (options.now ?? Date.now)();
  const progressEvery = options.progressEvery ?? 500;
  const store = await options.spool();
  const cutoff = now - options.minAgeMs;
  const candidates = (await store.list())
    .filter((o) => o.deleted !== true && o.name.startsWith(INBOUND_SPOOL_PREFIX))
    .filter((o) => {
      const at = Date.parse(o.mtime);
      return Number.isFinite(at) && at < cutoff;
    })
    .map((o) => o.name);
  if (candidates.length === 0) return { candidates: 0, deleted: 0, referenced: 0, failed: 0 };
  logger.info({ candidates: candidates.length }, 'inbound spool sweep: checking old objects');
  const deadLettered = await deadLetteredObjects(jsm);
  let deleted = 0;
  let referenced = 0;
  let failed = 0;
  for (const [index, name] of candidates.entries()) {
    const spoolId = name.slice(INBOUND_SPOOL_PREFIX.length);
    try {
      if (deadLettered.has(name) || (await jobQueued(jsm, spoolId))) {
        referenced += 1;
      } else {
        await store.delete(name);
        deleted += 1;
      }
    } catch (error) {
      failed += 1;
      logger.warn({ err: error, object: name }, 'inbound spool sweep: could not check or delete');
    }
    if ((index + 1) % progressEvery === 0 && index + 1 < candidates.length) {
      logger.info(
        { checked: index + 1, of: candidates.length, deleted, referenced },
        'inbound spool sweep: progress',
      );
    }
  }
  const report = { candidates: candidates.length, deleted, referenced, failed };
  logger.info(report, 'inbound spool sweep done');
  return report;
}

/** Runs `sweepInboundSpool` every `intervalMs` (never two at once); the first after one interval. */
export class InboundSpoolSweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<SweepReport | undefined> | undefined;

  constructor(private readonly options: InboundSpoolSweepOptions & { readonly intervalMs: number }) {}

  start(): void {
    this.timer ??= setInterval(() => void this.sweep(), this.options.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One sweep now; undefined when one is already running or the sweep failed (logged). */
  sweep(): Promise<SweepReport | undefined> {
    if (this.running !== undefined) return Promise.resolve(undefined);
    const run = sweepInboundSpool(this.options)
      .catch((error: unknown) => {
        this.options.logger.warn({ err: error }, 'inbound spool sweep failed; next time');
        return undefined;
      })
      .finally(() => (this.running = undefined));
    this.running = run;
    return run;
  }
}
