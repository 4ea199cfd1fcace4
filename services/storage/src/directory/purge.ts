/**
 * DeleteUser with `purge_data`: removes the user's mailboxes, messages, tombstones and
 * subscriptions. Encrypted bodies shared through `blob_refs` are the mailstore's to release;
 * once the user's data key is gone, what remains of their bodies cannot be decrypted by anyone.
 */
import type { Db } from 'mongodb';
import { Collections, type MailboxDoc } from '../db/schema.js';

export async function purgeUserMailData(db: Db, userId: string): Promise<void> {
  const mailboxes = await db
    .collection<MailboxDoc>(Collections.mailboxes)
    .find({ userId }, { projection: { _id: 1 } })
    .toArray();
  const mailboxIds = mailboxes.map((m) => m._id.toHexString());
  await db.collection(Collections.messages).deleteMany({ userId });
  await db.collection(Collections.tombstones).deleteMany({ mailboxId: { $in: mailboxIds } });
  await db.collection(Collections.mailboxes).deleteMany({ userId });
  await db.collection('mailbox_subscriptions').deleteMany({ userId });
  await db.collection('mailbox_uidvalidity').deleteMany({ _id: userId } as Record<string, unknown>);
}
