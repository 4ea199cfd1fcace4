/**
 * `mailbox.changed.<userId>` (core NATS, DESIGN §3) fanned out to the sessions of that user: one
 * subscription per user with sessions on this node, removed with the last one. Each listener gets
 * the change the message names (mailbox and HIGHESTMODSEQ), or undefined for "anything". Beside
 * storage in one process (storage-imap), the changes made here come from `local` at once, and
 * their NATS copies (stamped with this process's origin) are skipped.
 */
import {
  CHANGE_ORIGIN_HEADER,
  Subjects,
  decodeMailboxChange,
  type LocalMailboxChanges,
  type MailboxChange,
} from '@postmesh/bus';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';

export class ChangeFeed {
  readonly #users = new Map<
    string,
    {
      sub: Subscription | null;
      unlisten: (() => void) | undefined;
      listeners: Set<(change?: MailboxChange) => void>;
    }
  >();
  constructor(
    private readonly nc: NatsConnection | null,
    private readonly local?: LocalMailboxChanges,
  ) {}

  subscribe(userId: string, onChange: (change?: MailboxChange) => void): () => void {
    let entry = this.#users.get(userId);
    if (entry === undefined) {
      const listeners = new Set<(change?: MailboxChange) => void>();
      const tell = (change?: MailboxChange): void => {
        for (const listener of listeners) listener(change);
      };
      const origin = this.local?.origin;
      const sub =
        this.nc === null || this.nc.isClosed()
          ? null
          : this.nc.subscribe(Subjects.mailboxChanged(userId), {
              callback: (_error, msg) => {
                if (origin !== undefined && msg.headers?.get(CHANGE_ORIGIN_HEADER) === origin) return;
                tell(decodeMailboxChange(msg.data));
              },
            });
      entry = { sub, unlisten: this.local?.listen(userId, tell), listeners };
      this.#users.set(userId, entry);
    }
    entry.listeners.add(onChange);
    const current = entry;
    return () => {
      current.listeners.delete(onChange);
      if (current.listeners.size === 0 && this.#users.get(userId) === current) {
        this.#users.delete(userId);
        current.sub?.unsubscribe();
        current.unlisten?.();
      }
    };
  }

  get users(): number {
    return this.#users.size;
  }
}
