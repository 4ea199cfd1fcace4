/**
 * Storage's side of "one owner per mailbox" (ADR 0007, Ownership): this replica's partition
 * leases, which users it owns, and the caches to forget when a partition moves away.
 *
 * The write path uses it as follows (commit-then-confirm):
 *   1. `const tag = coordinator.beginBatch(partition)` — undefined when this replica does not own
 *      the partition (nak the jobs / refuse the call; the owner serves them);
 *   2. write the batch to the database with `tag.epoch` and `tag.seq` on every document;
 *   3. `await coordinator.confirm(tag)`; only on `{ ok: true }` reply OK or ack the jobs — or
 *      `coordinator.abandon(tag)` when nothing was written under it (or what was is removed).
 * A confirm of seq n covers every smaller seq of the epoch, so writers of one partition that run
 * at once (a delivery batch, IMAP writes) must not confirm past a write still under way: the
 * coordinator moves the partition's pointer only up to the highest seq below every tag handed out
 * and neither confirmed nor abandoned yet, one compare-and-set at a time, and one such write
 * answers every confirm it covers (the writes in flight together share one KV write). A rebuild
 * keeps the documents whose (epoch, seq) `commitState(partition)` reports confirmed, and the
 * rebuilding owner deletes the others.
 */
import {
  DEFAULT_PARTITIONS,
  PartitionOwnership,
  type CommitPointerStore,
  type CommitState,
  type ConfirmResult,
  type NatsConnection,
  type OwnershipEvent,
  type ReleaseHook,
} from '@postmesh/bus';
import { isIP } from 'node:net';
import { Counter, Gauge, type Logger, type Registry } from '@postmesh/telemetry';
import type { WriteGuard } from '../db/sqlite/write-ops.js';
import { DatabaseCommitPointers } from './database-pointers.js';

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
  /** Where the ownership metrics go (the ops server's registry). */
  readonly registry?: Registry;
  /** The commit pointers' store when not KV (storage on SQLite: database-pointers.ts, ADR 0012). */
  readonly pointers?: CommitPointerStore;
}

/** What ownership reports on the ops port (docs/metrics.md). */
class OwnershipMetrics {
  readonly changes: Counter<'event' | 'reason'>;
  readonly confirms: Counter<'result'>;

  constructor(registry: Registry, owned: () => number) {
    const registers = [registry];
    new Gauge({
      name: 'postmesh_storage_partitions_owned',
      help: 'Partitions this storage replica owns now (ADR 0007)',
      registers,
      collect() {
        this.set(owned());
      },
    });
    this.changes = new Counter({
      name: 'postmesh_storage_partition_changes_total',
      help: 'Partitions gained and lost by this replica, by reason of the loss (handoff, expired, fenced, stopped)',
      labelNames: ['event', 'reason'] as const,
      registers,
    });
    this.confirms = new Counter({
      name: 'postmesh_storage_batch_confirms_total',
      help: 'Moves of partition commit pointers (KV compare-and-sets, or conditional updates in the database), each covering the delivery batches and IMAP writes in flight, by result (ok, fenced, not-owner, unavailable)',
      labelNames: ['result'] as const,
      registers,
    });
  }
}

/** What a batch is tagged with in the database. */
export interface BatchTag {
  readonly partition: number;
  readonly epoch: number;
  readonly seq: number;
}

/**
 * The tags of one epoch of a partition not confirmed yet: handed out and still being written
 * (`writing`), or written and waiting for the pointer to cover them (`waiting`).
 */
interface Sequence {
  readonly partition: number;
  readonly epoch: number;
  readonly writing: Set<number>;
  readonly waiting: Map<number, ((result: ConfirmResult) => void)[]>;
  /** A compare-and-set of the pointer is in flight. */
  confirming: boolean;
}

export class PartitionCoordinator {
  /** Next sequence to hand out per partition, for the epoch held now. */
  private readonly nextSeq = new Map<number, { epoch: number; seq: number }>();
  /** Tags not settled yet, by `partition/epoch`. */
  private readonly sequences = new Map<string, Sequence>();
  private readonly unsubscribe: () => void;
  private readonly metrics: OwnershipMetrics | undefined;

  private constructor(
    readonly ownership: PartitionOwnership,
    private readonly caches: readonly PartitionScopedCache[],
    private readonly logger: Logger,
    registry: Registry | undefined,
    /** Where the commit pointers are when not in KV. */
    private readonly pointers: CommitPointerStore | undefined,
  ) {
    this.metrics =
      registry === undefined ? undefined : new OwnershipMetrics(registry, () => this.owned().length);
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
      ...(options.pointers === undefined ? {} : { pointers: options.pointers }),
      warn: (error, what) => logger.warn({ err: error }, what),
    });
    const coordinator = new PartitionCoordinator(
      ownership,
      options.caches ?? [],
      logger,
      options.registry,
      options.pointers,
    );
    // Report ready only once the free partitions assigned to us are held: on a fresh start (one
    // replica) that is every partition, so the first calls are not refused. Bounded, since a slow
    // KV only delays ownership (the calls meanwhile get UNAVAILABLE and are retried).
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      ownership.joined,
      new Promise<void>((resolve) => (timer = setTimeout(resolve, ownership.leaseTtlMs * 2))),
    ]);
    clearTimeout(timer);
    logger.info(
      {
        replicaId: ownership.replicaId,
        partitions: ownership.partitions,
        owned: ownership.owned().length,
        leaseTtlMs: ownership.leaseTtlMs,
      },
      'joined the storage replicas',
    );
    return coordinator;
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
    this.sequenceOf(partition, epoch).writing.add(seq);
    return { partition, epoch, seq };
  }

  /**
   * For a write of the partition's mail made as one transaction of storage's database (ADR 0014):
   * with the commit pointers in that database, the guard the transaction checks (the partition's
   * pointer still in this replica's epoch, and no newer one being opened), and no confirm after;
   * `confirm` when the pointers are in KV (`beginBatch` and `confirm`); undefined when this
   * replica does not own the partition.
   */
  writeGuard(partition: number): WriteGuard | 'confirm' | undefined {
    const epoch = this.ownership.epochOf(partition);
    if (epoch === undefined) return undefined;
    return this.pointers instanceof DatabaseCommitPointers
      ? this.pointers.guard(partition, epoch)
      : 'confirm';
  }

  /**
   * Make a written batch count; reply or ack only on `{ ok: true }`. Answers once the partition's
   * pointer covers the tag, which waits for the writes of smaller tags handed out before it.
   */
  confirm(tag: BatchTag): Promise<ConfirmResult> {
    const sequence = this.sequences.get(sequenceKey(tag.partition, tag.epoch));
    // No write of the epoch under way: nothing to wait for.
    if (sequence === undefined) return this.confirmUpTo(tag.partition, tag.epoch, tag.seq);
    sequence.writing.delete(tag.seq);
    return new Promise<ConfirmResult>((resolve) => {
      sequence.waiting.set(tag.seq, [...(sequence.waiting.get(tag.seq) ?? []), resolve]);
      this.pump(sequence);
    });
  }

  /**
   * Nothing written under `tag` counts on it (nothing was written, or what was is removed): the
   * writes of greater tags need not wait for it.
   */
  abandon(tag: BatchTag): void {
    const sequence = this.sequences.get(sequenceKey(tag.partition, tag.epoch));
    if (sequence === undefined || !sequence.writing.delete(tag.seq)) return;
    this.pump(sequence);
  }

  /**
   * Forget the cached state of the partition's users (a write of it was removed after a failed
   * confirm: what the caches hold of it must be read again from the database).
   */
  forgetPartition(partition: number): void {
    this.dropPartition(partition);
  }

  private sequenceOf(partition: number, epoch: number): Sequence {
    const key = sequenceKey(partition, epoch);
    let sequence = this.sequences.get(key);
    if (sequence === undefined) {
      sequence = { partition, epoch, writing: new Set(), waiting: new Map(), confirming: false };
      this.sequences.set(key, sequence);
    }
    return sequence;
  }

  /** Moves the pointer over every waiting tag below the first one still being written. */
  private pump(sequence: Sequence): void {
    if (sequence.confirming) return;
    let floor = Infinity;
    for (const seq of sequence.writing) floor = Math.min(floor, seq);
    let target = 0;
    for (const seq of sequence.waiting.keys()) if (seq < floor && seq > target) target = seq;
    if (target === 0) {
      if (sequence.writing.size === 0 && sequence.waiting.size === 0) {
        this.sequences.delete(sequenceKey(sequence.partition, sequence.epoch));
      }
      return;
    }
    const answered: ((result: ConfirmResult) => void)[] = [];
    for (const [seq, resolvers] of sequence.waiting) {
      if (seq > target) continue;
      answered.push(...resolvers);
      sequence.waiting.delete(seq);
    }
    sequence.confirming = true;
    void this.confirmUpTo(sequence.partition, sequence.epoch, target).then((result) => {
      sequence.confirming = false;
      for (const resolve of answered) resolve(result);
      this.pump(sequence);
    });
  }

  private async confirmUpTo(partition: number, epoch: number, seq: number): Promise<ConfirmResult> {
    const result = await this.ownership
      .confirm(partition, epoch, seq)
      .catch((): ConfirmResult => ({ ok: false, reason: 'unavailable' }));
    this.metrics?.confirms.inc({ result: result.ok ? 'ok' : result.reason });
    return result;
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
        this.metrics?.changes.inc({ event: 'gained', reason: '' });
        this.nextSeq.set(event.partition, { epoch: event.epoch, seq: 1 });
        this.logger.info({ partition: event.partition, epoch: event.epoch }, 'partition gained');
        // Caches of its users may hold what a former owner changed since: start from the database.
        this.dropPartition(event.partition);
        break;
      case 'lost':
        this.metrics?.changes.inc({ event: 'lost', reason: event.reason });
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

function sequenceKey(partition: number, epoch: number): string {
  return `${partition}/${epoch}`;
}

/**
 * The gRPC address this replica publishes for routing (`POSTMESH_STORAGE_ADVERTISED_GRPC`):
 * `host:port` as given, or a bare host or IP (a pod's `status.podIP`, which Kubernetes hands over
 * without a port) joined with the port gRPC listens on; unset, the host and port it binds.
 */
export function advertisedAddress(advertised: string | undefined, bindHost: string, port: number): string {
  const value = advertised?.trim() ?? '';
  if (value === '') return `${bindHost}:${port}`;
  const bare = value.replace(/^\[(.*)\]$/, '$1');
  switch (isIP(bare)) {
    case 4:
      return `${bare}:${port}`;
    case 6:
      return `[${bare}]:${port}`;
    default:
      // A host name with or without its port.
      return /:\d+$/.test(value) ? value : `${value}:${port}`;
  }
}
