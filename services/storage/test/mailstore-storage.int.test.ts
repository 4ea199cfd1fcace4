/**
 * What the mailstore promises about storage itself (DESIGN §2, §5):
 * UIDs under concurrent appends, no plaintext at rest, tampering detected, one body per delivery
 * shared by reference until its last mailbox copy is expunged, idempotent redelivery.
 */
import { randomBytes } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { mailstore } from '@postmesh/contracts';
import { BSON, Binary, ObjectId } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bodyRefId } from '../src/mailstore/blob-store.js';
import type { MessageRecord } from '../src/mailstore/index.js';
import { sharedMailboxIndex } from '../src/mailstore/mailbox-index.js';
import { mailboxRecords } from '../src/mailstore/mailboxes.js';
import { sharedMessageCache } from '../src/mailstore/message-cache.js';
import {
  ALL_UIDS,
  append,
  byPath,
  call,
  content,
  createUser,
  failureOf,
  fetchMessages,
  message,
  startMailstoreHarness,
  uids,
  type MailstoreHarness,
} from './mailstore-helpers.js';

const { Flag, StoreMode, FetchField } = mailstore;

let m: MailstoreHarness;

beforeAll(async () => {
  // The GridFS blob store (a real MongoDB's, and where older bodies are): these tests look at its
  // chunks. The filesystem and S3 stores have suites of their own (blob-*.test.ts).
  m = await startMailstoreHarness({ blobStore: 'gridfs' });
});

afterAll(async () => {
  await m?.stop();
});

const messagesCol = () => m.h.db.collection<MessageRecord>('messages');
const chunksCol = () => m.h.db.collection<{ files_id: ObjectId; n: number; data: Binary }>('blobs.chunks');

async function inboxOf(userId: string): Promise<mailstore.MailboxStatus> {
  const res = await call(m.client.getMailboxStatus.bind(m.client), {
    userId,
    mailbox: byPath('INBOX'),
    claimRecent: false,
  });
  if (res.status === undefined) throw new Error('no status');
  return res.status;
}

async function flipByte(blobId: ObjectId, n: number, at: number): Promise<void> {
  const chunk = await chunksCol().findOne({ files_id: blobId, n });
  if (chunk === null) throw new Error(`no chunk ${n}`);
  const data = Buffer.from(chunk.data.buffer);
  data[at] = (data[at] ?? 0) ^ 0x40;
  await chunksCol().updateOne({ files_id: blobId, n }, { $set: { data: new Binary(data) } });
}

describe('UID allocation under concurrency (RFC 9051 §2.3.1.1)', () => {
  it('20 concurrent appenders get distinct, increasing UIDs and lose no message', async () => {
    const userId = await createUser(m.h);
    const perAppender = 3;
    const results = await Promise.all(
      Array.from({ length: 20 }, async (_, appender) => {
        const mine: mailstore.AppendMessageResponse[] = [];
        for (let i = 0; i < perAppender; i++) {
          const raw = message([`Subject: appender ${appender} message ${i}`, '', `body ${appender}/${i}`]);
          mine.push(await append(m.client, userId, byPath('INBOX'), raw));
        }
        return mine;
      }),
    );
    for (const mine of results) {
      // Each appender's own messages got ascending UIDs and mod-sequences.
      for (let i = 1; i < mine.length; i++) {
        expect(mine[i]?.uid).toBeGreaterThan(mine[i - 1]?.uid ?? 0);
        expect(mine[i]?.modseq).toBeGreaterThan(mine[i - 1]?.modseq ?? 0);
      }
    }
    const all = results.flat();
    const total = 20 * perAppender;
    expect(new Set(all.map((r) => r.uid)).size).toBe(total);
    expect(new Set(all.map((r) => r.modseq)).size).toBe(total);
    // No gaps caused by lost writes: exactly 1..60 were used.
    expect(all.map((r) => r.uid).sort((a, b) => a - b)).toEqual(
      Array.from({ length: total }, (_, i) => i + 1),
    );
    const inbox = await inboxOf(userId);
    expect(inbox).toMatchObject({ messages: total, uidNext: total + 1, unseen: total });
    const fetched = await fetchMessages(m.client, { userId, mailboxId: inbox.mailboxId });
    expect(fetched.map((f) => f.uid)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
  });
});

describe('encryption at rest (DESIGN §5)', () => {
  const attachment = randomBytes(3000);
  const SUBJECT = 'Confidential merger with Zanzibar Holdings';
  const BODY = 'The launch code is pineapple-7731 and nobody may know.';
  const raw = message([
    'From: Secret Sender <secret.sender@example.test>',
    'To: Quiet Receiver <quiet.receiver@example.test>',
    `Subject: ${SUBJECT}`,
    'Content-Type: multipart/mixed; boundary="b"',
    '',
    '--b',
    'Content-Type: text/plain',
    '',
    BODY,
    '--b',
    'Content-Type: application/octet-stream',
    'Content-Transfer-Encoding: base64',
    '',
    attachment.toString('base64').replace(/.{76}/g, '$&\r\n'),
    '--b--',
    '',
  ]);

  it('keeps no plaintext in GridFS chunks, message documents or the search index', async () => {
    const userId = await createUser(m.h);
    const appended = await append(m.client, userId, byPath('INBOX'), raw);
    const doc = await messagesCol().findOne({ mailboxId: appended.mailboxId, uid: appended.uid });
    expect(doc).not.toBeNull();
    // The message's `_id` names its mailbox and UID; its search entry is found by `searchId`.
    expect(doc?._id).toBe(`${appended.mailboxId}:${String(appended.uid).padStart(10, '0')}`);
    const entry = await m.h.db
      .collection<{ _id: string | ObjectId; terms: string[]; searchText: Binary | null }>('message_terms')
      .findOne({ _id: doc?.searchId });
    expect(entry?.searchText).not.toBeNull();
    const stored = Buffer.concat([
      Buffer.from(BSON.serialize(doc ?? {})),
      Buffer.from(BSON.serialize(entry ?? {})),
      ...(await chunksCol().find({ files_id: doc?.blobId }).sort({ n: 1 }).toArray()).map((c) =>
        Buffer.from(c.data.buffer),
      ),
      Buffer.from(
        BSON.serialize((await m.h.db.collection('blobs.files').findOne({ _id: doc?.blobId })) ?? {}),
      ),
    ]);
    const needles = [
      SUBJECT,
      'Zanzibar',
      'zanzibar',
      'merger',
      BODY,
      'pineapple',
      'secret.sender',
      'quiet.receiver',
      attachment.toString('base64').slice(0, 40),
    ].map((s) => Buffer.from(s, 'utf8'));
    needles.push(attachment.subarray(100, 132), attachment.subarray(2000, 2032));
    for (const needle of needles) expect(stored.includes(needle)).toBe(false);
    // The terms are keyed hashes, not trigrams in clear.
    expect(entry?.terms.length).toBeGreaterThan(10);
    expect(entry?.terms.some((t) => ['zan', 'mer', 'pin', 'app'].includes(t))).toBe(false);
    // …and the message still reads back exactly, and is found by search.
    expect(
      (await content(m.client, { userId, mailboxId: appended.mailboxId, uid: appended.uid })).bytes.equals(
        raw,
      ),
    ).toBe(true);
    const found = await call(m.client.search.bind(m.client), {
      userId,
      mailboxId: appended.mailboxId,
      query: { key: { $case: 'body', value: 'pineapple-77' } },
    });
    expect(found.uids).toEqual([appended.uid]);
  });

  it('fails loudly on a flipped ciphertext byte instead of returning altered bytes', async () => {
    const userId = await createUser(m.h);
    const appended = await append(m.client, userId, byPath('INBOX'), raw);
    const doc = await messagesCol().findOne({ mailboxId: appended.mailboxId, uid: appended.uid });
    await flipByte(doc?.blobId as ObjectId, 0, 200);
    // The body is read from the store again (as after a restart), not from the blob read cache
    // that APPEND filled with what it wrote.
    m.h.app.blobs.readCache.clear();
    const failure = await failureOf(
      content(m.client, { userId, mailboxId: appended.mailboxId, uid: appended.uid }),
    );
    expect(failure.code).toBe(status.DATA_LOSS);
    // Metadata is sealed separately and still readable; a changed seal fails the same way.
    const [meta] = await fetchMessages(m.client, {
      userId,
      mailboxId: appended.mailboxId,
      fields: [FetchField.ENVELOPE],
    });
    expect(JSON.parse(meta?.envelopeJson ?? '{}')).toMatchObject({ subject: SUBJECT });
    const sealed = Buffer.from((doc?.meta as Binary).buffer);
    sealed[20] = (sealed[20] ?? 0) ^ 1;
    await messagesCol().updateOne({ _id: doc?._id }, { $set: { meta: new Binary(sealed) } });
    // The metadata is read from the database again (as after a restart), not from the cache
    // that APPEND filled with what it wrote nor from the ENVELOPE the mailbox index keeps.
    sharedMessageCache.clear();
    sharedMailboxIndex.dropUser(userId);
    const metaFailure = await failureOf(
      fetchMessages(m.client, { userId, mailboxId: appended.mailboxId, fields: [FetchField.ENVELOPE] }),
    );
    expect(metaFailure.code).toBe(status.DATA_LOSS);
  });

  it('decrypts only the records a range needs; a damaged later record fails a whole-message read', async () => {
    const userId = await createUser(m.h);
    const big = Buffer.concat([message(['Subject: big', '', '']), Buffer.alloc(3 * 1024 * 1024, 0x78)]);
    const appended = await append(m.client, userId, byPath('INBOX'), big, { chunkSize: 256 * 1024 });
    const doc = await messagesCol().findOne({ mailboxId: appended.mailboxId, uid: appended.uid });
    await flipByte(doc?.blobId as ObjectId, 40, 10);
    const head = await content(m.client, {
      userId,
      mailboxId: appended.mailboxId,
      uid: appended.uid,
      partial: { offset: 0, length: 1000 },
    });
    expect(head.bytes.equals(big.subarray(0, 1000))).toBe(true);
    // Over 1 MiB the bytes stream as they are authenticated; the damaged record ends the stream
    // with an error, never with its altered content.
    const failure = await failureOf(
      content(m.client, { userId, mailboxId: appended.mailboxId, uid: appended.uid }),
    );
    expect(failure.code).toBe(status.DATA_LOSS);
  });
});

describe('delivery: one body for all recipients, reference-counted', () => {
  it('stores the body once, keeps it until the last copy is expunged, and ignores a redelivery', async () => {
    const alice = await createUser(m.h);
    const bob = await createUser(m.h);
    const raw = message(['From: list@example.test', 'Subject: For both of you', '', 'Shared body.']);
    const recipients = [
      { recipient: 'alice@example.test', userId: alice },
      { recipient: 'bob@example.test', userId: bob },
    ];
    const outcomes = await m.store.deliverToMailboxes('spool-shared-1', raw, recipients);
    expect(outcomes.map((o) => [o.status, o.recipient])).toEqual([
      ['delivered', 'alice@example.test'],
      ['delivered', 'bob@example.test'],
    ]);
    expect(m.changed).toEqual(expect.arrayContaining([alice, bob]));
    const docs = await messagesCol().find({ spoolId: 'spool-shared-1' }).toArray();
    expect(docs.length).toBe(2);
    expect(docs[1]?.blobId.equals(docs[0]?.blobId as ObjectId)).toBe(true);
    // The stored blob: the pack of the delivery's batch (here of this body alone).
    const blobId = bodyRefId(docs[0]?.blobId as ObjectId, docs[0]?.blob);
    expect(docs[1]?.blob?.pack?.equals(blobId)).toBe(true);
    expect(await m.h.db.collection('blobs.files').countDocuments({ _id: blobId })).toBe(1);
    // Each recipient has the content key wrapped for them alone.
    expect(docs[0]?.contentKey.by).not.toBe(docs[1]?.contentKey.by);

    const again = await m.store.deliverToMailboxes('spool-shared-1', raw, recipients);
    expect(again.map((o) => o.status)).toEqual(['duplicate', 'duplicate']);
    expect(await messagesCol().countDocuments({ spoolId: 'spool-shared-1' })).toBe(2);
    expect(await m.h.db.collection('blobs.files').countDocuments({})).toBeGreaterThan(0);

    const expungeAll = async (userId: string) => {
      const inbox = await inboxOf(userId);
      await call(m.client.storeFlags.bind(m.client), {
        userId,
        mailboxId: inbox.mailboxId,
        uids: ALL_UIDS,
        mode: StoreMode.ADD,
        flags: [Flag.DELETED],
        keywords: [],
        unchangedSince: undefined,
      });
      return call(m.client.expunge.bind(m.client), { userId, mailboxId: inbox.mailboxId, uids: undefined });
    };
    expect((await expungeAll(alice)).expungedUids).toEqual([1]);
    // Bodies are released when the expunge records are compacted (ADR 0007), normally in the background.
    await m.store.compactChanges();
    expect(await m.h.db.collection('blobs.files').countDocuments({ _id: blobId })).toBe(1);
    const bobInbox = await inboxOf(bob);
    const stillThere = await content(m.client, { userId: bob, mailboxId: bobInbox.mailboxId, uid: 1 });
    expect(stillThere.bytes.equals(raw)).toBe(true);

    expect((await expungeAll(bob)).expungedUids).toEqual([1]);
    await m.store.compactChanges();
    expect(await m.h.db.collection('blobs.files').countDocuments({ _id: blobId })).toBe(0);
    expect(await chunksCol().countDocuments({ files_id: blobId })).toBe(0);
    expect(await m.h.db.collection('blob_refs').countDocuments({ _id: blobId })).toBe(0);
  });

  it('keeps the blob while a copy in another mailbox refers to it', async () => {
    const userId = await createUser(m.h);
    const appended = await append(m.client, userId, byPath('INBOX'), message(['Subject: keep me', '', 'x']));
    await call(m.client.copyMessages.bind(m.client), {
      userId,
      mailboxId: appended.mailboxId,
      uids: uids([1, 1]),
      destination: byPath('Archive'),
    });
    await call(m.client.storeFlags.bind(m.client), {
      userId,
      mailboxId: appended.mailboxId,
      uids: ALL_UIDS,
      mode: StoreMode.ADD,
      flags: [Flag.DELETED],
      keywords: [],
      unchangedSince: undefined,
    });
    await call(m.client.expunge.bind(m.client), { userId, mailboxId: appended.mailboxId, uids: undefined });
    await m.store.compactChanges();
    const archive = await call(m.client.getMailboxStatus.bind(m.client), {
      userId,
      mailbox: byPath('Archive'),
      claimRecent: false,
    });
    const copy = await content(m.client, { userId, mailboxId: archive.status?.mailboxId ?? '', uid: 1 });
    expect(copy.bytes.toString()).toContain('Subject: keep me');
  });

  it('finishes an interrupted delivery on redelivery without storing twice', async () => {
    const userId = await createUser(m.h);
    const raw = message(['Subject: interrupted', '', 'x']);
    const rcpt = [{ recipient: 'carol@example.test', userId }];
    const deliveries = m.h.db.collection<{ spoolId: string; uid: number }>('deliveries');
    const [first] = await m.store.deliverToMailboxes('spool-crash-1', raw, rcpt);
    // Crash after the message was written but before its UID was recorded.
    await deliveries.updateOne({ spoolId: 'spool-crash-1' }, { $set: { uid: 0 } });
    const [second] = await m.store.deliverToMailboxes('spool-crash-1', raw, rcpt);
    expect(second).toMatchObject({
      status: 'duplicate',
      uid: first?.status === 'delivered' ? first.uid : -1,
    });
    expect(await messagesCol().countDocuments({ spoolId: 'spool-crash-1' })).toBe(1);
    // Crash after the claim but before the message was written: delivered again, once.
    await deliveries.updateOne({ spoolId: 'spool-crash-1' }, { $set: { uid: 0 } });
    await messagesCol().deleteMany({ spoolId: 'spool-crash-1' });
    const [third] = await m.store.deliverToMailboxes('spool-crash-1', raw, [...rcpt, ...rcpt]);
    expect(third?.status).toBe('delivered');
    expect(await messagesCol().countDocuments({ spoolId: 'spool-crash-1' })).toBe(1);
    expect((await deliveries.findOne({ spoolId: 'spool-crash-1' }))?.uid).toBe(
      third?.status === 'delivered' ? third.uid : -1,
    );
  });

  it('purging one recipient releases only their references to a shared body', async () => {
    const alice = await createUser(m.h);
    const bob = await createUser(m.h);
    const raw = message(['Subject: purge me', '', 'shared']);
    await m.store.deliverToMailboxes('spool-purge-1', raw, [
      { recipient: 'alice@example.test', userId: alice },
      { recipient: 'bob@example.test', userId: bob },
    ]);
    const [doc] = await messagesCol().find({ spoolId: 'spool-purge-1' }).toArray();
    const blobId = bodyRefId(doc?.blobId as ObjectId, doc?.blob);
    await m.store.purgeUserMail(alice);
    expect(await m.h.db.collection('mailboxes').countDocuments({ userId: alice })).toBe(0);
    expect(await messagesCol().countDocuments({ userId: alice })).toBe(0);
    expect(await m.h.db.collection('blobs.files').countDocuments({ _id: blobId })).toBe(1);
    const bobInbox = await inboxOf(bob);
    expect(
      (await content(m.client, { userId: bob, mailboxId: bobInbox.mailboxId, uid: 1 })).bytes.equals(raw),
    ).toBe(true);
    await m.store.purgeUserMail(bob);
    expect(await m.h.db.collection('blobs.files').countDocuments({ _id: blobId })).toBe(0);
    expect(await chunksCol().countDocuments({ files_id: blobId })).toBe(0);
  });

  it('reports over-quota and missing-mailbox recipients without storing for them', async () => {
    const full = await createUser(m.h, 10);
    const ok = await createUser(m.h);
    const outcomes = await m.store.deliverToMailboxes('spool-quota-1', message(['Subject: q', '', 'body']), [
      { recipient: 'full@example.test', userId: full },
      { recipient: 'ok@example.test', userId: ok, mailbox: 'Junk' },
      { recipient: 'nobox@example.test', userId: ok, mailbox: 'No/Such' },
    ]);
    expect(outcomes.map((o) => [o.recipient, o.status]).sort()).toEqual([
      ['full@example.test', 'over-quota'],
      ['nobox@example.test', 'no-mailbox'],
      ['ok@example.test', 'delivered'],
    ]);
    expect(await messagesCol().countDocuments({ spoolId: 'spool-quota-1' })).toBe(1);
    const [stored] = await messagesCol().find({ spoolId: 'spool-quota-1' }).toArray();
    expect(
      await m.h.db
        .collection<{ refs: number }>('blob_refs')
        .findOne({ _id: bodyRefId(stored?.blobId as ObjectId, stored?.blob) }),
    ).toMatchObject({
      refs: 1,
    });
  });
});

describe('data written before ids were deterministic (docs/benchmarks.md, Storage)', () => {
  it('reads and deletes a body whose records have GridFS ObjectId ids', async () => {
    const userId = await createUser(m.h);
    const big = Buffer.concat([message(['Subject: old layout', '', '']), Buffer.alloc(200 * 1024, 0x79)]);
    const appended = await append(m.client, userId, byPath('INBOX'), big);
    const doc = await messagesCol().findOne({ mailboxId: appended.mailboxId, uid: appended.uid });
    const blobId = doc?.blobId as ObjectId;
    // Rewrite the body as GridFSBucket stored it: ObjectId chunk ids, no `keyedChunks` flag.
    const records = await chunksCol().find({ files_id: blobId }).sort({ n: 1 }).toArray();
    expect(records.map((r) => r._id)).toEqual(
      records.map((_, n) => `${blobId.toHexString()}:${String(n).padStart(8, '0')}`),
    );
    await chunksCol().deleteMany({ files_id: blobId });
    await chunksCol().insertMany(records.map(({ _id: _old, ...r }) => ({ ...r, _id: new ObjectId() })));
    await m.h.db
      .collection('blobs.files')
      .updateOne({ _id: blobId }, { $unset: { 'metadata.keyedChunks': '' } });

    const read = await content(m.client, { userId, mailboxId: appended.mailboxId, uid: appended.uid });
    expect(read.bytes.equals(big)).toBe(true);
    await call(m.client.storeFlags.bind(m.client), {
      userId,
      mailboxId: appended.mailboxId,
      uids: ALL_UIDS,
      mode: StoreMode.ADD,
      flags: [Flag.DELETED],
      keywords: [],
      unchangedSince: undefined,
    });
    await call(m.client.expunge.bind(m.client), { userId, mailboxId: appended.mailboxId, uids: undefined });
    await m.store.compactChanges();
    expect(await chunksCol().countDocuments({ files_id: blobId })).toBe(0);
    expect(await m.h.db.collection('blobs.files').countDocuments({ _id: blobId })).toBe(0);
  });

  it('finds messages with ObjectId ids in a mailbox from before keyed ids, and moves them', async () => {
    const userId = await createUser(m.h);
    const first = await append(m.client, userId, byPath('INBOX'), message(['Subject: old one', '', 'a']));
    await append(m.client, userId, byPath('INBOX'), message(['Subject: old two', '', 'b']));
    const mailboxId = first.mailboxId;
    // As stored before: ObjectId `_id`s (search entries under the same id), unkeyed mailbox.
    for (const doc of await messagesCol().find({ mailboxId }).toArray()) {
      const oldId = new ObjectId();
      const { searchId, ...rest } = doc;
      await messagesCol().deleteOne({ _id: doc._id });
      await messagesCol().insertOne({ ...rest, _id: oldId });
      const terms = m.h.db.collection<{ _id: string | ObjectId }>('message_terms');
      const entry = await terms.findOne({ _id: searchId });
      await terms.deleteOne({ _id: searchId });
      await terms.insertOne({ ...entry, _id: oldId });
    }
    await m.h.db
      .collection('mailboxes')
      .updateOne({ _id: new ObjectId(mailboxId) }, { $unset: { keyedMessages: '' } });
    // The database was rewritten behind the owner's back: it forgets what it holds of the user,
    // as an owner starting on such a database would not have it.
    mailboxRecords.dropUsersWhere((u) => u === userId);
    sharedMailboxIndex.dropUser(userId);

    const read = await content(m.client, { userId, mailboxId, uid: 2 });
    expect(read.bytes.toString()).toContain('Subject: old two');
    const some = await fetchMessages(m.client, { userId, mailboxId, uids: uids([2, 2]) });
    expect(some.map((f) => f.uid)).toEqual([2]);
    const found = await call(m.client.search.bind(m.client), {
      userId,
      mailboxId,
      query: { key: { $case: 'subject', value: 'old two' } },
    });
    expect(found.uids).toEqual([2]);
    const moved = await call(m.client.moveMessages.bind(m.client), {
      userId,
      mailboxId,
      uids: ALL_UIDS,
      destination: byPath('Archive'),
    });
    expect(moved.mappings.map((x) => x.sourceUid)).toEqual([1, 2]);
    expect(await messagesCol().countDocuments({ mailboxId })).toBe(0);
    const archived = await content(m.client, {
      userId,
      mailboxId: moved.destinationMailboxId,
      uid: moved.mappings[1]?.destinationUid ?? 0,
    });
    expect(archived.bytes.toString()).toContain('Subject: old two');
    const again = await call(m.client.search.bind(m.client), {
      userId,
      mailboxId: moved.destinationMailboxId,
      query: { key: { $case: 'subject', value: 'old two' } },
    });
    expect(again.uids).toEqual([moved.mappings[1]?.destinationUid]);
  });

  it('treats a redelivery as a duplicate when its delivery record has an ObjectId id', async () => {
    const userId = await createUser(m.h);
    const raw = message(['Subject: delivered long ago', '', 'once']);
    const rcpt = [{ recipient: 'dora@example.test', userId }];
    const deliveries = m.h.db.collection<{ _id: unknown; spoolId: string; uid: number }>('deliveries');
    const [first] = await m.store.deliverToMailboxes('spool-legacy-1', raw, rcpt);
    const record = await deliveries.findOne({ spoolId: 'spool-legacy-1' });
    expect(record?._id).toBe('spool-legacy-1/dora@example.test');
    await deliveries.deleteOne({ spoolId: 'spool-legacy-1' });
    await deliveries.insertOne({
      ...record,
      _id: new ObjectId(),
      spoolId: 'spool-legacy-1',
      uid: record?.uid ?? 0,
    });
    const blobs = await m.h.db.collection('blobs.files').countDocuments({});

    const [again] = await m.store.deliverToMailboxes('spool-legacy-1', raw, rcpt);
    expect(again).toMatchObject({ status: 'duplicate', uid: first?.status === 'delivered' ? first.uid : -1 });
    expect(await messagesCol().countDocuments({ spoolId: 'spool-legacy-1' })).toBe(1);
    // The body ingested before the old record was found is not left behind.
    expect(await m.h.db.collection('blobs.files').countDocuments({})).toBe(blobs);
  });
});
