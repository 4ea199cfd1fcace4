/**
 * Contract suite of the Mailstore message RPCs over real gRPC and FerretDB: AppendMessage
 * (RFC 9051 §6.3.12, RFC 4315 §3), FetchMessages (§6.4.5, RFC 7162 §3.1.4.1), GetMessageContent
 * (§6.4.5 sections and partials, RFC 3516 BINARY), StoreFlags (§6.4.6, RFC 7162 §3.1.3),
 * CopyMessages / MoveMessages (§6.4.7, RFC 6851), Expunge (§6.4.3, RFC 4315 §2.1), Search
 * (§6.4.4), GetQuota (RFC 9208) and GetChanges (RFC 7162 §3.2.5), with their typed failures.
 */
import { ErrorReason, mailstore } from '@postmesh/contracts';
import { sharedMailboxIndex } from '../src/mailstore/mailbox-index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
import { storedBlobIds } from './harness.js';

const { Flag, StoreMode, FetchField } = mailstore;

let m: MailstoreHarness;

beforeAll(async () => {
  m = await startMailstoreHarness();
});

afterAll(async () => {
  await m?.stop();
});

const ATTACHMENT = Buffer.from([0x00, 0x01, 0x02, 0xff, 0x00, 0x41, 0x42, 0x43]);

/** A nested multipart message: mixed( alternative(plain, html), attachment, message/rfc822 ). */
const NESTED = message([
  'From: Alice Example <alice@example.test>',
  'To: Bob <bob@example.test>, carol@example.test',
  'Cc: Dave <dave@example.test>',
  'Subject: Quarterly plan',
  'Date: Tue, 3 Mar 2026 23:30:00 -0800',
  'Message-ID: <plan@example.test>',
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="outer"',
  '',
  'preamble',
  '--outer',
  'Content-Type: multipart/alternative; boundary="inner"',
  '',
  '--inner',
  'Content-Type: text/plain; charset=utf-8',
  '',
  'Plain body with the zebra keyword.',
  '--inner',
  'Content-Type: text/html; charset=utf-8',
  '',
  '<p>HTML <b>body</b></p>',
  '--inner--',
  '--outer',
  'Content-Type: application/octet-stream; name="data.bin"',
  'Content-Transfer-Encoding: base64',
  'Content-Disposition: attachment; filename="data.bin"',
  '',
  ATTACHMENT.toString('base64'),
  '--outer',
  'Content-Type: message/rfc822',
  '',
  'From: Inner <inner@example.test>',
  'Subject: Forwarded',
  '',
  'Inner body text.',
  '--outer--',
  '',
]);

/** Bytes of NESTED between two markers, as the test computes them independently of libs/mime. */
function between(start: string, end: string, from = 0): Buffer {
  const text = NESTED.toString('latin1');
  const a = text.indexOf(start, from);
  const b = text.indexOf(end, a + start.length);
  if (a < 0 || b < 0) throw new Error(`markers not found: ${start} … ${end}`);
  return NESTED.subarray(a, b);
}

async function mailboxId(userId: string, path: string): Promise<string> {
  const res = await call(m.client.getMailboxStatus.bind(m.client), {
    userId,
    mailbox: byPath(path),
    claimRecent: false,
  });
  return res.status?.mailboxId ?? '';
}

async function statusOf(userId: string, path: string): Promise<mailstore.MailboxStatus> {
  const res = await call(m.client.getMailboxStatus.bind(m.client), {
    userId,
    mailbox: byPath(path),
    claimRecent: false,
  });
  if (res.status === undefined) throw new Error('no status');
  return res.status;
}

const store = (
  userId: string,
  mbox: string,
  set: mailstore.UidSet,
  mode: mailstore.StoreMode,
  flags: mailstore.Flag[],
  keywords: string[] = [],
  unchangedSince?: number,
) =>
  call(m.client.storeFlags.bind(m.client), {
    userId,
    mailboxId: mbox,
    uids: set,
    mode,
    flags,
    keywords,
    unchangedSince,
  });

describe('AppendMessage and FetchMessages', () => {
  it('stores a message and returns APPENDUID data; fetch returns its metadata', async () => {
    const userId = await createUser(m.h);
    const internalDate = new Date('2026-01-02T03:04:05.000Z');
    const appended = await append(m.client, userId, byPath('INBOX'), NESTED, {
      flags: [Flag.SEEN, Flag.FLAGGED],
      keywords: ['$Forwarded', 'project'],
      internalDate,
    });
    const status = await statusOf(userId, 'INBOX');
    expect(appended).toMatchObject({ mailboxId: status.mailboxId, uidValidity: status.uidValidity, uid: 1 });
    expect(appended.modseq).toBeGreaterThan(1);
    expect(status.highestModseq).toBe(appended.modseq);
    const [meta] = await fetchMessages(m.client, {
      userId,
      mailboxId: appended.mailboxId,
      fields: [FetchField.ENVELOPE, FetchField.BODYSTRUCTURE, FetchField.HEADER],
    });
    expect(meta).toMatchObject({
      uid: 1,
      modseq: appended.modseq,
      size: NESTED.length,
      internalDate,
    });
    expect(new Set(meta?.flags)).toEqual(new Set([Flag.SEEN, Flag.FLAGGED]));
    expect(new Set(meta?.keywords)).toEqual(new Set(['$Forwarded', 'project']));
    const envelope = JSON.parse(meta?.envelopeJson ?? '') as { subject: string; messageId: string };
    expect(envelope.subject).toBe('Quarterly plan');
    expect(envelope.messageId).toBe('<plan@example.test>');
    const structure = JSON.parse(meta?.bodystructureJson ?? '') as { kind: string; subtype: string };
    expect(structure).toMatchObject({ kind: 'multipart', subtype: 'mixed' });
    expect(meta?.header.equals(between('From: Alice', 'preamble'))).toBe(true);
  });

  it('fetches by UID set and CHANGEDSINCE, omitting unrequested fields', async () => {
    const userId = await createUser(m.h);
    const raw = message(['Subject: n', '', 'x']);
    const results = [];
    for (let i = 0; i < 5; i++) results.push(await append(m.client, userId, byPath('INBOX'), raw));
    const mbox = results[0]?.mailboxId ?? '';
    const some = await fetchMessages(m.client, {
      userId,
      mailboxId: mbox,
      uids: uids([4, 0], [1, 2], [9, 12]),
    });
    expect(some.map((f) => f.uid)).toEqual([1, 2, 4, 5]);
    expect(some[0]?.envelopeJson).toBe('');
    expect(some[0]?.header.length).toBe(0);
    const since = await fetchMessages(m.client, {
      userId,
      mailboxId: mbox,
      changedSince: results[2]?.modseq ?? 0,
    });
    expect(since.map((f) => f.uid)).toEqual([4, 5]);
  });

  it('fails typed: unknown mailbox, wrong declared size, missing header, bad keyword, too-big', async () => {
    const userId = await createUser(m.h);
    const raw = message(['Subject: s', '', 'b']);
    expect((await failureOf(append(m.client, userId, byPath('Nope'), raw))).reason).toBe(
      ErrorReason.NOT_FOUND,
    );
    const short = await failureOf(append(m.client, userId, byPath('INBOX'), raw, { size: raw.length + 10 }));
    expect(short).toMatchObject({ reason: ErrorReason.INVALID_ARGUMENT, field: 'header.size' });
    const long = await failureOf(append(m.client, userId, byPath('INBOX'), raw, { size: raw.length - 1 }));
    expect(long.reason).toBe(ErrorReason.INVALID_ARGUMENT);
    const badKeyword = await failureOf(
      append(m.client, userId, byPath('INBOX'), raw, { keywords: ['has space'] }),
    );
    expect(badKeyword.reason).toBe(ErrorReason.INVALID_NAME);
    const tooBig = await failureOf(append(m.client, userId, byPath('INBOX'), raw, { size: 1024 ** 3 }));
    expect(tooBig.reason).toBe(ErrorReason.TOO_BIG);
    const headerless = await failureOf(
      new Promise((resolve, reject) => {
        const stream = m.client.appendMessage((error, response) =>
          error === null ? resolve(response) : reject(error),
        );
        stream.write({ part: { $case: 'chunk', value: raw } });
        stream.end();
      }),
    );
    expect(headerless.reason).toBe(ErrorReason.INVALID_ARGUMENT);
    // Nothing was stored and no blob was left behind by the refused appends.
    expect((await statusOf(userId, 'INBOX')).messages).toBe(0);
    expect((await storedBlobIds(m.h)).length).toBe(await m.h.db.collection('blob_refs').countDocuments({}));
  });
});

describe('GetMessageContent', () => {
  let userId: string;
  let mbox: string;
  const get = (section: string, extra: Partial<mailstore.GetMessageContentRequest> = {}) =>
    content(m.client, { userId, mailboxId: mbox, uid: 1, section, ...extra });

  beforeAll(async () => {
    userId = await createUser(m.h);
    mbox = (await append(m.client, userId, byPath('INBOX'), NESTED)).mailboxId;
  });

  it('returns the whole message, HEADER and TEXT', async () => {
    const whole = await get('');
    expect(whole.bytes.equals(NESTED)).toBe(true);
    expect(whole.info).toMatchObject({ size: NESTED.length, sectionSize: NESTED.length });
    expect((await get('HEADER')).bytes.equals(between('From: Alice', 'preamble'))).toBe(true);
    expect((await get('TEXT')).bytes.equals(NESTED.subarray(NESTED.indexOf('preamble')))).toBe(true);
  });

  it('returns exactly the bytes of nested parts (RFC 9051 §6.4.5 part numbering)', async () => {
    expect((await get('1.1')).bytes.toString()).toBe('Plain body with the zebra keyword.');
    expect((await get('1.2')).bytes.toString()).toBe('<p>HTML <b>body</b></p>');
    expect((await get('1.1.MIME')).bytes.toString()).toBe('Content-Type: text/plain; charset=utf-8\r\n\r\n');
    expect((await get('2')).bytes.toString()).toBe(ATTACHMENT.toString('base64'));
    expect((await get('3.HEADER')).bytes.toString()).toBe(
      'From: Inner <inner@example.test>\r\nSubject: Forwarded\r\n\r\n',
    );
    expect((await get('3.TEXT')).bytes.toString()).toBe('Inner body text.');
    expect((await get('3.1')).bytes.toString()).toBe('Inner body text.');
    const plain = between('--inner\r\nContent-Type: text/plain', '\r\n--inner\r\nContent-Type: text/html');
    expect(
      (await get('1')).bytes.equals(
        NESTED.subarray(NESTED.indexOf(plain), NESTED.indexOf('\r\n--outer\r\nContent-Type: application')),
      ),
    ).toBe(true);
  });

  it('applies <partial> byte ranges, past the end giving no bytes', async () => {
    const part = await get('1.1', { partial: { offset: 6, length: 4 } });
    expect(part.bytes.toString()).toBe('body');
    expect(part.info).toMatchObject({ size: 4, sectionSize: 'Plain body with the zebra keyword.'.length });
    expect(
      (await get('', { partial: { offset: 100, length: 50 } })).bytes.equals(NESTED.subarray(100, 150)),
    ).toBe(true);
    expect((await get('1.1', { partial: { offset: 1000, length: 5 } })).bytes.length).toBe(0);
  });

  it('streams a large message back exactly, and ranges across cipher records', async () => {
    const big = Buffer.concat([
      message(['Subject: big', 'Content-Type: application/octet-stream', '', '']),
      Buffer.from(Array.from({ length: 5 * 1024 * 1024 }, (_, i) => (i * 7919) % 251)),
    ]);
    const stored = await append(m.client, userId, byPath('Archive'), big, { chunkSize: 1024 * 1024 - 1 });
    const whole = await content(m.client, { userId, mailboxId: stored.mailboxId, uid: stored.uid });
    expect(whole.info.size).toBe(big.length);
    expect(whole.bytes.equals(big)).toBe(true);
    for (const [offset, length] of [
      [65_530, 20],
      [3 * 65_536 - 1, 65_538],
      [big.length - 10, 100],
    ] as const) {
      const range = await content(m.client, {
        userId,
        mailboxId: stored.mailboxId,
        uid: stored.uid,
        partial: { offset, length },
      });
      expect(range.bytes.equals(big.subarray(offset, offset + length))).toBe(true);
    }
  });

  it('filters HEADER.FIELDS and HEADER.FIELDS.NOT', async () => {
    expect((await get('HEADER.FIELDS (Subject FROM)')).bytes.toString()).toBe(
      'From: Alice Example <alice@example.test>\r\nSubject: Quarterly plan\r\n\r\n',
    );
    const not = (
      await get('HEADER.FIELDS.NOT (Content-Type MIME-Version Date Message-ID Cc To)')
    ).bytes.toString();
    expect(not).toBe('From: Alice Example <alice@example.test>\r\nSubject: Quarterly plan\r\n\r\n');
  });

  it('decodes the transfer encoding for BINARY and reports NUL octets', async () => {
    const binary = await get('2', { decodeTransferEncoding: true });
    expect(binary.bytes.equals(ATTACHMENT)).toBe(true);
    expect(binary.info.containsNul).toBe(true);
    expect(
      (await get('2', { decodeTransferEncoding: true, partial: { offset: 5, length: 10 } })).bytes.toString(),
    ).toBe('ABC');
    const multipart = await failureOf(get('1', { decodeTransferEncoding: true }));
    expect(multipart).toMatchObject({
      reason: ErrorReason.INVALID_ARGUMENT,
      field: 'decode_transfer_encoding',
    });
  });

  it('fails typed for a bad section, a missing part and a missing message', async () => {
    expect(await failureOf(get('1.BOGUS'))).toMatchObject({
      reason: ErrorReason.INVALID_ARGUMENT,
      field: 'section',
    });
    expect((await failureOf(get('9'))).reason).toBe(ErrorReason.NOT_FOUND);
    expect((await failureOf(get('', { uid: 42 }))).reason).toBe(ErrorReason.NOT_FOUND);
  });
});

describe('StoreFlags', () => {
  it('adds, removes and replaces, bumping modseq only for changed messages', async () => {
    const userId = await createUser(m.h);
    const raw = message(['Subject: f', '', 'x']);
    for (let i = 0; i < 3; i++) await append(m.client, userId, byPath('INBOX'), raw);
    const mbox = await mailboxId(userId, 'INBOX');
    const before = await statusOf(userId, 'INBOX');
    const added = await store(userId, mbox, uids([1, 2]), StoreMode.ADD, [Flag.SEEN], ['$Important']);
    expect(added.changed.map((c) => c.uid)).toEqual([1, 2]);
    expect(added.changed.every((c) => c.modseq > before.highestModseq)).toBe(true);
    expect(added.changed[0]?.keywords).toEqual(['$Important']);
    expect(added.highestModseq).toBe(added.changed[0]?.modseq);
    expect((await statusOf(userId, 'INBOX')).unseen).toBe(1);
    // Already as requested: nothing changes, nothing is listed (RFC 7162 §3.1.3).
    const again = await store(userId, mbox, uids([1, 2]), StoreMode.ADD, [Flag.SEEN]);
    expect(again.changed).toEqual([]);
    expect(again.highestModseq).toBe(added.highestModseq);
    const removed = await store(userId, mbox, uids([1, 1]), StoreMode.REMOVE, [Flag.SEEN]);
    expect(removed.changed[0]).toMatchObject({ uid: 1, flags: [], keywords: ['$Important'] });
    const replaced = await store(userId, mbox, uids([1, 0]), StoreMode.REPLACE, [Flag.DELETED]);
    expect(replaced.changed.map((c) => [c.uid, c.flags, c.keywords])).toEqual([
      [1, [Flag.DELETED], []],
      [2, [Flag.DELETED], []],
      [3, [Flag.DELETED], []],
    ]);
    expect(await statusOf(userId, 'INBOX')).toMatchObject({ unseen: 3, deleted: 3 });
  });

  it('reports messages changed since UNCHANGEDSINCE as modified and leaves them alone', async () => {
    const userId = await createUser(m.h);
    const raw = message(['Subject: f', '', 'x']);
    const first = await append(m.client, userId, byPath('INBOX'), raw);
    await append(m.client, userId, byPath('INBOX'), raw);
    const mbox = first.mailboxId;
    const touched = await store(userId, mbox, uids([2, 2]), StoreMode.ADD, [Flag.ANSWERED]);
    const conditional = await store(
      userId,
      mbox,
      uids([1, 2]),
      StoreMode.ADD,
      [Flag.FLAGGED],
      [],
      first.modseq + 1,
    );
    expect(conditional.modifiedUids).toEqual([2]);
    expect(conditional.changed.map((c) => c.uid)).toEqual([1]);
    const [, second] = await fetchMessages(m.client, { userId, mailboxId: mbox });
    expect(second?.flags).toEqual([Flag.ANSWERED]);
    expect(second?.modseq).toBe(touched.changed[0]?.modseq);
  });

  it('fails typed for a bad keyword, a missing mode and a bad UID set', async () => {
    const userId = await createUser(m.h);
    const mbox = (await append(m.client, userId, byPath('INBOX'), message(['', 'x']))).mailboxId;
    expect((await failureOf(store(userId, mbox, ALL_UIDS, StoreMode.ADD, [], ['a(b']))).reason).toBe(
      ErrorReason.INVALID_NAME,
    );
    expect((await failureOf(store(userId, mbox, ALL_UIDS, StoreMode.UNSPECIFIED, [Flag.SEEN]))).reason).toBe(
      ErrorReason.INVALID_ARGUMENT,
    );
    expect((await failureOf(store(userId, mbox, uids([0, 3]), StoreMode.ADD, [Flag.SEEN]))).reason).toBe(
      ErrorReason.INVALID_ARGUMENT,
    );
  });
});

describe('CopyMessages, MoveMessages, Expunge, GetChanges', () => {
  it('copies with a COPYUID map; copies share the body', async () => {
    const userId = await createUser(m.h);
    for (const s of ['one', 'two', 'three']) {
      await append(m.client, userId, byPath('INBOX'), message([`Subject: ${s}`, '', s]), {
        flags: [Flag.SEEN],
      });
    }
    const mbox = await mailboxId(userId, 'INBOX');
    await append(m.client, userId, byPath('Archive'), message(['', 'already there']));
    const copied = await call(m.client.copyMessages.bind(m.client), {
      userId,
      mailboxId: mbox,
      uids: uids([1, 1], [3, 7]),
      destination: byPath('Archive'),
    });
    const archive = await statusOf(userId, 'Archive');
    expect(copied.destinationMailboxId).toBe(archive.mailboxId);
    expect(copied.destinationUidValidity).toBe(archive.uidValidity);
    expect(copied.mappings).toEqual([
      { sourceUid: 1, destinationUid: 2 },
      { sourceUid: 3, destinationUid: 3 },
    ]);
    expect(archive).toMatchObject({ messages: 3, unseen: 1, uidNext: 4 });
    const copy = await content(m.client, { userId, mailboxId: archive.mailboxId, uid: 3 });
    expect(copy.bytes.toString()).toContain('Subject: three');
    // The copy is searchable in its new mailbox through the index.
    const found = await call(m.client.search.bind(m.client), {
      userId,
      mailboxId: archive.mailboxId,
      query: { key: { $case: 'subject', value: 'hree' } },
    });
    expect(found.uids).toEqual([3]);
    const blobs = await m.h.db.collection('messages').distinct('blobId', { userId });
    expect(blobs.length).toBe(4);
    const refs = await m.h.db
      .collection<{ refs: number }>('blob_refs')
      .find({ _id: { $in: blobs } })
      .toArray();
    expect(refs.map((r) => r.refs).sort()).toEqual([1, 1, 2, 2]);
    expect(
      (
        await failureOf(
          call(m.client.copyMessages.bind(m.client), {
            userId,
            mailboxId: mbox,
            uids: ALL_UIDS,
            destination: byPath('Nope'),
          }),
        )
      ).reason,
    ).toBe(ErrorReason.NOT_FOUND);
  });

  it('moves: the source loses the messages (VANISHED), the destination gains them', async () => {
    const userId = await createUser(m.h);
    for (const s of ['alpha', 'bravo', 'charlie']) {
      await append(m.client, userId, byPath('INBOX'), message([`Subject: ${s}`, '', s]));
    }
    const inbox = await statusOf(userId, 'INBOX');
    const moved = await call(m.client.moveMessages.bind(m.client), {
      userId,
      mailboxId: inbox.mailboxId,
      uids: uids([2, 3]),
      destination: byPath('Trash'),
    });
    expect(moved.mappings).toEqual([
      { sourceUid: 2, destinationUid: 1 },
      { sourceUid: 3, destinationUid: 2 },
    ]);
    expect(moved.sourceHighestModseq).toBeGreaterThan(inbox.highestModseq);
    expect((await fetchMessages(m.client, { userId, mailboxId: inbox.mailboxId })).map((f) => f.uid)).toEqual(
      [1],
    );
    expect(await statusOf(userId, 'INBOX')).toMatchObject({
      messages: 1,
      highestModseq: moved.sourceHighestModseq,
    });
    const trash = await statusOf(userId, 'Trash');
    expect(trash).toMatchObject({ messages: 2, unseen: 2 });
    const body = await content(m.client, { userId, mailboxId: trash.mailboxId, uid: 2 });
    expect(body.bytes.toString()).toContain('Subject: charlie');
    const searchFor = async (mailboxId: string) =>
      (
        await call(m.client.search.bind(m.client), {
          userId,
          mailboxId,
          query: { key: { $case: 'subject', value: 'charl' } },
        })
      ).uids;
    expect(await searchFor(trash.mailboxId)).toEqual([2]);
    expect(await searchFor(inbox.mailboxId)).toEqual([]);
    const changes = await call(m.client.getChanges.bind(m.client), {
      userId,
      mailboxId: inbox.mailboxId,
      sinceModseq: inbox.highestModseq,
      uidValidity: inbox.uidValidity,
      knownUids: undefined,
    });
    expect(changes.vanished?.ranges).toEqual([{ first: 2, last: 3 }]);
    expect(changes.changed).toEqual([]);
  });

  it('expunges only \\Deleted messages (all, or within a UID set), with tombstones and counters', async () => {
    const userId = await createUser(m.h);
    const raw = message(['Subject: e', '', 'x']);
    for (let i = 0; i < 5; i++) await append(m.client, userId, byPath('INBOX'), raw);
    const inbox = await statusOf(userId, 'INBOX');
    const mbox = inbox.mailboxId;
    const nothing = await call(m.client.expunge.bind(m.client), { userId, mailboxId: mbox, uids: undefined });
    expect(nothing.expungedUids).toEqual([]);
    await store(userId, mbox, uids([2, 4]), StoreMode.ADD, [Flag.DELETED]);
    const partial = await call(m.client.expunge.bind(m.client), {
      userId,
      mailboxId: mbox,
      uids: uids([3, 5]),
    });
    expect(partial.expungedUids).toEqual([3, 4]);
    const rest = await call(m.client.expunge.bind(m.client), { userId, mailboxId: mbox, uids: undefined });
    expect(rest.expungedUids).toEqual([2]);
    expect(rest.highestModseq).toBeGreaterThan(partial.highestModseq);
    expect(await statusOf(userId, 'INBOX')).toMatchObject({ messages: 2, deleted: 0, size: raw.length * 2 });
    const changes = await call(m.client.getChanges.bind(m.client), {
      userId,
      mailboxId: mbox,
      sinceModseq: inbox.highestModseq,
      uidValidity: inbox.uidValidity,
      knownUids: uids([1, 3]),
    });
    // Restricted to the caller's known UIDs (RFC 7162 §3.2.5).
    expect(changes.vanished?.ranges).toEqual([{ first: 2, last: 3 }]);
    expect(changes.changed.map((c) => c.uid)).toEqual([]);
    expect(changes.highestModseq).toBe(rest.highestModseq);
    const stale = await call(m.client.getChanges.bind(m.client), {
      userId,
      mailboxId: mbox,
      sinceModseq: 0,
      uidValidity: inbox.uidValidity + 1,
      knownUids: undefined,
    });
    expect(stale.uidValidityChanged).toBe(true);
    expect(stale.changed).toEqual([]);
  });

  it('takes over the claim of an expunge that died midway (several replicas: no mailbox index)', async () => {
    // Claims order EXPUNGE and MOVE between replicas; one owner (index on) orders them with the
    // mailbox's lock and writes tombstone records instead (mailstore-records.int.test.ts).
    const saved = sharedMailboxIndex.maxMessages;
    sharedMailboxIndex.maxMessages = 0;
    try {
      const userId = await createUser(m.h);
      const appended = await append(m.client, userId, byPath('INBOX'), message(['Subject: stuck', '', 'x']), {
        flags: [Flag.DELETED],
      });
      const messages = m.h.db.collection('messages');
      const filter = { mailboxId: appended.mailboxId, uid: appended.uid };
      await messages.updateOne(filter, { $set: { expungeClaim: 'live', expungeClaimedAt: new Date() } });
      const blocked = await call(m.client.expunge.bind(m.client), {
        userId,
        mailboxId: appended.mailboxId,
        uids: undefined,
      });
      expect(blocked.expungedUids).toEqual([]);
      await messages.updateOne(filter, { $set: { expungeClaimedAt: new Date(Date.now() - 3_600_000) } });
      const taken = await call(m.client.expunge.bind(m.client), {
        userId,
        mailboxId: appended.mailboxId,
        uids: undefined,
      });
      expect(taken.expungedUids).toEqual([appended.uid]);
      expect(await messages.countDocuments(filter)).toBe(0);
    } finally {
      sharedMailboxIndex.maxMessages = saved;
    }
  });

  it('GetChanges reports new and re-flagged messages since a modseq', async () => {
    const userId = await createUser(m.h);
    const raw = message(['Subject: c', '', 'x']);
    await append(m.client, userId, byPath('INBOX'), raw);
    await append(m.client, userId, byPath('INBOX'), raw);
    const mid = await statusOf(userId, 'INBOX');
    await append(m.client, userId, byPath('INBOX'), raw);
    await store(userId, mid.mailboxId, uids([1, 1]), StoreMode.ADD, [Flag.SEEN]);
    const changes = await call(m.client.getChanges.bind(m.client), {
      userId,
      mailboxId: mid.mailboxId,
      sinceModseq: mid.highestModseq,
      uidValidity: 0,
      knownUids: undefined,
    });
    expect(changes.changed.map((c) => [c.uid, c.flags])).toEqual([
      [1, [Flag.SEEN]],
      [3, []],
    ]);
    expect(changes.uidNext).toBe(4);
  });
});

describe('Search', () => {
  let userId: string;
  let mbox: string;
  const search = async (query: mailstore.SearchKey) =>
    (await call(m.client.search.bind(m.client), { userId, mailboxId: mbox, query })).uids;
  const key = (k: NonNullable<mailstore.SearchKey['key']>): mailstore.SearchKey => ({ key: k });

  beforeAll(async () => {
    userId = await createUser(m.h);
    // uid 1: the nested message; 2: a plain one; 3: an encoded-word subject, flagged.
    await append(m.client, userId, byPath('INBOX'), NESTED, {
      internalDate: new Date('2026-03-05T10:00:00Z'),
    });
    await append(
      m.client,
      userId,
      byPath('INBOX'),
      message([
        'From: Eve <eve@other.test>',
        'To: alice@example.test',
        'Bcc: hidden@example.test',
        'Subject: Lunch?',
        'Date: Fri, 6 Mar 2026 12:00:00 +0000',
        'X-Tracking: ABC-123',
        '',
        'Shall we meet at noon? No zebras involved.',
        '',
      ]),
      { internalDate: new Date('2026-03-06T12:00:00Z'), keywords: ['lunch'] },
    );
    await append(
      m.client,
      userId,
      byPath('INBOX'),
      message([
        'From: =?utf-8?q?J=C3=BCrgen?= <jurgen@example.test>',
        'Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=',
        '',
        'Servus',
      ]),
      { internalDate: new Date('2026-03-07T00:00:00Z'), flags: [Flag.FLAGGED] },
    );
  });

  it('matches substrings of header fields case-insensitively, including inside words', async () => {
    expect(await search(key({ $case: 'subject', value: 'ARTERL' }))).toEqual([1]);
    expect(await search(key({ $case: 'subject', value: 'grüße' }))).toEqual([3]);
    expect(await search(key({ $case: 'from', value: 'alice@exam' }))).toEqual([1]);
    expect(await search(key({ $case: 'from', value: 'jürgen' }))).toEqual([3]);
    expect(await search(key({ $case: 'to', value: 'carol' }))).toEqual([1]);
    expect(await search(key({ $case: 'to', value: 'alice' }))).toEqual([2]);
    expect(await search(key({ $case: 'cc', value: 'dave' }))).toEqual([1]);
    expect(await search(key({ $case: 'bcc', value: 'hidden' }))).toEqual([2]);
    expect(await search(key({ $case: 'subject', value: 'lu' }))).toEqual([2]);
    expect(await search(key({ $case: 'subject', value: 'absent words' }))).toEqual([]);
  });

  it('matches body and text', async () => {
    expect(await search(key({ $case: 'body', value: 'zebra' }))).toEqual([1, 2]);
    expect(await search(key({ $case: 'body', value: 'ebra k' }))).toEqual([1]);
    expect(await search(key({ $case: 'body', value: 'HTML body' }))).toEqual([1]);
    expect(await search(key({ $case: 'body', value: 'Quarterly' }))).toEqual([]);
    expect(await search(key({ $case: 'text', value: 'Quarterly' }))).toEqual([1]);
    expect(await search(key({ $case: 'text', value: 'noon' }))).toEqual([2]);
  });

  it('matches header fields by name, an empty value meaning presence', async () => {
    expect(await search(key({ $case: 'header', value: { field: 'x-tracking', value: 'abc-1' } }))).toEqual([
      2,
    ]);
    expect(await search(key({ $case: 'header', value: { field: 'Message-ID', value: '' } }))).toEqual([1]);
    expect(await search(key({ $case: 'header', value: { field: 'X-None', value: '' } }))).toEqual([]);
  });

  it('matches flags, keywords, dates, sizes, UIDs, modseq and boolean combinations', async () => {
    const d = (year: number, month: number, day: number) => ({ year, month, day });
    expect(await search(key({ $case: 'flag', value: Flag.FLAGGED }))).toEqual([3]);
    expect(await search(key({ $case: 'not', value: key({ $case: 'flag', value: Flag.FLAGGED }) }))).toEqual([
      1, 2,
    ]);
    expect(await search(key({ $case: 'keyword', value: 'lunch' }))).toEqual([2]);
    expect(await search(key({ $case: 'on', value: d(2026, 3, 6) }))).toEqual([2]);
    expect(await search(key({ $case: 'before', value: d(2026, 3, 6) }))).toEqual([1]);
    expect(await search(key({ $case: 'since', value: d(2026, 3, 6) }))).toEqual([2, 3]);
    // The Date: header's own calendar day (-0800), not UTC's 4 March.
    expect(await search(key({ $case: 'sentOn', value: d(2026, 3, 3) }))).toEqual([1]);
    expect(await search(key({ $case: 'sentSince', value: d(2026, 3, 4) }))).toEqual([2, 3]);
    expect(await search(key({ $case: 'sentBefore', value: d(2026, 3, 4) }))).toEqual([1]);
    expect(await search(key({ $case: 'larger', value: 500 }))).toEqual([1]);
    expect(await search(key({ $case: 'smaller', value: 500 }))).toEqual([2, 3]);
    expect(await search(key({ $case: 'uid', value: uids([2, 0]) }))).toEqual([2, 3]);
    expect(await search(key({ $case: 'all', value: true }))).toEqual([1, 2, 3]);
    expect(await search(key({ $case: 'youngerThanSeconds', value: 60 }))).toEqual([]);
    const or = key({
      $case: 'or',
      value: {
        keys: [key({ $case: 'subject', value: 'lunch' }), key({ $case: 'flag', value: Flag.FLAGGED })],
      },
    });
    expect(await search(or)).toEqual([2, 3]);
    const and = key({
      $case: 'and',
      value: {
        keys: [
          key({ $case: 'body', value: 'zebra' }),
          key({ $case: 'not', value: key({ $case: 'uid', value: uids([1, 1]) }) }),
        ],
      },
    });
    expect(await search(and)).toEqual([2]);
    const result = await call(m.client.search.bind(m.client), {
      userId,
      mailboxId: mbox,
      query: key({ $case: 'modseq', value: 1 }),
    });
    expect(result.uids).toEqual([1, 2, 3]);
    expect(result.highestModseq).toBe((await statusOf(userId, 'INBOX')).highestModseq);
    const bad = await failureOf(search(key({ $case: 'on', value: d(2026, 2, 30) })));
    expect(bad.reason).toBe(ErrorReason.INVALID_ARGUMENT);
  });

  beforeAll(async () => {
    mbox = await mailboxId(userId, 'INBOX');
  });
});

describe('GetQuota and OVER_QUOTA', () => {
  it('counts usage and refuses appends and copies beyond the quota', async () => {
    const userId = await createUser(m.h, 1000);
    const raw = Buffer.concat([message(['Subject: q', '', '']), Buffer.alloc(580, 0x61)]);
    const first = await append(m.client, userId, byPath('INBOX'), raw);
    const quota = await call(m.client.getQuota.bind(m.client), { userId });
    expect(quota).toMatchObject({ usedBytes: raw.length, limitBytes: 1000, usedMessages: 1 });
    const over = await failureOf(append(m.client, userId, byPath('INBOX'), raw));
    expect(over.reason).toBe(ErrorReason.OVER_QUOTA);
    const copy = await failureOf(
      call(m.client.copyMessages.bind(m.client), {
        userId,
        mailboxId: first.mailboxId,
        uids: ALL_UIDS,
        destination: byPath('Archive'),
      }),
    );
    expect(copy.reason).toBe(ErrorReason.OVER_QUOTA);
    await store(userId, first.mailboxId, ALL_UIDS, StoreMode.ADD, [Flag.DELETED]);
    await call(m.client.expunge.bind(m.client), { userId, mailboxId: first.mailboxId, uids: undefined });
    expect((await call(m.client.getQuota.bind(m.client), { userId })).usedBytes).toBe(0);
    expect((await failureOf(call(m.client.getQuota.bind(m.client), { userId: 'f'.repeat(24) }))).reason).toBe(
      ErrorReason.NOT_FOUND,
    );
  });
});

describe('failures every message RPC shares', () => {
  it("answers NOT_FOUND for another user's mailbox and malformed ids, so ids cannot be probed", async () => {
    const owner = await createUser(m.h);
    const other = await createUser(m.h);
    const mbox = (await append(m.client, owner, byPath('INBOX'), message(['Subject: mine', '', 'x'])))
      .mailboxId;
    for (const mailboxId of [mbox, 'not-an-id', '']) {
      const attempts: (() => Promise<unknown>)[] = [
        () => fetchMessages(m.client, { userId: other, mailboxId }),
        () => content(m.client, { userId: other, mailboxId, uid: 1 }),
        () => store(other, mailboxId, ALL_UIDS, StoreMode.ADD, [Flag.SEEN]),
        () =>
          call(m.client.copyMessages.bind(m.client), {
            userId: other,
            mailboxId,
            uids: ALL_UIDS,
            destination: byPath('INBOX'),
          }),
        () =>
          call(m.client.moveMessages.bind(m.client), {
            userId: other,
            mailboxId,
            uids: ALL_UIDS,
            destination: byPath('INBOX'),
          }),
        () => call(m.client.expunge.bind(m.client), { userId: other, mailboxId, uids: undefined }),
        () =>
          call(m.client.search.bind(m.client), {
            userId: other,
            mailboxId,
            query: { key: { $case: 'all', value: true } },
          }),
        () =>
          call(m.client.getChanges.bind(m.client), {
            userId: other,
            mailboxId,
            sinceModseq: 0,
            uidValidity: 0,
            knownUids: undefined,
          }),
      ];
      for (const attempt of attempts) expect((await failureOf(attempt())).reason).toBe(ErrorReason.NOT_FOUND);
    }
    // The owner's message is untouched.
    expect((await fetchMessages(m.client, { userId: owner, mailboxId: mbox })).map((f) => f.flags)).toEqual([
      [],
    ]);
  });

  it('answers INVALID_ARGUMENT for a missing user, a missing query or UID set, and NOT_ALLOWED for a move onto itself', async () => {
    const userId = await createUser(m.h);
    const mbox = (await append(m.client, userId, byPath('INBOX'), message(['', 'x']))).mailboxId;
    const noUser = await failureOf(call(m.client.getQuota.bind(m.client), { userId: '' }));
    expect(noUser).toMatchObject({ reason: ErrorReason.INVALID_ARGUMENT, field: 'user_id' });
    const noQuery = await failureOf(
      call(m.client.search.bind(m.client), { userId, mailboxId: mbox, query: undefined }),
    );
    expect(noQuery).toMatchObject({ reason: ErrorReason.INVALID_ARGUMENT, field: 'query' });
    const emptyKey = await failureOf(
      call(m.client.search.bind(m.client), { userId, mailboxId: mbox, query: {} }),
    );
    expect(emptyKey.reason).toBe(ErrorReason.INVALID_ARGUMENT);
    const noUids = await failureOf(
      call(m.client.copyMessages.bind(m.client), {
        userId,
        mailboxId: mbox,
        uids: undefined,
        destination: byPath('Trash'),
      }),
    );
    expect(noUids).toMatchObject({ reason: ErrorReason.INVALID_ARGUMENT, field: 'uids' });
    const ontoItself = await failureOf(
      call(m.client.moveMessages.bind(m.client), {
        userId,
        mailboxId: mbox,
        uids: ALL_UIDS,
        destination: byPath('INBOX'),
      }),
    );
    expect(ontoItself.reason).toBe(ErrorReason.NOT_ALLOWED);
    const emptyPath = await failureOf(
      call(m.client.setSubscribed.bind(m.client), { userId, path: '', subscribed: true }),
    );
    expect(emptyPath.reason).toBe(ErrorReason.INVALID_NAME);
  });
});
