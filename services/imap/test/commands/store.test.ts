/** STORE and UID STORE — RFC 9051 §6.4.6, §6.4.9; UNCHANGEDSINCE (RFC 7162 §3.1.3). */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InprocImap, message } from '../inproc/driver.js';

let imap: InprocImap;
beforeEach(async () => {
  imap = new InprocImap();
  for (const subject of ['one', 'two', 'three'])
    await imap.store.deliver(imap.alice.id, 'INBOX', message({ subject }));
});
afterEach(() => imap.close());

describe('STORE', () => {
  it('+FLAGS, -FLAGS and FLAGS answer the new flags (RFC 9051 §6.4.6)', async () => {
    const c = await imap.selected();
    expect(await c.command('a STORE 1:2 +FLAGS (\\Seen \\Flagged)')).toEqual([
      '* 1 FETCH (FLAGS (\\Seen \\Flagged \\Recent))',
      '* 2 FETCH (FLAGS (\\Seen \\Flagged \\Recent))',
      'a OK STORE completed',
    ]);
    expect(await c.command('b STORE 2 -FLAGS (\\Flagged)')).toEqual([
      '* 2 FETCH (FLAGS (\\Seen \\Recent))',
      'b OK STORE completed',
    ]);
    expect(await c.command('c STORE 1 FLAGS (\\Answered)')).toEqual([
      '* 1 FETCH (FLAGS (\\Answered \\Recent))',
      'c OK STORE completed',
    ]);
  });

  it('.SILENT answers nothing but the tagged OK (RFC 9051 §6.4.6)', async () => {
    const c = await imap.selected();
    expect(await c.command('a STORE 1:* +FLAGS.SILENT (\\Deleted)')).toEqual(['a OK STORE completed']);
    expect(await c.command('b SEARCH DELETED')).toEqual(['* SEARCH 1 2 3', 'b OK SEARCH completed']);
  });

  it('announces a new keyword in FLAGS before the FETCH that shows it (RFC 9051 §7.3.5)', async () => {
    const c = await imap.selected();
    const response = await c.command('a STORE 3 +FLAGS (Todo)');
    expect(response[0]).toMatch(/^\* FLAGS \(.* Todo\)$/);
    expect(response[1]).toMatch(/^\* OK \[PERMANENTFLAGS \(.* Todo \\\*\)\] /);
    expect(response.slice(2)).toEqual(['* 3 FETCH (FLAGS (\\Recent Todo))', 'a OK STORE completed']);
  });

  it('refuses to store \\Recent with BAD and changes nothing (RFC 3501 §2.3.2: it cannot be altered)', async () => {
    const c = await imap.selected();
    // RFC 9051 §2.3.2: \Recent is not a flag a client can set (and IMAP4rev2 has none).
    expect(await c.command('a STORE 1 FLAGS (\\Recent)')).toEqual(['a BAD \\Recent cannot be stored']);
    expect(await c.command('b FETCH 1 FLAGS')).toEqual([
      '* 1 FETCH (FLAGS (\\Recent))',
      'b OK FETCH completed',
    ]);
  });

  it('in an empty mailbox answers "1:*" and "*" BAD, the UID forms OK (RFC 9051 §9 seq-number, §6.4.9)', async () => {
    const c = await imap.selected('Drafts');
    // RFC 9051 §9 seq-number: an MSN past the messages is BAD, "*" included when the mailbox is empty.
    expect(await c.command('a STORE 1:* +FLAGS (\\Seen)')).toEqual(['a BAD Invalid message sequence number']);
    expect(await c.command('b STORE * +FLAGS (\\Seen)')).toEqual(['b BAD Invalid message sequence number']);
    // RFC 9051 §6.4.9: UIDs that do not exist are ignored, so the UID forms succeed with nothing to do.
    expect(await c.command('c UID STORE 1:* +FLAGS (\\Seen)')).toEqual(['c OK UID STORE completed']);
    expect(await c.command('d UID STORE * +FLAGS (\\Seen)')).toEqual(['d OK UID STORE completed']);
  });

  it('UID STORE answers UID in each FETCH (RFC 9051 §6.4.9)', async () => {
    const c = await imap.selected();
    expect(await c.command('a UID STORE 2 +FLAGS (\\Seen)')).toEqual([
      '* 2 FETCH (UID 2 FLAGS (\\Seen \\Recent))',
      'a OK UID STORE completed',
    ]);
  });

  it('UNCHANGEDSINCE leaves messages changed since then and names them in MODIFIED (RFC 7162 §3.1.3)', async () => {
    const c = await imap.selected();
    const [highest, line] = await c.command('a FETCH 1 MODSEQ');
    // RFC 7162 §3.1: the first CONDSTORE enabling command in a selected mailbox gets HIGHESTMODSEQ.
    expect(highest).toMatch(/^\* OK \[HIGHESTMODSEQ \d+\] /);
    expect(line).toMatch(/^\* 1 FETCH \(MODSEQ \(\d+\)\)$/);
    const modseq = /HIGHESTMODSEQ (\d+)/.exec(highest ?? '')?.[1];
    await c.command('b STORE 2 +FLAGS.SILENT (\\Answered)');
    // Message 2 changed after `modseq`: it is not touched; 1 and 3 are.
    expect(await c.command(`c STORE 1:3 (UNCHANGEDSINCE ${modseq}) +FLAGS (\\Flagged)`)).toEqual([
      expect.stringMatching(/^\* 1 FETCH \(UID 1 FLAGS \(\\Flagged \\Recent\) MODSEQ \(\d+\)\)$/),
      expect.stringMatching(/^\* 3 FETCH \(UID 3 FLAGS \(\\Flagged \\Recent\) MODSEQ \(\d+\)\)$/),
      'c OK [MODIFIED 2] Conditional STORE failed for some messages',
    ]);
  });

  it('is NO in a read-only mailbox, BAD with bad syntax or outside the selected state', async () => {
    const c = await imap.login();
    expect(await c.command('a STORE 1 +FLAGS (\\Seen)')).toEqual([
      'a BAD STORE is not allowed in the authenticated state',
    ]);
    await c.command('s EXAMINE INBOX');
    expect((await c.command('b STORE 1 +FLAGS (\\Seen)'))[0]).toMatch(/^b NO \[READ-ONLY\] /);
    await c.command('t SELECT INBOX');
    expect((await c.command('c STORE 1 +FLAGZ (\\Seen)'))[0]).toMatch(/^c BAD /);
    expect((await c.command('d STORE 1 +FLAGS (\\Seen'))[0]).toMatch(/^d BAD /);
  });
});
