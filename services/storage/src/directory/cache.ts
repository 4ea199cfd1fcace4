/**
 * Recipient resolution from memory. Every RCPT TO (smtp-inbound) and every delivery batch asks
 * the Directory where an address goes, which took three database reads (the domain, the address,
 * its users); on FerretDB each read scans its collection (ADR 0007), so those reads cost more
 * than the rest of accepting a message. The directory changes rarely (an admin's action), so its
 * answers are kept here and dropped whenever it changes:
 *
 * - on this replica, by the Directory's own writes (`invalidate()` after each one, even a failed
 *   one, since it may have written part);
 * - on every other replica, by the core NATS message `directory.changed` each replica publishes
 *   after such a write (`DirectoryChangeFeed`), and by any reconnection to NATS (messages sent
 *   while disconnected are lost, so everything is dropped);
 * - in any case after `maxAgeMs`, a bound on staleness should an invalidation be lost all the same.
 *
 * User entries (status, quota limits) are kept for only `usageMaxAgeMs`. A user's usage is not in
 * them: the over-quota answer at RCPT time sums the user's mailbox counters at each resolution
 * (`usageOf`, mailboxes.ts). That answer is an early refusal; delivery reads the usage itself and
 * enforces the quota (delivery/over-quota.ts).
 *
 * A load that started before an invalidation is never stored after it (a generation count), so an
 * answer read before a change cannot outlive the change's invalidation.
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { Subjects } from '@postmesh/bus';
import type { Logger } from '@postmesh/telemetry';

export interface DirectoryCacheOptions {
  /** Longest an answer about domains and addresses is kept (default 60 s). */
  readonly maxAgeMs?: number;
  /** Longest a user (status, quota, usage) is kept (default 2 s). */
  readonly usageMaxAgeMs?: number;
  /** Entries kept at most; all are dropped when it is reached (default 50,000). */
  readonly maxEntries?: number;
  readonly now?: () => number;
}

interface Entry {
  readonly value: Promise<unknown>;
  readonly at: number;
}

export const DirectoryCacheKinds = {
  domain: 'domain',
  address: 'address',
  user: 'user',
} as const;
export type DirectoryCacheKind = (typeof DirectoryCacheKinds)[keyof typeof DirectoryCacheKinds];

export class DirectoryCache {
  private readonly entries = new Map<string, Entry>();
  private generation = 0;
  private readonly maxAgeMs: number;
  private readonly usageMaxAgeMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  /** Loads that went to the database (for tests and metrics). */
  misses = 0;
  readonly #onInvalidate: (() => void)[] = [];

  constructor(options: DirectoryCacheOptions = {}) {
    this.maxAgeMs = options.maxAgeMs ?? 60_000;
    this.usageMaxAgeMs = options.usageMaxAgeMs ?? 2_000;
    this.maxEntries = options.maxEntries ?? 50_000;
    this.now = options.now ?? Date.now;
  }

  /**
   * The cached answer for `kind`/`key`, or `load()`'s. Concurrent misses of one key share one load;
   * a load that fails is not kept.
   */
  get<T>(kind: DirectoryCacheKind, key: string, load: () => Promise<T>): Promise<T> {
    const id = `${kind}\u0000${key}`;
    const now = this.now();
    const hit = this.entries.get(id);
    const maxAge = kind === DirectoryCacheKinds.user ? this.usageMaxAgeMs : this.maxAgeMs;
    if (hit !== undefined && now - hit.at <= maxAge) return hit.value as Promise<T>;
    this.misses += 1;
    const generation = this.generation;
    const value = load();
    if (this.entries.size >= this.maxEntries) this.entries.clear();
    const entry: Entry = { value, at: now };
    this.entries.set(id, entry);
    value.then(
      () => {
        // Invalidated while loading: the answer may predate the change, so it is not kept.
        if (generation !== this.generation && this.entries.get(id) === entry) this.entries.delete(id);
      },
      () => {
        if (this.entries.get(id) === entry) this.entries.delete(id);
      },
    );
    return value;
  }

  /** Drops every answer; loads under way are not kept either. */
  invalidate(): void {
    this.generation += 1;
    this.entries.clear();
    for (const listener of this.#onInvalidate) listener();
  }

  /** Runs `listener` on every invalidation (other caches of Directory answers, e.g. credentials). */
  onInvalidate(listener: () => void): void {
    this.#onInvalidate.push(listener);
  }

  get size(): number {
    return this.entries.size;
  }
}

/**
 * Carries Directory changes between storage replicas over core NATS: `announce()` invalidates
 * this replica's cache and tells the others, which invalidate theirs. Best effort by design (core
 * NATS); what a lost message would leave stale, `maxAgeMs` bounds, and a reconnection drops all.
 */
export class DirectoryChangeFeed {
  private subscription: Subscription | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly cache: DirectoryCache,
    private readonly logger: Logger,
  ) {}

  /** Resolves once the server has the subscription, so no change announced after it is missed. */
  async start(): Promise<void> {
    this.subscription = this.nc.subscribe(Subjects.directoryChanged, {
      callback: (error) => {
        if (error !== null) this.logger.warn({ err: error }, 'directory change feed failed');
        this.cache.invalidate();
      },
    });
    // Ends by itself when the connection closes.
    void (async () => {
      for await (const status of this.nc.status()) {
        // Changes announced while this connection was down were not delivered here.
        if (status.type === 'reconnect' || status.type === 'disconnect') this.cache.invalidate();
      }
    })().catch((error: unknown) =>
      this.logger.warn({ err: error }, 'directory change feed status watch ended'),
    );
    await this.nc.flush();
  }

  /** After a Directory write (successful or not): every replica drops its answers. */
  announce(): void {
    this.cache.invalidate();
    if (this.nc.isClosed()) return;
    try {
      this.nc.publish(Subjects.directoryChanged);
    } catch (error) {
      this.logger.warn(
        { err: error },
        'could not announce a directory change; other replicas catch up within the cache age',
      );
    }
  }

  stop(): void {
    this.subscription?.unsubscribe();
    this.subscription = undefined;
  }
}
