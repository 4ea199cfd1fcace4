/**
 * Contract suite of the Mailstore mailbox RPCs over real gRPC and FerretDB: ListMailboxes
 * (RFC 9051 §6.3.9, RFC 5258 §3, RFC 6154 §3), CreateMailbox (§6.3.4), RenameMailbox (§6.3.6),
 * DeleteMailbox (§6.3.5), SetSubscribed (§6.3.7/§6.3.8), GetMailboxStatus (§6.3.11,
 * RFC 7162 §3.1.2.1), including their typed failures.
 */
import { status } from '@grpc/grpc-js';
import { ErrorReason, mailstore } from '@postmesh/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ObjectId } from 'mongodb';
import { Mailstore, MailstoreError } from '../src/mailstore/index.js';
import { subscriptions } from '../src/mailstore/mailboxes.js';
import {
  append,
  byId,
  byPath,
  call,
  createUser,
  failureOf,
  fetchMessages,
  message,
  startMailstoreHarness,
  type MailstoreHarness,
} from './mailstore-helpers.js';

const { SpecialUse } = mailstore;

let m: MailstoreHarness;

beforeAll(async () => {
  m = await startMailstoreHarness();
});

afterAll(async () => {
  await m?.stop();
});

const list = async (userId: string, pattern: string, extra: Partial<mailstore.ListMailboxesRequest> = {}) =>
  (
    await call(m.client.listMailboxes.bind(m.client), {
      userId,
      reference: '',
      pattern,
      subscribedOnly: false,
      specialUse: [],
      ...extra,
    })
  ).mailboxes;

const create = (userId: string, path: string, extra: Partial<mailstore.CreateMailboxRequest> = {}) =>
  call(m.client.createMailbox.bind(m.client), {
    userId,
    path,
    specialUse: SpecialUse.UNSPECIFIED,
    subscribe: false,
    ...extra,
  });

const statusOf = async (userId: string, path: string, claimRecent = false) =>
  call(m.client.getMailboxStatus.bind(m.client), { userId, mailbox: byPath(path), claimRecent });

describe('default mailboxes and LIST', () => {
  it('gives a new user INBOX and the five special-use mailboxes, subscribed', async () => {
    const userId = await createUser(m.h);
    const boxes = await list(userId, '*');
    expect(boxes.map((b) => [b.path, b.specialUse, b.subscribed])).toEqual([
      ['Archive', SpecialUse.ARCHIVE, true],
      ['Drafts', SpecialUse.DRAFTS, true],
      ['INBOX', SpecialUse.UNSPECIFIED, true],
      ['Junk', SpecialUse.JUNK, true],
      ['Sent', SpecialUse.SENT, true],
      ['Trash', SpecialUse.TRASH, true],
    ]);
    expect(
      boxes.every((b) => b.delimiter === '/' && b.id !== '' && b.uidValidity > 0 && b.uidNext === 1),
    ).toBe(true);
    expect(new Set(boxes.map((b) => b.uidValidity)).size).toBe(6);
  });

  it('is idempotent', async () => {
    const userId = await createUser(m.h);
    await m.store.createDefaultMailboxes(userId);
    expect((await list(userId, '*')).length).toBe(6);
  });

  it('applies `*`, `%`, references, INBOX case-insensitivity and has_children', async () => {
    const userId = await createUser(m.h);
    await create(userId, 'Work/Projects/Alpha');
    await create(userId, 'INBOX/Lists');
    const paths = async (pattern: string, reference = '') =>
      (await list(userId, pattern, { reference })).map((b) => b.path);
    expect(await paths('Work/*')).toEqual(['Work/Projects', 'Work/Projects/Alpha']);
    expect(await paths('Work/%')).toEqual(['Work/Projects']);
    expect(await paths('%', 'Work/')).toEqual(['Work/Projects']);
    expect(await paths('inbox')).toEqual(['INBOX']);
    expect(await paths('iNbOx/%')).toEqual(['INBOX/Lists']);
    expect(await paths('')).toEqual([]);
    const work = (await list(userId, '%')).find((b) => b.path === 'Work');
    expect(work?.hasChildren).toBe(true);
    const alpha = (await list(userId, '*')).find((b) => b.path === 'Work/Projects/Alpha');
    expect(alpha?.hasChildren).toBe(false);
  });

  it('filters by special use', async () => {
    const userId = await createUser(m.h);
    const boxes = await list(userId, '*', { specialUse: [SpecialUse.SENT, SpecialUse.TRASH] });
    expect(boxes.map((b) => b.path)).toEqual(['Sent', 'Trash']);
  });

  it('lists subscriptions, including ones whose mailbox does not exist (\\NonExistent)', async () => {
    const userId = await createUser(m.h);
    await call(m.client.setSubscribed.bind(m.client), { userId, path: 'Gone/Away', subscribed: true });
    await call(m.client.setSubscribed.bind(m.client), { userId, path: 'Junk', subscribed: false });
    const subscribed = await list(userId, '*', { subscribedOnly: true });
    expect(subscribed.map((b) => [b.path, b.nonexistent])).toEqual([
      ['Archive', false],
      ['Drafts', false],
      ['Gone/Away', true],
      ['INBOX', false],
      ['Sent', false],
      ['Trash', false],
    ]);
    expect(subscribed.find((b) => b.path === 'Gone/Away')?.id).toBe('');
    expect((await list(userId, 'Junk'))[0]?.subscribed).toBe(false);
  });
});

describe('SetSubscribed names', () => {
  it('refuses names CREATE would refuse, but still removes such a subscription stored earlier', async () => {
    const userId = await createUser(m.h);
    const subscribe = (path: string, subscribed: boolean) =>
      call(m.client.setSubscribed.bind(m.client), { userId, path, subscribed });
    expect(await failureOf(subscribe('bad*name', true))).toMatchObject({
      reason: ErrorReason.INVALID_NAME,
      field: 'path',
    });
    expect(await failureOf(subscribe('x'.repeat(1100), true))).toMatchObject({
      reason: ErrorReason.LIMIT_EXCEEDED,
    });
    expect(await failureOf(subscribe('never*stored', false))).toMatchObject({
      reason: ErrorReason.INVALID_NAME,
    });
    // A subscription written before names were checked.
    await subscriptions(m.h.db).insertOne({ _id: new ObjectId(), userId, path: 'old%one' });
    expect((await list(userId, '*', { subscribedOnly: true })).map((b) => b.path)).toContain('old%one');
    await subscribe('old%one', false);
    expect((await list(userId, '*', { subscribedOnly: true })).map((b) => b.path)).not.toContain('old%one');
  });
});

describe('CreateMailbox', () => {
  it('creates missing parents and reports them', async () => {
    const userId = await createUser(m.h);
    const created = await create(userId, 'a/b/c', { subscribe: true });
    expect(created.createdParents).toEqual(['a', 'a/b']);
    expect(created.mailbox?.path).toBe('a/b/c');
    expect(created.mailbox?.subscribed).toBe(true);
    expect((await list(userId, 'a*')).map((b) => b.path)).toEqual(['a', 'a/b', 'a/b/c']);
    expect((await create(userId, 'a/d')).createdParents).toEqual([]);
  });

  it('ignores one trailing delimiter', async () => {
    const userId = await createUser(m.h);
    expect((await create(userId, 'Folder/')).mailbox?.path).toBe('Folder');
  });

  it.each([
    ['', ErrorReason.INVALID_NAME],
    ['/x', ErrorReason.INVALID_NAME],
    ['a//b', ErrorReason.INVALID_NAME],
    ['bad\nname', ErrorReason.INVALID_NAME],
    ['x'.repeat(2000), ErrorReason.LIMIT_EXCEEDED],
  ])('refuses %j with %s', async (path, reason) => {
    const userId = await createUser(m.h);
    const failure = await failureOf(create(userId, path));
    expect(failure.reason).toBe(reason);
    expect(failure.field).toBe('path');
  });

  it('refuses an existing name, INBOX in any case, and a taken special use', async () => {
    const userId = await createUser(m.h);
    expect(await failureOf(create(userId, 'Sent'))).toMatchObject({
      code: status.ALREADY_EXISTS,
      reason: ErrorReason.ALREADY_EXISTS,
    });
    expect((await failureOf(create(userId, 'inbox'))).reason).toBe(ErrorReason.ALREADY_EXISTS);
    expect((await failureOf(create(userId, 'Sent Items', { specialUse: SpecialUse.SENT }))).reason).toBe(
      ErrorReason.NOT_ALLOWED,
    );
    const all = await create(userId, 'Everything', { specialUse: SpecialUse.ALL });
    expect(all.mailbox?.specialUse).toBe(SpecialUse.ALL);
  });

  it('refuses mailboxes beyond the per-user limit with LIMIT_EXCEEDED', async () => {
    const userId = await createUser(m.h);
    const limited = new Mailstore(
      {
        db: m.h.db,
        runtime: m.h.app.mailstoreRuntime,
        blobs: m.h.app.blobs,
        keyring: m.h.app.keyring,
        logger: m.h.logger,
      },
      { maxMailboxes: 8 },
    );
    await limited.createMailbox(userId, 'Seventh', SpecialUse.UNSPECIFIED, false);
    const error = await limited.createMailbox(userId, 'Eighth/Ninth', SpecialUse.UNSPECIFIED, false).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(MailstoreError);
    expect((error as MailstoreError).reason).toBe(ErrorReason.LIMIT_EXCEEDED);
    expect((await list(userId, 'Eighth*')).length).toBe(0);
  });

  it('gives a recreated path a greater UIDVALIDITY (RFC 9051 §2.3.1.1)', async () => {
    const userId = await createUser(m.h);
    const first = (await create(userId, 'Again')).mailbox?.uidValidity ?? 0;
    await call(m.client.deleteMailbox.bind(m.client), { userId, mailbox: byPath('Again') });
    const second = (await create(userId, 'Again')).mailbox?.uidValidity ?? 0;
    expect(second).toBeGreaterThan(first);
  });
});

describe('RenameMailbox', () => {
  it('renames a mailbox with its children and keeps its id and UIDVALIDITY', async () => {
    const userId = await createUser(m.h);
    const original = (await create(userId, 'Old/Child/Leaf')).mailbox;
    const parent = (await list(userId, 'Old'))[0];
    const renamed = await call(m.client.renameMailbox.bind(m.client), {
      userId,
      mailbox: byPath('Old'),
      newPath: 'New/Place',
    });
    expect(renamed.mailbox?.id).toBe(parent?.id);
    expect(renamed.mailbox?.uidValidity).toBe(parent?.uidValidity);
    const paths = (await list(userId, '*')).map((b) => b.path);
    expect(paths).toEqual(
      expect.arrayContaining(['New', 'New/Place', 'New/Place/Child', 'New/Place/Child/Leaf']),
    );
    expect(paths.some((p) => p.startsWith('Old'))).toBe(false);
    expect((await list(userId, 'New/Place/Child/Leaf'))[0]?.id).toBe(original?.id);
  });

  it('refuses an existing target, a rename into itself and an unknown source', async () => {
    const userId = await createUser(m.h);
    await create(userId, 'P/Q');
    const rename = (from: string, to: string) =>
      call(m.client.renameMailbox.bind(m.client), { userId, mailbox: byPath(from), newPath: to });
    expect((await failureOf(rename('P', 'Sent'))).reason).toBe(ErrorReason.ALREADY_EXISTS);
    expect((await failureOf(rename('P', 'P/Q/R'))).reason).toBe(ErrorReason.NOT_ALLOWED);
    expect((await failureOf(rename('Nope', 'X'))).reason).toBe(ErrorReason.NOT_FOUND);
    expect((await failureOf(rename('P', 'a//b'))).reason).toBe(ErrorReason.INVALID_NAME);
  });

  it('renaming INBOX moves its messages to the new mailbox and leaves INBOX empty', async () => {
    const userId = await createUser(m.h);
    await create(userId, 'INBOX/Kept');
    const raw = message(['Subject: moved along', '', 'body']);
    await append(m.client, userId, byPath('INBOX'), raw);
    await append(m.client, userId, byPath('INBOX'), raw, { flags: [mailstore.Flag.SEEN] });
    const before = await statusOf(userId, 'INBOX');
    const renamed = await call(m.client.renameMailbox.bind(m.client), {
      userId,
      mailbox: byPath('INBOX'),
      newPath: 'Old Mail',
    });
    const inbox = await statusOf(userId, 'INBOX');
    expect(inbox.status?.messages).toBe(0);
    expect(inbox.status?.mailboxId).toBe(before.status?.mailboxId);
    expect(inbox.status?.uidNext).toBe(3);
    const moved = await statusOf(userId, 'Old Mail');
    expect(moved.status).toMatchObject({ messages: 2, unseen: 1 });
    expect(renamed.mailbox?.id).toBe(moved.status?.mailboxId);
    const fetched = await fetchMessages(m.client, { userId, mailboxId: moved.status?.mailboxId ?? '' });
    expect(fetched.map((f) => f.uid)).toEqual([1, 2]);
    // INBOX's children stay (RFC 9051 §6.3.6).
    expect((await list(userId, 'INBOX/*')).map((b) => b.path)).toEqual(['INBOX/Kept']);
    // Sessions on INBOX learn that both messages vanished.
    const changes = await call(m.client.getChanges.bind(m.client), {
      userId,
      mailboxId: inbox.status?.mailboxId ?? '',
      sinceModseq: before.status?.highestModseq ?? 0,
      uidValidity: 0,
      knownUids: undefined,
    });
    expect(changes.vanished?.ranges).toEqual([{ first: 1, last: 2 }]);
  });
});

describe('DeleteMailbox', () => {
  it('refuses INBOX and a mailbox with children', async () => {
    const userId = await createUser(m.h);
    await create(userId, 'Parent/Child');
    const del = (path: string) =>
      call(m.client.deleteMailbox.bind(m.client), { userId, mailbox: byPath(path) });
    expect(await failureOf(del('INBOX'))).toMatchObject({
      code: status.FAILED_PRECONDITION,
      reason: ErrorReason.NOT_ALLOWED,
    });
    expect((await failureOf(del('Parent'))).reason).toBe(ErrorReason.NOT_ALLOWED);
    expect((await failureOf(del('Missing'))).reason).toBe(ErrorReason.NOT_FOUND);
  });

  it('deletes a mailbox and its messages but keeps its subscription', async () => {
    const userId = await createUser(m.h);
    const box = (await create(userId, 'Temp', { subscribe: true })).mailbox;
    await append(m.client, userId, byPath('Temp'), message(['Subject: x', '', 'y']));
    const deleted = await call(m.client.deleteMailbox.bind(m.client), {
      userId,
      mailbox: byId(box?.id ?? ''),
    });
    expect(deleted.mailboxId).toBe(box?.id);
    expect(await list(userId, 'Temp')).toEqual([]);
    expect((await list(userId, 'Temp', { subscribedOnly: true }))[0]?.nonexistent).toBe(true);
    expect(await m.h.db.collection('messages').countDocuments({ mailboxId: box?.id })).toBe(0);
  });

  it("does not let one user touch another user's mailbox", async () => {
    const owner = await createUser(m.h);
    const other = await createUser(m.h);
    const box = (await create(owner, 'Private')).mailbox;
    const failure = await failureOf(
      call(m.client.deleteMailbox.bind(m.client), { userId: other, mailbox: byId(box?.id ?? '') }),
    );
    expect(failure.reason).toBe(ErrorReason.NOT_FOUND);
  });
});

describe('GetMailboxStatus', () => {
  it('reports counters kept at write time, and \\Recent claimed by one SELECT', async () => {
    const userId = await createUser(m.h);
    const raw = message(['Subject: s', '', 'hello']);
    await append(m.client, userId, byPath('INBOX'), raw, { flags: [mailstore.Flag.SEEN] });
    await append(m.client, userId, byPath('INBOX'), raw);
    await append(m.client, userId, byPath('INBOX'), raw, { flags: [mailstore.Flag.DELETED] });
    const first = await statusOf(userId, 'INBOX', true);
    expect(first.status).toMatchObject({
      path: 'INBOX',
      messages: 3,
      recent: 3,
      uidNext: 4,
      unseen: 2,
      deleted: 1,
      size: raw.length * 3,
      firstUnseenUid: 2,
    });
    expect(first.firstRecentUid).toBe(1);
    const second = await statusOf(userId, 'INBOX', true);
    expect(second.status?.recent).toBe(0);
    expect(second.firstRecentUid).toBe(4);
    const trash = await statusOf(userId, 'Trash');
    expect(trash.specialUse).toBe(SpecialUse.TRASH);
    expect((await failureOf(statusOf(userId, 'Nope'))).reason).toBe(ErrorReason.NOT_FOUND);
  });

  it('finds the first unseen message wherever it is (RFC 3501 §7.1 UNSEEN)', async () => {
    const userId = await createUser(m.h);
    const raw = message(['Subject: u', '', 'hello']);
    const seen = { flags: [mailstore.Flag.SEEN] };
    const firstUnseen = async () => (await statusOf(userId, 'INBOX')).status?.firstUnseenUid;
    const setFlags = async (uids: [number, number], mode: mailstore.StoreMode, flags: mailstore.Flag[]) => {
      const inbox = (await statusOf(userId, 'INBOX')).status?.mailboxId ?? '';
      await call(m.client.storeFlags.bind(m.client), {
        userId,
        mailboxId: inbox,
        uids: { ranges: [{ first: uids[0], last: uids[1] }] },
        mode,
        flags,
        keywords: [],
        unchangedSince: undefined,
      });
      return inbox;
    };
    // Every message unseen, the lowest UIDs expunged: the lowest UID in use.
    for (let i = 0; i < 4; i++) await append(m.client, userId, byPath('INBOX'), raw);
    const inbox = await setFlags([1, 2], mailstore.StoreMode.ADD, [mailstore.Flag.DELETED]);
    await call(m.client.expunge.bind(m.client), { userId, mailboxId: inbox, uids: undefined });
    expect(await firstUnseen()).toBe(3);
    // Unseen only at the top: the lowest of them.
    await setFlags([3, 3], mailstore.StoreMode.ADD, [mailstore.Flag.SEEN]);
    expect(await firstUnseen()).toBe(4);
    // Far more messages than one window of lookups, unseen at both ends.
    for (let i = 0; i < 70; i++) await append(m.client, userId, byPath('INBOX'), raw, seen);
    await append(m.client, userId, byPath('INBOX'), raw);
    expect(await firstUnseen()).toBe(4);
    await setFlags([4, 4], mailstore.StoreMode.ADD, [mailstore.Flag.SEEN]);
    expect(await firstUnseen()).toBe(75);
    await setFlags([1, 0], mailstore.StoreMode.ADD, [mailstore.Flag.SEEN]);
    expect(await firstUnseen()).toBe(0);
  });
});
