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
