/**
 * Brute-force protection for every login (DESIGN §5): IMAP LOGIN / AUTHENTICATE, SMTP AUTH and
 * the admin console's sign-in all use this one implementation. Failed attempts are counted per
 * client IP and per account in the JetStream KV bucket `auth-failures` (`Buckets.AUTH_FAILURES`),
 * so every replica of every service sees the same counters and a password guessed over IMAP, SMTP
 * and the console counts against one limit per account. Each failure within the window adds a
 * delay before the answer (doubling from `freeAttempts` on, capped); at the limit the IP or the
 * account is locked out until the window has passed since its last failure.
 *
 * Check and increment are one step. `attempt` counts the attempt before any password is checked,
 * with a compare-and-set on the key's KV revision (a write that expects the revision it read; a
 * write that finds another revision reads again), and refuses it when the counter is already at
 * the limit. Concurrent guesses from many connections or replicas each have to win their own
 * revision, so no more than the limit ever get to the password check. A success then clears the
 * account's counter and takes only its own attempt back off the IP's count: it never resets the
 * IP's counter (an attacker holding one valid account could otherwise clear the counter of the
 * address they guess from).
 *
 * The delay grows with failures only. An attempt still under way (its password being checked) is
 * counted against the limit like a failure, but not in the delay of the attempts made beside it by
 * the same process: many users behind one address (a NAT, a webmail front end) logging in at once
 * are not each other's failures. Nor are they each other's lockout: an attempt that finds a counter
 * at its limit only because of this process's attempts under way waits for them to settle (at most
 * `settleWaitMs` for each) and counts again, so a client opening twenty connections with the right
 * password gets twenty sessions, while guesses are still refused once the failures fill the limit.
 * `failed` says an attempt's credentials were wrong; an attempt never settled counts as a failure
 * after `PENDING_MAX_MS`. Attempts under way in other processes are not known here and count as
 * failures (the safe side).
 *
 * Accounts are keyed by the canonical account, not the login as typed: the user id the directory
 * resolves the login to (primary address or any alias), so every alias shares one counter; a
 * login that resolves to no account is keyed by its normalised form (trimmed, NFC, lower-case), so
 * unknown names are throttled exactly like known ones and the throttle tells nothing about which
 * accounts exist.
 *
 * Keys: `<ipPrefix>.<address with every character outside [A-Za-z0-9.-] as '_'>` (`ip.` for the
 * mail protocols, `admin-ip.` for the console) and `account.<sha256(canonical account) hex, 40
 * chars>`. Value: JSON `{ "count": n, "last": <epoch ms> }`. The bucket's TTL (24 h) removes stale
 * keys.
 *
 * When NATS does not answer (within `storeTimeoutMs`), an in-process counter with the same rules
 * takes over for a few seconds before the KV is tried again: throttling degrades to per-replica,
 * never to no limit.
 */
import { createHash } from 'node:crypto';
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { Type, compile, type Static } from '@postmesh/schema';
import { Counter as MetricCounter, type Registry } from '@postmesh/telemetry';

export interface ThrottlePolicy {
  readonly windowMs: number;
  /** Attempts per account in the window; the next one is refused. */
  readonly accountLockout: number;
  /** Attempts per client IP in the window; the next one is refused. */
  readonly ipLockout: number;
  readonly freeAttempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export const DEFAULT_THROTTLE_POLICY: ThrottlePolicy = {
  windowMs: 15 * 60_000,
  accountLockout: 10,
  ipLockout: 50,
  freeAttempts: 2,
  baseDelayMs: 500,
  maxDelayMs: 8_000,
};

/**
 * `postmesh_auth_failures_total{protocol}`: failed or refused logins, one series per protocol
 * (imap, managesieve, smtp), the same metric in every service that checks mail passwords.
 */
export function authFailuresCounter(registry: Registry): MetricCounter<'protocol'> {
  return new MetricCounter({
    name: 'postmesh_auth_failures_total',
    help: 'Failed or refused logins, by protocol',
    labelNames: ['protocol'],
    registers: [registry],
  });
}

/** The policy set by a service's `authThrottleSchema` variables (libs/config), on the defaults. */
export function throttlePolicyOf(config: {
  readonly POSTMESH_AUTH_LOCKOUT_ACCOUNT: number;
  readonly POSTMESH_AUTH_LOCKOUT_IP: number;
  readonly POSTMESH_AUTH_WINDOW_MS: number;
  readonly POSTMESH_AUTH_BASE_DELAY_MS: number;
}): ThrottlePolicy {
  return {
    ...DEFAULT_THROTTLE_POLICY,
    accountLockout: config.POSTMESH_AUTH_LOCKOUT_ACCOUNT,
    ipLockout: config.POSTMESH_AUTH_LOCKOUT_IP,
    windowMs: config.POSTMESH_AUTH_WINDOW_MS,
    baseDelayMs: config.POSTMESH_AUTH_BASE_DELAY_MS,
  };
}

/** The counters one attempt was counted in (to take it back or clear them). */
export interface ThrottleTicket {
  readonly ipKey: string;
  readonly accountKey: string;
  /** Whether the attempt was counted in the KV (or in this process's fallback counters). */
  readonly shared: boolean;
}

export type ThrottleVerdict =
  | { readonly kind: 'allowed'; readonly delayMs: number; readonly ticket: ThrottleTicket }
  | {
      readonly kind: 'locked';
      readonly scope: 'ip' | 'account';
      readonly delayMs: number;
      /** Until the window has passed since the counter's last failure. */
      readonly retryAfterMs: number;
    };

export interface AuthThrottle {
  /**
   * Counts a login attempt before the credentials are checked (one compare-and-set per counter)
   * and says whether it may go ahead, after `delayMs`. An allowed attempt stays counted as a
   * failure unless `succeeded` or `release` is called with its ticket.
   */
  attempt(ip: string, login: string): Promise<ThrottleVerdict>;
  /** The credentials were right: clears the account's counter, takes the attempt off the IP's. */
  succeeded(ticket: ThrottleTicket): Promise<void>;
  /**
   * The credentials were wrong: the attempt stays counted, and from now on it adds to the delay
   * of this process's next attempts on the same counters (see the module comment).
   */
  failed(ticket: ThrottleTicket): void;
  /**
   * The attempt proved nothing either way (e.g. a second factor is still to come): takes it off
   * both counters without clearing them.
   */
  release(ticket: ThrottleTicket): Promise<void>;
}

/** A key's failures and the time of the last one (ms since the epoch), as stored in KV. */
const CounterSchema = Type.Object({ count: Type.Number(), last: Type.Number() });
type Counter = Readonly<Static<typeof CounterSchema>>;
const checkCounter = compile(CounterSchema);

export function ipKey(ip: string, prefix = 'ip'): string {
  return `${prefix}.${ip.replace(/[^A-Za-z0-9.-]/g, '_').slice(0, 100) || 'unknown'}`;
}

/** The normalised form of a login name (how an unknown account is counted). */
export function normaliseLogin(login: string): string {
  return login.trim().normalize('NFC').toLowerCase();
}

/** Key of an account: its user id, or for a login that names no account, the normalised login. */
export function accountKey(canonical: string): string {
  return `account.${createHash('sha256').update(normaliseLogin(canonical)).digest('hex').slice(0, 40)}`;
}

/** Delay before answering an attempt after `failures` recent failures (progressive, capped). */
export function delayFor(failures: number, policy: ThrottlePolicy): number {
  if (failures < policy.freeAttempts) return 0;
  return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (failures - policy.freeAttempts));
}

/** A key's counter with the revision it was read at (0: the key does not exist). */
interface CounterEntry {
  readonly value: Counter | undefined;
  readonly revision: number;
}

/** Where counters live: the KV bucket, or this process's memory. */
interface CounterStore {
  read(key: string): Promise<CounterEntry>;
  /** Writes `value` if the key is still at `revision`; false when another writer came first. */
  write(key: string, value: Counter, revision: number): Promise<boolean>;
  remove(key: string): Promise<void>;
}

/** A counter read from KV; one of another shape counts as none (the next failure rewrites it). */
function parseCounter(value: unknown): Counter | undefined {
  const checked = checkCounter(value);
  return checked.ok ? { count: checked.value.count, last: checked.value.last } : undefined;
}

class KvCounterStore implements CounterStore {
  constructor(
    private readonly kv: () => Promise<KV>,
    private readonly timeoutMs: number,
  ) {}

  async read(key: string): Promise<CounterEntry> {
    const entry = await this.#bounded((kv) => kv.get(key));
    if (entry === null) return { value: undefined, revision: 0 };
    // A deleted key keeps its revision: the next write must expect it.
    if (entry.operation !== 'PUT' || entry.length === 0)
      return { value: undefined, revision: entry.revision };
    let value: Counter | undefined;
    try {
      value = parseCounter(entry.json());
    } catch {
      value = undefined;
    }
    return { value, revision: entry.revision };
  }

  async write(key: string, value: Counter, revision: number): Promise<boolean> {
    try {
      await this.#bounded((kv) =>
        kv.put(key, JSON.stringify(value), { previousSeq: revision, timeout: this.timeoutMs }),
      );
      return true;
    } catch (error) {
      if (
        error instanceof JetStreamApiError &&
        (error.code === JetStreamApiCodes.StreamWrongLastSequence ||
          error.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
      ) {
        return false;
      }
      throw error;
    }
  }

  async remove(key: string): Promise<void> {
    await this.#bounded((kv) => kv.delete(key));
  }

  async #bounded<T>(op: (kv: KV) => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`auth-failures KV did not answer within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
    });
    try {
      return await Promise.race([this.kv().then(op), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** This process's counters: the fallback while the KV does not answer. Bounded in size. */
class MemoryCounterStore implements CounterStore {
  readonly #entries = new Map<string, { value: Counter; revision: number }>();
  #revision = 0;

  constructor(private readonly maxKeys = 100_000) {}

  read(key: string): Promise<CounterEntry> {
    const entry = this.#entries.get(key);
    return Promise.resolve(entry ?? { value: undefined, revision: 0 });
  }

  write(key: string, value: Counter, revision: number): Promise<boolean> {
    if ((this.#entries.get(key)?.revision ?? 0) !== revision) return Promise.resolve(false);
    this.#entries.delete(key);
    this.#entries.set(key, { value, revision: ++this.#revision });
    if (this.#entries.size > this.maxKeys) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    return Promise.resolve(true);
  }

  remove(key: string): Promise<void> {
    this.#entries.delete(key);
    return Promise.resolve();
  }
}

export interface AuthThrottleOptions {
  /**
   * The user id a login names (primary address or alias), or undefined when it names no account.
   * Without it (or when it fails), accounts are keyed by the normalised login.
   */
  readonly resolveAccount?: (login: string) => Promise<string | undefined>;
  /** Prefix of the per-IP keys: `ip` (mail protocols, the default) or the console's `admin-ip`. */
  readonly ipPrefix?: string;
  /** How long a KV operation may take before the local counters are used. */
  readonly storeTimeoutMs?: number;
  /** How long the local counters are used after the KV failed, before it is tried again. */
  readonly fallbackMs?: number;
  /**
   * How long an attempt refused only because of this process's attempts under way waits for one
   * of them to settle before it is refused (default 10 s: longer than a password check).
   */
  readonly settleWaitMs?: number;
  readonly now?: () => number;
}

/** Key of a counter in this process's bookkeeping: which store, which counter. */
function pendingId(shared: boolean, key: string): string {
  return `${shared ? 'shared' : 'local'}\u0000${key}`;
}

/** Rounds of read → compare-and-set before an attempt is refused as contended. */
const MAX_CAS_ROUNDS = 50;
const RESOLVED_CACHE_MS = 30_000;
const RESOLVED_CACHE_SIZE = 10_000;
/**
 * How long an attempt counts as under way (not in the delay) when it is never settled: longer
 * than a password check takes, short enough that a caller which forgets `failed` loses little.
 */
export const PENDING_MAX_MS = 30_000;
const PENDING_MAX_KEYS = 100_000;

export class KvAuthThrottle implements AuthThrottle {
  readonly #shared: CounterStore;
  readonly #local = new MemoryCounterStore();
  readonly #now: () => number;
  readonly #fallbackMs: number;
  readonly #ipPrefix: string;
  #sharedDownUntil = 0;
  readonly #resolved = new Map<string, { canonical: string; at: number }>();
  /** Attempts this process counted and has not settled, per counter, with when each began. */
  readonly #pending = new Map<string, Map<ThrottleTicket, number>>();
  /** Attempts waiting for one under way on a counter to settle, per counter. */
  readonly #settleWaiters = new Map<string, Set<() => void>>();
  /** Settled attempts so far: an attempt that read a counter before a settle reads it again. */
  #settledCount = 0;
  /** This process's compare-and-set on a counter, one at a time (they would only collide). */
  readonly #counterQueues = new Map<string, Promise<unknown>>();
  readonly #settleWaitMs: number;

  constructor(
    kv: () => Promise<KV>,
    private readonly policy: ThrottlePolicy,
    private readonly warn: (error: unknown, what: string) => void,
    private readonly options: AuthThrottleOptions = {},
  ) {
    this.#shared = new KvCounterStore(kv, options.storeTimeoutMs ?? 2_000);
    this.#now = options.now ?? Date.now;
    this.#fallbackMs = options.fallbackMs ?? 5_000;
    this.#ipPrefix = options.ipPrefix ?? 'ip';
    this.#settleWaitMs = options.settleWaitMs ?? 10_000;
  }

  async attempt(ip: string, login: string): Promise<ThrottleVerdict> {
    const keys = { ipKey: ipKey(ip, this.#ipPrefix), accountKey: accountKey(await this.#canonical(login)) };
    if (this.#now() >= this.#sharedDownUntil) {
      try {
        return await this.#attemptIn(this.#shared, keys, true);
      } catch (error) {
        this.#sharedDownUntil = this.#now() + this.#fallbackMs;
        this.warn(error, 'shared auth throttle unavailable; counting in this process');
      }
    }
    return this.#attemptIn(this.#local, keys, false);
  }

  async succeeded(ticket: ThrottleTicket): Promise<void> {
    await this.#settle(ticket, 'clear');
  }

  async release(ticket: ThrottleTicket): Promise<void> {
    await this.#settle(ticket, 'take-back');
  }

  failed(ticket: ThrottleTicket): void {
    this.#unpend(ticket);
  }

  async #settle(ticket: ThrottleTicket, account: 'clear' | 'take-back'): Promise<void> {
    const store = ticket.shared ? this.#shared : this.#local;
    try {
      await Promise.all([
        this.#decrement(store, ticket.ipKey),
        account === 'clear' ? store.remove(ticket.accountKey) : this.#decrement(store, ticket.accountKey),
      ]);
    } catch (error) {
      this.warn(error, 'could not settle a counted login attempt');
    } finally {
      // Under way until the counters no longer hold it, so no attempt in between takes it for a
      // failure.
      this.#unpend(ticket);
    }
  }

  async #attemptIn(
    store: CounterStore,
    keys: { ipKey: string; accountKey: string },
    shared: boolean,
  ): Promise<ThrottleVerdict> {
    // The IP first: a locked-out address gets no further, and its attempts on a locked account
    // still count against it.
    const ticket: ThrottleTicket = { ...keys, shared };
    const byIp = await this.#reserveOrWait(store, shared, keys.ipKey, this.policy.ipLockout);
    if (!byIp.ok) return this.#locked('ip', byIp);
    const ipFailures = Math.max(0, byIp.before - this.#pend(ticket, keys.ipKey));
    const byAccount = await this.#reserveOrWait(store, shared, keys.accountKey, this.policy.accountLockout);
    if (!byAccount.ok) {
      this.#unpend(ticket);
      return this.#locked('account', byAccount);
    }
    const accountFailures = Math.max(0, byAccount.before - this.#pend(ticket, keys.accountKey));
    return {
      kind: 'allowed',
      delayMs: delayFor(Math.max(ipFailures, accountFailures), this.policy),
      ticket,
    };
  }

  /**
   * `#reserve`, but a counter at its limit only because of this process's attempts under way is
   * not a lockout yet: wait until one of them settles (a success takes its count back, a failure
   * keeps it) and count again. Refused as before when failures, or attempts of other processes,
   * fill the limit, or when nothing settles within `settleWaitMs`.
   */
  async #reserveOrWait(
    store: CounterStore,
    shared: boolean,
    key: string,
    limit: number,
  ): Promise<{ ok: boolean; before: number; last: number }> {
    const id = pendingId(shared, key);
    const giveUpAt = this.#now() + PENDING_MAX_MS;
    for (;;) {
      const settledBefore = this.#settledCount;
      const counted = await this.#serially(id, () => this.#reserve(store, key, limit));
      if (counted.ok) return counted;
      // Something settled while the counter was read: it may be lower now.
      if (this.#settledCount !== settledBefore) continue;
      const underWay = this.#underWay(id);
      if (underWay === 0 || counted.before - underWay >= limit || this.#now() >= giveUpAt) return counted;
      if (!(await this.#nextSettle(id))) return counted;
    }
  }

  /** Attempts of this process under way on a counter (those older than PENDING_MAX_MS are not). */
  #underWay(id: string): number {
    const entries = this.#pending.get(id);
    if (entries === undefined) return 0;
    const now = this.#now();
    let count = 0;
    for (const at of entries.values()) if (now - at <= PENDING_MAX_MS) count++;
    return count;
  }

  /** Resolves true when an attempt under way on the counter settles, false after `settleWaitMs`. */
  #nextSettle(id: string): Promise<boolean> {
    return new Promise((resolve) => {
      let waiters = this.#settleWaiters.get(id);
      if (waiters === undefined) {
        waiters = new Set();
        this.#settleWaiters.set(id, waiters);
      }
      const wake = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        waiters.delete(wake);
        if (waiters.size === 0) this.#settleWaiters.delete(id);
        resolve(false);
      }, this.#settleWaitMs);
      waiters.add(wake);
    });
  }

  /** Runs `op` after this process's earlier operations on the same counter have finished. */
  async #serially<T>(id: string, op: () => Promise<T>): Promise<T> {
    const previous = this.#counterQueues.get(id) ?? Promise.resolve();
    const run = previous.then(op, op);
    const tail = run.catch(() => undefined);
    this.#counterQueues.set(id, tail);
    try {
      return await run;
    } finally {
      if (this.#counterQueues.get(id) === tail) this.#counterQueues.delete(id);
    }
  }

  /**
   * Registers `ticket` as under way on `key` and returns how many other attempts of this process
   * were under way there (counted in the key's counter, but not failures, or not yet).
   */
  #pend(ticket: ThrottleTicket, key: string): number {
    const id = pendingId(ticket.shared, key);
    const now = this.#now();
    let entries = this.#pending.get(id);
    if (entries === undefined) {
      // Bounded: forgetting attempts under way only makes them count as failures (the safe side).
      if (this.#pending.size >= PENDING_MAX_KEYS) this.#pending.clear();
      entries = new Map();
      this.#pending.set(id, entries);
    }
    for (const [other, at] of entries) if (now - at > PENDING_MAX_MS) entries.delete(other);
    const others = entries.size;
    entries.set(ticket, now);
    return others;
  }

  #unpend(ticket: ThrottleTicket): void {
    for (const key of [ticket.ipKey, ticket.accountKey]) {
      const id = pendingId(ticket.shared, key);
      const entries = this.#pending.get(id);
      if (entries === undefined || !entries.delete(ticket)) continue;
      if (entries.size === 0) this.#pending.delete(id);
      this.#settledCount++;
      const waiters = this.#settleWaiters.get(id);
      this.#settleWaiters.delete(id);
      for (const wake of waiters ?? []) wake();
    }
  }

  #locked(scope: 'ip' | 'account', counted: { before: number; last: number }): ThrottleVerdict {
    return {
      kind: 'locked',
      scope,
      delayMs: delayFor(counted.before, this.policy),
      retryAfterMs: Math.max(1_000, counted.last + this.policy.windowMs - this.#now()),
    };
  }

  /** Within the window, the counter's count; after it, 0. */
  #recent(counter: Counter | undefined): number {
    if (counter === undefined) return 0;
    return this.#now() - counter.last > this.policy.windowMs ? 0 : counter.count;
  }

  /** One compare-and-set: count one more attempt unless the counter is at `limit`. */
  async #reserve(
    store: CounterStore,
    key: string,
    limit: number,
  ): Promise<{ ok: boolean; before: number; last: number }> {
    for (let round = 0; round < MAX_CAS_ROUNDS; round++) {
      const current = await store.read(key);
      const before = this.#recent(current.value);
      if (before >= limit) return { ok: false, before, last: current.value?.last ?? this.#now() };
      const now = this.#now();
      if (await store.write(key, { count: before + 1, last: now }, current.revision)) {
        return { ok: true, before, last: now };
      }
      // Another attempt counted first: read again (with a little jitter against lockstep).
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * Math.min(50, 2 ** round))));
    }
    // Never let contention become a way around the limit.
    this.warn(new Error(key), 'login counter kept changing; attempt refused');
    return { ok: false, before: limit, last: this.#now() };
  }

  /** Takes one attempt back off a counter (never below 0, never moving its `last`). */
  async #decrement(store: CounterStore, key: string): Promise<void> {
    for (let round = 0; round < MAX_CAS_ROUNDS; round++) {
      const current = await store.read(key);
      const count = this.#recent(current.value);
      if (current.value === undefined || count === 0) return;
      if (await store.write(key, { count: count - 1, last: current.value.last }, current.revision)) return;
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * Math.min(50, 2 ** round))));
    }
  }

  /** The user id a login names, or its normalised form (cached briefly). */
  async #canonical(login: string): Promise<string> {
    const normalised = normaliseLogin(login);
    const resolve = this.options.resolveAccount;
    if (resolve === undefined) return normalised;
    const cached = this.#resolved.get(normalised);
    if (cached !== undefined && this.#now() - cached.at < RESOLVED_CACHE_MS) return cached.canonical;
    let canonical = normalised;
    try {
      canonical = (await resolve(login.trim())) ?? normalised;
    } catch (error) {
      this.warn(error, 'could not resolve a login to its account; counting it by name');
      return normalised;
    }
    this.#resolved.delete(normalised);
    this.#resolved.set(normalised, { canonical, at: this.#now() });
    if (this.#resolved.size > RESOLVED_CACHE_SIZE) {
      const oldest = this.#resolved.keys().next().value;
      if (oldest !== undefined) this.#resolved.delete(oldest);
    }
    return canonical;
  }
}
