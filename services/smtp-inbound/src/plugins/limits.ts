/**
 * Per-client-IP connection and message rate limits, counted across every smtp-inbound replica in
 * the JetStream KV bucket `rate-limits` (DESIGN §3); caps on the sessions open at once in this
 * process, per client IP and in total; and the count of open sessions that a graceful stop waits
 * for.
 *
 * Each replica adds its local counts to the shared per-minute counter about once a second
 * (compare-and-set on the key's revision), so a busy client costs one KV write per second per
 * replica instead of one per command. A limit may therefore be overshot by about a second's worth
 * of traffic; that is the price of not putting NATS on every command's path.
 */
import type { KV } from '@postmesh/bus';
import { DSN, HookCode, type PluginHooks } from '../haraka/types.js';

export type CounterKind = 'conn' | 'msg';

/** KV keys allow `[-/_=.a-zA-Z0-9]`: IPv6 colons become `_`. */
export function counterKey(kind: CounterKind, ip: string, minute: number): string {
  return `smtp.${kind}.${ip.replace(/[^A-Za-z0-9.-]/g, '_')}.${minute}`;
}

interface Slot {
  /** Shared total last read from KV. */
  shared: number;
  /** Counted here and not yet added to KV. */
  pending: number;
}

export class SharedRateCounter {
  private readonly slots = new Map<string, Slot>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly kv: () => Promise<KV>,
    private readonly onError: (error: unknown) => void,
    private readonly now: () => number = Date.now,
  ) {}

  start(intervalMs = 1_000): void {
    this.timer = setInterval(() => void this.flush(), intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  private minute(): number {
    return Math.floor(this.now() / 60_000);
  }

  /** Counts one event and says whether the total this minute is within `limit` (0 = no limit). */
  hit(kind: CounterKind, ip: string, limit: number): boolean {
    const key = counterKey(kind, ip, this.minute());
    let slot = this.slots.get(key);
    if (slot === undefined) {
      slot = { shared: 0, pending: 0 };
      this.slots.set(key, slot);
    }
    slot.pending += 1;
    return limit === 0 || slot.shared + slot.pending <= limit;
  }

  /** Would one more event exceed `limit`? (no count) */
  exceeded(kind: CounterKind, ip: string, limit: number): boolean {
    if (limit === 0) return false;
    const slot = this.slots.get(counterKey(kind, ip, this.minute()));
    return slot !== undefined && slot.shared + slot.pending >= limit;
  }

  flush(): Promise<void> {
    this.flushing ??= this.flushOnce().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  private async flushOnce(): Promise<void> {
    const current = this.minute();
    let kv: KV;
    try {
      kv = await this.kv();
    } catch (error) {
      this.onError(error);
      return;
    }
    for (const [key, slot] of [...this.slots]) {
      const minute = Number(key.slice(key.lastIndexOf('.') + 1));
      try {
        for (let attempt = 0; attempt < 5; attempt++) {
          const entry = await kv.get(key);
          const stored = entry === null || entry.operation !== 'PUT' ? 0 : Number(entry.string()) || 0;
          const total = stored + slot.pending;
          try {
            if (entry === null || entry.operation !== 'PUT') await kv.create(key, String(total));
            else await kv.update(key, String(total), entry.revision);
            slot.shared = total;
            slot.pending = 0;
            break;
          } catch {
            // Another replica wrote in between: read again.
          }
        }
      } catch (error) {
        this.onError(error);
      }
      if (minute < current - 1) this.slots.delete(key);
      else if (slot.pending === 0 && minute < current) this.slots.delete(key);
    }
  }
}

export interface LimitsOptions {
  readonly counter: SharedRateCounter;
  readonly connectionsPerMinute: number;
  readonly messagesPerMinute: number;
  /** Sessions open at once in this process from one client IP (0 = no cap). */
  readonly maxConnectionsPerIp: number;
  /** Sessions open at once in this process (0 = no cap). */
  readonly maxConnections: number;
}

/** Open SMTP sessions, in total and per client IP: the connection caps and the graceful stop. */
export class SessionTracker {
  open = 0;
  private readonly byIp = new Map<string, number>();
  private waiters: (() => void)[] = [];
  opened(ip = ''): void {
    this.open += 1;
    this.byIp.set(ip, (this.byIp.get(ip) ?? 0) + 1);
  }
  closed(ip = ''): void {
    this.open = Math.max(0, this.open - 1);
    const left = (this.byIp.get(ip) ?? 0) - 1;
    if (left > 0) this.byIp.set(ip, left);
    else this.byIp.delete(ip);
    if (this.open === 0) for (const w of this.waiters.splice(0)) w();
  }
  /** Sessions open from `ip`, this one included once it is counted. */
  openFrom(ip: string): number {
    return this.byIp.get(ip) ?? 0;
  }
  /** Resolves when no session is open, or after `timeoutMs`, with the number still open. */
  async idle(timeoutMs: number): Promise<number> {
    if (this.open === 0) return 0;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    return this.open;
  }
}

export function limitsHooks(options: LimitsOptions & { readonly sessions: SessionTracker }): PluginHooks {
  return {
    hook_connect_init(next, connection) {
      options.sessions.opened(connection.remote.ip);
      // Haraka may run the disconnect hook for a connection that never got here (a client gone
      // during the PROXY header): only what was counted is uncounted.
      connection.notes.postmeshCountedIp = connection.remote.ip;
      next();
    },
    hook_disconnect(next, connection) {
      const ip = connection.notes.postmeshCountedIp;
      if (typeof ip === 'string') {
        delete connection.notes.postmeshCountedIp;
        options.sessions.closed(ip);
      }
      next();
    },
    hook_connect(next, connection) {
      const ip = connection.remote.ip;
      // Caps on sessions open at once, so that no client (or flood) can hold every session and
      // the memory behind them. RFC 5321 §3.8 / §4.2.3: 421 and close; RFC 3463 X.7.0 (policy).
      if (options.maxConnectionsPerIp > 0 && options.sessions.openFrom(ip) > options.maxConnectionsPerIp) {
        next(
          HookCode.DENYSOFTDISCONNECT,
          new DSN(421, '4.7.0 Too many connections from your address, try later'),
        );
        return;
      }
      if (options.maxConnections > 0 && options.sessions.open > options.maxConnections) {
        next(HookCode.DENYSOFTDISCONNECT, new DSN(421, '4.7.0 Too many connections, try later'));
        return;
      }
      if (!options.counter.hit('conn', ip, options.connectionsPerMinute)) {
        // RFC 5321 §3.8 / §4.2.3: 421 and close; RFC 3463 X.7.0 (policy).
        next(
          HookCode.DENYSOFTDISCONNECT,
          new DSN(421, '4.7.0 Too many connections from your address, try later'),
        );
        return;
      }
      next();
    },
    hook_mail(next, connection) {
      if (options.counter.exceeded('msg', connection.remote.ip, options.messagesPerMinute)) {
        next(HookCode.DENYSOFT, new DSN(451, '4.7.1 Too many messages from your address, try later'));
        return;
      }
      next();
    },
  };
}
