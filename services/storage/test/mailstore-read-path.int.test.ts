/**
 * The IMAP read hot path on the owner (ADR 0006, 0007), over real gRPC and FerretDB, checked in
 * the database's command stream and by counting blob-store reads: ENVELOPE and BODYSTRUCTURE of
 * messages just written come from memory (the message cache is written through by APPEND and
 * delivery), SELECT writes only when it has new messages to claim as \Recent, and readers that
 * find a mailbox's messages uncached at the same time share one read of it. A mailbox larger than
 * the message cache is synced (`FETCH (FLAGS ENVELOPE)`) and searched by header from the summaries
 * the mailbox index keeps, without reading its messages again.
 */
import { mailstore } from '@postmesh/contracts';
import type { Envelope } from '@postmesh/mime';
import type { CommandStartedEvent } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sharedMailboxIndex } from '../src/mailstore/mailbox-index.js';
import { sharedMessageCache } from '../src/mailstore/message-cache.js';
import {
  append,
  byPath,
  call,
  createUser,
  fetchMessages,
  message,
  startMailstoreHarness,
  type MailstoreHarness,
} from './mailstore-helpers.js';

const { FetchField } = mailstore;

let m: MailstoreHarness;
let blobReads = 0;
let keyUnwraps = 0;

beforeAll(async () => {
  m = await startMailstoreHarness();
  // Counts reads of message bodies on the real store (no stand-in: the calls go through).
  const store = m.h.app.blobs.primary;
  const read = store.read.bind(store);
  const stat = store.stat.bind(store);
  store.read = (...args) => {
    blobReads++;
    return read(...args);
  };
  store.stat = (...args) => {
    blobReads++;
    return stat(...args);
  };
  const keyring = m.h.app.keyring;
  const unwrap = keyring.unwrapForUser.bind(keyring);
  keyring.unwrapForUser = (...args) => {
    keyUnwraps++;
    return unwrap(...args);
  };
});

afterAll(async () => {
  await m?.stop();
});

/** Collection-level commands `run` sent to the database ("find messages", "insert …"). */
async function commandsDuring(run: () => Promise<unknown>): Promise<string[]> {
  const seen: string[] = [];
  const listener = (e: CommandStartedEvent) => {
    const target = e.command[e.commandName] as unknown;
    seen.push(`${e.commandName} ${typeof target === 'string' ? target : ''}`.trim());
  };
  m.h.mongo.on('commandStarted', listener);
  try {
    await run();
  } finally {
    m.h.mongo.off('commandStarted', listener);
  }
  return seen;
}

/** A user whose INBOX holds `n` messages (more than the point-lookup window of 64). */
async function filledInbox(n: number): Promise<{ userId: string; mailboxId: string }> {
  const userId = await createUser(m.h);
  for (let i = 0; i < n; i += 10) {
    await Promise.all(
      Array.from({ length: Math.min(10, n - i) }, (_, k) =>
        append(
          m.client,
          userId,
          byPath('INBOX'),
          message([`From: sender${i + k}@example.test`, `Subject: message ${i + k}`, '', `body ${i + k}`]),
        ),
      ),
    );
  }
  const status = await select(userId, false);
  return { userId, mailboxId: status.status?.mailboxId ?? '' };
}

const select = (userId: string, claimRecent: boolean) =>
  call(m.client.getMailboxStatus.bind(m.client), { userId, mailbox: byPath('INBOX'), claimRecent });

const envelopes = (userId: string, mailboxId: string) =>
  fetchMessages(m.client, { userId, mailboxId, fields: [FetchField.ENVELOPE, FetchField.BODYSTRUCTURE] });

/** The subjects of fetched envelopes, sorted (appends ran ten at a time, so UIDs interleave). */
const subjects = (fetched: readonly mailstore.MessageMetadata[]) =>
  fetched.map((f) => (JSON.parse(f.envelopeJson) as Envelope).subject).sort();
const expectedSubjects = (n: number) => Array.from({ length: n }, (_, i) => `message ${i}`).sort();

describe('the IMAP read path from memory', () => {
  it('answers FETCH ENVELOPE/BODYSTRUCTURE of messages just appended without a database or body read', async () => {
    const { userId, mailboxId } = await filledInbox(80);
    await fetchMessages(m.client, { userId, mailboxId, fields: [] }); // SELECT's read: the index
    blobReads = 0;
    let fetched: mailstore.MessageMetadata[] = [];
    const commands = await commandsDuring(async () => {
      fetched = await envelopes(userId, mailboxId);
    });
    expect(commands).toEqual([]);
    expect(blobReads).toBe(0);
    expect(fetched.map((f) => f.uid)).toEqual(Array.from({ length: 80 }, (_, i) => i + 1));
    expect(subjects(fetched)).toEqual(expectedSubjects(80));
    expect(fetched.every((f) => f.bodystructureJson.includes('"text"'))).toBe(true);

    // Opened once, kept with the cached message: the next fetch and a header SEARCH decrypt nothing.
    keyUnwraps = 0;
    const again = await envelopes(userId, mailboxId);
    const found = await call(m.client.search.bind(m.client), {
      userId,
      mailboxId,
      query: { key: { $case: 'subject', value: 'message 7' } },
    });
    expect(keyUnwraps).toBe(0);
    expect(again).toEqual(fetched);
    expect(found.uids).toEqual(
      fetched
        .filter((f) => (JSON.parse(f.envelopeJson) as Envelope).subject?.includes('message 7'))
        .map((f) => f.uid),
    );
  });

  it('writes nothing on SELECT when no message is new, and claims \\Recent once when one is', async () => {
    const { userId, mailboxId } = await filledInbox(5);
    const first = await select(userId, true);
    expect(first.firstRecentUid).toBe(1); // the first SELECT claims every message
    let again: mailstore.GetMailboxStatusResponse | undefined;
    const quiet = await commandsDuring(async () => {
      again = await select(userId, true);
      await envelopes(userId, mailboxId);
    });
    expect(quiet).toEqual([]);
    expect(again?.firstRecentUid).toBe(6); // none recent: UIDNEXT
    expect(again?.status?.recent).toBe(0);

    await append(m.client, userId, byPath('INBOX'), message(['Subject: new', '', 'new']));
    let claimed: mailstore.GetMailboxStatusResponse | undefined;
    const claiming = await commandsDuring(async () => {
      claimed = await select(userId, true);
    });
    // The claim moves the owner's copy, written with the mailbox's counters (ADR 0007).
    expect(claiming).toEqual([]);
    expect(claimed?.firstRecentUid).toBe(6);
    expect(claimed?.status?.recent).toBe(1);
    expect((await select(userId, true)).firstRecentUid).toBe(7); // claimed by the SELECT before
    // Then in the database, not only in memory: a read of the document shows it.
    await m.store.flushCounters();
    const stored = await m.h.db
      .collection<{ _id: unknown; recentFloor?: number }>('mailboxes')
      .find({ userId, path: 'INBOX' })
      .toArray();
    expect(stored[0]?.recentFloor).toBe(7);
  });

  it('shares one read of a mailbox among readers that find it uncached at once', async () => {
    const { userId, mailboxId } = await filledInbox(80);
    await fetchMessages(m.client, { userId, mailboxId, fields: [] });
    sharedMessageCache.clear(); // as after a restart
    let results: mailstore.MessageMetadata[][] = [];
    const commands = await commandsDuring(async () => {
      results = await Promise.all(Array.from({ length: 6 }, () => envelopes(userId, mailboxId)));
    });
    expect(commands.filter((c) => c === 'find messages')).toHaveLength(1);
    for (const r of results) {
      expect(subjects(r)).toEqual(expectedSubjects(80));
    }
    // And afterwards from memory alone.
    expect(await commandsDuring(() => envelopes(userId, mailboxId))).toEqual([]);
  });

  it("answers a sync and header SEARCHes of a mailbox larger than the message cache from the index's summaries", async () => {
    const { userId, mailboxId } = await filledInbox(80);
    // A cache far smaller than the mailbox, as a 10,000-message mailbox against 64 MiB: a walk
    // of the mailbox in UID order evicts every message before the next walk reaches it.
    const cacheBytes = sharedMessageCache.maxBytes;
    sharedMessageCache.maxBytes = 4 * 1024;
    sharedMessageCache.clear();
    sharedMailboxIndex.drop(mailboxId); // as after a restart
    try {
      const sync = () => fetchMessages(m.client, { userId, mailboxId, fields: [FetchField.ENVELOPE] });
      const search = (key: mailstore.SearchKey['key']) =>
        call(m.client.search.bind(m.client), { userId, mailboxId, query: { key } });
      let first: mailstore.MessageMetadata[] = [];
      const reading = await commandsDuring(async () => {
        first = await sync();
      });
      // One read of the mailbox builds its index entry with the summaries.
      expect(reading.filter((c) => c === 'find messages')).toHaveLength(1);
      expect(subjects(first)).toEqual(expectedSubjects(80));
      const status = await select(userId, false);
      const entry = sharedMailboxIndex.get(mailboxId, status.status?.highestModseq ?? -1);
      expect(entry?.summaryBytes).toBeGreaterThan(0);

      keyUnwraps = 0;
      let again: mailstore.MessageMetadata[] = [];
      let from: mailstore.SearchResponse | undefined;
      let subject: mailstore.SearchResponse | undefined;
      let sent: mailstore.SearchResponse | undefined;
      const quiet = await commandsDuring(async () => {
        again = await sync();
        from = await search({ $case: 'from', value: 'SENDER7@' });
        subject = await search({ $case: 'subject', value: 'message 1' });
        sent = await search({ $case: 'sentSince', value: { year: 1990, month: 1, day: 1 } });
      });
      expect(quiet).toEqual([]);
      expect(keyUnwraps).toBe(0);
      expect(again).toEqual(first);
      const uidsWhere = (test: (e: Envelope) => boolean) =>
        first.filter((f) => test(JSON.parse(f.envelopeJson) as Envelope)).map((f) => f.uid);
      expect(from?.uids).toEqual(uidsWhere((e) => e.from?.[0]?.mailbox === 'sender7'));
      expect(from?.uids).toHaveLength(1);
      expect(subject?.uids).toEqual(uidsWhere((e) => e.subject?.startsWith('message 1') === true));
      expect(subject?.uids).toHaveLength(11); // message 1 and 10..19
      // Without a Date: header the sent day is the INTERNALDATE's: today.
      expect(sent?.uids).toEqual(uidsWhere(() => true));

      // A flag change shows in the next sync; the ENVELOPEs are still not read back.
      await call(m.client.storeFlags.bind(m.client), {
        userId,
        mailboxId,
        uids: { ranges: [{ first: 5, last: 5 }] },
        mode: mailstore.StoreMode.ADD,
        flags: [mailstore.Flag.FLAGGED],
        keywords: [],
      });
      let synced: mailstore.MessageMetadata[] = [];
      expect(
        await commandsDuring(async () => {
          synced = await sync();
        }),
      ).toEqual([]);
      expect(synced.find((f) => f.uid === 5)?.flags).toContain(mailstore.Flag.FLAGGED);
      expect(synced.map((f) => f.envelopeJson)).toEqual(first.map((f) => f.envelopeJson));

      // Summaries dropped for the bound (the entry stays): one read of the mailbox makes them again.
      entry?.clearSummaries();
      const remade = await commandsDuring(async () => {
        synced = await sync();
      });
      expect(remade.filter((c) => c === 'find messages')).toHaveLength(1);
      expect(synced.map((f) => f.envelopeJson)).toEqual(first.map((f) => f.envelopeJson));
      expect(await commandsDuring(sync)).toEqual([]);
    } finally {
      sharedMessageCache.maxBytes = cacheBytes;
    }
  });
});
