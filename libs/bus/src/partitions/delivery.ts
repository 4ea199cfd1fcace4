/**
 * Delivery jobs partitioned by user (ADR 0007, Ownership): a job for the recipients of one
 * partition goes to `mail.inbound.<partition>.<spoolId>`, and each partition has its own durable
 * consumer `storage-deliver-p<partition>` on MAIL_INBOUND, pulled only by the partition's owner.
 *
 * Why publishers compute the partition rather than a stream subject mapping with
 * `{{partition(P, …)}}`: a job names several recipients, possibly in several partitions, and a
 * mapping can only route the whole message by a subject token; the publisher, which resolves the
 * recipients anyway, splits the job by partition. `partitionOf` is the same FNV-1a the server's
 * mapping uses, should a single-user subject ever be mapped server-side.
 *
 * Why one durable consumer per partition rather than one per replica with `filter_subjects`:
 * MAIL_INBOUND is a work queue, where no two consumers may have overlapping filters, so a
 * per-replica consumer would need a two-step consumer update on every hand-off. With one consumer
 * per partition a hand-off is "the old owner stops pulling, the new one starts"; jobs the old
 * owner fetched and did not ack are nak'ed on release (or redelivered after `ack_wait` on a crash).
 */
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import { Streams } from '../topology.js';
import { partitionOf } from './assignment.js';
import type { PartitionOwnership } from './ownership.js';
import { PartitionWorkers } from './workers.js';

export const PartitionedInbound = {
  /** Subject of a job for the recipients of one partition. */
  subject: (partition: number, spoolId: string): string => `mail.inbound.${partition}.${spoolId}`,
  /** Filter of the partition's consumer: every job of the partition's users. */
  filter: (partition: number): string => `mail.inbound.${partition}.>`,
  /**
   * The unpartitioned subjects `mail.inbound.<spoolId>` (one token after `mail.inbound.`), which
   * the shared `storage-deliver` consumer keeps serving while publishers move over. The two
   * filters never overlap: a partitioned subject has two tokens there.
   */
  unpartitionedFilter: 'mail.inbound.*',
  /** Durable consumer of one partition. */
  consumer: (partition: number): string => `storage-deliver-p${partition}`,
  /** Nats-Msg-Id of a partition's share of a job, so a retried publish is deduplicated. */
  messageId: (spoolId: string, partition: number): string =>
    `${spoolId}:${Streams.MAIL_INBOUND}:${partition}`,
  /** The partition of a job's subject; undefined for an unpartitioned one. */
  partitionOfSubject: (subject: string): number | undefined => {
    const match = /^mail\.inbound\.(\d{1,5})\.[^.]+$/.exec(subject);
    return match === null ? undefined : Number(match[1]);
  },
} as const;

/** A message's local recipients split into one job per partition (`splitRecipientsByPartition`). */
export interface PartitionedRecipients {
  /** Ascending partitions, each with the recipients that have a user in it (in envelope order). */
  readonly byPartition: ReadonlyMap<number, readonly string[]>;
  /** Recipients whose users are not known: published unpartitioned, as before partitioning. */
  readonly unresolved: readonly string[];
  /** Every user id the recipients resolved to (the jobs' `users`). */
  readonly users: readonly string[];
}

/**
 * Splits recipients by the partitions of the users they resolved to: a recipient that reaches
 * users in several partitions (a group alias) is in the job of each, and storage delivers each
 * job only to its own partition's users, so every user is written by its partition's owner.
 */
export function splitRecipientsByPartition(
  rcptTo: readonly string[],
  usersOf: (rcpt: string) => readonly string[] | undefined,
  partitions: number,
): PartitionedRecipients {
  const groups = new Map<number, string[]>();
  const unresolved: string[] = [];
  const users = new Set<string>();
  for (const rcpt of rcptTo) {
    const ids = usersOf(rcpt) ?? [];
    if (ids.length === 0) {
      unresolved.push(rcpt);
      continue;
    }
    for (const id of ids) users.add(id);
    for (const p of new Set(ids.map((id) => partitionOf(id, partitions)))) {
      const group = groups.get(p);
      if (group === undefined) groups.set(p, [rcpt]);
      else group.push(rcpt);
    }
  }
  return {
    byPartition: new Map([...groups].sort(([a], [b]) => a - b)),
    unresolved,
    users: [...users],
  };
}

/** Splits recipients by partition (publishers send one job per partition). Ascending partitions. */
export function groupByPartition<T>(
  items: Iterable<T>,
  userIdOf: (item: T) => string,
  partitions: number,
): Map<number, T[]> {
  const groups = new Map<number, T[]>();
  for (const item of items) {
    const p = partitionOf(userIdOf(item), partitions);
    const group = groups.get(p);
    if (group === undefined) groups.set(p, [item]);
    else group.push(item);
  }
  return new Map([...groups].sort(([a], [b]) => a - b));
}

export interface PartitionConsumerOptions {
  readonly partitions: number;
  /** As `storage-deliver`: a crashed owner's fetched jobs come back after this. */
  readonly ackWaitMs?: number;
  readonly maxDeliver?: number;
  /** Bounds the jobs one owner has fetched and not yet acked, per partition. */
  readonly maxAckPending?: number;
}

/** Create or update the durable consumer of every partition. Idempotent; safe from several replicas. */
export async function ensurePartitionConsumers(
  jsm: JetStreamManager,
  options: PartitionConsumerOptions,
): Promise<void> {
  for (let p = 0; p < options.partitions; p++) {
    const config = {
      durable_name: PartitionedInbound.consumer(p),
      filter_subject: PartitionedInbound.filter(p),
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: (options.ackWaitMs ?? 60_000) * 1e6,
      max_deliver: options.maxDeliver ?? 10,
      max_ack_pending: options.maxAckPending ?? 1_000,
    };
    try {
      await jsm.consumers.add(Streams.MAIL_INBOUND, config);
    } catch (error) {
      // 10148: exists with another configuration (another replica, an older version): update it.
      if (!(error instanceof JetStreamApiError) || error.code !== 10148) throw error;
      await jsm.consumers.update(Streams.MAIL_INBOUND, config.durable_name, config);
    }
  }
}

/** Jobs of one partition, in stream order, fetched while this replica owns it in `epoch`. */
export interface PartitionBatch {
  readonly partition: number;
  readonly epoch: number;
  readonly messages: readonly JsMsg[];
}

export interface PartitionedJobsOptions {
  readonly js: JetStreamClient;
  readonly ownership: PartitionOwnership;
  /**
   * Handles one batch: write it tagged (epoch, seq), `ownership.confirm`, then ack each job; on a
   * failed confirm nak them (or leave them to `ack_wait`). If it throws, the batch is nak'ed.
   */
  readonly handleBatch: (batch: PartitionBatch) => Promise<void>;
  /** Jobs per fetch. */
  readonly batchSize?: number;
  /** How long a fetch waits for jobs (at least 1 s); also bounds how long a hand-off waits for it. */
  readonly fetchExpiresMs?: number;
  readonly warn?: (error: unknown, what: string) => void;
}

interface Puller {
  readonly epoch: number;
  stopped: boolean;
}

/**
 * Pulls the jobs of the partitions this replica owns, one batch at a time per partition (so one
 * user's jobs are handled in order), starting on `gained` and stopping on `lost`. On a graceful
 * hand-off the release waits for the batch in hand, so the next owner starts after it.
 */
export class PartitionedJobs {
  private readonly workers: PartitionWorkers;
  private readonly warn: (error: unknown, what: string) => void;

  constructor(private readonly options: PartitionedJobsOptions) {
    this.warn = options.warn ?? (() => undefined);
    this.workers = new PartitionWorkers(
      options.ownership,
      (partition, epoch) => {
        const puller: Puller = { epoch, stopped: false };
        const done = this.run(partition, puller);
        return {
          stop: async () => {
            puller.stopped = true;
            await done;
          },
        };
      },
      this.warn,
    );
  }

  start(): void {
    this.workers.start();
  }

  /** Partitions being pulled now. */
  active(): number[] {
    return this.workers.active();
  }

  /** Stop pulling every partition, after the batches in hand. */
  async stop(): Promise<void> {
    await this.workers.stop();
  }

  private async run(partition: number, puller: Puller): Promise<void> {
    const { js, ownership, handleBatch } = this.options;
    const batchSize = this.options.batchSize ?? 64;
    // nats.js refuses a pull that expires in under a second.
    const expires = Math.max(1_000, this.options.fetchExpiresMs ?? 1_000);
    let consumer;
    try {
      consumer = await js.consumers.get(Streams.MAIL_INBOUND, PartitionedInbound.consumer(partition));
    } catch (error) {
      this.warn(error, `partition ${partition}: no consumer (ensurePartitionConsumers not run?)`);
      return;
    }
    while (!puller.stopped) {
      const messages: JsMsg[] = [];
      try {
        const fetched = await consumer.fetch({ max_messages: batchSize, expires });
        for await (const m of fetched) messages.push(m);
      } catch (error) {
        this.warn(error, `partition ${partition}: fetch failed`);
        await new Promise((r) => setTimeout(r, expires));
        continue;
      }
      if (messages.length === 0) continue;
      if (puller.stopped || ownership.epochOf(partition) !== puller.epoch) {
        for (const m of messages) m.nak();
        break;
      }
      try {
        await handleBatch({ partition, epoch: puller.epoch, messages });
      } catch (error) {
        // Acked jobs are gone from the work queue; a nak of one of those changes nothing.
        this.warn(error, `partition ${partition}: the batch handler threw; its jobs are retried`);
        for (const m of messages) m.nak();
      }
    }
  }
}
