/**
 * A job delivered again by the partition's new owner while that owner's clean-up of the former
 * owner's unconfirmed writes runs (ADR 0007, Commit-then-confirm): the former owner wrote the
 * job's copy and idempotency record in a batch it never confirmed; the new owner finds the record,
 * sees it does not count, stores its own copy and points the record at it. The clean-up, started
 * when the partition was gained and not waited for by delivery, removes the unconfirmed records
 * after it read which ones to remove, so it can delete the record between the new owner's read of
 * it and its update. The record must exist afterwards: without it, the next time the job comes
 * back (its ack lost, or its trace events refused after the commit) it is stored a second time.
 *
 * The interleaving is driven, not timed: the clean-up is started at the moment the new owner
 * judges the old record (`writeCounts`), which is where a clean-up in progress stands then.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Filter } from 'mongodb';
import { Mailstore, type MessageRecord, type WriteTag } from '../src/mailstore/index.js';
import type { DeliveryRecord } from '../src/mailstore/types.js';
import { deliveryKey, messageKey } from '../src/mailstore/mailstore.js';
import { unconfirmedFilter } from '../src/ownership/index.js';
import { createUser } from './mailstore-helpers.js';
import { startStorageHarness, type StorageHarness } from './harness.js';

const PARTITION = 3;

describe('redelivery to a new owner while its clean-up runs', () => {
  let h: StorageHarness;

  beforeAll(async () => {
    h = await startStorageHarness();
  });

  afterAll(async () => {
    await h?.stop();
  });

  it('keeps the idempotency record of the copy it stores, so a later redelivery is a duplicate', async () => {
    const userId = await createUser(h);
    const recipient = `u${userId}@example.test`;
    /** Epochs whose writes do not count (the new owner's view: epoch 1 ended without a confirm). */
    const unconfirmed = new Set<number>();
    /** Called when the new owner judges a write (where a clean-up in progress stands). */
    let onJudge: ((tag: WriteTag) => void) | undefined;
    const store = new Mailstore({
      db: h.db,
      runtime: h.app.mailstoreRuntime,
      blobs: h.app.blobs,
      keyring: h.app.keyring,
      logger: h.logger,
      writeCounts: (tag) => {
        onJudge?.(tag);
        return !unconfirmed.has(tag.e);
      },
    });
    const spoolId = `s${randomBytes(6).toString('hex')}`;
    const deliver = async (tag: WriteTag) => {
      const [result] = await store.commitDeliveries([
        {
          spoolId,
          body: await store.prepareDelivery(
            Buffer.from(`From: a@remote.test\r\nSubject: ${spoolId}\r\n\r\nbody\r\n`),
          ),
          recipients: [{ recipient, userId, mailbox: 'INBOX' }],
          receivedAt: new Date(),
          tag,
        },
      ]);
      if (result?.ok !== true)
        throw new Error(`not committed: ${String(result?.ok === false && result.error)}`);
      return result.outcomes[0];
    };
    const inbox = await h.db.collection('mailboxes').findOne({ userId, path: 'INBOX' });
    const mailboxId = String(inbox?._id);
    const copies = () =>
      h.db
        .collection<MessageRecord>('messages')
        .find({ mailboxId }, { projection: { uid: 1, own: 1 } })
        .toArray();

    // The former owner, epoch 1: its batch is written, and its confirm never happens.
    expect(await deliver({ p: PARTITION, e: 1, s: 1 })).toMatchObject({ status: 'delivered', uid: 1 });

    // The new owner, epoch 2, whose record closed epoch 1 at sequence 0: the job comes back to it
    // while its clean-up of epoch 1's unconfirmed writes is under way.
    unconfirmed.add(1);
    const filter = unconfirmedFilter(PARTITION, [{ epoch: 1, seq: 0 }]) as Filter<MessageRecord> &
      Filter<DeliveryRecord>;
    let cleanUp: Promise<number> | undefined;
    onJudge = (tag) => {
      if (tag.e === 1 && cleanUp === undefined) cleanUp = store.discardWrites(filter, filter);
    };
    const again = await deliver({ p: PARTITION, e: 2, s: 1 });
    expect(again?.status).toBe('delivered');
    const uid = again?.status === 'delivered' ? again.uid : 0;
    expect(cleanUp).toBeDefined();
    await cleanUp;
    onJudge = undefined;

    // One copy, the new owner's, and the record points at it.
    expect((await copies()).map((c) => [c.uid, c.own?.e])).toEqual([[uid, 2]]);
    const record = await h.db
      .collection<DeliveryRecord>('deliveries')
      .findOne({ _id: deliveryKey(spoolId, recipient) });
    expect(record).toMatchObject({ uid, messageId: messageKey(mailboxId, uid), own: { e: 2, s: 1 } });

    // The job comes back once more (its trace events were refused): nothing is stored twice.
    expect(await deliver({ p: PARTITION, e: 2, s: 2 })).toMatchObject({ status: 'duplicate', uid });
    expect((await copies()).map((c) => c.uid)).toEqual([uid]);
  }, 60_000);
});
