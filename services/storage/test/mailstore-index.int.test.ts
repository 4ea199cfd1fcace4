/**
 * The in-memory mailbox index (ADR 0006) over real gRPC and FerretDB: after every kind of change
 * (append, delivery, STORE, COPY, MOVE, EXPUNGE, RENAME of INBOX) what SELECT and `FETCH (FLAGS)`
 * read from the index equals what the message documents say, and the index was patched in place
 * rather than rebuilt or dropped.
 */
import { ErrorReason, mailstore } from '@postmesh/contracts';
import { ObjectId } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { splitFlags } from '../src/mailstore/flags.js';
import { sharedMailboxIndex } from '../src/mailstore/mailbox-index.js';
import { mailboxRecords } from '../src/mailstore/mailboxes.js';
import { messageKey } from '../src/mailstore/mailstore.js';
import { sharedMessageCache } from '../src/mailstore/message-cache.js';
import {
  ALL_UIDS,
  append,
  byPath,
  call,
  content,
  failureOf,
  createUser,
  fetchMessages,
  foldedDocuments,
  message,
  startMailstoreHarness,
  uids,
  type MailstoreHarness,
} from './mailstore-helpers.js';

const { Flag, StoreMode, FetchField } = mailstore;

let m: MailstoreHarness;

beforeAll(async () => {
  m = await startMailstoreHarness();
});

afterAll(async () => {
  await m?.stop();
});

const status = async (userId: string, path: string, claimRecent = false) => {
  const res = await call(m.client.getMailboxStatus.bind(m.client), {
    userId,
    mailbox: byPath(path),
    claimRecent,
  });
  if (res.status === undefined) throw new Error('no status');
  return res.status;
};

type Row = Pick<mailstore.MessageMetadata, 'uid' | 'modseq' | 'flags' | 'keywords' | 'size'>;
const row = (f: mailstore.MessageMetadata): Row => ({
  uid: f.uid,
  modseq: f.modseq,
  flags: [...f.flags].sort(),
  keywords: [...f.keywords].sort(),
  size: f.size,
});

/** What the index answers: a fetch with no metadata fields, the storage side of SELECT. */
const fromIndex = async (userId: string, mailboxId: string): Promise<Row[]> =>
  (await fetchMessages(m.client, { userId, mailboxId, fields: [] })).map(row);

/**
 * What the database says, read directly past every cache: the message documents with the pending
 * flag and expunge records folded in (mailstore-helpers `foldedDocuments`).
 */
const fromDocuments = async (_userId: string, mailboxId: string): Promise<Row[]> =>
  (await foldedDocuments(m.h.db, mailboxId)).map((d) => {
    const split = splitFlags(d.flags);
    return {
      uid: d.uid,
      modseq: d.modseq,
      flags: [...split.flags].sort(),
      keywords: [...split.keywords].sort(),
      size: d.size,
    };
  });

/** The index holds an entry for the mailbox as it stands now (read without asking the mailstore). */
const indexedNow = async (userId: string, path: string): Promise<boolean> => {
  // The owner writes the counters it moves in memory a moment later (ADR 0007): now, for this read.
  await m.store.flushCounters();
  const doc = await m.h.db
    .collection<{ highestModseq: number }>('mailboxes')
    .findOne({ userId, path }, { projection: { highestModseq: 1 } });
  if (doc === null) throw new Error(`no mailbox ${path}`);
  return sharedMailboxIndex.get(doc._id.toHexString(), doc.highestModseq) !== undefined;
};

async function fill(userId: string, path: string, n: number, from = 0): Promise<void> {
  for (let i = 0; i < n; i += 10) {
    await Promise.all(
      Array.from({ length: Math.min(10, n - i) }, (_, k) =>
        append(m.client, userId, byPath(path), message([`Subject: m${from + i + k}`, '', `body ${i + k}`]), {
          flags: (i + k) % 3 === 0 ? [Flag.SEEN] : [],
        }),
      ),
    );
  }
}

describe('mailbox index', () => {
  it('answers SELECT and FETCH (FLAGS) like the documents after every kind of change', async () => {
    const userId = await createUser(m.h);
    await fill(userId, 'INBOX', 90);
    // SELECT's status call counts \Recent over 90 UIDs: that builds the entry.
    const inbox = await status(userId, 'INBOX');
    expect(inbox.recent).toBe(90);
    expect(sharedMailboxIndex.get(inbox.mailboxId, inbox.highestModseq)).toBeDefined();
    const first = await fromIndex(userId, inbox.mailboxId);
    expect(first).toHaveLength(90);
    expect(first).toEqual(await fromDocuments(userId, inbox.mailboxId));
    expect(await indexedNow(userId, 'INBOX')).toBe(true);

    const agree = async (path: string, count: number) => {
      const s = await status(userId, path);
      const indexed = await fromIndex(userId, s.mailboxId);
      expect(indexed).toHaveLength(count);
      expect(indexed).toEqual(await fromDocuments(userId, s.mailboxId));
      // Patched in place: the entry is still there for the mailbox as it stands.
      expect(sharedMailboxIndex.get(s.mailboxId, s.highestModseq)).toBeDefined();
      return s;
    };

    // Appends (gRPC) and a delivery (the pipeline's in-process path) after the build.
    await fill(userId, 'INBOX', 5, 90);
    const delivered = await m.store.deliverToMailboxes(
      'spool-index-1',
      message(['Subject: delivered', '', 'by the pipeline']),
      [{ recipient: 'rcpt@example.test', userId }],
    );
    expect(delivered[0]?.status).toBe('delivered');
    await agree('INBOX', 96);

    // STORE: add, remove, replace, keywords.
    await call(m.client.storeFlags.bind(m.client), {
      userId,
      mailboxId: inbox.mailboxId,
      uids: uids([1, 40]),
      mode: StoreMode.ADD,
      flags: [Flag.FLAGGED, Flag.SEEN],
      keywords: ['$Important'],
    });
    await call(m.client.storeFlags.bind(m.client), {
      userId,
      mailboxId: inbox.mailboxId,
      uids: uids([30, 60]),
      mode: StoreMode.REMOVE,
      flags: [Flag.SEEN],
      keywords: [],
    });
    await call(m.client.storeFlags.bind(m.client), {
      userId,
      mailboxId: inbox.mailboxId,
      uids: uids([5, 5], [70, 75]),
      mode: StoreMode.REPLACE,
      flags: [Flag.DELETED],
      keywords: [],
    });
    let s = await agree('INBOX', 96);
    // SELECT's counters come from the index too: \Recent and the first unseen message.
    const docs = await fromDocuments(userId, inbox.mailboxId);
    expect(s.firstUnseenUid).toBe(docs.find((d) => !d.flags.includes(Flag.SEEN))?.uid);

    // COPY into Archive, whose entry is built and then patched by a MOVE into it.
    await call(m.client.copyMessages.bind(m.client), {
      userId,
      mailboxId: inbox.mailboxId,
      uids: uids([1, 70]),
      destination: byPath('Archive'),
    });
    const archive = await status(userId, 'Archive');
    expect(await fromIndex(userId, archive.mailboxId)).toEqual(
      await fromDocuments(userId, archive.mailboxId),
    );
    await call(m.client.moveMessages.bind(m.client), {
      userId,
      mailboxId: inbox.mailboxId,
      uids: uids([80, 85]),
      destination: byPath('Archive'),
    });
    await agree('Archive', 76);
    await agree('INBOX', 90);

    // EXPUNGE of the \Deleted ones (UID 5 and 70–75) and UID EXPUNGE.
    const gone = await call(m.client.expunge.bind(m.client), {
      userId,
      mailboxId: inbox.mailboxId,
      uids: undefined,
    });
    expect(gone.expungedUids).toEqual([5, 70, 71, 72, 73, 74, 75]);
    s = await agree('INBOX', 83);
    expect(s.messages).toBe(83);

    // \Recent: counted from the index, then claimed by a SELECT.
    const recent = await call(m.client.getMailboxStatus.bind(m.client), {
      userId,
      mailbox: byPath('INBOX'),
      claimRecent: true,
    });
    expect(recent.status?.recent).toBe(83);
    await fill(userId, 'INBOX', 2, 200);
    expect((await status(userId, 'INBOX')).recent).toBe(2);
    await agree('INBOX', 85);

    // RENAME INBOX moves every message away: the entries are dropped, the reads stay right.
    await call(m.client.renameMailbox.bind(m.client), {
      userId,
      mailbox: byPath('INBOX'),
      newPath: 'Old',
    });
    expect(await fromIndex(userId, (await status(userId, 'INBOX')).mailboxId)).toEqual([]);
    await agree('Old', 85);
  });

  it('answers SEARCH on flags, UIDs, sizes and dates like the documents', async () => {
    const userId = await createUser(m.h);
    await fill(userId, 'INBOX', 75);
    const inbox = await status(userId, 'INBOX');
    await call(m.client.storeFlags.bind(m.client), {
      userId,
      mailboxId: inbox.mailboxId,
      uids: uids([10, 30]),
      mode: StoreMode.ADD,
      flags: [Flag.FLAGGED],
      keywords: ['work'],
    });
    const key = (k: NonNullable<mailstore.SearchKey['key']>): mailstore.SearchKey => ({ key: k });
    // The same query ANDed with a key only the stored documents answer (BODY "" matches all).
    const viaDocuments = (q: mailstore.SearchKey): mailstore.SearchKey =>
      key({ $case: 'and', value: { keys: [q, key({ $case: 'body', value: '' })] } });
    const search = async (q: mailstore.SearchKey) =>
      (await call(m.client.search.bind(m.client), { userId, mailboxId: inbox.mailboxId, query: q })).uids;
    const queries = [
      key({ $case: 'not', value: key({ $case: 'flag', value: Flag.SEEN }) }),
      key({ $case: 'flag', value: Flag.FLAGGED }),
      key({ $case: 'keyword', value: 'work' }),
      key({
        $case: 'or',
        value: {
          keys: [key({ $case: 'uid', value: uids([70, 0]) }), key({ $case: 'larger', value: 1_000_000 })],
        },
      }),
      key({ $case: 'since', value: { year: 2000, month: 1, day: 1 } }),
      key({ $case: 'modseq', value: inbox.highestModseq + 1 }),
    ];
    const expected = [
      (await fromDocuments(userId, inbox.mailboxId))
        .filter((f) => !f.flags.includes(Flag.SEEN))
        .map((f) => f.uid),
      Array.from({ length: 21 }, (_, i) => i + 10),
      Array.from({ length: 21 }, (_, i) => i + 10),
      [70, 71, 72, 73, 74, 75],
      Array.from({ length: 75 }, (_, i) => i + 1),
      Array.from({ length: 21 }, (_, i) => i + 10),
    ];
    for (const [i, q] of queries.entries()) {
      const fromIndexSearch = await search(q);
      expect(fromIndexSearch).toEqual(expected[i]);
      expect(fromIndexSearch).toEqual(await search(viaDocuments(q)));
    }
    expect(await indexedNow(userId, 'INBOX')).toBe(true);
    // Header keys over a mailbox whose messages are cached (an ENVELOPE fetch filled the cache).
    await fetchMessages(m.client, { userId, mailboxId: inbox.mailboxId, fields: [FetchField.ENVELOPE] });
    const headerQueries = [
      key({ $case: 'subject', value: 'm1' }),
      key({ $case: 'not', value: key({ $case: 'subject', value: 'm7' }) }),
      key({
        $case: 'and',
        value: {
          keys: [key({ $case: 'subject', value: 'm2' }), key({ $case: 'flag', value: Flag.FLAGGED })],
        },
      }),
      key({ $case: 'header', value: { field: 'Subject', value: '' } }),
      key({ $case: 'sentSince', value: { year: 2000, month: 1, day: 1 } }),
    ];
    for (const q of headerQueries) {
      const fromCache = await search(q);
      expect(fromCache.length).toBeGreaterThan(0);
      expect(fromCache).toEqual(await search(viaDocuments(q)));
    }
  });

  it('builds without holding up writers: appends and flag changes during a build are caught up', async () => {
    const userId = await createUser(m.h);
    await fill(userId, 'INBOX', 80);
    const inbox = await status(userId, 'INBOX');
    sharedMailboxIndex.drop(inbox.mailboxId); // as after a restart
    expect(await indexedNow(userId, 'INBOX')).toBe(false);
    const writers = (async () => {
      for (let i = 0; i < 5; i++) {
        await Promise.all([
          fill(userId, 'INBOX', 4, 300 + i * 4),
          call(m.client.storeFlags.bind(m.client), {
            userId,
            mailboxId: inbox.mailboxId,
            uids: uids([i * 10 + 1, i * 10 + 10]),
            mode: StoreMode.ADD,
            flags: [Flag.ANSWERED],
            keywords: [],
          }),
        ]);
      }
    })();
    // Several builds race the writers; each either lands caught up or is left out.
    const reads = Array.from({ length: 4 }, async (_, i) => {
      await new Promise((r) => setTimeout(r, i * 40));
      return fromIndex(userId, inbox.mailboxId);
    });
    await Promise.all([writers, ...reads]);
    const finalRead = await fromIndex(userId, inbox.mailboxId);
    expect(finalRead).toHaveLength(100);
    expect(finalRead).toEqual(await fromDocuments(userId, inbox.mailboxId));
    expect(await indexedNow(userId, 'INBOX')).toBe(true);
  });

  it('is warmed at start with one read for all large mailboxes, writers going on meanwhile', async () => {
    const userId = await createUser(m.h);
    await fill(userId, 'INBOX', 70);
    await fill(userId, 'Archive', 66);
    const inbox = await status(userId, 'INBOX');
    const archive = await status(userId, 'Archive');
    sharedMailboxIndex.drop(inbox.mailboxId); // as after a restart
    sharedMailboxIndex.drop(archive.mailboxId);
    const [warmed] = await Promise.all([m.store.warmIndex(), fill(userId, 'INBOX', 5, 500)]);
    expect(warmed).toBeGreaterThanOrEqual(1);
    expect(await indexedNow(userId, 'Archive')).toBe(true);
    // INBOX is warm too unless its build lost a race with a reader; either way it reads right.
    expect(await fromIndex(userId, inbox.mailboxId)).toEqual(await fromDocuments(userId, inbox.mailboxId));
    expect(await fromIndex(userId, archive.mailboxId)).toEqual(
      await fromDocuments(userId, archive.mailboxId),
    );
    expect(await indexedNow(userId, 'INBOX')).toBe(true);
  });

  it('answers GetChanges (the IDLE wake-up) with changes and VANISHED from the index', async () => {
    const userId = await createUser(m.h);
    await fill(userId, 'INBOX', 70);
    const inbox = await status(userId, 'INBOX');
    const changes = (since: number) =>
      call(m.client.getChanges.bind(m.client), {
        userId,
        mailboxId: inbox.mailboxId,
        sinceModseq: since,
        uidValidity: inbox.uidValidity,
        knownUids: undefined,
      });
    await fill(userId, 'INBOX', 2, 100);
    const news = await changes(inbox.highestModseq);
    expect(news.changed.map((c) => c.uid)).toEqual([71, 72]);
    expect(news.vanished?.ranges).toEqual([]);
    await call(m.client.storeFlags.bind(m.client), {
      userId,
      mailboxId: inbox.mailboxId,
      uids: uids([3, 4]),
      mode: StoreMode.ADD,
      flags: [Flag.DELETED],
      keywords: [],
    });
    await call(m.client.expunge.bind(m.client), { userId, mailboxId: inbox.mailboxId, uids: uids([3, 3]) });
    const later = await changes(news.highestModseq);
    expect(later.changed.map((c) => c.uid)).toEqual([4]);
    expect(later.changed[0]?.flags).toContain(Flag.DELETED);
    expect(later.vanished?.ranges).toEqual([{ first: 3, last: 3 }]);
    expect((await changes(later.highestModseq)).vanished?.ranges).toEqual([]);
    expect(await indexedNow(userId, 'INBOX')).toBe(true);
  });

  it('serves ENVELOPE fetches and message content of indexed mailboxes from the message cache', async () => {
    const userId = await createUser(m.h);
    await fill(userId, 'INBOX', 70);
    const inbox = await status(userId, 'INBOX');
    const envelopes = async () =>
      (
        await fetchMessages(m.client, {
          userId,
          mailboxId: inbox.mailboxId,
          fields: [FetchField.ENVELOPE, FetchField.BODYSTRUCTURE],
        })
      ).map((f) => ({ ...row(f), envelope: f.envelopeJson, structure: f.bodystructureJson }));
    const first = await envelopes();
    expect(first).toHaveLength(70);
    expect(sharedMessageCache.has(messageKey(inbox.mailboxId, 7))).toBe(true);
    const body7 = (await content(m.client, { userId, mailboxId: inbox.mailboxId, uid: 7 })).bytes;
    // Proof the second answers come from the cache: the stored metadata of message 7 is gone.
    await m.h.db
      .collection('messages')
      .updateOne({ _id: messageKey(inbox.mailboxId, 7) as never }, { $unset: { meta: '' } });
    expect(await envelopes()).toEqual(first);
    expect((await content(m.client, { userId, mailboxId: inbox.mailboxId, uid: 7 })).bytes).toEqual(body7);
    // Flags and MODSEQ come from the index, never from the cached document.
    await call(m.client.storeFlags.bind(m.client), {
      userId,
      mailboxId: inbox.mailboxId,
      uids: uids([7, 7]),
      mode: StoreMode.REPLACE,
      flags: [Flag.DELETED, Flag.FLAGGED],
      keywords: ['cached'],
    });
    const flagged = (await envelopes()).find((r) => r.uid === 7);
    expect(flagged?.flags).toEqual([Flag.FLAGGED, Flag.DELETED].sort());
    expect(flagged?.keywords).toEqual(['cached']);
    // An expunged message is not answered from its leftover cache entry.
    await call(m.client.expunge.bind(m.client), { userId, mailboxId: inbox.mailboxId, uids: undefined });
    expect((await envelopes()).map((r) => r.uid)).not.toContain(7);
    expect((await failureOf(content(m.client, { userId, mailboxId: inbox.mailboxId, uid: 7 }))).reason).toBe(
      ErrorReason.NOT_FOUND,
    );
  });

  it('never serves an entry that missed a change made behind its back', async () => {
    const userId = await createUser(m.h);
    await fill(userId, 'INBOX', 70);
    const inbox = await status(userId, 'INBOX');
    expect(await fromIndex(userId, inbox.mailboxId)).toHaveLength(70);
    // Another storage process (simulated: a direct write) flags a message and raises HIGHESTMODSEQ.
    const next = inbox.highestModseq + 1;
    await m.h.db
      .collection('messages')
      .updateOne({ mailboxId: inbox.mailboxId, uid: 3 }, { $set: { flags: ['\\Answered'], modseq: next } });
    await m.h.db
      .collection('mailboxes')
      .updateOne({ _id: new ObjectId(inbox.mailboxId) }, { $inc: { highestModseq: 1 } });
    // This process learns of it once it forgets its copies of the mailbox documents, as an owner
    // does whenever a partition moves (only an owner writes its mailboxes, ADR 0007).
    mailboxRecords.dropUsersWhere((id) => id === userId);
    const after = await fromIndex(userId, inbox.mailboxId);
    expect(after.find((r) => r.uid === 3)).toMatchObject({ flags: [Flag.ANSWERED], modseq: next });
    expect(after).toEqual(await fromDocuments(userId, inbox.mailboxId));
  });

  it('is bounded: the least recently used mailbox is dropped first', async () => {
    const saved = sharedMailboxIndex.maxMessages;
    try {
      const a = await createUser(m.h);
      const b = await createUser(m.h);
      await fill(a, 'INBOX', 70);
      await fill(b, 'INBOX', 70);
      sharedMailboxIndex.maxMessages = 100; // room for one of the two mailboxes
      const boxA = await status(a, 'INBOX');
      const boxB = await status(b, 'INBOX');
      await fromIndex(a, boxA.mailboxId);
      expect(await indexedNow(a, 'INBOX')).toBe(true);
      await fromIndex(b, boxB.mailboxId);
      expect(await indexedNow(b, 'INBOX')).toBe(true);
      expect(await indexedNow(a, 'INBOX')).toBe(false);
      // Without its entry the mailbox still reads right (rebuilt, or from the documents).
      expect(await fromIndex(a, boxA.mailboxId)).toEqual(await fromDocuments(a, boxA.mailboxId));
    } finally {
      sharedMailboxIndex.maxMessages = saved;
    }
  });

  it('reads every UID set the way the documents do', async () => {
    const userId = await createUser(m.h);
    await fill(userId, 'INBOX', 80);
    const inbox = await status(userId, 'INBOX');
    await fromIndex(userId, inbox.mailboxId);
    const all = await fromDocuments(userId, inbox.mailboxId);
    const cases: [mailstore.UidSet, number[]][] = [
      [uids([1, 1]), [1]],
      [uids([79, 0]), [79, 80]],
      [
        uids([3, 9], [20, 20], [70, 200]),
        [3, 4, 5, 6, 7, 8, 9, 20, ...Array.from({ length: 11 }, (_, i) => 70 + i)],
      ],
      [ALL_UIDS, Array.from({ length: 80 }, (_, i) => i + 1)],
    ];
    for (const [set, expected] of cases) {
      const want = all.filter((r) => expected.includes(r.uid));
      const viaIndex = await fetchMessages(m.client, { userId, mailboxId: inbox.mailboxId, uids: set });
      expect(viaIndex.map(row)).toEqual(want);
      const viaCache = await fetchMessages(m.client, {
        userId,
        mailboxId: inbox.mailboxId,
        uids: set,
        fields: [FetchField.ENVELOPE],
      });
      expect(viaCache.map(row)).toEqual(want);
    }
    // Batched responses (what the imap service asks for): the same messages in a few responses.
    const stream = m.client.fetchMessages({
      userId,
      mailboxId: inbox.mailboxId,
      uids: ALL_UIDS,
      fields: [],
      maxBatch: 32,
    });
    const sizes: number[] = [];
    const batched: number[] = [];
    for await (const r of stream as AsyncIterable<mailstore.FetchMessagesResponse>) {
      expect(r.message).toBeUndefined();
      sizes.push(r.messages.length);
      batched.push(...r.messages.map((f) => f.uid));
    }
    expect(sizes).toEqual([32, 32, 16]);
    expect(batched).toEqual(Array.from({ length: 80 }, (_, i) => i + 1));
    const since = await fetchMessages(m.client, {
      userId,
      mailboxId: inbox.mailboxId,
      changedSince: inbox.highestModseq - 5,
    });
    expect(since.map((f) => f.uid)).toEqual([76, 77, 78, 79, 80]);
  });
});
