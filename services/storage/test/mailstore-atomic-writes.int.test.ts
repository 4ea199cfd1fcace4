/**
 * APPEND (and STORE) as one transaction on the in-process SQLite database (ADR 0014): the body's
 * reference, search entry and message are written together, guarded by the partition's commit pointer in the
 * same file (ADR 0012), and the call answers OK without a confirm after. The fence is the real
 * `ImapWriteFence` and `DatabaseCommitPointers`; only the lease (NATS KV in a deployment) is a
 * stand-in that keeps believing it owns the partition, as a paused former owner does.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createLogger } from '@postmesh/telemetry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Collections } from '../src/db/schema.js';
import { ErrorReason, StoreModes } from '../src/mailstore/contract.js';
import { Mailstore } from '../src/mailstore/index.js';
import { MailstoreCollections, type MessageRecord, type SearchIndexDoc } from '../src/mailstore/types.js';
import { DatabaseCommitPointers, ImapWriteFence } from '../src/ownership/index.js';
import {
  createUser,
  foldedDocuments,
  message,
  startMailstoreHarness,
  uids,
  type MailstoreHarness,
} from './mailstore-helpers.js';

const PARTITION = 0;

/** Files under `root` (the filesystem blob store), recursively. */
function files(root: string): number {
  let n = 0;
  for (const entry of readdirSync(root, { withFileTypes: true, recursive: true })) if (entry.isFile()) n++;
  return n;
}

describe('APPEND in one guarded transaction (SQLite, pointers in the file)', () => {
  let m: MailstoreHarness;
  let userId: string;
  let pointers: DatabaseCommitPointers;
  /** The epoch the stand-in lease believes it holds. */
  let epoch = 0;
  let forgotten = 0;
  let store: Mailstore;
  let inbox = '';
  let firstUid = 0;

  beforeAll(async () => {
    m = await startMailstoreHarness({ sqlite: true });
    userId = await createUser(m.h);
    pointers = new DatabaseCommitPointers(m.h.db);
    const opened = await pointers.open(PARTITION, 1);
    if (opened === 'fenced') throw new Error('could not open the first epoch');
    epoch = opened.epoch;
    const fence = new ImapWriteFence(createLogger('atomic-append-test', 'silent'));
    fence.use({
      partitionOf: () => PARTITION,
      writeGuard: (p) => pointers.guard(p, epoch),
      beginBatch: () => {
        throw new Error('an atomic write takes no tag');
      },
      confirm: () => {
        throw new Error('an atomic write is not confirmed after');
      },
      abandon: () => undefined,
      forgetPartition: () => void forgotten++,
    });
    store = new Mailstore({
      db: m.h.db,
      runtime: m.h.app.mailstoreRuntime,
      blobs: m.h.app.blobs,
      keyring: m.h.app.keyring,
      logger: m.h.logger,
      fence,
    });
  }, 180_000);

  afterAll(async () => {
    await m?.stop();
  });

  const count = (collection: string, filter = {}) =>
    m.h.db.collection(collection).countDocuments({ userId, ...filter });
  const append = (subject: string) =>
    store.appendMessage(
      { userId, mailbox: { path: 'INBOX' }, flags: [] },
      Readable.from([message([`From: a@example.test`, `Subject: ${subject}`, '', `body of ${subject}`, ''])]),
    );

  it('writes the body reference, search entry and message together, untagged, while the epoch holds', async () => {
    const first = await append('first');
    const doc = await m.h.db
      .collection<MessageRecord>(Collections.messages)
      .findOne({ userId, uid: first.uid });
    expect(doc).not.toBeNull();
    expect(doc?.own).toBeUndefined();
    const ref = await m.h.db.collection(Collections.blobRefs).findOne({ _id: doc?.blobId });
    expect(ref).toMatchObject({ refs: 1 });
    const entry = await m.h.db
      .collection<SearchIndexDoc>(MailstoreCollections.searchIndex)
      .findOne({ _id: doc?.searchId });
    expect(entry).toMatchObject({ userId, mailboxId: first.mailboxId });
    // A STORE is one guarded write of its records too.
    inbox = first.mailboxId;
    firstUid = first.uid;
    const stored = await store.storeFlags(
      userId,
      inbox,
      uids([firstUid, firstUid]),
      StoreModes.ADD,
      ['kept'],
      undefined,
    );
    expect(stored.changed.map((c) => c.keywords)).toEqual([['kept']]);
    const folded = await foldedDocuments(m.h.db, inbox);
    expect(folded.find((f) => f.uid === firstUid)?.flags).toContain('kept');
  });

  it('writes nothing, removes the body and refuses NOT_OWNER once a newer owner opened its epoch', async () => {
    const before = {
      messages: await count(Collections.messages),
      entries: await count(MailstoreCollections.searchIndex),
      refs: await m.h.db.collection(Collections.blobRefs).countDocuments({}),
      bodies: files(m.h.blobDir),
    };
    // A newer owner takes the partition through the file; this replica still believes it owns it.
    const newer = new DatabaseCommitPointers(m.h.db);
    expect(await newer.open(PARTITION, epoch + 1)).not.toBe('fenced');
    await expect(append('late')).rejects.toMatchObject({ reason: ErrorReason.NOT_OWNER });
    expect(forgotten).toBe(1);
    await expect(
      store.storeFlags(userId, inbox, uids([firstUid, firstUid]), StoreModes.ADD, ['late'], undefined),
    ).rejects.toMatchObject({ reason: ErrorReason.NOT_OWNER });
    expect(forgotten).toBe(2);
    const folded = await foldedDocuments(m.h.db, inbox);
    expect(folded.find((f) => f.uid === firstUid)?.flags).not.toContain('late');
    expect({
      messages: await count(Collections.messages),
      entries: await count(MailstoreCollections.searchIndex),
      refs: await m.h.db.collection(Collections.blobRefs).countDocuments({}),
      bodies: files(join(m.h.blobDir)),
    }).toEqual(before);
    epoch += 1;
  });

  it('counts every APPEND that got OK and nothing of those refused, racing a newer owner', async () => {
    const before = await count(Collections.messages);
    // Calls started one after another; the next owner opens once a few got their answer, while
    // the others are at every stage of theirs.
    let answered = 0;
    let opened: () => void = () => undefined;
    const opening = new Promise<void>((resolve) => (opened = resolve));
    const calls: Promise<{ uid: number }>[] = [];
    for (let i = 0; i < 24; i++) {
      calls.push(append(`race ${i}`).finally(() => ++answered === 6 && opened()));
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    await opening;
    expect(await new DatabaseCommitPointers(m.h.db).open(PARTITION, epoch + 1)).not.toBe('fenced');
    // And calls started after the open.
    for (let i = 0; i < 4; i++) calls.push(append(`after ${i}`));
    const outcomes = await Promise.allSettled(calls);
    const ok = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value.uid] : []));
    for (const o of outcomes) {
      if (o.status === 'rejected') expect(o.reason).toMatchObject({ reason: ErrorReason.NOT_OWNER });
    }
    // What the newer owner reads after its open is exactly the writes that got OK.
    const stored = await m.h.db
      .collection(Collections.messages)
      .find({ userId, uid: { $gt: 0 } })
      .toArray();
    expect(stored.length - before).toBe(ok.length);
    const uids = new Set(stored.map((d) => d.uid as number));
    for (const uid of ok) expect(uids.has(uid)).toBe(true);
    const entries = await count(MailstoreCollections.searchIndex);
    expect(entries).toBe(stored.length);
    console.info(`racing an open: ${ok.length} of ${calls.length} APPENDs got OK before it`);
    // Those answered before the open counted; those started after it did not.
    expect(ok.length).toBeGreaterThanOrEqual(6);
    expect(outcomes.slice(-4).map((o) => o.status)).toEqual(Array(4).fill('rejected'));
  });
});
