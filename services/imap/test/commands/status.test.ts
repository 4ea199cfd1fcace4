/** STATUS — RFC 9051 §6.3.11, with STATUS=SIZE (RFC 8438), CONDSTORE (RFC 7162 §3.1.2.1), OBJECTID. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InprocImap, message } from '../inproc/driver.js';
import { mailstore } from '@postmesh/contracts';

let imap: InprocImap;
beforeEach(() => {
  imap = new InprocImap();
});
afterEach(() => imap.close());

describe('STATUS', () => {
  it('answers the requested items in the requested order', async () => {
    const m = message();
    await imap.store.deliver(imap.alice.id, 'INBOX', m);
    await imap.store.deliver(imap.alice.id, 'INBOX', m, {
      flags: [mailstore.Flag.SEEN, mailstore.Flag.DELETED],
    });
    const c = await imap.login();
    expect(await c.command('a STATUS INBOX (UIDNEXT MESSAGES UNSEEN DELETED)')).toEqual([
      '* STATUS INBOX (UIDNEXT 3 MESSAGES 2 UNSEEN 1 DELETED 1)',
      'a OK STATUS completed',
    ]);
    // RFC 8438 §3: SIZE is the total of RFC822.SIZE.
    expect(await c.command('b STATUS INBOX (SIZE RECENT)')).toEqual([
      `* STATUS INBOX (SIZE ${2 * m.length} RECENT 2)`,
      'b OK STATUS completed',
    ]);
  });

  it('answers UIDVALIDITY, HIGHESTMODSEQ and MAILBOXID (RFC 7162 §3.1.2.1, RFC 8474 §4.3)', async () => {
    const c = await imap.login();
    const [line] = await c.command('a STATUS Sent (UIDVALIDITY HIGHESTMODSEQ MAILBOXID)');
    expect(line).toMatch(/^\* STATUS Sent \(UIDVALIDITY \d+ HIGHESTMODSEQ 1 MAILBOXID \([0-9a-f]{24}\)\)$/);
  });

  it('answers APPENDLIMIT per mailbox (RFC 7889 §3.2)', async () => {
    const c = await imap.login();
    expect(await c.command('a STATUS INBOX (APPENDLIMIT)')).toEqual([
      '* STATUS INBOX (APPENDLIMIT 65536)',
      'a OK STATUS completed',
    ]);
  });

  it('answers a missing mailbox NO [NONEXISTENT] (RFC 5530 §3)', async () => {
    const c = await imap.login();
    expect(await c.command('a STATUS Nope (MESSAGES)')).toEqual(['a NO [NONEXISTENT] No such mailbox']);
  });

  it('is BAD with an unknown item or no item list (RFC 9051 §9 status-att)', async () => {
    const c = await imap.login();
    expect((await c.command('a STATUS INBOX (BOGUS)'))[0]).toMatch(/^a BAD /);
    expect((await c.command('b STATUS INBOX'))[0]).toMatch(/^b BAD /);
  });
});
