/**
 * The payload of `mailbox.changed.<userId>` (core NATS, DESIGN §3): which mailbox changed and its
 * HIGHESTMODSEQ after the change (RFC 7162 §3.1.1), when the publisher knows them. An IMAP session
 * that has another mailbox selected, or already knows that mod-sequence (its own STORE or
 * EXPUNGE), need not ask storage for changes. An empty payload means "something of this user
 * changed": every session catches up, as before the payload existed.
 */
export interface MailboxChange {
  readonly mailboxId: string;
  readonly highestModseq: number;
}

export function encodeMailboxChange(change: MailboxChange): string {
  return JSON.stringify({ mailboxId: change.mailboxId, highestModseq: change.highestModseq });
}

/** The change a payload names, or undefined (empty, or not understood: treat as "anything"). */
export function decodeMailboxChange(data: Uint8Array): MailboxChange | undefined {
  if (data.length === 0 || data.length > 256) return undefined;
  try {
    const parsed = JSON.parse(new TextDecoder().decode(data)) as unknown;
    if (typeof parsed !== 'object' || parsed === null) return undefined;
    const { mailboxId, highestModseq } = parsed as Record<string, unknown>;
    if (typeof mailboxId !== 'string' || mailboxId.length === 0) return undefined;
    if (typeof highestModseq !== 'number' || !Number.isSafeInteger(highestModseq) || highestModseq < 1) {
      return undefined;
    }
    return { mailboxId, highestModseq };
  } catch {
    return undefined;
  }
}
