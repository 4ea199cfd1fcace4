/**
 * COPY (RFC 9051 §6.4.7), MOVE (RFC 6851 §3, RFC 9051 §6.4.8) and their UID forms (§6.4.9),
 * with UIDPLUS's COPYUID (RFC 4315 §3).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mailstore } from '@postmesh/contracts';
import { InprocImap, message } from '../inproc/driver.js';

let imap: InprocImap;
beforeEach(async () => {
  imap = new InprocImap();
  await imap.store.deliver(imap.alice.id, 'INBOX', message({ subject: 'one' }), {
    flags: [mailstore.Flag.SEEN],
  });
  await imap.store.deliver(imap.alice.id, 'INBOX', message({ subject: 'two' }), { keywords: ['Todo'] });
  await imap.store.deliver(imap.alice.id, 'INBOX', message({ subject: 'three' }));
});
afterEach(() => imap.close());

async function validityOf(c: Awaited<ReturnType<InprocImap['login']>>, mailbox: string): Promise<string> {
  const [line] = await c.command(`v STATUS ${mailbox} (UIDVALIDITY)`);
  return /UIDVALIDITY (\d+)/.exec(line ?? '')?.[1] ?? 'none';
}

describe('COPY', () => {
  it('in an empty mailbox answers "1:*" and "*" BAD, the UID forms OK (RFC 9051 §9 seq-number, §6.4.9)', async () => {
    const c = await imap.selected('Drafts');
    // RFC 9051 §9 seq-number: an MSN past the messages is BAD, "*" included when the mailbox is empty.
    expect(await c.command('a COPY 1:* INBOX')).toEqual(['a BAD Invalid message sequence number']);
    expect(await c.command('b MOVE * INBOX')).toEqual(['b BAD Invalid message sequence number']);
    // RFC 9051 §6.4.9: UIDs that do not exist are ignored; nothing is copied, so no COPYUID.
    expect(await c.command('c UID COPY 1:* INBOX')).toEqual(['c OK UID COPY completed']);
    expect(await c.command('d UID MOVE * INBOX')).toEqual(['d OK UID MOVE completed']);
  });

  it('copies with flags and answers COPYUID source and destination UIDs (RFC 4315 §3)', async () => {
    const c = await imap.selected();
    const archive = await validityOf(c, 'Archive');
    expect(await c.command('a COPY 1:2 Archive')).toEqual([
      `a OK [COPYUID ${archive} 1:2 1:2] COPY completed`,
    ]);
    // RFC 9051 §6.4.7: the copies keep their flags and internal date.
    expect(await c.command('b EXAMINE Archive')).toContain('* 2 EXISTS');
    expect(await c.command('c FETCH 1:2 FLAGS')).toEqual([
      '* 1 FETCH (FLAGS (\\Seen \\Recent))',
      '* 2 FETCH (FLAGS (\\Recent Todo))',
      'c OK FETCH completed',
    ]);
  });

  it('leaves the source unchanged', async () => {
    const c = await imap.selected();
    await c.command('a COPY 1:* Trash');
    expect(await c.command('b SEARCH ALL')).toEqual(['* SEARCH 1 2 3', 'b OK SEARCH completed']);
  });

  it('UID COPY takes UIDs and ignores ones that do not exist (RFC 9051 §6.4.9)', async () => {
    const c = await imap.selected();
    const trash = await validityOf(c, 'Trash');
    expect(await c.command('a UID COPY 3,9 Trash')).toEqual([
      `a OK [COPYUID ${trash} 3 1] UID COPY completed`,
    ]);
  });

  it('answers a missing destination NO [TRYCREATE] (RFC 9051 §6.4.7: MUST NOT create it)', async () => {
    const c = await imap.selected();
    expect(await c.command('a COPY 1 Nope')).toEqual(['a NO [TRYCREATE] No such mailbox']);
  });

  it('answers over quota NO [OVERQUOTA] and copies nothing (RFC 9208 §4.1)', async () => {
    imap.alice.limitMessages = 4;
    const c = await imap.selected();
    expect(await c.command('a COPY 1:3 Archive')).toEqual(['a NO [OVERQUOTA] Quota exceeded']);
    expect(await c.command('b STATUS Archive (MESSAGES)')).toEqual([
      '* STATUS Archive (MESSAGES 0)',
      'b OK STATUS completed',
    ]);
  });

  it('is BAD outside the selected state and for a message number beyond EXISTS', async () => {
    const c = await imap.login();
    expect(await c.command('a COPY 1 Trash')).toEqual([
      'a BAD COPY is not allowed in the authenticated state',
    ]);
    await c.command('s SELECT INBOX');
    expect((await c.command('b COPY 9 Trash'))[0]).toMatch(/^b BAD /);
  });
});

describe('MOVE', () => {
  it('sends COPYUID in an untagged OK, then EXPUNGE for each moved message (RFC 6851 §4.3-§4.4)', async () => {
    const c = await imap.selected();
    const trash = await validityOf(c, 'Trash');
    expect(await c.command('a MOVE 1:2 Trash')).toEqual([
      `* OK [COPYUID ${trash} 1:2 1:2] Moved`,
      '* 2 EXPUNGE',
      '* 1 EXPUNGE',
      'a OK MOVE completed',
    ]);
    expect(await c.command('b FETCH 1 UID')).toEqual(['* 1 FETCH (UID 3)', 'b OK FETCH completed']);
  });

  it('UID MOVE answers VANISHED with QRESYNC (RFC 6851 §4.4, RFC 7162 §3.2.10)', async () => {
    const c = await imap.login();
    await c.command('e ENABLE QRESYNC');
    await c.command('s SELECT INBOX');
    const archive = await validityOf(c, 'Archive');
    expect(await c.command('a UID MOVE 2:3 Archive')).toEqual([
      `* OK [COPYUID ${archive} 2:3 1:2] Moved`,
      '* VANISHED 2:3',
      'a OK UID MOVE completed',
    ]);
  });

  it('answers a missing destination NO [TRYCREATE] and moves nothing', async () => {
    const c = await imap.selected();
    expect(await c.command('a MOVE 1 Nope')).toEqual(['a NO [TRYCREATE] No such mailbox']);
    expect(await c.command('b SEARCH ALL')).toEqual(['* SEARCH 1 2 3', 'b OK SEARCH completed']);
  });

  it('is NO in a read-only mailbox (RFC 6851 §3.3: it expunges)', async () => {
    const c = await imap.login();
    await c.command('s EXAMINE INBOX');
    expect((await c.command('a MOVE 1 Trash'))[0]).toMatch(/^a NO /);
  });
});
