/**
 * Storage's side of "one owner per mailbox" (ADR 0007, Ownership): this replica's partition
 * leases, which users it owns, and the caches to forget when a partition moves away.
 *
 * The write path uses it as follows (commit-then-confirm):
 *   1. `const tag = coordinator.beginBatch(partition)` — undefined when this replica does not own
 *      the partition (nak the jobs / refuse the call; the owner serves them);
 *   2. write the batch to the database with `tag.epoch` and `tag.seq` on every document;
 *   3. `await coordinator.confirm(tag)`; only on `{ ok: true }` reply OK or ack the jobs.
 * Batches of one partition must be confirmed in `seq` order (a confirm covers every smaller seq),
 * so the write path commits one batch per partition at a time, as the partition's delivery
 * consumer does. A rebuild keeps the documents whose (epoch, seq) `commitState(partition)`
 * reports confirmed, and the rebuilding owner deletes the others.
 */
import {
  DEFAULT_PARTITIONS,
  PartitionOwnership,
  type CommitState,
  type ConfirmResult,
  type NatsConnection,
  type OwnershipEvent,
  type ReleaseHook,
} from '@postmesh/bus';
import type { Logger } from '@postmesh/telemetry';

/** A cache of per-user state that must not outlive this replica's ownership of the user. */
export interface PartitionScopedCache {
  /** Forget everything held for the users `inPartition` selects (their partition moved away). */
  dropUsersWhere(inPartition: (userId: string) => boolean): void;
}

export interface PartitionCoordinatorOptions {
  readonly nc: NatsConnection;
  readonly logger: Logger;
  /** This replica's gRPC address as other services reach it (published for routing). */
  readonly address: string;
  readonly partitions?: number;
  readonly leaseTtlMs?: number;
  /** JetStream replicas of the ownership buckets (POSTMESH_STREAM_REPLICAS). */
  readonly replicas?: number;
  readonly caches?: readonly PartitionScopedCache[];
  readonly replicaId?: string;
}

/** What a batch is tagged with in the database. */
export interface BatchTag {
  readonly partition: number;
  readonly epoch: number;
  readonly seq: number;
}

export class PartitionCoordinator {
  /** Next sequence to hand out per partition, for the epoch held now. */
  private readonly nextSeq = new Map<number, { epoch: number; seq: number }>();
  private readonly unsubscribe: () => void;

  private constructor(
    readonly ownership: PartitionOwnership,
    private readonly caches: readonly PartitionScopedCache[],
    private readonly logger: Logger,
  ) {
    this.unsubscribe = ownership.subscribe((event) => this.onEvent(event));
  }

  static async start(options: PartitionCoordinatorOptions): Promise<PartitionCoordinator> {
    const logger = options.logger;
    const ownership = await PartitionOwnership.start(options.nc, {
      partitions: options.partitions ?? DEFAULT_PARTITIONS,
      address: options.address,
      ...(options.leaseTtlMs === undefined ? {} : { leaseTtlMs: options.leaseTtlMs }),
      ...(options.replicas === undefined ? {} : { replicas: options.replicas }),
      ...(options.replicaId === undefined ? {} : { replicaId: options.replicaId }),
      warn: (error, what) => logger.warn({ err: error }, what),
    });
    logger.info(
      { replicaId: ownership.replicaId, partitions: ownership.partitions, leaseTtlMs: ownership.leaseTtlMs },
      'joined the storage replicas; partitions are assigned within a few seconds',
    );
    return new PartitionCoordinator(ownership, options.caches ?? [], logger);
  }

  get partitions(): number {
    return this.ownership.partitions;
  }

  partitionOf(userId: string): number {
    return this.ownership.partitionOf(userId);
  }

  /** Whether this replica serves the user's mail now. */
  owns(userId: string): boolean {
    return this.ownership.owns(this.partitionOf(userId));
  }

  /** Partitions owned now, ascending. */
  owned(): number[] {
    return this.ownership.owned();
  }

  /** The tag of the partition's next batch, or undefined when this replica does not own it. */
  beginBatch(partition: number): BatchTag | undefined {
    const epoch = this.ownership.epochOf(partition);
    if (epoch === undefined) return undefined;
    const current = this.nextSeq.get(partition);
    const seq = current?.epoch === epoch ? current.seq : 1;
    this.nextSeq.set(partition, { epoch, seq: seq + 1 });
    return { partition, epoch, seq };
  }

  /** Make a written batch count; reply or ack only on `{ ok: true }`. */
  confirm(tag: BatchTag): Promise<ConfirmResult> {
    return this.ownership.confirm(tag.partition, tag.epoch, tag.seq);
  }

  /** Which (epoch, seq) batches of the partition count, for a rebuild from the database. */
  commitState(partition: number): Promise<CommitState | null> {
    return this.ownership.commitState(partition);
  }

  /** Runs before a graceful hand-off of a partition (stop taking its work, flush). */
  onRelease(hook: ReleaseHook): () => void {
    return this.ownership.onRelease(hook);
  }

  subscribe(listener: (event: OwnershipEvent) => void): () => void {
    return this.ownership.subscribe(listener);
  }

  /** Hand every partition over and leave (graceful shutdown). */
  async stop(): Promise<void> {
    await this.ownership.stop();
    this.unsubscribe();
  }

  private onEvent(event: OwnershipEvent): void {
    switch (event.type) {
      case 'gained':
        this.nextSeq.set(event.partition, { epoch: event.epoch, seq: 1 });
        this.logger.info({ partition: event.partition, epoch: event.epoch }, 'partition gained');
        // Caches of its users may hold what a former owner changed since: start from the database.
        this.dropPartition(event.partition);
        break;
      case 'lost':
        this.nextSeq.delete(event.partition);
        this.logger.info(
          { partition: event.partition, epoch: event.epoch, reason: event.reason },
          'partition lost',
        );
        this.dropPartition(event.partition);
        break;
    }
  }

  private dropPartition(partition: number): void {
    const inPartition = (userId: string): boolean => this.partitionOf(userId) === partition;
    for (const cache of this.caches) cache.dropUsersWhere(inPartition);
  }
}
