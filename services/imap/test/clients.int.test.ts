/**
 * Independent real clients against the real server (issue "Tests"): imapflow (Node), Python's
 * imaplib (a python3 script), and mbsync from Debian's isync doing a two-way sync of 1,000
 * messages with flags, then again after changes on both sides.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mailstore } from '@postmesh/contracts';
import { message, startImapStack, type ImapStack } from './harness.js';

const run = promisify(execFile);

describe('real IMAP clients', () => {
  let stack: ImapStack;
  beforeAll(async () => {
    stack = await startImapStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('imapflow: STARTTLS, list, append, fetch, search, flags, copy, move, expunge, idle', async () => {
    const user = await stack.createUser();
    const client = new ImapFlow({
      host: '127.0.0.1',
      port: stack.imapPort,
      secure: false,
      auth: { user: user.address, pass: user.password },
      tls: { rejectUnauthorized: false },
      logger: false,
    });
    await client.connect();
    try {
      expect(client.secureConnection || client.capabilities.has('IMAP4REV2')).toBe(true);
      const list = await client.list();
      expect(list.map((m) => m.path).sort()).toEqual(['Archive', 'Drafts', 'INBOX', 'Junk', 'Sent', 'Trash']);
      expect(list.find((m) => m.path === 'Sent')?.specialUse).toBe('\\Sent');
      await client.mailboxCreate('Projects/2026');
      for (let i = 0; i < 5; i++) {
        const appended = await client.append('INBOX', message(`flow ${i}`), i % 2 === 0 ? ['\\Seen'] : []);
        expect(appended && appended.uid).toBe(i + 1);
      }
      const lock = await client.getMailboxLock('INBOX');
      try {
        const subjects: string[] = [];
        for await (const msg of client.fetch('1:*', { envelope: true, flags: true, uid: true })) {
          subjects.push(msg.envelope?.subject ?? '');
        }
        expect(subjects).toEqual(['flow 0', 'flow 1', 'flow 2', 'flow 3', 'flow 4']);
        const one = await client.fetchOne('2', { source: true, bodyStructure: true });
        expect(one && one.source?.toString()).toBe(message('flow 1').toString());
        expect(await client.search({ seen: false })).toEqual([2, 4]);
        await client.messageFlagsAdd('2', ['\\Flagged']);
        expect(await client.search({ flagged: true }, { uid: true })).toEqual([2]);
        const copied = await client.messageCopy('1:2', 'Projects/2026');
        expect(copied && copied.uidMap?.size).toBe(2);
        const moved = await client.messageMove('5', 'Archive');
        expect(moved && moved.uidMap?.get(5)).toBe(1);
        await client.messageDelete('1');
        const status = await client.status('INBOX', { messages: true, unseen: true });
        expect(status && status.messages).toBe(3);

        // IDLE: a delivery arrives while idling.
        const exists = new Promise<number>((resolve) => {
          client.on('exists', (data: { count: number }) => resolve(data.count));
        });
        const idling = client.idle();
        await new Promise((r) => setTimeout(r, 200));
        await stack.grpc.mailstore.appendMessage({
          userId: user.id,
          mailbox: { selector: { $case: 'path', value: 'INBOX' } },
          flags: [mailstore.Flag.FLAGGED],
          keywords: [],
          internalDate: undefined,
          message: message('during idle'),
        });
        expect(await exists).toBe(4);
        await client.noop();
        await idling;
      } finally {
        lock.release();
      }
      const projects = await client.status('Projects/2026', { messages: true });
      expect(projects && projects.messages).toBe(2);
    } finally {
      await client.logout();
    }
  });

  it("Python's imaplib: list, select, search, fetch, store, copy, append, expunge, idle", async () => {
    const user = await stack.createUser();
    const { stdout } = await run(
      'python3',
      [
        join(import.meta.dirname, 'clients', 'imaplib_check.py'),
        '127.0.0.1',
        String(stack.imapPort),
        user.address,
        user.password,
      ],
      { timeout: 60_000 },
    ).catch((error: { stdout?: string; stderr?: string }) => {
      throw new Error(`imaplib failed:\n${error.stdout ?? ''}\n${error.stderr ?? ''}`);
    });
    expect(stdout).toContain('imaplib: all checks passed');
  });

  it('mbsync: two-way sync of 1,000 messages with flags, then changes on both sides, no duplicates or losses', async () => {
    const user = await stack.createUser();
    // 1,000 by default; POSTMESH_MBSYNC_MESSAGES (at least 200) runs a smaller sync for diagnosis.
    const TOTAL = Math.max(200, Number(process.env.POSTMESH_MBSYNC_MESSAGES ?? 1000));
    for (let start = 0; start < TOTAL; start += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, TOTAL - start) }, (_, k) => {
          const i = start + k;
          const flags: mailstore.Flag[] = [];
          if (i % 3 === 0) flags.push(mailstore.Flag.SEEN);
          if (i % 5 === 0) flags.push(mailstore.Flag.FLAGGED);
          return stack.grpc.mailstore.appendMessage({
            userId: user.id,
            mailbox: { selector: { $case: 'path', value: 'INBOX' } },
            flags,
            keywords: [],
            internalDate: undefined,
            message: message(`sync ${String(i).padStart(4, '0')}`),
          });
        }),
      );
    }
    const dir = join(stack.logDir, 'mbsync');
    const maildir = join(dir, 'mail');
    mkdirSync(maildir, { recursive: true });
    const config = join(dir, 'mbsyncrc');
    writeFileSync(
      config,
      [
        'IMAPAccount postmesh',
        'Host localhost', // the generated certificate names localhost (and the machine's hostname)
        `Port ${stack.imapPort}`,
        `User ${user.address}`,
        `Pass ${user.password}`,
        'SSLType STARTTLS',
        `CertificateFile ${join(stack.logDir, 'imap-data', 'tls', 'imap-selfsigned.crt')}`,
        '',
        'IMAPStore remote',
        'Account postmesh',
        '',
        'MaildirStore local',
        `Path ${maildir}/`,
        `Inbox ${maildir}/INBOX`,
        '',
        'Channel inbox',
        'Far :remote:',
        'Near :local:',
        'Patterns INBOX',
        'Create Both',
        'Expunge Both',
        'SyncState *',
        'Sync All',
        '',
      ].join('\n'),
    );
    const mbsync = async (attempt = 1): Promise<string> => {
      const result = await run('mbsync', ['-c', config, '-a'], { timeout: 500_000 }).catch(
        async (error: { stdout?: string; stderr?: string }) => {
          // Storage restarted under us (see the harness): re-running is how mbsync resumes.
          if (attempt < 3 && (error.stderr ?? '').includes('[UNAVAILABLE]')) {
            return { stdout: await mbsync(attempt + 1), stderr: '' };
          }
          throw new Error(
            `mbsync failed:\n${error.stdout ?? ''}\n${error.stderr ?? ''}\n${stack.log('imap').slice(-4000)}`,
          );
        },
      );
      return result.stdout + result.stderr;
    };
    const local = (): { file: string; box: 'cur' | 'new'; flags: string }[] =>
      (['cur', 'new'] as const).flatMap((box) =>
        readdirSync(join(maildir, 'INBOX', box)).map((file) => ({
          file,
          box,
          flags: file.split(':2,')[1] ?? '',
        })),
      );
    const server = async (): Promise<Map<string, mailstore.Flag[]>> => {
      const status = await stack.grpc.mailstore.getMailboxStatus({
        userId: user.id,
        mailbox: { selector: { $case: 'path', value: 'INBOX' } },
        claimRecent: false,
      });
      const out = new Map<string, mailstore.Flag[]>();
      for await (const m of stack.grpc.mailstore.fetchMessages({
        userId: user.id,
        mailboxId: status.status?.mailboxId ?? '',
        uids: { ranges: [{ first: 1, last: 0 }] },
        changedSince: undefined,
        fields: [mailstore.FetchField.ENVELOPE],
      })) {
        const subject = (JSON.parse(m.envelopeJson) as { subject: string }).subject;
        expect(out.has(subject), `duplicate ${subject} on the server`).toBe(false);
        out.set(subject, m.flags);
      }
      return out;
    };
    const subjectOf = (entry: { file: string; box: string }): string => {
      const text = readFileSyncUtf8(join(maildir, 'INBOX', entry.box, entry.file));
      return /^Subject: (.*)$/m.exec(text)?.[1]?.trim() ?? '';
    };

    await mbsync();
    let files = local();
    expect(files).toHaveLength(TOTAL);
    expect(files.filter((f) => f.flags.includes('S'))).toHaveLength(Math.ceil(TOTAL / 3));
    expect(files.filter((f) => f.flags.includes('F'))).toHaveLength(Math.ceil(TOTAL / 5));

    // Changes on the near side: flag 10 as seen, trash 10 (deleted + expunged), add 5 new.
    const unseen = files.filter((f) => !f.flags.includes('S') && !f.flags.includes('T')).slice(0, 20);
    const toSee = unseen.slice(0, 10);
    const toTrash = unseen.slice(10, 20);
    const trashedSubjects = new Set(toTrash.map(subjectOf));
    const seenSubjects = new Set(toSee.map(subjectOf));
    for (const f of toSee)
      renameFlags(join(maildir, 'INBOX', f.box), f.file, `${f.flags}S`, join(maildir, 'INBOX', 'cur'));
    for (const f of toTrash)
      renameFlags(join(maildir, 'INBOX', f.box), f.file, `${f.flags}T`, join(maildir, 'INBOX', 'cur'));
    for (let i = 0; i < 5; i++) {
      writeFileSync(join(maildir, 'INBOX', 'new', `${Date.now()}.local${i}.host`), message(`local ${i}`));
    }
    // Changes on the far side: 7 new messages, flag changes, an expunge of 3.
    for (let i = 0; i < 7; i++) {
      await stack.grpc.mailstore.appendMessage({
        userId: user.id,
        mailbox: { selector: { $case: 'path', value: 'INBOX' } },
        flags: [mailstore.Flag.ANSWERED],
        keywords: [],
        internalDate: undefined,
        message: message(`remote ${i}`),
      });
    }
    const status = await stack.grpc.mailstore.getMailboxStatus({
      userId: user.id,
      mailbox: { selector: { $case: 'path', value: 'INBOX' } },
      claimRecent: false,
    });
    const mailboxId = status.status?.mailboxId ?? '';
    const flaggedRemotely = await stack.grpc.mailstore.storeFlags({
      userId: user.id,
      mailboxId,
      uids: { ranges: [{ first: TOTAL - 100, last: TOTAL - 96 }] },
      mode: mailstore.StoreMode.ADD,
      flags: [mailstore.Flag.FLAGGED],
      keywords: [],
      unchangedSince: undefined,
    });
    const flaggedSubjects: string[] = [];
    for await (const m of stack.grpc.mailstore.fetchMessages({
      userId: user.id,
      mailboxId,
      uids: { ranges: flaggedRemotely.changed.map((c) => ({ first: c.uid, last: c.uid })) },
      changedSince: undefined,
      fields: [mailstore.FetchField.ENVELOPE],
    })) {
      flaggedSubjects.push((JSON.parse(m.envelopeJson) as { subject: string }).subject);
    }
    expect(flaggedSubjects.length).toBeGreaterThan(0);
    await stack.grpc.mailstore.storeFlags({
      userId: user.id,
      mailboxId,
      uids: { ranges: [{ first: TOTAL - 10, last: TOTAL - 8 }] },
      mode: mailstore.StoreMode.ADD,
      flags: [mailstore.Flag.DELETED],
      keywords: [],
      unchangedSince: undefined,
    });
    await stack.grpc.mailstore.expunge({
      userId: user.id,
      mailboxId,
      uids: { ranges: [{ first: TOTAL - 10, last: TOTAL - 8 }] },
    });

    await mbsync();
    const expected = TOTAL - 10 + 5 + 7 - 3;
    const remote = await server();
    files = local();
    expect(remote.size).toBe(expected);
    expect(files).toHaveLength(expected);
    const localSubjects = files.map(subjectOf);
    expect(new Set(localSubjects).size).toBe(expected);
    expect([...remote.keys()].sort()).toEqual([...localSubjects].sort());
    for (const subject of trashedSubjects) expect(remote.has(subject)).toBe(false);
    for (const subject of seenSubjects) expect(remote.get(subject)).toContain(mailstore.Flag.SEEN);
    for (let i = 0; i < 5; i++) expect(remote.has(`local ${i}`)).toBe(true);
    for (const subject of flaggedSubjects) expect(remote.get(subject)).toContain(mailstore.Flag.FLAGGED);
    const flagged = files.filter((f) => f.flags.includes('F')).map(subjectOf);
    expect(flagged).toEqual(expect.arrayContaining(flaggedSubjects));
    const answered = files.filter((f) => f.flags.includes('R')).map(subjectOf);
    expect(answered.sort()).toEqual(Array.from({ length: 7 }, (_, i) => `remote ${i}`));

    // A third run changes nothing.
    await mbsync();
    expect(local()).toHaveLength(expected);
    expect((await server()).size).toBe(expected);
    rmSync(dir, { recursive: true, force: true });
    // One UID FETCH per message: on a loaded 2-core machine storage needs minutes for 1,000.
  }, 900_000);
});

function renameFlags(fromDir: string, file: string, flags: string, toDir: string): void {
  const base = file.split(':2,')[0] ?? file;
  const sorted = [...new Set(flags)].sort().join('');
  renameSync(join(fromDir, file), join(toDir, `${base}:2,${sorted}`));
}

function readFileSyncUtf8(path: string): string {
  return readFileSync(path, 'utf8');
}
