/**
 * The live storage replicas as a client sees them: a local copy of the `replica.<id>` records of
 * the `storage-replicas` bucket, kept current by one KV watch. The IMAP proxy reads a partition's
 * owner from `OwnershipView` and the owner's proxy-facing IMAP address from here (ADR 0010), and
 * falls back on any other live replica that serves IMAP.
 *
 * A replica renews its record every quarter of the lease TTL and the bucket drops it after the TTL
 * (its max age). An expiry by max age sends no delete to a watcher, so a record counts as live
 * until the TTL after it was last seen (written, or read at start) — as the replicas themselves
 * judge each other.
 */
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { PartitionBuckets, type ReplicaValue } from './ownership.js';

export interface Member {
  readonly id: string;
  /** gRPC address. */
  readonly address: string;
  /** The proxy-facing IMAP address, '' when the replica serves none (plain storage, older). */
  readonly imapAddress: string;
}

interface Seen {
  readonly member: Member;
  /** Date.now() when the record was last written (as far as we know). */
  readonly at: number;
}

const decoder = new TextDecoder();

export class ReplicaMembers {
  private readonly seen = new Map<string, Seen>();
  private stopWatch: (() => void) | undefined;

  private constructor(
    private readonly kv: KV,
    /** The lease TTL (the bucket's max age), ms. */
    readonly ttlMs: number,
  ) {}

  /** Opens the replicas bucket (storage creates it) and follows it; resolves once loaded. */
  static async open(nc: NatsConnection): Promise<ReplicaMembers> {
    const kv = await new Kvm(nc).open(PartitionBuckets.REPLICAS);
    const status = await kv.status();
    const members = new ReplicaMembers(kv, status.ttl > 0 ? status.ttl : 6_000);
    await members.follow(status.values);
    return members;
  }

  /** A live replica by id, or undefined (unknown, or not seen for a lease TTL). */
  get(id: string): Member | undefined {
    const seen = this.seen.get(id);
    return seen !== undefined && Date.now() - seen.at < this.ttlMs ? seen.member : undefined;
  }

  /** Live replicas that serve IMAP, in a stable order (by id). */
  imapServers(): Member[] {
    const now = Date.now();
    return [...this.seen.values()]
      .filter((s) => now - s.at < this.ttlMs && s.member.imapAddress !== '')
      .map((s) => s.member)
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  stop(): void {
    this.stopWatch?.();
  }

  private async follow(size: number): Promise<void> {
    let loaded: () => void = () => undefined;
    const initial = new Promise<void>((resolve) => (loaded = resolve));
    if (size === 0) loaded();
    let live = size === 0;
    const watch = await this.kv.watch({ key: 'replica.>' });
    this.stopWatch = () => watch.stop();
    void (async () => {
      for await (const entry of watch) {
        const id = entry.key.slice('replica.'.length);
        if (entry.operation !== 'PUT') {
          this.seen.delete(id);
        } else {
          // Records read at start are as old as they were written; later ones arrive as written.
          const at = live ? Date.now() : Math.min(Date.now(), entry.created.getTime());
          this.seen.set(id, { member: parseMember(id, entry.value), at });
        }
        if (entry.delta === 0) {
          live = true;
          loaded();
        }
      }
    })()
      .catch(() => undefined)
      .finally(() => loaded());
    await initial;
  }
}

function parseMember(id: string, bytes: Uint8Array): Member {
  try {
    const value = JSON.parse(decoder.decode(bytes)) as Partial<ReplicaValue>;
    return {
      id,
      address: typeof value.address === 'string' ? value.address : '',
      imapAddress: typeof value.imapAddress === 'string' ? value.imapAddress : '',
    };
  } catch {
    return { id, address: '', imapAddress: '' };
  }
}
