/**
 * Credentials that were verified recently, so that logging in again with them skips the argon2id
 * verification and the database reads of Authenticate. Mail clients log in many times a day
 * (several connections each, phones reconnecting, clients that log out after every check), and
 * each verification costs tens of milliseconds of CPU by design (passwords.ts); Dovecot's
 * `auth_cache` answers the same way.
 *
 * - Only successes are kept. A wrong password always goes through the full check (and the login
 *   throttle in front of it), so guessing is as slow as without the cache.
 * - No password is kept: entries are keyed by an HMAC-SHA256 of protocol, login and password under
 *   a random key made at start and never stored, so the map cannot be turned back into passwords
 *   or tried offline.
 * - Any change to the Directory drops everything: a new password, a disabled user or a suspended
 *   domain, a revoked app password, a deleted address (the Directory's writes on this replica,
 *   `directory.changed` from the others and any NATS reconnection, through `DirectoryCache`'s
 *   invalidation). A verification that started before such a change is not kept after it.
 * - Entries last `ttlMs` at most (and never past an app password's expiry), a bound on staleness
 *   should a change announcement from another replica be lost.
 */
import { createHmac, randomBytes } from 'node:crypto';

export interface CredentialCacheOptions {
  /** How long a verified credential is kept; 0 keeps nothing. */
  readonly ttlMs: number;
  /** Entries kept at most; all are dropped when it is reached (default 50,000). */
  readonly maxEntries?: number;
  readonly now?: () => number;
}

interface Entry<T> {
  readonly answer: T;
  readonly until: number;
}

export class CredentialCache<T> {
  readonly #key = randomBytes(32);
  readonly #entries = new Map<string, Entry<T>>();
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;
  #generation = 0;
  /** Answers given from the cache (for tests and metrics). */
  hits = 0;

  constructor(options: CredentialCacheOptions) {
    this.#ttlMs = options.ttlMs;
    this.#maxEntries = options.maxEntries ?? 50_000;
    this.#now = options.now ?? Date.now;
  }

  get enabled(): boolean {
    return this.#ttlMs > 0;
  }

  /** The key of one set of credentials (the password never leaves this function). */
  keyOf(protocol: string | number, login: string, password: string): string {
    return createHmac('sha256', this.#key)
      .update(`${protocol}\u0000${login}\u0000${password}`)
      .digest('base64url');
  }

  get(key: string): T | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (this.#now() >= entry.until) {
      this.#entries.delete(key);
      return undefined;
    }
    this.hits += 1;
    return entry.answer;
  }

  /** Taken before a verification starts; `set` keeps its answer only if nothing changed since. */
  get generation(): number {
    return this.#generation;
  }

  /** Keeps a successful verification's answer, until `expiresAt` at the latest (epoch ms). */
  set(key: string, answer: T, generation: number, expiresAt = Infinity): void {
    if (!this.enabled || generation !== this.#generation) return;
    const until = Math.min(this.#now() + this.#ttlMs, expiresAt);
    if (this.#entries.size >= this.#maxEntries) this.#entries.clear();
    this.#entries.set(key, { answer, until });
  }

  /** Drops every entry; verifications under way are not kept either. */
  invalidate(): void {
    this.#generation += 1;
    this.#entries.clear();
  }

  get size(): number {
    return this.#entries.size;
  }
}
