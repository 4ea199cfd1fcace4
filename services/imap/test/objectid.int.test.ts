/**
 * OBJECTID (RFC 8474) against the real imap and storage services: MAILBOXID from CREATE, SELECT,
 * EXAMINE and STATUS, kept across RENAME; EMAILID kept by COPY and MOVE and shared by the copies
 * of one delivery to several users; THREADID shared by a message and its replies; SEARCH EMAILID
 * and THREADID.
 */
import { randomBytes } from 'node:crypto';
import { Bus, Subjects, encodeInboundJob, jobMessageId, publishDurable, Streams } from '@postmesh/bus';
import { createLogger } from '@postmesh/telemetry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loggedIn, type TestClient } from './client.js';
import { appendCommand } from './conversation.js';
import { startImapStack, type ImapStack } from './harness.js';

function mail(subject: string, headers: string): Buffer {
  return Buffer.from(
    `From: a@example.org\r\nTo: b@example.test\r\nSubject: ${subject}\r\n${headers}\r\nHello.\r\n`,
    'latin1',
  );
}

/** `EMAILID (x) THREADID (y)` of each FETCH line, by sequence number. */
function objectIds(response: string): Map<number, { emailId: string; threadId: string }> {
  const out = new Map<number, { emailId: string; threadId: string }>();
  for (const m of response.matchAll(/^\* (\d+) FETCH \(EMAILID \(([\w-]+)\) THREADID \(([\w-]+)\)\)\r$/gm)) {
    out.set(Number(m[1]), { emailId: m[2]!, threadId: m[3]! });
  }
  return out;
}

describe('OBJECTID (RFC 8474)', () => {
  let stack: ImapStack;
  const open: TestClient[] = [];

  beforeAll(async () => {
    stack = await startImapStack();
  });
  afterAll(async () => {
    for (const c of open) c.close();
    await stack?.stop();
  });

  async function client(): Promise<TestClient> {
    const c = await loggedIn(stack.imapPort, await stack.createUser());
    open.push(c);
    return c;
  }

  it('MAILBOXID: CREATE, SELECT, EXAMINE and STATUS agree, RENAME keeps it, a new mailbox gets another', async () => {
    const c = await client();
    const created = await c.command('c1', 'CREATE Projects');
    // RFC 8474 §4.1: the tagged OK of CREATE carries the new mailbox's id.
    const id = /^c1 OK \[MAILBOXID \(([\w-]{1,255})\)\] CREATE completed\r\n$/.exec(created)?.[1];
    expect(id, created).toBeDefined();
    // RFC 8474 §4.2: SELECT and EXAMINE return it as an untagged OK; STATUS (MAILBOXID) too.
    expect(await c.command('c2', 'EXAMINE Projects')).toContain(`* OK [MAILBOXID (${id})] Mailbox id\r\n`);
    expect(await c.command('c3', 'SELECT Projects')).toContain(`* OK [MAILBOXID (${id})] Mailbox id\r\n`);
    expect(await c.command('c4', 'STATUS Projects (MESSAGES MAILBOXID)')).toBe(
      `* STATUS Projects (MESSAGES 0 MAILBOXID (${id}))\r\nc4 OK STATUS completed\r\n`,
    );
    // RFC 8474 §4: the id survives RENAME.
    expect(await c.command('c5', 'UNSELECT')).toBe('c5 OK UNSELECT completed\r\n');
    expect(await c.command('c6', 'RENAME Projects Done')).toBe('c6 OK RENAME completed\r\n');
    expect(await c.command('c7', 'STATUS Done (MAILBOXID)')).toBe(
      `* STATUS Done (MAILBOXID (${id}))\r\nc7 OK STATUS completed\r\n`,
    );
    // A mailbox created under the old name is another mailbox with another id.
    const again = /MAILBOXID \(([\w-]+)\)/.exec(await c.command('c8', 'CREATE Projects'))?.[1];
    expect(again).toBeDefined();
    expect(again).not.toBe(id);
    const inbox = /MAILBOXID \(([\w-]+)\)/.exec(await c.command('c9', 'STATUS INBOX (MAILBOXID)'))?.[1];
    expect(inbox).toBeDefined();
    expect(new Set([id, again, inbox]).size).toBe(3);
  });

  it('EMAILID and THREADID: threads from References / In-Reply-To, kept by COPY and MOVE, searchable', async () => {
    const c = await client();
    const messages = [
      mail('root', 'Message-ID: <root@example.org>\r\n'),
      mail('Re: root', 'Message-ID: <r1@example.org>\r\nIn-Reply-To: <root@example.org>\r\n'),
      mail(
        'Re: Re: root',
        'Message-ID: <r2@example.org>\r\nIn-Reply-To: <r1@example.org>\r\n' +
          'References: <root@example.org> <r1@example.org>\r\n',
      ),
      mail('other', 'Message-ID: <other@example.org>\r\n'),
      mail('no ids', ''),
    ];
    for (const [i, m] of messages.entries()) {
      expect(await c.command(`a${i}`, appendCommand('INBOX', m))).toMatch(
        /OK \[APPENDUID \d+ \d+\] APPEND completed/,
      );
    }
    expect(await c.command('s1', 'SELECT INBOX')).toContain('s1 OK [READ-WRITE]');
    const before = await c.command('f1', 'FETCH 1:* (EMAILID THREADID)');
    const ids = objectIds(before);
    expect(ids.size, before).toBe(5);
    const [root, reply, second, other, bare] = [1, 2, 3, 4, 5].map((n) => ids.get(n)!);
    // RFC 8474 §5.1: an EMAILID names one message; five appends are five messages.
    expect(new Set([...ids.values()].map((v) => v.emailId)).size).toBe(5);
    // §5.2: a reply is in its parent's thread, an unrelated message in another.
    expect(reply!.threadId).toBe(root!.threadId);
    expect(second!.threadId).toBe(root!.threadId);
    expect(other!.threadId).not.toBe(root!.threadId);
    expect(bare!.threadId).not.toBe(root!.threadId);
    expect(bare!.threadId).not.toBe(other!.threadId);
    // §3 objectid = 1*255(ALPHA / DIGIT / "_" / "-").
    for (const v of ids.values()) {
      expect(v.emailId).toMatch(/^[A-Za-z0-9_-]{1,255}$/);
      expect(v.threadId).toMatch(/^[A-Za-z0-9_-]{1,255}$/);
    }
    // Stable: asked again (UID FETCH too), the same ids.
    expect(objectIds(await c.command('f2', 'FETCH 1:* (EMAILID THREADID)'))).toEqual(ids);
    expect(await c.command('f3', 'UID FETCH 4 (EMAILID)')).toBe(
      `* 4 FETCH (UID 4 EMAILID (${other!.emailId}))\r\nf3 OK UID FETCH completed\r\n`,
    );

    // §6 SEARCH EMAILID / THREADID: exact, case-significant matches.
    expect(await c.command('q1', `SEARCH EMAILID ${reply!.emailId}`)).toBe(
      '* SEARCH 2\r\nq1 OK SEARCH completed\r\n',
    );
    expect(await c.command('q2', `UID SEARCH THREADID ${root!.threadId}`)).toBe(
      '* SEARCH 1 2 3\r\nq2 OK UID SEARCH completed\r\n',
    );
    expect(await c.command('q3', `SEARCH NOT THREADID ${root!.threadId}`)).toBe(
      '* SEARCH 4 5\r\nq3 OK SEARCH completed\r\n',
    );
    expect(await c.command('q4', `SEARCH EMAILID ${reply!.emailId.toLowerCase()}`)).toBe(
      '* SEARCH\r\nq4 OK SEARCH completed\r\n',
    );
    expect(await c.command('q5', 'SEARCH EMAILID Mnothing')).toBe('* SEARCH\r\nq5 OK SEARCH completed\r\n');
    expect(await c.command('q6', 'SEARCH EMAILID bad.id')).toMatch(/^q6 BAD /);
    expect(await c.command('q7', `SEARCH OR EMAILID ${root!.emailId} EMAILID ${bare!.emailId}`)).toBe(
      '* SEARCH 1 5\r\nq7 OK SEARCH completed\r\n',
    );

    // §5.1: COPY and MOVE keep the EMAILID (and so the THREADID).
    expect(await c.command('m0', 'CREATE Kept')).toContain('m0 OK');
    expect(await c.command('m1', 'COPY 1 Kept')).toMatch(/m1 OK \[COPYUID/);
    expect(await c.command('m2', 'MOVE 3 Kept')).toMatch(/m2 OK/);
    expect(await c.command('m3', 'SELECT Kept')).toContain('m3 OK [READ-WRITE]');
    expect(objectIds(await c.command('m4', 'FETCH 1:* (EMAILID THREADID)'))).toEqual(
      new Map([
        [1, root],
        [2, second],
      ]),
    );
    expect(await c.command('m5', `SEARCH EMAILID ${second!.emailId}`)).toBe(
      '* SEARCH 2\r\nm5 OK SEARCH completed\r\n',
    );
  });

  it('EMAILID: the copies of one delivery to two users have the same id', async () => {
    const [ann, bob] = [await stack.createUser(), await stack.createUser()];
    const logger = createLogger('objectid-test', 'silent');
    const bus = await Bus.connect({ ...stack.env.busOptions(), name: 'objectid-test', logger, replicas: 1 });
    try {
      const spoolId = `objid${randomBytes(6).toString('hex')}`;
      const body = mail('for both', `Message-ID: <${spoolId}@remote.test>\r\n`);
      const job = {
        version: 1 as const,
        spoolId,
        envelope: {
          mailFrom: 'sender@remote.test',
          rcptTo: [ann.address, bob.address],
          remoteIp: '192.0.2.7',
          helo: 'remote.test',
        },
        authResults: { spf: 'pass', dkim: 'none', dmarc: 'pass', arc: 'none', dmarcPolicy: '', junk: false },
        receivedAt: new Date().toISOString(),
        messageId: `${spoolId}@remote.test`,
        traceparent: '',
        body: { kind: 'inline' as const, size: body.length },
      };
      await publishDurable(bus.js, Subjects.inbound(spoolId), encodeInboundJob(job, body), {
        msgId: jobMessageId(spoolId, Streams.MAIL_INBOUND),
      });
      const seen: string[] = [];
      for (const user of [ann, bob]) {
        const c = await loggedIn(stack.imapPort, user);
        open.push(c);
        const deadline = Date.now() + 30_000;
        let answer = '';
        for (let n = 0; Date.now() < deadline; n++) {
          answer = await c.command(`w${n}`, 'STATUS INBOX (MESSAGES)');
          if (answer.includes('MESSAGES 1')) break;
          await new Promise((r) => setTimeout(r, 200));
        }
        expect(answer).toContain('MESSAGES 1');
        expect(await c.command('s1', 'EXAMINE INBOX')).toContain('s1 OK [READ-ONLY]');
        const ids = objectIds(await c.command('f1', 'FETCH 1 (EMAILID THREADID)'));
        seen.push(ids.get(1)!.emailId, ids.get(1)!.threadId);
      }
      expect(seen[0]).toBe(seen[2]);
      expect(seen[1]).toBe(seen[3]);
    } finally {
      await bus.drain();
    }
  });
});
