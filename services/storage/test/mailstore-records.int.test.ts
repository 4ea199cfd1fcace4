/**
 * STORE and EXPUNGE as appended records (ADR 0007), over real gRPC and FerretDB: they insert
 * records and never read, update or delete a message document; the index equals the database with
 * the records folded in (read directly); an owner that restarts (a new connection, its index and
 * records loaded afresh) rebuilds the same index, so a flag change that got its OK survives; and
 * compaction later folds the records into the documents, deletes the expunged ones and releases
 * their bodies, keeping the tombstones QRESYNC needs.
 */
import { ErrorReason, mailstore } from '@postmesh/contracts';
import { Collection, MongoClient, ObjectId, type CommandStartedEvent } from 'mongodb';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { userUsage } from '../src/administrators/usage.js';
import { splitFlags } from '../src/mailstore/flags.js';
import { sharedMailboxIndex } from '../src/mailstore/mailbox-index.js';
import { counterTenure, mailboxRecords } from '../src/mailstore/mailboxes.js';
import { Mailstore, messageKey } from '../src/mailstore/mailstore.js';
import { MailstoreRuntime } from '../src/mailstore/runtime.js';
import { storedBlobIds } from './harness.js';
import {
  append,
  byPath,
  call,
  createUser,
  failureOf,
  fetchMessages,
  foldedDocuments,
  message,
  startMailstoreHarness,
  uids,
  type MailstoreHarness,
} from './mailstore-helpers.js';

const { Flag, StoreMode } = mailstore;

let m: MailstoreHarness;
beforeAll(async () => {
  m = await startMailstoreHarness();
  const { settings } = m.h.app.mailstoreRuntime;
  // Compaction only when a test asks for it, so what a command wrote can be looked at.
  settings.compaction.quietMs = 600_000;
  // Mailbox counters written only when a test asks for it (or a compaction), likewise.
  settings.counterFlush.delayMs = 600_000;
});

afterAll(async () => {
  await m?.stop();
});

afterEach(() => {
  sharedMailboxIndex.maxMessages = 1_000_000;
});

interface Row {
  uid: number;
  modseq: number;
  flags: string[];
  size: number;
}

const sorted = (flags: readonly string[]) => [...flags].sort();

/** What the owner answers (the index, the storage side of SELECT and FETCH FLAGS). */
const answered = async (userId: string, mailboxId: string): Promise<Row[]> =>
  (await fetchMessages(m.client, { userId, mailboxId, fields: [] })).map((f) => ({
    uid: f.uid,
    modseq: f.modseq,
    flags: sorted([...f.flags, ...f.keywords]),
    size: f.size,
  }));

/** The database, read directly, records folded (flag names as stored, keywords included). */
const inDatabase = async (mailboxId: string): Promise<Row[]> =>
  (await foldedDocuments(m.h.db, mailboxId)).map((d) => {
    const split = splitFlags(d.flags);
    return { uid: d.uid, modseq: d.modseq, flags: sorted([...split.flags, ...split.keywords]), size: d.size };
  });

/** Collections each database command of `run` touched, by command name. */
async function commandsDuring(run: () => Promise<unknown>): Promise<string[]> {
  const seen: string[] = [];
  const listener = (e: CommandStartedEvent) => {
    const target = e.command[e.commandName] as unknown;
    seen.push(`${e.commandName} ${typeof target === 'string' ? target : ''}`);
  };
  m.h.mongo.on('commandStarted', listener);
  try {
    await run();
  } finally {
    m.h.mongo.off('commandStarted', listener);
  }
  return seen;
}

async function fill(userId: string, n: number): Promise<string> {
  for (let i = 0; i < n; i += 10) {
    await Promise.all(
      Array.from({ length: Math.min(10, n - i) }, (_, k) =>
        append(m.client, userId, byPath('INBOX'), message([`Subject: r${i + k}`, '', `body ${i + k}`]), {
          flags: (i + k) % 4 === 0 ? [Flag.SEEN] : [],
        }),
      ),
    );
  }
  const status = await call(m.client.getMailboxStatus.bind(m.client), {
    userId,
    mailbox: byPath('INBOX'),
    claimRecent: false,
  });
  const id = status.status?.mailboxId ?? '';
  await answered(userId, id); // builds the index entry
  return id;
}

const store = (
  userId: string,
  mailboxId: string,
  range: [number, number],
  mode: mailstore.StoreMode,
  flags: mailstore.Flag[],
  keywords: string[] = [],
) =>
  call(m.client.storeFlags.bind(m.client), { userId, mailboxId, uids: uids(range), mode, flags, keywords });

describe('flag changes and expunges as appended records', () => {
  it('STORE and EXPUNGE insert records only, and the index equals the folded database', async () => {
    const userId = await createUser(m.h);
    const mailboxId = await fill(userId, 70);
    const before = await m.h.db.collection('messages').find({ mailboxId }).sort({ uid: 1 }).toArray();

    let removalModseq = 0;
    const touched = await commandsDuring(async () => {
      await store(userId, mailboxId, [1, 20], StoreMode.ADD, [Flag.FLAGGED, Flag.SEEN], ['$Work']);
      await store(userId, mailboxId, [10, 30], StoreMode.REMOVE, [Flag.SEEN]);
      await store(userId, mailboxId, [5, 8], StoreMode.REPLACE, [Flag.DELETED]);
      const gone = await call(m.client.expunge.bind(m.client), { userId, mailboxId, uids: undefined });
      expect(gone.expungedUids).toEqual([5, 6, 7, 8]);
      removalModseq = gone.highestModseq;
    });
    // No read, update or delete of a message document: inserts into the record collections.
    expect(touched.filter((c) => c.endsWith(' messages'))).toEqual([]);
    // Nor of the mailbox document: the owner allocates the MODSEQs and moves the counters in memory,
    // after one update marking them held in memory (ADR 0007), once per mailbox per tenure.
    expect(touched.filter((c) => c.endsWith(' mailboxes'))).toEqual(['update mailboxes']);
    expect(touched.filter((c) => c.startsWith('insert'))).toEqual([
      'insert message_changes',
      'insert message_changes',
      'insert message_changes',
      'insert tombstones',
    ]);
    // The documents themselves are as they were.
    const after = await m.h.db.collection('messages').find({ mailboxId }).sort({ uid: 1 }).toArray();
    expect(after).toEqual(before);

    const rows = await answered(userId, mailboxId);
    expect(rows).toHaveLength(66);
    expect(rows).toEqual(await inDatabase(mailboxId));
    expect(rows.find((r) => r.uid === 12)?.flags).toEqual(sorted([Flag.FLAGGED, '$Work']));
    expect(rows.find((r) => r.uid === 3)?.flags).toEqual(sorted([Flag.FLAGGED, Flag.SEEN, '$Work']));
    // The counters SELECT and STATUS report agree with the folded messages.
    const status = (
      await call(m.client.getMailboxStatus.bind(m.client), {
        userId,
        mailbox: byPath('INBOX'),
        claimRecent: false,
      })
    ).status;
    expect(status?.messages).toBe(66);
    expect(status?.unseen).toBe(rows.filter((r) => !r.flags.includes(Flag.SEEN)).length);
    expect(status?.highestModseq).toBe(removalModseq);
    expect(removalModseq).toBeGreaterThan(Math.max(...rows.map((r) => r.modseq)));
  });

  it('a session catching up after an EXPUNGE learns what vanished from the index, not the tombstones', async () => {
    const userId = await createUser(m.h);
    const mailboxId = await fill(userId, 12);
    const changesSince = (sinceModseq: number) =>
      call(m.client.getChanges.bind(m.client), {
        userId,
        mailboxId,
        sinceModseq,
        uidValidity: 0,
        knownUids: undefined,
      });
    const expungeOf = async (range: [number, number]) => {
      await store(userId, mailboxId, range, StoreMode.ADD, [Flag.DELETED]);
      return call(m.client.expunge.bind(m.client), { userId, mailboxId, uids: undefined });
    };
    const known = (await changesSince(0)).highestModseq;
    const first = await expungeOf([2, 3]);
    const afterFirst = first.highestModseq;
    const second = await expungeOf([7, 9]);
    expect([...first.expungedUids, ...second.expungedUids]).toEqual([2, 3, 7, 8, 9]);
    let answers: mailstore.GetChangesResponse[] = [];
    const touched = await commandsDuring(async () => {
      answers = [
        await changesSince(known),
        await changesSince(afterFirst),
        await changesSince(second.highestModseq),
      ];
    });
    expect(touched.filter((c) => c.endsWith(' tombstones'))).toEqual([]);
    expect(answers.map((a) => a.vanished?.ranges)).toEqual([
      [
        { first: 2, last: 3 },
        { first: 7, last: 9 },
      ],
      [{ first: 7, last: 9 }],
      [],
    ]);
    // The same as the tombstones say, read directly.
    const tombstones = await m.h.db
      .collection<{ uid: number; modseq: number }>('tombstones')
      .find({ mailboxId, modseq: { $gt: known } })
      .toArray();
    expect(tombstones.map((t) => t.uid).sort((a, b) => a - b)).toEqual([2, 3, 7, 8, 9]);
  });

  it('counters the owner held in memory and lost are raised and recounted by the next build: no UID or MODSEQ twice', async () => {
    const userId = await createUser(m.h);
    const mailboxId = await fill(userId, 20);
    const raw = () =>
      m.h.db
        .collection<{ uidNext: number; highestModseq: number; messages: number; unseen: number }>('mailboxes')
        .findOne({ _id: new ObjectId(mailboxId) });
    const written = await raw();
    // With the entry built, writes move the counters in memory only.
    for (let i = 0; i < 3; i++) {
      await append(m.client, userId, byPath('INBOX'), message([`Subject: late${i}`, '', 'body']));
    }
    await store(userId, mailboxId, [1, 10], StoreMode.ADD, [Flag.FLAGGED]);
    await store(userId, mailboxId, [22, 23], StoreMode.ADD, [Flag.DELETED]);
    const gone = await call(m.client.expunge.bind(m.client), { userId, mailboxId, uids: undefined });
    expect(gone.expungedUids).toEqual([22, 23]);
    const served = await answered(userId, mailboxId);
    expect(served).toHaveLength(21);
    expect(await raw()).toEqual({ ...written, countersHeldBy: counterTenure });

    // The process dies before it writes them (the partition's caches dropped, as on a loss).
    mailboxRecords.dropUsersWhere((id) => id === userId);
    sharedMailboxIndex.drop(mailboxId);
    const status = (
      await call(m.client.getMailboxStatus.bind(m.client), {
        userId,
        mailbox: byPath('INBOX'),
        claimRecent: false,
      })
    ).status;
    expect(status?.uidNext).toBe(24);
    expect(status?.highestModseq).toBe(gone.highestModseq);
    expect(status?.messages).toBe(21);
    expect(status?.unseen).toBe(served.filter((r) => !r.flags.includes(Flag.SEEN)).length);
    expect(await answered(userId, mailboxId)).toEqual(served);
    // New writes continue above everything handed out before.
    const next = await append(m.client, userId, byPath('INBOX'), message(['Subject: after', '', 'body']));
    expect(next.uid).toBe(24);
    const flagged = await store(userId, mailboxId, [1, 1], StoreMode.ADD, [Flag.ANSWERED]);
    expect(flagged.highestModseq).toBeGreaterThan(next.modseq);
    expect(next.modseq).toBeGreaterThan(gone.highestModseq);
    await m.store.flushCounters();
    expect(await raw()).toMatchObject({ uidNext: 25, highestModseq: flagged.highestModseq, messages: 22 });
  });

  it.each([
    ['its index budget is full', 5],
    ['the index is off', 0],
  ])(
    'a new owner allocating from the database when %s recounts the counters a lost holder had in memory: no UID or MODSEQ twice',
    async (_, budget) => {
      const userId = await createUser(m.h);
      const mailboxId = await fill(userId, 20);
      const raw = () =>
        m.h.db
          .collection<{ uidNext: number; highestModseq: number; countersHeldBy?: string }>('mailboxes')
          .findOne({ _id: new ObjectId(mailboxId) });
      const written = await raw();
      for (let i = 0; i < 3; i++) {
        await append(m.client, userId, byPath('INBOX'), message([`Subject: late${i}`, '', 'body']));
      }
      // The first counter moved in memory marked the document, durably, before its OK.
      expect(await raw()).toMatchObject({ countersHeldBy: counterTenure });
      await store(userId, mailboxId, [1, 10], StoreMode.ADD, [Flag.FLAGGED]);
      await store(userId, mailboxId, [22, 23], StoreMode.ADD, [Flag.DELETED]);
      const gone = await call(m.client.expunge.bind(m.client), { userId, mailboxId, uids: undefined });
      expect(gone.expungedUids).toEqual([22, 23]);
      const seen = await store(userId, mailboxId, [21, 21], StoreMode.ADD, [Flag.SEEN]);
      const served = await answered(userId, mailboxId);
      // Nothing of it written to the mailbox document yet.
      expect(await raw()).toMatchObject({ uidNext: written?.uidNext, highestModseq: written?.highestModseq });

      // The process dies before it writes the counters, and the next owner cannot build an entry
      // for the mailbox, so it allocates from the document's counters.
      mailboxRecords.dropUsersWhere((id) => id === userId);
      sharedMailboxIndex.drop(mailboxId);
      sharedMailboxIndex.maxMessages = budget;
      const next = await append(m.client, userId, byPath('INBOX'), message(['Subject: after', '', 'body']));
      expect(next.uid).toBeGreaterThan(23);
      expect(next.modseq).toBeGreaterThan(seen.highestModseq);
      const flagged = await store(userId, mailboxId, [1, 1], StoreMode.ADD, [Flag.ANSWERED]);
      expect(flagged.highestModseq).toBeGreaterThan(next.modseq);
      // Recounted, and the lost holder's mark taken off.
      const status = (
        await call(m.client.getMailboxStatus.bind(m.client), {
          userId,
          mailbox: byPath('INBOX'),
          claimRecent: false,
        })
      ).status;
      expect(status?.uidNext).toBe(next.uid + 1);
      expect(status?.highestModseq).toBe(flagged.highestModseq);
      expect(status?.messages).toBe(22);
      expect(status?.unseen).toBe(served.filter((r) => !r.flags.includes(Flag.SEEN)).length + 1);
      expect((await raw())?.countersHeldBy).toBeUndefined();
      const now = await answered(userId, mailboxId);
      expect(now.map((r) => r.uid)).toEqual([...served.map((r) => r.uid), next.uid]);
    },
  );

  it('a clean shutdown writes the counters held in memory and takes the mark off', async () => {
    const userId = await createUser(m.h);
    const mailboxId = await fill(userId, 10);
    const raw = () =>
      m.h.db
        .collection<{ uidNext: number; highestModseq: number; messages: number; countersHeldBy?: string }>(
          'mailboxes',
        )
        .findOne({ _id: new ObjectId(mailboxId) });
    const late = await append(m.client, userId, byPath('INBOX'), message(['Subject: late', '', 'body']));
    expect(await raw()).toMatchObject({ uidNext: 11, countersHeldBy: counterTenure });
    await m.store.releaseCounters();
    const released = await raw();
    expect(released).toMatchObject({ uidNext: 12, highestModseq: late.modseq, messages: 11 });
    expect(released?.countersHeldBy).toBeUndefined();
    // Moving them in memory again marks the document again.
    await append(m.client, userId, byPath('INBOX'), message(['Subject: later', '', 'body']));
    expect(await raw()).toMatchObject({ uidNext: 12, countersHeldBy: counterTenure });
  });

  it('a restarted owner rebuilds the same index from the database; flags stored with OK survive', async () => {
    const userId = await createUser(m.h);
    const mailboxId = await fill(userId, 70);
    await store(userId, mailboxId, [1, 70], StoreMode.ADD, [Flag.ANSWERED]);
    await store(userId, mailboxId, [30, 40], StoreMode.REPLACE, [Flag.DELETED, Flag.SEEN], ['gone']);
    await call(m.client.expunge.bind(m.client), { userId, mailboxId, uids: uids([30, 35]) });
    await store(userId, mailboxId, [50, 50], StoreMode.REMOVE, [Flag.ANSWERED]);
    const served = await answered(userId, mailboxId);
    expect(served).toHaveLength(64);

    // A new process: its own connection (records loaded afresh) and no index entry.
    const client = new MongoClient(m.h.env.mongoUri);
    await client.connect();
    try {
      const restartedDb = client.db(m.h.db.databaseName);
      const restarted = new Mailstore({
        db: restartedDb,
        // Its own runtime (a new process), held back like the harness's.
        runtime: new MailstoreRuntime(restartedDb, m.h.app.mailstoreRuntime.settings),
        blobs: m.h.app.blobs,
        keyring: m.h.app.keyring,
        logger: m.h.logger,
      });
      sharedMailboxIndex.drop(mailboxId);
      const rebuilt: Row[] = [];
      for await (const f of restarted.fetchMessages(userId, mailboxId, undefined, undefined, [])) {
        rebuilt.push({
          uid: f.uid,
          modseq: f.modseq,
          flags: sorted([...f.flags, ...f.keywords]),
          size: f.size,
        });
      }
      expect(rebuilt).toEqual(served);
      expect(rebuilt).toEqual(await inDatabase(mailboxId));
      // Without any index (several replicas), reads fold the records too.
      sharedMailboxIndex.drop(mailboxId);
      sharedMailboxIndex.maxMessages = 0;
      const unindexed: Row[] = [];
      for await (const f of restarted.fetchMessages(userId, mailboxId, undefined, undefined, [])) {
        unindexed.push({
          uid: f.uid,
          modseq: f.modseq,
          flags: sorted([...f.flags, ...f.keywords]),
          size: f.size,
        });
      }
      expect(unindexed).toEqual(served);
    } finally {
      await client.close();
    }
  });

  it('compaction releases the bodies of expunged messages and keeps only the latest flag record of each message', async () => {
    const userId = await createUser(m.h);
    const mailboxId = await fill(userId, 66);
    await store(userId, mailboxId, [1, 10], StoreMode.ADD, [Flag.DELETED]);
    await store(userId, mailboxId, [20, 30], StoreMode.ADD, [Flag.FLAGGED], ['kept']);
    await store(userId, mailboxId, [25, 30], StoreMode.REMOVE, [], ['kept']);
    const usage = async () => (await call(m.client.getQuota.bind(m.client), { userId })).usedBytes;
    const usedBefore = await usage();
    const gone = await call(m.client.expunge.bind(m.client), { userId, mailboxId, uids: undefined });
    expect(gone.expungedUids).toHaveLength(10);
    const served = await answered(userId, mailboxId);
    const expunged = await m.h.db
      .collection<Row & { blobId: ObjectId }>('messages')
      .find({ mailboxId, uid: { $lte: 10 } })
      .toArray();
    const expungedBytes = expunged.reduce((s, d) => s + d.size, 0);
    expect(
      (await storedBlobIds(m.h)).filter((id) => expunged.some((d) => d.blobId.toHexString() === id)),
    ).toHaveLength(10);
    expect(expungedBytes).toBeGreaterThan(0);
    // Quota usage drops with the EXPUNGE itself (RFC 9208), not later.
    expect(usedBefore - (await usage())).toBe(expungedBytes);

    const rawBefore = await m.h.db
      .collection<Row>('messages')
      .find({ mailboxId, uid: { $gt: 10 } })
      .toArray();
    const written = await commandsDuring(async () => {
      // The expunges and the 6 superseded records of 25..30 (and what earlier tests left).
      expect(await m.store.compactChanges()).toBeGreaterThanOrEqual(10 + 6);
    });
    // The flag records are the flags' store (ADR 0007): no message document is updated.
    expect(written.filter((c) => c.startsWith('update messages'))).toEqual([]);
    expect(await m.h.db.collection('message_changes').countDocuments({ mailboxId })).toBe(11);
    expect(await m.h.db.collection('tombstones').countDocuments({ mailboxId, pending: true })).toBe(0);
    // The tombstones stay for QRESYNC (RFC 7162 §3.2.10 VANISHED).
    expect(await m.h.db.collection('tombstones').countDocuments({ mailboxId })).toBe(10);
    // The documents are as they were, the database with its records says what was answered; the
    // expunged ones and their bodies are gone.
    expect(await m.h.db.collection<Row>('messages').find({ mailboxId }).toArray()).toEqual(rawBefore);
    expect(await inDatabase(mailboxId)).toEqual(served);
    expect(
      await m.h.db.collection('messages').findOne({ _id: messageKey(mailboxId, 3) as never }),
    ).toBeNull();
    const blobsAfter = await storedBlobIds(m.h);
    expect(blobsAfter.filter((id) => expunged.some((d) => d.blobId.toHexString() === id))).toEqual([]);
    expect(usedBefore - (await usage())).toBe(expungedBytes);
    expect(await answered(userId, mailboxId)).toEqual(served);
    const changes = await call(m.client.getChanges.bind(m.client), {
      userId,
      mailboxId,
      sinceModseq: 1,
      uidValidity: 0,
      knownUids: undefined,
    });
    expect(changes.vanished?.ranges).toEqual([{ first: 1, last: 10 }]);
  });

  it('with the index off, records left by an owner are compacted before a flag change in place', async () => {
    const userId = await createUser(m.h);
    const mailboxId = await fill(userId, 10);
    await store(userId, mailboxId, [1, 5], StoreMode.ADD, [Flag.FLAGGED]);
    sharedMailboxIndex.maxMessages = 0;
    sharedMailboxIndex.drop(mailboxId);
    await store(userId, mailboxId, [3, 8], StoreMode.ADD, [Flag.ANSWERED]);
    expect(await m.h.db.collection('message_changes').countDocuments({ mailboxId })).toBe(0);
    const rows = await inDatabase(mailboxId);
    expect(rows.filter((r) => r.flags.includes(Flag.FLAGGED)).map((r) => r.uid)).toEqual([1, 2, 3, 4, 5]);
    expect(rows.filter((r) => r.flags.includes(Flag.ANSWERED)).map((r) => r.uid)).toEqual([3, 4, 5, 6, 7, 8]);
    expect(await answered(userId, mailboxId)).toEqual(rows);
  });
});

/** `promise`, or a failure naming what did not answer in `ms` (instead of a hung suite). */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

// FerretDB 1.24 holds one of its 100 SQLite connections per matched `updateOne` of an `update`
// command until the command ends (db/bulk-updates.ts): one bulk of ~100 such statements used to
// hang every command of the database, storage's whole gRPC service with it.
describe('bulk updates of more messages than FerretDB has connections', () => {
  const MANY = 130;

  it('compaction of that many flag records of one mailbox finishes and storage keeps answering', async () => {
    const userId = await createUser(m.h);
    const mailboxId = await fill(userId, MANY);
    // One record per message: each STORE changes one message.
    for (let uid = 1; uid <= MANY; uid += 10) {
      await Promise.all(
        Array.from({ length: Math.min(10, MANY - uid + 1) }, (_, k) =>
          store(userId, mailboxId, [uid + k, uid + k], StoreMode.ADD, [Flag.FLAGGED]),
        ),
      );
    }
    expect(await m.h.db.collection('message_changes').countDocuments({ mailboxId })).toBe(MANY);
    const served = await answered(userId, mailboxId);

    // Folding records into the documents is what a replica without the index does (an owner
    // keeps the latest record of each message instead, see above).
    sharedMailboxIndex.maxMessages = 0;
    expect(await within(150_000, 'compaction', m.store.compactChanges())).toBeGreaterThanOrEqual(MANY);
    const status = await within(
      30_000,
      'GetMailboxStatus after compaction',
      call(m.client.getMailboxStatus.bind(m.client), {
        userId,
        mailbox: byPath('INBOX'),
        claimRecent: false,
      }),
    );
    expect(status.status?.messages).toBe(MANY);
    expect(await m.h.db.collection('message_changes').countDocuments({ mailboxId })).toBe(0);
    const raw = await m.h.db.collection<Row>('messages').find({ mailboxId }).sort({ uid: 1 }).toArray();
    // The documents themselves now carry the flags (what the records said).
    expect(raw.filter((d) => splitFlags(d.flags).flags.includes(Flag.FLAGGED))).toHaveLength(MANY);
    expect(await inDatabase(mailboxId)).toEqual(served);
  }, 300_000);
});

describe('quota usage from the mailbox counters (ADR 0007)', () => {
  const quotaOf = (userId: string) => call(m.client.getQuota.bind(m.client), { userId });
  const sizeOf = (rows: readonly Row[]) => rows.reduce((s, r) => s + r.size, 0);
  const userDoc = (userId: string) => m.h.db.collection('users').findOne({ _id: new ObjectId(userId) });

  it('APPEND and EXPUNGE write nothing to the user; usage and the quota follow at once', async () => {
    const userId = await createUser(m.h, 10_000_000);
    const mailboxId = await fill(userId, 12);
    const userBefore = await userDoc(userId);
    expect(await quotaOf(userId)).toMatchObject({
      usedBytes: sizeOf(await answered(userId, mailboxId)),
      usedMessages: 12,
    });
    const touched = await commandsDuring(async () => {
      await Promise.all(
        Array.from({ length: 4 }, (_, i) =>
          append(m.client, userId, byPath('INBOX'), message([`Subject: more${i}`, '', 'x'.repeat(300)])),
        ),
      );
      await store(userId, mailboxId, [1, 5], StoreMode.ADD, [Flag.DELETED]);
      await call(m.client.expunge.bind(m.client), { userId, mailboxId, uids: undefined });
    });
    // No write of the user's document, and no read of it per APPEND (its limits are kept a moment).
    expect(touched.filter((c) => c.endsWith(' users') && !c.startsWith('find'))).toEqual([]);
    expect(touched.filter((c) => c === 'find users').length).toBeLessThanOrEqual(1);
    expect(await userDoc(userId)).toEqual(userBefore);
    const rows = await answered(userId, mailboxId);
    expect(rows).toHaveLength(11);
    expect(await quotaOf(userId)).toMatchObject({ usedBytes: sizeOf(rows), usedMessages: 11 });
    // The admin's figures and the RCPT check read the same sums (the owner's counters in memory).
    expect(await userUsage(m.h.db, [userId])).toMatchObject({
      ok: true,
      value: { usage: [{ usedBytes: sizeOf(rows), messages: 11 }] },
    });
  });

  it('usage read while the counters are being written still counts them', async () => {
    const userId = await createUser(m.h, 10_000_000);
    const mailboxId = await fill(userId, 4);
    // With the mailbox's entry loaded, APPENDs move its counters in memory (held ahead).
    await answered(userId, mailboxId);
    for (let i = 0; i < 2; i++) {
      await append(m.client, userId, byPath('INBOX'), message([`Subject: ahead${i}`, '', 'y'.repeat(400)]));
    }
    const expected = await quotaOf(userId);
    expect(expected.usedMessages).toBe(6);
    expect(mailboxRecords.aheadIds(m.h.db)).toContain(mailboxId);
    // Hold the write of the mailbox's counters (the flush) until the reads below have answered:
    // the counters it carries are no longer held ahead, and the document does not show them yet.
    const original = Collection.prototype.findOneAndUpdate;
    let release = (): void => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    let entered = (): void => undefined;
    const writing = new Promise<void>((resolve) => (entered = resolve));
    Collection.prototype.findOneAndUpdate = async function (this: Collection, ...args: unknown[]) {
      if (this.collectionName === 'mailboxes') {
        entered();
        await held;
      }
      return (original as (...a: unknown[]) => Promise<unknown>).apply(this, args);
    } as typeof original;
    try {
      const flush = m.store.flushCounters();
      await within(10_000, 'the counter write', writing);
      expect(await quotaOf(userId)).toMatchObject({
        usedBytes: expected.usedBytes,
        usedMessages: 6,
      });
      expect(await userUsage(m.h.db, [userId])).toMatchObject({
        value: { usage: [{ usedBytes: expected.usedBytes, messages: 6 }] },
      });
      release();
      await within(10_000, 'the flush', flush);
    } finally {
      Collection.prototype.findOneAndUpdate = original;
      release();
    }
    expect(mailboxRecords.aheadIds(m.h.db)).not.toContain(mailboxId);
    expect(await quotaOf(userId)).toMatchObject({ usedBytes: expected.usedBytes, usedMessages: 6 });
  });

  it('an APPEND beyond the quota is refused, and an EXPUNGE makes room at once', async () => {
    const userId = await createUser(m.h, 0);
    const mailboxId = await fill(userId, 3);
    const used = (await quotaOf(userId)).usedBytes;
    const raw = Buffer.concat([message(['Subject: big', '', '']), Buffer.alloc(800, 0x61)]);
    await m.h.db
      .collection('users')
      .updateOne({ _id: new ObjectId(userId) }, { $set: { quotaBytes: used + raw.length + 10 } });
    // The server's mailstore keeps a user's limits a moment (`settings.quotaLimits`): read them afresh.
    const { quotaLimits } = m.h.app.mailstoreRuntime.settings;
    const savedLimitsAge = quotaLimits.maxAgeMs;
    quotaLimits.maxAgeMs = 0;
    await append(m.client, userId, byPath('INBOX'), raw);
    const over = await failureOf(append(m.client, userId, byPath('INBOX'), raw));
    expect(over.reason).toBe(ErrorReason.OVER_QUOTA);
    await store(userId, mailboxId, [4, 4], StoreMode.ADD, [Flag.DELETED]);
    await call(m.client.expunge.bind(m.client), { userId, mailboxId, uids: undefined });
    expect((await append(m.client, userId, byPath('INBOX'), raw)).uid).toBe(5);
    quotaLimits.maxAgeMs = savedLimitsAge;
  });

  it('usage is right after a crash with counters not written, and after a restart', async () => {
    const userId = await createUser(m.h, 10_000_000);
    const mailboxId = await fill(userId, 10);
    for (let i = 0; i < 3; i++) {
      await append(m.client, userId, byPath('Archive'), message([`Subject: kept${i}`, '', 'y'.repeat(500)]));
    }
    await store(userId, mailboxId, [2, 4], StoreMode.ADD, [Flag.DELETED]);
    await call(m.client.expunge.bind(m.client), { userId, mailboxId, uids: undefined });
    const expected = await quotaOf(userId);
    expect(expected.usedMessages).toBe(10);
    // The counters moved in memory only: the documents still say what they said before.
    const raw = await m.h.db
      .collection<{ size: number; messages: number }>('mailboxes')
      .find({ userId })
      .toArray();
    expect(raw.reduce((s, b) => s + b.messages, 0)).not.toBe(10);

    // The process dies before it writes them (its memory of the user dropped, as on a loss).
    mailboxRecords.dropUsersWhere((id) => id === userId);
    sharedMailboxIndex.drop(mailboxId);
    expect(await quotaOf(userId)).toEqual(expected);

    // A restarted owner (its own connection, nothing in memory) answers the same.
    await m.store.flushCounters();
    const client = new MongoClient(m.h.env.mongoUri);
    await client.connect();
    try {
      const restartedDb = client.db(m.h.db.databaseName);
      const restarted = new Mailstore({
        db: restartedDb,
        runtime: new MailstoreRuntime(restartedDb, m.h.app.mailstoreRuntime.settings),
        blobs: m.h.app.blobs,
        keyring: m.h.app.keyring,
        logger: m.h.logger,
      });
      expect(await restarted.getQuota(userId)).toEqual(expected);
    } finally {
      await client.close();
    }
  });
});

describe('compaction of several mailboxes at once', () => {
  it('costs one delete per collection for all of them, and VANISHED still answers', async () => {
    const users = [await createUser(m.h), await createUser(m.h), await createUser(m.h)];
    const boxes = await Promise.all(users.map((u) => fill(u, 8)));
    const known = await Promise.all(
      users.map(async (u, i) =>
        (await answered(u, boxes[i] as string)).reduce((n, r) => Math.max(n, r.modseq), 0),
      ),
    );
    for (const [i, u] of users.entries()) {
      const mailboxId = boxes[i] as string;
      await store(u, mailboxId, [2, 3], StoreMode.ADD, [Flag.DELETED]);
      await store(u, mailboxId, [5, 5], StoreMode.ADD, [Flag.FLAGGED]);
      await store(u, mailboxId, [5, 5], StoreMode.ADD, [Flag.SEEN]);
      await call(m.client.expunge.bind(m.client), { userId: u, mailboxId, uids: undefined });
    }
    const served = await Promise.all(users.map((u, i) => answered(u, boxes[i] as string)));
    // Whatever earlier tests left is compacted first, so the count below is this test's alone.
    await m.store.compactChanges();
    for (const [i, u] of users.entries()) {
      const mailboxId = boxes[i] as string;
      await store(u, mailboxId, [6, 7], StoreMode.ADD, [Flag.DELETED]);
      await store(u, mailboxId, [8, 8], StoreMode.ADD, [Flag.ANSWERED]);
      await store(u, mailboxId, [8, 8], StoreMode.ADD, [Flag.DRAFT]);
      await call(m.client.expunge.bind(m.client), { userId: u, mailboxId, uids: undefined });
    }
    const after = await Promise.all(users.map((u, i) => answered(u, boxes[i] as string)));
    const written = await commandsDuring(async () => {
      // 2 expunges and the superseded records of message 8 (2), and of 6 and 7, per mailbox.
      expect(await m.store.compactChanges()).toBeGreaterThanOrEqual(3 * 2);
    });
    const deletes = written.filter((c) => c.startsWith('delete'));
    expect(deletes.filter((c) => c === 'delete messages')).toHaveLength(1);
    expect(deletes.filter((c) => c === 'delete message_terms')).toHaveLength(1);
    expect(deletes.filter((c) => c === 'delete message_changes')).toHaveLength(1);
    expect(written.filter((c) => c === 'update tombstones')).toHaveLength(1);
    for (const [i, u] of users.entries()) {
      const mailboxId = boxes[i] as string;
      expect(await answered(u, mailboxId)).toEqual(after[i]);
      expect(await inDatabase(mailboxId)).toEqual(after[i]);
      expect(served[i]?.length).toBe(6);
      expect(await m.h.db.collection('messages').countDocuments({ mailboxId })).toBe(4);
      const changes = await call(m.client.getChanges.bind(m.client), {
        userId: u,
        mailboxId,
        sinceModseq: known[i] as number,
        uidValidity: 0,
        knownUids: undefined,
      });
      expect(changes.vanished?.ranges).toEqual([
        { first: 2, last: 3 },
        { first: 6, last: 7 },
      ]);
    }
  });
});
