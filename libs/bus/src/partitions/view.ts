/**
 * The ownership map as a client sees it, for routing a user's calls to the storage replica that
 * owns the user (ADR 0007, "Routing"): a local copy of the `partition.<n>` records, kept current by
 * one KV watch. A copy can be a moment behind — a client that reaches a former owner gets "not
 * owner", refreshes the partition with `lookup` and retries.
 */
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { DEFAULT_PARTITIONS, partitionOf } from './assignment.js';
import { PartitionBuckets } from './ownership.js';
import { decodeRecord, type PartitionRecord } from './record.js';

/** Where a user's calls go: the partition's owner and its gRPC address. */
export interface Route {
  readonly partition: number;
  readonly owner: string;
  readonly address: string;
  readonly epoch: number;
}

export class OwnershipView {
  private readonly records = new Map<number, PartitionRecord>();
  private stopWatch: (() => void) | undefined;

  private constructor(
    private readonly kv: KV,
    readonly partitions: number,
  ) {}

  /**
   * Opens the partitions bucket (it must exist: storage creates it) and starts following it.
   * Resolves once the current records are loaded.
   */
  static async open(nc: NatsConnection, options: { partitions?: number } = {}): Promise<OwnershipView> {
    const kv = await new Kvm(nc).open(PartitionBuckets.PARTITIONS);
    const view = new OwnershipView(kv, options.partitions ?? DEFAULT_PARTITIONS);
    await view.follow();
    return view;
  }

  /** The user's route from the local copy; undefined when the partition has no owner right now. */
  routeOf(userId: string): Route | undefined {
    return this.route(partitionOf(userId, this.partitions));
  }

  /** Reads the user's partition from KV (after a "not owner" answer), updating the local copy. */
  async lookup(userId: string): Promise<Route | undefined> {
    const partition = partitionOf(userId, this.partitions);
    const entry = await this.kv.get(`partition.${partition}`);
    if (entry !== null && entry.operation === 'PUT') this.keep(partition, decodeRecord(entry.value));
    return this.route(partition);
  }

  stop(): void {
    this.stopWatch?.();
  }

  private route(partition: number): Route | undefined {
    const record = this.records.get(partition);
    if (record?.owner == null) return undefined;
    return { partition, owner: record.owner, address: record.address, epoch: record.epoch };
  }

  /** Records only move forward: a late or replayed older value never replaces a newer one. */
  private keep(partition: number, record: PartitionRecord): void {
    const known = this.records.get(partition);
    if (
      known !== undefined &&
      (known.epoch > record.epoch || (known.epoch === record.epoch && known.seq > record.seq))
    ) {
      return;
    }
    this.records.set(partition, record);
  }

  private async follow(): Promise<void> {
    const { size } = await this.kv.status().then((s) => ({ size: s.values }));
    let loaded: () => void = () => undefined;
    const initial = new Promise<void>((resolve) => (loaded = resolve));
    if (size === 0) loaded();
    const watch = await this.kv.watch({ key: 'partition.>' });
    this.stopWatch = () => watch.stop();
    void (async () => {
      for await (const entry of watch) {
        if (entry.operation === 'PUT') {
          try {
            this.keep(Number(entry.key.slice('partition.'.length)), decodeRecord(entry.value));
          } catch {
            // An unreadable record routes nowhere; `lookup` reads it again.
          }
        }
        if (entry.delta === 0) loaded();
      }
    })()
      .catch(() => undefined)
      .finally(() => loaded());
    await initial;
  }
}
