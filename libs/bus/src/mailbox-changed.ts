/**
 * The payload of `mailbox.changed.<userId>` (core NATS, DESIGN §3): which mailbox changed and its
 * HIGHESTMODSEQ after the change (RFC 7162 §3.1.1), when the publisher knows them. An IMAP session
 * that has another mailbox selected, or already knows that mod-sequence (its own STORE or
 * EXPUNGE), need not ask storage for changes. An empty payload means "something of this user
 * changed": every session catches up, as before the payload existed.
 */
import { Type, compile, type DeepReadonly, type Static } from '@postmesh/schema';

/** Unknown fields are allowed (ignored): a newer publisher may add one. */
export const MailboxChangeSchema = Type.Object({
  mailboxId: Type.String({ minLength: 1 }),
  highestModseq: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
});
export type MailboxChange = DeepReadonly<Static<typeof MailboxChangeSchema>>;
const checkMailboxChange = compile(MailboxChangeSchema);

export function encodeMailboxChange(change: MailboxChange): string {
  return JSON.stringify({ mailboxId: change.mailboxId, highestModseq: change.highestModseq });
}

/** The change a payload names, or undefined (empty, or not understood: treat as "anything"). */
export function decodeMailboxChange(data: Uint8Array): MailboxChange | undefined {
  if (data.length === 0 || data.length > 256) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(data));
  } catch {
    return undefined;
  }
  const checked = checkMailboxChange(parsed);
  return checked.ok
    ? { mailboxId: checked.value.mailboxId, highestModseq: checked.value.highestModseq }
    : undefined;
}

/** The header naming the process that published a `mailbox.changed` message (`LocalMailboxChanges`). */
export const CHANGE_ORIGIN_HEADER = 'Postmesh-Origin';

/**
 * `mailbox.changed` inside one process, for storage and imap run together (ADR 0010): the sessions
 * of this process hear of the changes made here at once and with what changed, without a NATS
 * round trip; NATS carries them to other processes, at most one message per user per
 * `publishWindowMs` (the last change, or "anything" when the window held several mailboxes'),
 * stamped with `origin`, so this process's own subscription skips them. On a 2-core machine a
 * publish and its delivery back cost about a tenth of an APPEND's time on the event loop
 * (docs/benchmarks.md, fourteenth session).
 */
export class LocalMailboxChanges {
  /** This process, as the `Postmesh-Origin` header of what it publishes. */
  readonly origin = `${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  readonly #listeners = new Map<string, Set<(change?: MailboxChange) => void>>();
  /** Users whose NATS message waits for its window: the change it will carry (null: anything). */
  readonly #pending = new Map<string, MailboxChange | null>();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly publish: (userId: string, change: MailboxChange | undefined, origin: string) => void,
    private readonly publishWindowMs = 20,
  ) {}

  /** Hears the changes of `userId` made in this process; returns the unsubscribe. */
  listen(userId: string, listener: (change?: MailboxChange) => void): () => void {
    let set = this.#listeners.get(userId);
    if (set === undefined) this.#listeners.set(userId, (set = new Set()));
    set.add(listener);
    const current = set;
    return () => {
      current.delete(listener);
      if (current.size === 0 && this.#listeners.get(userId) === current) this.#listeners.delete(userId);
    };
  }

  /** A change made in this process: its listeners now (after the current task), NATS in a while. */
  changed(userId: string, change?: MailboxChange): void {
    const set = this.#listeners.get(userId);
    if (set !== undefined && set.size > 0) {
      queueMicrotask(() => {
        for (const listener of set) listener(change);
      });
    }
    const waiting = this.#pending.get(userId);
    this.#pending.set(
      userId,
      waiting === undefined || (waiting !== null && waiting.mailboxId === change?.mailboxId)
        ? (change ?? null)
        : null,
    );
    this.#timer ??= setTimeout(() => this.flush(), this.publishWindowMs).unref();
  }

  /** Publishes what waits (at the end of a window, and when the process stops). */
  flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const pending = [...this.#pending];
    this.#pending.clear();
    for (const [userId, change] of pending) this.publish(userId, change ?? undefined, this.origin);
  }
}
