/**
 * One owner per partition (ADR 0007, Ownership): storage replicas share the partitions through
 * fenced leases in NATS JetStream KV, with no other infrastructure.
 *
 * - Replica lease: each replica puts `replica.<id>` into the bucket `storage-replicas` every
 *   `renewIntervalMs`; the bucket's max age is the lease TTL, so a replica that stops renewing
 *   (crash, pause, network partition) disappears from the live set after the TTL. The replica
 *   itself stops trusting its leases earlier: at (time the last successful renewal was *sent*) +
 *   80 % of the TTL, on its own monotonic clock.
 * - Partition lease and commit pointer: `partition.<n>` in the bucket `storage-partitions` holds
 *   `{owner, address, epoch, seq, closed}` (see `record.ts`). Every write is a compare-and-set on
 *   the revision last seen. Acquiring bumps the epoch; that one write is the fence: a former
 *   owner's next compare-and-set fails because the revision moved.
 * - Assignment: every replica computes the same bounded-load rendezvous map over the live set
 *   (`assignment.ts`). A replica takes a partition assigned to it once the record shows no owner
 *   or an owner that is no longer live; it hands over a partition assigned elsewhere gracefully
 *   (release hooks flush, then it writes `owner: null`, and the new owner takes it at once).
 * - Commit-then-confirm: the storage write path writes a batch tagged with (epoch, seq), then
 *   calls `confirm(partition, epoch, seq)`, and only acknowledges when that answers `ok`.
 * - With a `CommitPointerStore` (option `pointers`; storage on SQLite, ADR 0012) the commit
 *   pointers live there instead of in the KV record: acquiring takes the lease in KV, then opens
 *   the epoch in the store before the partition counts as held; a confirm is the store's
 *   conditional `advance`. The KV record then changes only when the lease moves.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { DEFAULT_PARTITIONS, assignPartitions, partitionOf } from './assignment.js';
import type { CommitPointerStore } from './pointers.js';
import {
  acquiredRecord,
  confirmationOf,
  confirmedRecord,
  decodeRecord,
  encodeRecord,
  releasedRecord,
  type CommitPointer,
  type Confirmation,
  type PartitionRecord,
} from './record.js';

export const PartitionBuckets = {
  /** KV: `partition.<n>` records (lease + commit pointer). Never expires; keys are never deleted. */
  PARTITIONS: 'storage-partitions',
  /** KV: `replica.<id>` heartbeats; the bucket's max age is the replica lease TTL. */
  REPLICAS: 'storage-replicas',
} as const;

export interface PartitionOwnershipOptions {
  /** Fixed for the life of a deployment: changing it moves every user (ADR 0007). */
  readonly partitions?: number;
  /** A replica that stops renewing loses its partitions after this long. Default 6 s. */
  readonly leaseTtlMs?: number;
  /** Renewal and rebalance period. Default a quarter of the TTL. */
  readonly renewIntervalMs?: number;
  /** Unique per process; default `<host>-<pid>-<random>` (a restarted replica is a new one). */
  readonly replicaId?: string;
  /** This replica's gRPC address, published with its leases for routing. */
  readonly address?: string;
  /**
   * Where this replica serves IMAP to the IMAP proxy (storage-imap, ADR 0010), published in its
   * replica record; '' (the default) when it serves none. `advertiseImap` sets it later.
   */
  readonly imapAddress?: string;
  /** Bound on the release hooks of a graceful hand-off. Default the lease TTL. */
  readonly releaseTimeoutMs?: number;
  /** KV replicas: 1 on one node, 3 in a cluster. */
  readonly replicas?: number;
  /** Warnings (a failed renewal, a hook that threw); default silent. */
  readonly warn?: (error: unknown, what: string) => void;
  /**
   * Where the commit pointers live when not in the KV record (pointers.ts): storage on one
   * machine's database (ADR 0012). Every replica of a deployment must use the same.
   */
  readonly pointers?: CommitPointerStore;
}

export type LossReason =
  /** Handed over gracefully after the release hooks ran. */
  | 'handoff'
  /** The replica could not renew its lease in time (paused, partitioned, NATS unreachable). */
  | 'expired'
  /** Another replica took the partition: a compare-and-set failed or the record moved. */
  | 'fenced'
  /** `stop()` released it. */
  | 'stopped';

export type OwnershipEvent =
  | { readonly type: 'gained'; readonly partition: number; readonly epoch: number }
  | {
      readonly type: 'lost';
      readonly partition: number;
      readonly epoch: number;
      readonly reason: LossReason;
    };

export type ConfirmResult =
  | { readonly ok: true }
  | {
      readonly ok: false;
      /**
       * `not-owner`: this replica does not hold that epoch of the partition (never did, or
       * already noticed the loss); `fenced`: the compare-and-set showed another epoch (the
       * partition is now lost); `unavailable`: KV did not answer — the batch is not confirmed,
       * try again or let the job be redelivered.
       */
      readonly reason: 'not-owner' | 'fenced' | 'unavailable';
    };

export type ReleaseHook = (partition: number, epoch: number) => Promise<void> | void;

export interface PartitionOwner {
  readonly owner: string | null;
  /** The owner's gRPC address ('' when none). */
  readonly address: string;
  readonly epoch: number;
  /** Whether the owner's replica lease is live. */
  readonly live: boolean;
}

/** A read of the shared ownership map, for routing calls to owners. */
export interface OwnershipMap {
  readonly partitions: number;
  readonly owners: ReadonlyMap<number, PartitionOwner>;
  readonly liveReplicas: ReadonlyMap<string, { readonly address: string }>;
}

interface Held {
  readonly epoch: number;
  record: PartitionRecord;
  revision: number;
  releasing: boolean;
  /** Confirms and the release of one partition run one after another (each needs the last revision). */
  chain: Promise<unknown>;
}

/** The `replica.<id>` record (members.ts reads it too). */
export interface ReplicaValue {
  readonly id: string;
  readonly address: string;
  readonly startedAt: number;
  /** The proxy-facing IMAP address (storage-imap); absent in records of older replicas. */
  readonly imapAddress?: string;
}

const partitionKey = (p: number): string => `partition.${p}`;
const replicaKey = (id: string): string => `replica.${id}`;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function isCasConflict(error: unknown): boolean {
  // JetStream answers 10071 "wrong last sequence" to a failed compare-and-set; `create` of an
  // existing key also fails with it (nats.js may wrap it in a message only).
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  const api = (error as { api_error?: { err_code?: number } }).api_error?.err_code;
  return code === 10071 || api === 10071 || /wrong last sequence|key exists/i.test(error.message);
}

async function openBucket(
  nc: NatsConnection,
  name: string,
  config: { history: number; ttl?: number; replicas: number },
): Promise<KV> {
  const kvm = new Kvm(nc);
  try {
    return await kvm.create(name, config);
  } catch (error) {
    // Exists with another configuration (an older lease TTL): align the TTL and use it.
    const jsm = await jetstreamManager(nc);
    const stream = `KV_${name}`;
    const info = await jsm.streams.info(stream).catch(() => {
      throw error;
    });
    const maxAge = (config.ttl ?? 0) * 1_000_000;
    if (info.config.max_age !== maxAge) await jsm.streams.update(stream, { ...info.config, max_age: maxAge });
    return kvm.open(name);
  }
}

export class PartitionOwnership {
  readonly partitions: number;
  readonly replicaId: string;
  readonly leaseTtlMs: number;
  private readonly renewIntervalMs: number;
  private readonly releaseTimeoutMs: number;
  private readonly address: string;
  private imapAddress: string;
  private readonly warn: (error: unknown, what: string) => void;
  private readonly pointers: CommitPointerStore | undefined;
  private readonly held = new Map<number, Held>();
  /**
   * Partitions whose lease lapsed on our clock (paused, NATS slow) without our seeing another
   * owner. A batch written before the lapse may still be confirmed: the compare-and-set decides,
   * not the clock — it succeeds only if nobody took the partition meanwhile.
   */
  private readonly lapsed = new Map<number, Held>();
  private readonly listeners = new Set<(event: OwnershipEvent) => void>();
  private readonly releaseHooks = new Set<ReleaseHook>();
  private validUntil = 0;
  private lastRenewalSentAt = 0;
  private stopped = false;
  private loop: Promise<void> = Promise.resolve();
  private wake: (() => void) | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private watchStop: (() => void) | undefined;
  private readonly startedAt = Date.now();
  private markJoined: (() => void) | undefined;
  /**
   * Settles after the first renewal and rebalance: the partitions assigned to this replica that
   * were free are held by then (those of a crashed replica follow once its lease expires).
   */
  readonly joined: Promise<void> = new Promise((resolve) => (this.markJoined = resolve));

  private constructor(
    private readonly records: KV,
    private readonly replicas: KV,
    options: PartitionOwnershipOptions,
  ) {
    this.partitions = options.partitions ?? DEFAULT_PARTITIONS;
    this.leaseTtlMs = options.leaseTtlMs ?? 6_000;
    this.renewIntervalMs = options.renewIntervalMs ?? Math.max(100, Math.floor(this.leaseTtlMs / 4));
    this.releaseTimeoutMs = options.releaseTimeoutMs ?? this.leaseTtlMs;
    this.replicaId = (
      options.replicaId ?? `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`
    ).replace(/[^A-Za-z0-9_-]/g, '_');
    this.address = options.address ?? '';
    this.imapAddress = options.imapAddress ?? '';
    this.warn = options.warn ?? (() => undefined);
    this.pointers = options.pointers;
    if (this.renewIntervalMs * 2 >= this.leaseTtlMs) {
      throw new RangeError('renewIntervalMs must be well below leaseTtlMs (at most a third)');
    }
  }

  /** Open (creating if needed) the buckets, then join: renew, rebalance, take assigned partitions. */
  static async start(
    nc: NatsConnection,
    options: PartitionOwnershipOptions = {},
  ): Promise<PartitionOwnership> {
    const replicas = options.replicas ?? 1;
    const leaseTtlMs = options.leaseTtlMs ?? 6_000;
    const records = await openBucket(nc, PartitionBuckets.PARTITIONS, { history: 1, replicas });
    const live = await openBucket(nc, PartitionBuckets.REPLICAS, { history: 1, ttl: leaseTtlMs, replicas });
    const ownership = new PartitionOwnership(records, live, options);
    await ownership.watchRecords();
    ownership.expiryTimer = setInterval(
      () => ownership.checkExpiry(),
      Math.max(50, ownership.renewIntervalMs / 2),
    );
    ownership.expiryTimer.unref();
    ownership.loop = ownership.run();
    return ownership;
  }

  /** The partition of a user under this deployment's partition count. */
  partitionOf(userId: string): number {
    return partitionOf(userId, this.partitions);
  }

  /** True while this replica holds the partition's lease and is not handing it over. */
  owns(partition: number): boolean {
    const held = this.held.get(partition);
    return held !== undefined && !held.releasing && performance.now() < this.validUntil;
  }

  /** The epoch this replica holds the partition in (for tagging batches), if it owns it. */
  epochOf(partition: number): number | undefined {
    return this.owns(partition) ? this.held.get(partition)?.epoch : undefined;
  }

  /** Partitions owned now, ascending. */
  owned(): number[] {
    return [...this.held.keys()].filter((p) => this.owns(p)).sort((a, b) => a - b);
  }

  /**
   * Publishes where this replica serves IMAP (known only once its listener is up): written with
   * the next renewal, which this starts at once.
   */
  advertiseImap(imapAddress: string): void {
    this.imapAddress = imapAddress;
    this.wake?.();
  }

  /** Called for every gained/lost partition, in order; returns an unsubscribe function. */
  subscribe(listener: (event: OwnershipEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The same events as an async iterator (ends when `signal` aborts or the ownership stops). */
  async *events(signal?: AbortSignal): AsyncGenerator<OwnershipEvent> {
    const queue: OwnershipEvent[] = [];
    let notify: (() => void) | undefined;
    const unsubscribe = this.subscribe((event) => {
      queue.push(event);
      notify?.();
    });
    const onAbort = (): void => notify?.();
    signal?.addEventListener('abort', onAbort);
    try {
      for (;;) {
        while (queue.length > 0) yield queue.shift() as OwnershipEvent;
        if (this.stopped || signal?.aborted) return;
        await new Promise<void>((resolve) => (notify = resolve));
        notify = undefined;
      }
    } finally {
      unsubscribe();
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Runs before a graceful hand-off releases a partition (stop taking work, flush, nack what is
   * left); bounded by `releaseTimeoutMs`. Returns a function that removes the hook.
   */
  onRelease(hook: ReleaseHook): () => void {
    this.releaseHooks.add(hook);
    return () => this.releaseHooks.delete(hook);
  }

  /**
   * Commit-then-confirm: the batch (epoch, seq) — and every earlier one of the epoch — is written;
   * make it count. Call in increasing `seq` per partition (batches confirm in the order written).
   * Only `{ ok: true }` allows replying OK or acking the batch's jobs.
   */
  confirm(partition: number, epoch: number, seq: number): Promise<ConfirmResult> {
    const held = this.held.get(partition) ?? this.lapsed.get(partition);
    if (held === undefined || held.epoch !== epoch)
      return Promise.resolve({ ok: false, reason: 'not-owner' });
    const result = held.chain.then(() => this.confirmNow(partition, held, seq));
    held.chain = result.catch(() => undefined);
    return result;
  }

  /** The partition's record as stored now, for a rebuild: which (epoch, seq) batches count. */
  async commitState(partition: number): Promise<CommitState | null> {
    if (this.pointers !== undefined) {
      const pointer = await this.pointers.read(partition);
      return pointer === null ? null : new CommitState(pointer);
    }
    const entry = await this.records.get(partitionKey(partition));
    if (entry === null || entry.operation !== 'PUT') return null;
    return new CommitState(decodeRecord(entry.value));
  }

  /**
   * The partition's record as this replica holds it (acquired, then moved by its own confirms),
   * while it owns the partition: which earlier epochs' batches count, without a read of KV.
   */
  heldCommitState(partition: number): CommitState | undefined {
    const held = this.held.get(partition);
    return held === undefined ? undefined : new CommitState(held.record);
  }

  /** Everyone's leases and addresses, read from KV (for routing to owners). */
  async ownershipMap(): Promise<OwnershipMap> {
    const liveReplicas = await this.liveReplicas();
    const owners = new Map<number, PartitionOwner>();
    const keys = await this.records.keys('partition.>');
    for await (const key of keys) {
      const entry = await this.records.get(key);
      if (entry === null || entry.operation !== 'PUT') continue;
      const record = decodeRecord(entry.value);
      const p = Number(key.slice('partition.'.length));
      owners.set(p, {
        owner: record.owner,
        address: record.address,
        epoch: record.epoch,
        live: record.owner !== null && liveReplicas.has(record.owner),
      });
    }
    return { partitions: this.partitions, owners, liveReplicas };
  }

  /** Graceful leave: hand every partition over (release hooks first), then drop the replica lease. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.markJoined?.();
    this.wake?.();
    await this.loop;
    clearInterval(this.expiryTimer);
    await Promise.all([...this.held.keys()].map((p) => this.release(p, 'stopped')));
    this.watchStop?.();
    await this.replicas.delete(replicaKey(this.replicaId)).catch((error: unknown) => {
      this.warn(error, 'could not remove the replica lease; it expires on its own');
    });
    for (const listener of this.listeners) this.listeners.delete(listener);
  }

  private emit(event: OwnershipEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        this.warn(error, 'an ownership listener threw');
      }
    }
  }

  /**
   * Forget a partition (the lease of `which`, when given: a late answer about an older epoch
   * must not end a newer one).
   */
  private lose(partition: number, reason: LossReason, which?: Held): void {
    if (reason !== 'expired' && (which === undefined || this.lapsed.get(partition) === which)) {
      this.lapsed.delete(partition);
    }
    const held = this.held.get(partition);
    if (held === undefined || (which !== undefined && held !== which)) return;
    this.held.delete(partition);
    if (reason === 'expired') this.lapsed.set(partition, held);
    this.emit({ type: 'lost', partition, epoch: held.epoch, reason });
  }

  private checkExpiry(): void {
    if (this.held.size === 0 || performance.now() < this.validUntil) return;
    for (const p of [...this.held.keys()]) this.lose(p, 'expired');
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      await this.renew();
      if (this.stopped) break;
      try {
        await this.rebalance();
      } catch (error) {
        this.warn(error, 'rebalance failed; retrying at the next renewal');
      }
      this.markJoined?.();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.renewIntervalMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  private async renew(): Promise<void> {
    const sentAt = performance.now();
    this.lastRenewalSentAt = sentAt;
    const value: ReplicaValue = {
      id: this.replicaId,
      address: this.address,
      startedAt: this.startedAt,
      ...(this.imapAddress === '' ? {} : { imapAddress: this.imapAddress }),
    };
    try {
      await this.replicas.put(replicaKey(this.replicaId), encoder.encode(JSON.stringify(value)));
      // The server expires the key TTL after it stored it, which is after `sentAt`; stop trusting
      // our own leases well before that (20 % margin for clock-rate differences and delays).
      this.validUntil = sentAt + this.leaseTtlMs * 0.8;
    } catch (error) {
      this.warn(error, 'could not renew the replica lease');
    }
    this.checkExpiry();
  }

  private async liveReplicas(): Promise<Map<string, { address: string }>> {
    const live = new Map<string, { address: string }>();
    const keys = await this.replicas.keys('replica.>');
    for await (const key of keys) {
      const entry = await this.replicas.get(key);
      if (entry === null || entry.operation !== 'PUT') continue;
      try {
        const value = JSON.parse(decoder.decode(entry.value)) as ReplicaValue;
        live.set(value.id, { address: value.address });
      } catch {
        live.set(key.slice('replica.'.length), { address: '' });
      }
    }
    return live;
  }

  private async rebalance(): Promise<void> {
    if (performance.now() >= this.validUntil) return;
    const live = await this.liveReplicas();
    live.set(this.replicaId, { address: this.address });
    const assignment = assignPartitions(this.partitions, live.keys());
    const wanted: number[] = [];
    for (let p = 0; p < this.partitions; p++) {
      const mine = assignment.get(p) === this.replicaId;
      const held = this.held.get(p);
      if (held !== undefined) {
        if (!mine && !held.releasing) void this.release(p, 'handoff');
      } else if (mine) {
        wanted.push(p);
      }
    }
    for (const p of wanted) {
      // Taking many partitions (a replica died) takes a KV round trip each: keep the replica
      // lease renewed meanwhile, or the slow acquisition itself lets every lease lapse.
      if (performance.now() - this.lastRenewalSentAt >= this.renewIntervalMs) await this.renew();
      if (this.stopped || performance.now() >= this.validUntil) return;
      await this.tryAcquire(p, live);
    }
  }

  private async tryAcquire(partition: number, live: Map<string, unknown>): Promise<void> {
    const key = partitionKey(partition);
    const entry = await this.records.get(key);
    const current = entry !== null && entry.operation === 'PUT' ? decodeRecord(entry.value) : null;
    // A live owner hands over on its own (it sees the same assignment); wait for its release.
    if (current?.owner != null && current.owner !== this.replicaId && live.has(current.owner)) return;
    let next = acquiredRecord(current, this.replicaId, this.address);
    // The store's epoch may be ahead of KV's (a KV bucket made anew beside an older database):
    // take the lease in an epoch the store has not seen, or opening it would be fenced forever.
    const stored = this.pointers === undefined ? null : await this.storedPointer(partition);
    if (stored === undefined) return;
    if (stored !== null && next.epoch <= stored.epoch) next = { ...next, epoch: stored.epoch + 1 };
    let revision: number;
    try {
      revision =
        entry === null
          ? await this.records.create(key, encodeRecord(next))
          : await this.records.update(key, encodeRecord(next), entry.revision);
    } catch (error) {
      if (!isCasConflict(error)) this.warn(error, `could not acquire partition ${partition}`);
      return;
    }
    let record: CommitPointer = next;
    if (this.pointers !== undefined) {
      // Not held until its epoch is open in the store: nothing of the partition is read or
      // written before a former owner's confirms are fenced. On failure the lease stays ours in
      // KV, and the next rebalance takes it again in a new epoch.
      // KV's record seeds a first pointer: the batches its epochs left unconfirmed stay so.
      const seed =
        current === null ? undefined : { epoch: current.epoch, seq: current.seq, closed: current.closed };
      const opened = await this.pointers.open(partition, next.epoch, seed).catch((error: unknown) => {
        this.warn(error, `partition ${partition}: could not open epoch ${next.epoch} in the commit pointers`);
        return undefined;
      });
      if (opened === undefined) return;
      if (opened === 'fenced') {
        this.warn(new Error('a newer epoch is open'), `partition ${partition}: epoch ${next.epoch} fenced`);
        return;
      }
      record = opened;
    }
    this.lapsed.delete(partition);
    this.held.set(partition, {
      epoch: next.epoch,
      record: { ...next, seq: record.seq, closed: record.closed },
      revision,
      releasing: false,
      chain: Promise.resolve(),
    });
    this.emit({ type: 'gained', partition, epoch: next.epoch });
  }

  private async confirmNow(partition: number, held: Held, seq: number): Promise<ConfirmResult> {
    if (this.held.get(partition) !== held && this.lapsed.get(partition) !== held) {
      return { ok: false, reason: 'not-owner' };
    }
    if (seq <= held.record.seq) return { ok: true };
    if (this.pointers !== undefined) return this.advanceStored(partition, held, seq);
    const next = confirmedRecord(held.record, seq);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        held.revision = await this.records.update(partitionKey(partition), encodeRecord(next), held.revision);
        held.record = next;
        return { ok: true };
      } catch (error) {
        const settled = await this.reconcile(partition, held, error);
        if (settled !== 'retry') return settled;
      }
    }
    return { ok: false, reason: 'unavailable' };
  }

  /** A confirm in the pointer store: its conditional write is the fence. */
  private async advanceStored(partition: number, held: Held, seq: number): Promise<ConfirmResult> {
    let result: 'ok' | 'fenced';
    try {
      result = await (this.pointers as CommitPointerStore).advance(partition, held.epoch, seq);
    } catch (error) {
      this.warn(error, `partition ${partition}: the commit pointer did not move`);
      return { ok: false, reason: 'unavailable' };
    }
    if (result === 'ok') {
      if (seq > held.record.seq) held.record = confirmedRecord(held.record, seq);
      return { ok: true };
    }
    this.lose(partition, 'fenced', held);
    return { ok: false, reason: 'fenced' };
  }

  /** The store's pointer (null: none yet), or undefined when the store did not answer. */
  private async storedPointer(partition: number): Promise<CommitPointer | null | undefined> {
    try {
      return await (this.pointers as CommitPointerStore).read(partition);
    } catch (error) {
      this.warn(error, `partition ${partition}: could not read the commit pointer`);
      return undefined;
    }
  }

  /**
   * After a failed write: a record still carrying our owner and epoch was written by us (an
   * earlier write whose answer was lost), so adopt its revision and retry; anything else means
   * another replica took the partition.
   */
  private async reconcile(partition: number, held: Held, error: unknown): Promise<'retry' | ConfirmResult> {
    let entry;
    try {
      entry = await this.records.get(partitionKey(partition));
    } catch (readError) {
      this.warn(readError, `partition ${partition}: could not read the record after a failed write`);
      return { ok: false, reason: 'unavailable' };
    }
    const stored = entry !== null && entry.operation === 'PUT' ? decodeRecord(entry.value) : null;
    if (entry !== null && stored?.owner === this.replicaId && stored.epoch === held.epoch) {
      held.revision = entry.revision;
      held.record = stored;
      return 'retry';
    }
    if (!isCasConflict(error) && stored === null) return { ok: false, reason: 'unavailable' };
    this.lose(partition, 'fenced', held);
    return { ok: false, reason: 'fenced' };
  }

  private async release(partition: number, reason: 'handoff' | 'stopped'): Promise<void> {
    const held = this.held.get(partition);
    if (held === undefined || held.releasing) return;
    held.releasing = true;
    const hooks = [...this.releaseHooks].map(async (hook) => {
      try {
        await hook(partition, held.epoch);
      } catch (error) {
        this.warn(error, `a release hook of partition ${partition} failed`);
      }
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(hooks),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.releaseTimeoutMs);
      }),
    ]);
    clearTimeout(timer);
    const done = held.chain.then(async () => {
      if (this.held.get(partition) !== held) return;
      const next = releasedRecord(held.record);
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          await this.records.update(partitionKey(partition), encodeRecord(next), held.revision);
          this.lose(partition, reason, held);
          return;
        } catch (error) {
          const settled = await this.reconcile(partition, held, error);
          if (settled !== 'retry') return;
        }
      }
      // Could not write the release: the lease expires on its own once we stop renewing it.
      this.lose(partition, reason, held);
    });
    held.chain = done.catch(() => undefined);
    await held.chain;
    if (!this.stopped) this.wake?.();
  }

  /** Notice at once when another replica takes a partition we hold, or one is released to us. */
  private async watchRecords(): Promise<void> {
    const watch = await this.records.watch({ key: 'partition.>', include: 'updates' });
    this.watchStop = () => watch.stop();
    void (async () => {
      for await (const entry of watch) {
        const p = Number(entry.key.slice('partition.'.length));
        const held = this.held.get(p);
        if (entry.operation !== 'PUT') continue;
        let record: PartitionRecord;
        try {
          record = decodeRecord(entry.value);
        } catch (error) {
          this.warn(error, `partition ${p}: unreadable record`);
          continue;
        }
        // Our own release shows up here before `release` has finished; it reports the loss itself.
        const ownRelease = held?.releasing === true && record.owner === null && record.epoch === held.epoch;
        if (
          held !== undefined &&
          !ownRelease &&
          (record.owner !== this.replicaId || record.epoch !== held.epoch)
        ) {
          this.lose(p, 'fenced');
        } else if (held === undefined && record.owner === null) {
          this.wake?.();
        }
      }
    })().catch((error: unknown) => this.warn(error, 'the partition watch ended'));
  }
}

/** A partition's commit pointer as read from KV or the pointer store: which batches a rebuild keeps. */
export class CommitState {
  constructor(readonly record: CommitPointer) {}

  get epoch(): number {
    return this.record.epoch;
  }

  get seq(): number {
    return this.record.seq;
  }

  /** Whether a batch tagged (epoch, seq) counts; a rebuild ignores those that do not. */
  isConfirmed(epoch: number, seq: number): boolean {
    return this.confirmation(epoch, seq) !== 'unconfirmed';
  }

  confirmation(epoch: number, seq: number): Confirmation {
    return confirmationOf(this.record, epoch, seq);
  }
}
