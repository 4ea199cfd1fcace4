/**
 * `mailbox.changed.<userId>` (core NATS, DESIGN §3) fanned out to the sessions of that user: one
 * subscription per user with sessions on this node, removed with the last one. Each listener gets
 * the change the message names (mailbox and HIGHESTMODSEQ), or undefined for "anything".
 */
import { Subjects, decodeMailboxChange, type MailboxChange } from '@postmesh/bus';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';

export class ChangeFeed {
  readonly #users = new Map<
    string,
    { sub: Subscription | null; listeners: Set<(change?: MailboxChange) => void> }
  >();
  constructor(private readonly nc: NatsConnection | null) {}

  subscribe(userId: string, onChange: (change?: MailboxChange) => void): () => void {
    let entry = this.#users.get(userId);
    if (entry === undefined) {
      const listeners = new Set<(change?: MailboxChange) => void>();
      const sub =
        this.nc === null || this.nc.isClosed()
          ? null
          : this.nc.subscribe(Subjects.mailboxChanged(userId), {
              callback: (_error, msg) => {
                const change = decodeMailboxChange(msg.data);
                for (const listener of listeners) listener(change);
              },
            });
      entry = { sub, listeners };
      this.#users.set(userId, entry);
    }
    entry.listeners.add(onChange);
    const current = entry;
    return () => {
      current.listeners.delete(onChange);
      if (current.listeners.size === 0 && this.#users.get(userId) === current) {
        this.#users.delete(userId);
        current.sub?.unsubscribe();
      }
    };
  }

  get users(): number {
    return this.#users.size;
  }
}
