/**
 * The mailboxes every new user gets (RFC 9051 §5.1 INBOX; RFC 6154 §2 SPECIAL-USE attributes).
 * Used only until the mailstore module provides `createDefaultMailboxes`; insert-or-keep, so
 * running it twice leaves one of each.
 */
import { randomInt } from 'node:crypto';
import { ObjectId, type Db } from 'mongodb';
import { Collections, type MailboxDoc } from '../db/schema.js';

export const DEFAULT_MAILBOXES: readonly { path: string; specialUse: string | null }[] = [
  { path: 'INBOX', specialUse: null },
  { path: 'Drafts', specialUse: '\\Drafts' },
  { path: 'Sent', specialUse: '\\Sent' },
  { path: 'Junk', specialUse: '\\Junk' },
  { path: 'Trash', specialUse: '\\Trash' },
  { path: 'Archive', specialUse: '\\Archive' },
];

export async function insertDefaultMailboxes(db: Db, userId: string): Promise<void> {
  const mailboxes = db.collection<MailboxDoc>(Collections.mailboxes);
  const now = new Date();
  for (const { path, specialUse } of DEFAULT_MAILBOXES) {
    await mailboxes.updateOne(
      { userId, path },
      {
        $setOnInsert: {
          _id: new ObjectId(),
          userId,
          path,
          specialUse,
          subscribed: true,
          // RFC 9051 §2.3.1.1: a non-zero 32-bit value that never changes for this mailbox.
          uidValidity: randomInt(1, 2 ** 31),
          uidNext: 1,
          highestModseq: 1,
          messages: 0,
          unseen: 0,
          size: 0,
          createdAt: now,
        },
      },
      { upsert: true },
    );
  }
}
