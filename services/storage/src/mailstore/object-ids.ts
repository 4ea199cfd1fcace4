/**
 * RFC 8474 object identifiers of messages. MAILBOXID is the mailbox's own `_id` (it survives
 * RENAME and is never reused, §4).
 *
 * EMAILID (§5.1) names the stored content: the body's blob id, which COPY and MOVE keep and the
 * recipients of one delivery share, so every copy of the same message has the same EMAILID, and
 * two messages with the same EMAILID have the same immutable content.
 *
 * THREADID (§5.2) is derived from the message's own headers, so it is stable and the same for
 * every message with the same EMAILID: the hash of the thread's first message id (the first
 * References entry, else In-Reply-To, else the message's own Message-ID). Replies whose
 * References carry the thread's root land in the root's thread. A message with none of those
 * fields is a thread of its own.
 */
import { createHash } from 'node:crypto';
import type { SearchableHeaders } from '@postmesh/mime';
import type { ObjectId } from 'mongodb';

/** §3 objectid = 1*255(ALPHA / DIGIT / "_" / "-"); ours start with a letter naming the kind. */
export function emailIdOf(blobId: ObjectId): string {
  return `M${blobId.toHexString()}`;
}

/**
 * The first msg-id of a field without its angle brackets (In-Reply-To may list several, RFC 5322
 * §3.6.4), or the trimmed text when it has none; null when empty.
 */
function bareId(id: string | null | undefined): string | null {
  const text = (id ?? '').trim();
  const bare = (/<([^<>]*)>/.exec(text)?.[1] ?? text).trim();
  return bare === '' ? null : bare;
}

export function threadIdOf(
  headers: Pick<SearchableHeaders, 'references' | 'inReplyTo' | 'messageId'>,
  blobId: ObjectId,
): string {
  const root =
    headers.references.map(bareId).find((r) => r !== null) ??
    bareId(headers.inReplyTo) ??
    bareId(headers.messageId);
  if (root === null || root === undefined) return `T${blobId.toHexString()}`;
  return `T${createHash('sha256').update(root, 'utf8').digest('hex').slice(0, 24)}`;
}
