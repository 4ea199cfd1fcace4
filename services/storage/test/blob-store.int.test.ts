/**
 * Bodies in the filesystem blob store (the default) behind the real storage app and FerretDB:
 * shared by the recipients of one delivery and deleted with their last reference; opened only
 * with a recipient's own key; read without touching the database for the body, whatever the
 * mailbox holds; bodies written to GridFS before still readable and released; and the sweeper
 * that deletes what a crash left unreferenced, and nothing else.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { mailstore } from '@postmesh/contracts';
import { createLogger } from '@postmesh/telemetry';
import { ObjectId, type CommandStartedEvent } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CachedBlobStore, FsBlobStore } from '../src/blob/index.js';
import {
  BlobSweeper,
  GridFsBlobStore,
  insertBlobRefs,
  newBlobRef,
  type BlobStores,
} from '../src/blob/index.js';
import { bodyRefId, writeBody } from '../src/mailstore/blob-store.js';
import { Mailstore, type MessageRecord } from '../src/mailstore/index.js';
import { sharedMessageCache } from '../src/mailstore/message-cache.js';
import { blobIdAt } from './blob-contract.js';
import {
  ALL_UIDS,
  byPath,
  call,
  content,
  createUser,
  failureOf,
  message,
  startMailstoreHarness,
  type MailstoreHarness,
} from './mailstore-helpers.js';

const { StoreMode, Flag } = mailstore;

let m: MailstoreHarness;
let fsStore: FsBlobStore;

beforeAll(async () => {
  m = await startMailstoreHarness();
  // The filesystem store itself, under the read cache every store is wrapped in.
  fsStore = (m.h.app.blobs.primary as CachedBlobStore).inner as FsBlobStore;
});

afterAll(async () => {
  await m?.stop();
});

const messagesCol = () => m.h.db.collection<MessageRecord>('messages');

async function inboxId(userId: string): Promise<string> {
  const res = await call(m.client.getMailboxStatus.bind(m.client), {
    userId,
    mailbox: byPath('INBOX'),
    claimRecent: false,
  });
  return res.status?.mailboxId ?? '';
}

async function expungeAll(userId: string): Promise<void> {
  const mailboxId = await inboxId(userId);
  await call(m.client.storeFlags.bind(m.client), {
    userId,
    mailboxId,
    uids: ALL_UIDS,
    mode: StoreMode.ADD,
    flags: [Flag.DELETED],
    keywords: [],
    unchangedSince: undefined,
  });
  await call(m.client.expunge.bind(m.client), { userId, mailboxId, uids: undefined });
  // Bodies go when the expunge records are compacted (ADR 0007), normally in the background.
  await m.store.compactChanges();
}

async function* bodyOf(bytes: Buffer): AsyncGenerator<Uint8Array> {
  yield await Promise.resolve(bytes);
}

const marker = () => `plaintext-marker-${new ObjectId().toHexString()}`;

describe('bodies in the filesystem blob store', () => {
  it('stores one encrypted file per delivery, shared by its recipients, deleted with the last reference', async () => {
    expect(fsStore.kind).toBe('fs');
    const [alice, bob] = [await createUser(m.h), await createUser(m.h)];
    const secret = marker();
    const raw = message(['Subject: shared', '', `${secret} `.repeat(5_000)]);
    await m.store.deliverToMailboxes(`spool-${secret}`, raw, [
      { recipient: 'a@example.test', userId: alice },
      { recipient: 'b@example.test', userId: bob },
    ]);
    const docs = await messagesCol()
      .find({ spoolId: `spool-${secret}` })
      .toArray();
    expect(docs).toHaveLength(2);
    const bodyId = (docs[0] as MessageRecord).blobId.toHexString();
    expect(docs.map((d) => d.blobId.toHexString())).toEqual([bodyId, bodyId]);
    expect(docs.map((d) => d.blob?.store)).toEqual(['fs', 'fs']);
    // The delivery's batch (of one) is one pack: the file holds this body alone.
    const blobId = bodyRefId((docs[0] as MessageRecord).blobId, docs[0]?.blob).toHexString();
    expect(docs.map((d) => d.blob?.pack?.toHexString())).toEqual([blobId, blobId]);
    // Nothing of it in GridFS; the file holds ciphertext only.
    expect(await m.h.db.collection('blobs.files').countDocuments({ _id: new ObjectId(blobId) })).toBe(0);
    const file = readFileSync(fsStore.pathOf(blobId));
    expect(file.length).toBe(docs[0]?.blob?.length);
    expect(file.includes(Buffer.from('plaintext-marker'))).toBe(false);
    expect(file.includes(Buffer.from('Subject: shared'))).toBe(false);
    expect((await m.h.db.collection('blob_refs').findOne({ _id: new ObjectId(blobId) }))?.store).toBe('fs');

    for (const user of [alice, bob]) {
      const read = await content(m.client, { userId: user, mailboxId: await inboxId(user), uid: 1 });
      expect(read.bytes.equals(raw)).toBe(true);
    }
    await expungeAll(alice);
    expect(existsSync(fsStore.pathOf(blobId))).toBe(true);
    expect((await content(m.client, { userId: bob, mailboxId: await inboxId(bob), uid: 1 })).bytes).toEqual(
      raw,
    );
    await expungeAll(bob);
    expect(existsSync(fsStore.pathOf(blobId))).toBe(false);
    expect(await m.h.db.collection('blob_refs').countDocuments({ _id: new ObjectId(blobId) })).toBe(0);
  });

  it("writes a batch's bodies as one pack file with one fsync, deleted with the last copy of any of them", async () => {
    const [alice, bob] = [await createUser(m.h), await createUser(m.h)];
    const secret = marker();
    const raws = [0, 1, 2].map((i) =>
      message([`Subject: packed ${i}`, '', `${secret}-${i} `.repeat(2_000 + 3_000 * i)]),
    );
    const syncs: string[] = [];
    const put = fsStore.put.bind(fsStore);
    fsStore.put = (blobId, data) => {
      syncs.push(blobId);
      return put(blobId, data);
    };
    try {
      const prepared = await Promise.all(raws.map((raw) => m.store.prepareDelivery(raw)));
      // Sealed in memory until the commit: no file yet.
      expect(prepared.map((p) => p.blob)).toEqual([undefined, undefined, undefined]);
      expect(syncs).toEqual([]);
      const results = await m.store.commitDeliveries(
        [
          [{ recipient: 'a@example.test', userId: alice }],
          [{ recipient: 'b@example.test', userId: bob }],
          [
            { recipient: 'a@example.test', userId: alice },
            { recipient: 'b@example.test', userId: bob },
          ],
        ].map((recipients, i) => ({
          spoolId: `spool-${secret}-${i}`,
          body: prepared[i] as (typeof prepared)[number],
          recipients,
          receivedAt: new Date(),
        })),
      );
      expect(results.map((r) => r.ok)).toEqual([true, true, true]);
    } finally {
      fsStore.put = put;
    }
    // One put (one file, one fsync) for the three bodies, counted once per copy.
    expect(syncs).toHaveLength(1);
    const packId = syncs[0] as string;
    const docs = await messagesCol()
      .find({ spoolId: { $regex: `^spool-${secret}-` } })
      .sort({ spoolId: 1, userId: 1 })
      .toArray();
    expect(docs).toHaveLength(4);
    expect(new Set(docs.map((d) => d.blob?.pack?.toHexString()))).toEqual(new Set([packId]));
    expect(new Set(docs.map((d) => d.blobId.toHexString())).size).toBe(3);
    const file = readFileSync(fsStore.pathOf(packId));
    expect(file.length).toBe(
      [0, 1, 2].reduce(
        (n, i) => n + (docs.find((d) => d.spoolId === `spool-${secret}-${i}`)?.blob?.length ?? 0),
        0,
      ),
    );
    expect(file.includes(Buffer.from(secret))).toBe(false);
    expect((await m.h.db.collection('blob_refs').findOne({ _id: new ObjectId(packId) }))?.refs).toBe(4);
    // Each body reads back exactly from its place in the pack (and nothing of its neighbours).
    for (const user of [alice, bob]) {
      const mailboxId = await inboxId(user);
      const mine = docs.filter((d) => d.userId === user).sort((a, b) => a.uid - b.uid);
      for (const doc of mine) {
        const i = Number(doc.spoolId?.split('-').pop());
        const read = await content(m.client, { userId: user, mailboxId, uid: doc.uid });
        expect(read.bytes.equals(raws[i] as Buffer)).toBe(true);
      }
    }
    await expungeAll(alice);
    expect(existsSync(fsStore.pathOf(packId))).toBe(true);
    expect((await m.h.db.collection('blob_refs').findOne({ _id: new ObjectId(packId) }))?.refs).toBe(2);
    const bobsBox = await inboxId(bob);
    for (const doc of docs.filter((d) => d.userId === bob)) {
      const i = Number(doc.spoolId?.split('-').pop());
      expect(
        (await content(m.client, { userId: bob, mailboxId: bobsBox, uid: doc.uid })).bytes.equals(
          raws[i] as Buffer,
        ),
      ).toBe(true);
    }
    await expungeAll(bob);
    expect(existsSync(fsStore.pathOf(packId))).toBe(false);
    expect(await m.h.db.collection('blob_refs').countDocuments({ _id: new ObjectId(packId) })).toBe(0);
  });

  it("never opens a body with another user's key", async () => {
    const [alice, bob] = [await createUser(m.h), await createUser(m.h)];
    const secret = marker();
    const raw = message(['Subject: for alice only', '', secret]);
    await m.store.deliverToMailboxes(`spool-${secret}`, raw, [
      { recipient: 'a@example.test', userId: alice },
    ]);
    await m.store.deliverToMailboxes(`spool-bob-${secret}`, message(['Subject: bob', '', 'hi']), [
      { recipient: 'b@example.test', userId: bob },
    ]);
    const aliceInbox = await inboxId(alice);
    const aliceDoc = (await messagesCol().findOne({ spoolId: `spool-${secret}` })) as MessageRecord;
    const bobDoc = (await messagesCol().findOne({ spoolId: `spool-bob-${secret}` })) as MessageRecord;

    // Over the API, another user's mailbox does not exist for bob.
    const asBob = await failureOf(content(m.client, { userId: bob, mailboxId: aliceInbox, uid: 1 }));
    expect(asBob.code).toBe(status.NOT_FOUND);

    // Alice's wrapped content key does not open under bob's data key, even relabelled as his.
    const context = `msg:${aliceDoc.blobId.toHexString()}`;
    await expect(m.h.app.keyring.unwrapForUser(bob, aliceDoc.contentKey, context)).rejects.toThrow();
    const relabelled = { ...aliceDoc.contentKey, by: bobDoc.contentKey.by };
    await expect(m.h.app.keyring.unwrapForUser(bob, relabelled, context)).rejects.toThrow();

    // A database edit that points bob's message at alice's body, with her wrapped key relabelled
    // for him, reads nothing: the read fails instead of answering her plaintext.
    await messagesCol().updateOne(
      { _id: bobDoc._id },
      {
        $set: {
          blobId: aliceDoc.blobId,
          ...(aliceDoc.blob === undefined ? {} : { blob: aliceDoc.blob }),
          contentKey: relabelled,
          meta: aliceDoc.meta,
        },
      },
    );
    // Read from the database again (as after a restart), not from the cache delivery filled with
    // bob's own message.
    sharedMessageCache.clear();
    const forged = await content(m.client, { userId: bob, mailboxId: await inboxId(bob), uid: 1 }).then(
      (r) => r.bytes,
      (e: unknown) => e,
    );
    expect(forged).not.toBeInstanceOf(Buffer);
    expect((forged as { code?: number }).code).not.toBe(status.OK);
    // Alice still reads her own.
    expect((await content(m.client, { userId: alice, mailboxId: aliceInbox, uid: 1 })).bytes).toEqual(raw);
  });

  it('reads a body without touching the database for it, the same at 100 and at 500 messages', async () => {
    const userId = await createUser(m.h);
    const mailbox = await inboxId(userId);
    // Every command the storage app's client sends (its Mailstore, its blob stores).
    const commands: CommandStartedEvent[] = [];
    const record = (event: CommandStartedEvent) => commands.push(event);
    m.h.mongo.on('commandStarted', record);
    const fill = async (count: number) => {
      for (let i = 0; i < count; i += 25) {
        await Promise.all(
          Array.from({ length: Math.min(25, count - i) }, (_, j) =>
            m.store.appendMessage(
              { userId, mailbox: { id: mailbox }, flags: [] },
              bodyOf(message([`Subject: m${i + j}`, '', `body ${i + j} `.repeat(800)])),
            ),
          ),
        );
      }
    };
    const readLast = async (uid: number) => {
      commands.length = 0;
      const result = await m.store.getMessageContent(userId, mailbox, uid, '', undefined, false);
      const parts: Buffer[] = [];
      for await (const chunk of result.chunks) parts.push(chunk);
      const touched = commands.map((c) => `${c.commandName}:${String(c.command[c.commandName])}`);
      return { bytes: Buffer.concat(parts), touched };
    };
    try {
      await fill(100);
      const at100 = await readLast(100);
      // Concurrent appends take UIDs in arrival order: the body must match its own subject.
      const whole = /^Subject: m(\d+)\r\n\r\n(body \1 ){800}$/;
      expect(at100.bytes.toString()).toMatch(whole);
      await fill(400);
      const at500 = await readLast(500);
      expect(at500.bytes.toString()).toMatch(whole);
      // No command reads a body or its file; only the message document (by `_id`) may be read.
      for (const touched of [...at100.touched, ...at500.touched]) {
        expect(touched).not.toMatch(/blobs|blob_refs/);
      }
      expect(at500.touched.length).toBe(at100.touched.length);
    } finally {
      m.h.mongo.off('commandStarted', record);
    }
  });

  it('reads and releases bodies stored in GridFS before the filesystem store was the default', async () => {
    const userId = await createUser(m.h);
    // A body as storage wrote it before: in GridFS, cipher parameters in the file document, no
    // store recorded on the message or on its reference document.
    const gridfsBlobs: BlobStores = {
      ...m.h.app.blobs,
      primary: new GridFsBlobStore(m.h.db),
      get: (kind) => m.h.app.blobs.get(kind),
      opened: () => m.h.app.blobs.opened(),
      close: () => Promise.resolve(),
      gridfs: m.h.app.blobs.gridfs,
    };
    const older = new Mailstore({
      db: m.h.db,
      runtime: m.h.app.mailstoreRuntime,
      blobs: gridfsBlobs,
      keyring: m.h.app.keyring,
      logger: m.h.logger,
    });
    const raw = message(['Subject: from before', '', 'x'.repeat(150_000)]);
    await older.deliverToMailboxes('spool-legacy-1', raw, [{ recipient: 'l@example.test', userId }]);
    const doc = (await messagesCol().findOne({ spoolId: 'spool-legacy-1' })) as MessageRecord;
    expect(doc.blob?.store).toBe('gridfs');
    await m.h.db
      .collection('blobs.files')
      .updateOne(
        { _id: doc.blobId },
        { $set: { 'metadata.format': 'pm-body-v1', 'metadata.baseNonce': doc.blob?.baseNonce } },
      );
    await messagesCol().updateOne({ _id: doc._id }, { $unset: { blob: '' } });
    await m.h.db.collection('blob_refs').updateOne({ _id: doc.blobId }, { $unset: { store: '' } });

    const mailboxId = await inboxId(userId);
    expect((await content(m.client, { userId, mailboxId, uid: 1 })).bytes).toEqual(raw);
    const part = await content(m.client, { userId, mailboxId, uid: 1, section: 'TEXT' });
    expect(part.bytes.toString()).toBe('x'.repeat(150_000));
    await expungeAll(userId);
    expect(await m.h.db.collection('blobs.files').countDocuments({ _id: doc.blobId })).toBe(0);
    expect(await m.h.db.collection('blobs.chunks').countDocuments({ files_id: doc.blobId })).toBe(0);
  });
});

describe('the blob sweeper', () => {
  it('deletes bodies no reference names once old enough, finishes cut releases, and keeps the rest', async () => {
    const logger = createLogger('blob-sweeper-test', 'silent');
    const hour = 3_600;
    // Left by crashes: put, then no reference document (its message was never written).
    const orphan = blobIdAt(2 * hour);
    await writeBody(m.h.app.blobs, ObjectId.createFromHexString(orphan), Buffer.alloc(32, 1), [
      Buffer.from('never referenced'),
    ]);
    // A release that stopped after the count reached zero.
    const released = blobIdAt(2 * hour - 10);
    await fsStore.put(released, Buffer.from('released'));
    await insertBlobRefs(m.h.db, [newBlobRef(ObjectId.createFromHexString(released), 0, 'fs')]);
    // Referenced, and too young to judge.
    const referenced = blobIdAt(2 * hour - 20);
    await fsStore.put(referenced, Buffer.from('held'));
    await insertBlobRefs(m.h.db, [newBlobRef(ObjectId.createFromHexString(referenced), 2, 'fs')]);
    const young = blobIdAt(60);
    await fsStore.put(young, Buffer.from('being delivered'));
    // A put cut short by a crash.
    const cut = blobIdAt(2 * hour - 30);
    await fsStore.put(cut, Buffer.from('x'));
    await fsStore.delete(cut);
    const temp = join(fsStore.directoryOf(cut), `.${cut}.00ff.tmp`);
    writeFileSync(temp, 'partial');
    // Bodies of messages delivered the normal way, read after the sweep.
    const userId = await createUser(m.h);
    const raw = message(['Subject: kept', '', 'kept body']);
    await m.store.deliverToMailboxes('spool-sweep-kept', raw, [{ recipient: 'k@example.test', userId }]);

    const sweeper = new BlobSweeper({
      db: m.h.db,
      stores: m.h.app.blobs,
      logger,
      minAgeMs: 30 * 60_000,
      batch: 2,
    });
    const [report] = await sweeper.sweep();
    expect(report).toMatchObject({ store: 'fs', orphans: 1, released: 1, abandoned: 1 });
    expect(await fsStore.stat(orphan)).toBeNull();
    expect(await fsStore.stat(released)).toBeNull();
    expect(await m.h.db.collection('blob_refs').countDocuments({ _id: new ObjectId(released) })).toBe(0);
    expect(existsSync(temp)).toBe(false);
    expect(await fsStore.stat(referenced)).not.toBeNull();
    expect(await fsStore.stat(young)).not.toBeNull();

    // With no age threshold at all, every body a message refers to still stays.
    await new Promise((r) => setTimeout(r, 1_100));
    const eager = new BlobSweeper({ db: m.h.db, stores: m.h.app.blobs, logger, minAgeMs: 0 });
    const [all] = await eager.sweep();
    expect(all?.listed).toBeGreaterThan(3);
    expect(await fsStore.stat(referenced)).not.toBeNull();
    const mailboxId = await inboxId(userId);
    expect((await content(m.client, { userId, mailboxId, uid: 1 })).bytes).toEqual(raw);
    // The young unreferenced one is an orphan now, by that threshold.
    expect(await fsStore.stat(young)).toBeNull();
  });
});
