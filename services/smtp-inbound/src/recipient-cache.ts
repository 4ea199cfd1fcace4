/**
 * Directory answers smtp-inbound asks for on every message, kept in memory: every RCPT TO costs a
 * `ResolveRecipient` gRPC round trip and every MX message a `GetDomain` for its sender's domain,
 * which together were a tenth of smtp-inbound's CPU per message (and storage's per call). The
 * directory changes rarely (an admin's action), so its answers are kept here and dropped:
 *
 * - whenever any storage replica writes the Directory: storage publishes the core NATS message
 *   `directory.changed` after every such write (services/storage/src/directory/cache.ts), and
 *   `watchDirectoryChanges` drops everything on it;
 * - on any NATS disconnection or reconnection (an announcement sent meanwhile was lost);
 * - in any case after `maxAgeMs`, a bound on staleness should an announcement be lost all the same.
 *
 * The quota part of an answer (`over-quota`, a user's `overQuota`) depends on the user's usage,
 * which changes with every delivery without any Directory write: answers that carry it are kept
 * for only `usageMaxAgeMs`, and an answer is reused only for a message it certainly holds for
 * (RFC 1870 `SIZE`: a recipient with room for N octets has room for fewer). That answer is an
 * early refusal anyway; storage enforces the quota at delivery.
 *
 * `unavailable` answers are never kept, and a lookup under way when the cache is dropped is not
 * stored afterwards (a generation count), so an answer read before a change cannot outlive it.
 */
import type { DomainOwnership, RecipientResolution } from './directory.js';

export interface RecipientCacheOptions {
  /** Longest an answer that does not depend on usage is kept (default 30 s). */
  readonly maxAgeMs?: number;
  /** Longest an answer that depends on a user's usage (quota) is kept (default 1 s). */
  readonly usageMaxAgeMs?: number;
  /** Entries kept at most; all are dropped when it is reached (default 20,000). */
  readonly maxEntries?: number;
  readonly now?: () => number;
}

interface RecipientEntry {
  readonly answer: Promise<RecipientResolution>;
  /** The declared size the answer was computed for. */
  readonly messageSize: number;
  readonly at: number;
}

interface DomainEntry {
  readonly answer: Promise<DomainOwnership>;
  readonly at: number;
}

/** Whether an answer says anything about a user's usage (then it is kept only briefly). */
function dependsOnUsage(answer: RecipientResolution): boolean {
  return answer.kind === 'users' || answer.kind === 'over-quota';
}

/**
 * Whether an answer computed for `cachedSize` holds for a message of `size`: answers that do not
 * depend on the size always do; a `users` answer with nobody over quota holds for any size up to
 * the one it was computed for; anything else only for the same size.
 */
function holdsFor(answer: RecipientResolution, cachedSize: number, size: number): boolean {
  switch (answer.kind) {
    case 'users':
      return size === cachedSize || (size < cachedSize && answer.users.every((u) => !u.overQuota));
    case 'over-quota':
      return size === cachedSize;
    default:
      return true;
  }
}

export class RecipientCache {
  private readonly recipients = new Map<string, RecipientEntry>();
  private readonly domains = new Map<string, DomainEntry>();
  private generation = 0;
  private readonly maxAgeMs: number;
  private readonly usageMaxAgeMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  /** Lookups that went to the Directory (for tests). */
  misses = 0;

  constructor(options: RecipientCacheOptions = {}) {
    this.maxAgeMs = options.maxAgeMs ?? 30_000;
    this.usageMaxAgeMs = options.usageMaxAgeMs ?? 1_000;
    this.maxEntries = options.maxEntries ?? 20_000;
    this.now = options.now ?? Date.now;
  }

  /**
   * The kept answer for a recipient (address compared case-insensitively, as the Directory does),
   * or `load()`'s. Concurrent lookups of one address share one load.
   */
  async recipient(
    address: string,
    messageSize: number,
    load: () => Promise<RecipientResolution>,
  ): Promise<RecipientResolution> {
    const key = address.toLowerCase();
    const now = this.now();
    const hit = this.recipients.get(key);
    if (hit !== undefined && holdsFor(await hit.answer, hit.messageSize, messageSize)) {
      const answer = await hit.answer;
      const maxAge = dependsOnUsage(answer) ? this.usageMaxAgeMs : this.maxAgeMs;
      // Checked against the entry still being there: it may have been dropped while awaited.
      if (now - hit.at <= maxAge && this.recipients.get(key) === hit) return answer;
    }
    return this.store(this.recipients, key, { messageSize, at: now }, load);
  }

  /** The kept answer for whether a domain is hosted here, or `load()`'s. */
  domain(domain: string, load: () => Promise<DomainOwnership>): Promise<DomainOwnership> {
    const key = domain.toLowerCase();
    const now = this.now();
    const hit = this.domains.get(key);
    if (hit !== undefined && now - hit.at <= this.maxAgeMs) return hit.answer;
    return this.store(this.domains, key, { at: now }, load);
  }

  /** Drops every answer; lookups under way are not kept either. */
  invalidate(): void {
    this.generation += 1;
    this.recipients.clear();
    this.domains.clear();
  }

  get size(): number {
    return this.recipients.size + this.domains.size;
  }

  private store<T extends { kind: string }, E extends { answer: Promise<T> }>(
    map: Map<string, E>,
    key: string,
    fields: Omit<E, 'answer'>,
    load: () => Promise<T>,
  ): Promise<T> {
    this.misses += 1;
    const generation = this.generation;
    const answer = load();
    if (map.size >= this.maxEntries) map.clear();
    const entry = { ...fields, answer } as E;
    map.set(key, entry);
    const forget = (): void => {
      if (map.get(key) === entry) map.delete(key);
    };
    answer.then((value) => {
      // A failure to ask is never an answer to keep; nor is one read before an invalidation.
      if (value.kind === 'unavailable' || generation !== this.generation) forget();
    }, forget);
    return answer;
  }
}

/** What `watchDirectoryChanges` needs of a NATS connection. */
export interface DirectoryChangeSource {
  subscribe(subject: string, options: { callback: (error: Error | null) => void }): { unsubscribe(): void };
  status(): AsyncIterable<{ type: string }>;
  flush(): Promise<void>;
}

/**
 * Drops `cache` on every `directory.changed` announcement from storage and on any disconnection
 * or reconnection (announcements sent meanwhile were lost). Resolves once the server has the
 * subscription, so no change announced after that is missed; `stop()` ends the watch.
 */
export async function watchDirectoryChanges(
  nc: DirectoryChangeSource,
  subject: string,
  cache: RecipientCache,
  onError: (error: unknown) => void,
): Promise<{ stop(): void }> {
  const subscription = nc.subscribe(subject, {
    callback: (error) => {
      if (error !== null) onError(error);
      cache.invalidate();
    },
  });
  let stopped = false;
  // Ends by itself when the connection closes.
  void (async () => {
    for await (const status of nc.status()) {
      if (stopped) return;
      if (status.type === 'reconnect' || status.type === 'disconnect') cache.invalidate();
    }
  })().catch(onError);
  await nc.flush();
  return {
    stop() {
      stopped = true;
      subscription.unsubscribe();
    },
  };
}
