/**
 * SORT and THREAD — RFC 5256 §3 (SORT, THREAD=ORDEREDSUBJECT, THREAD=REFERENCES), ESORT
 * (RFC 5267 §3.2) and SORT=DISPLAY (RFC 5957).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InprocImap, message } from '../inproc/driver.js';

let imap: InprocImap;
beforeEach(async () => {
  imap = new InprocImap();
  const deliver = (options: Parameters<typeof message>[0], at: string) =>
    imap.store.deliver(imap.alice.id, 'INBOX', message(options), { internalDate: new Date(at) });
  // 1: a thread start; 2: unrelated, earliest Date:; 3: a reply to 1; 4: a reply to 3.
  await deliver(
    { subject: 'Budget', from: 'Zed <zed@example.test>', date: 'Mon, 7 Dec 2026 09:00:00 +0000' },
    '2026-12-07T09:00:00Z',
  );
  await deliver(
    {
      subject: 'Apples',
      from: 'Amy <amy@example.test>',
      date: 'Sun, 6 Dec 2026 09:00:00 +0000',
      body: 'x'.repeat(500),
    },
    '2026-12-07T09:05:00Z',
  );
  await deliver(
    {
      subject: 'Re: Budget',
      from: 'Bob <bob@example.test>',
      date: 'Mon, 7 Dec 2026 10:00:00 +0000',
      extra: 'In-Reply-To: <Budget@example.test>\r\nReferences: <Budget@example.test>\r\n',
    },
    '2026-12-07T10:00:00Z',
  );
  await deliver(
    {
      subject: 'Re: Re: Budget',
      from: 'Carl <carl@example.test>',
      date: 'Mon, 7 Dec 2026 11:00:00 +0000',
      extra: 'References: <Budget@example.test> <ReBudget@example.test>\r\n',
    },
    '2026-12-07T11:00:00Z',
  );
});
afterEach(() => imap.close());

describe('SORT', () => {
  it('sorts by base subject, then by sequence number (RFC 5256 §3, §2.1)', async () => {
    const c = await imap.selected();
    // RFC 5256 §2.1: "Re:" is removed from the base subject; ties go by sequence number.
    expect(await c.command('a SORT (SUBJECT) UTF-8 ALL')).toEqual(['* SORT 2 1 3 4', 'a OK SORT completed']);
  });

  it('sorts by Date:, size, FROM, REVERSE, and takes search criteria (RFC 5256 §3)', async () => {
    const c = await imap.selected();
    expect(await c.command('a SORT (DATE) UTF-8 ALL')).toEqual(['* SORT 2 1 3 4', 'a OK SORT completed']);
    expect(await c.command('b SORT (REVERSE SIZE) UTF-8 ALL')).toEqual([
      '* SORT 2 3 4 1',
      'b OK SORT completed',
    ]);
    expect(await c.command('c SORT (FROM) UTF-8 ALL')).toEqual(['* SORT 2 3 4 1', 'c OK SORT completed']);
    expect(await c.command('d SORT (ARRIVAL) UTF-8 SUBJECT budget')).toEqual([
      '* SORT 1 3 4',
      'd OK SORT completed',
    ]);
  });

  it('DISPLAYFROM sorts by display name (RFC 5957 §3)', async () => {
    const c = await imap.selected();
    expect(await c.command('a SORT (DISPLAYFROM) UTF-8 ALL')).toEqual([
      '* SORT 2 3 4 1',
      'a OK SORT completed',
    ]);
  });

  it('UID SORT answers UIDs', async () => {
    const c = await imap.selected();
    await c.command('x STORE 1 +FLAGS.SILENT (\\Deleted)');
    await c.command('y EXPUNGE');
    expect(await c.command('a UID SORT (SUBJECT) UTF-8 ALL')).toEqual([
      '* SORT 2 3 4',
      'a OK UID SORT completed',
    ]);
  });

  it('answers RETURN options in ESEARCH (RFC 5267 §3.2 ESORT)', async () => {
    const c = await imap.selected();
    expect(await c.command('a SORT RETURN (MIN MAX COUNT) (SUBJECT) UTF-8 ALL')).toEqual([
      '* ESEARCH (TAG "a") MIN 2 MAX 4 COUNT 4',
      'a OK SORT completed',
    ]);
  });

  it('answers an unknown charset NO [BADCHARSET] and an unknown key BAD (RFC 5256 §3)', async () => {
    const c = await imap.selected();
    expect((await c.command('a SORT (SUBJECT) X-MARTIAN ALL'))[0]).toMatch(/^a NO \[BADCHARSET/);
    expect((await c.command('b SORT (COLOUR) UTF-8 ALL'))[0]).toMatch(/^b BAD /);
    expect((await c.command('c SORT SUBJECT UTF-8 ALL'))[0]).toMatch(/^c BAD /);
  });
});

describe('THREAD', () => {
  it('REFERENCES builds the reply tree from References and In-Reply-To (RFC 5256 §3)', async () => {
    const c = await imap.selected();
    expect(await c.command('a THREAD REFERENCES UTF-8 ALL')).toEqual([
      '* THREAD (2)(1 3 4)',
      'a OK THREAD completed',
    ]);
  });

  it('ORDEREDSUBJECT groups by base subject, ordered by Date: (RFC 5256 §3)', async () => {
    const c = await imap.selected();
    expect(await c.command('a THREAD ORDEREDSUBJECT UTF-8 ALL')).toEqual([
      '* THREAD (2)(1 (3)(4))',
      'a OK THREAD completed',
    ]);
  });

  it('UID THREAD answers UIDs; an unknown algorithm is BAD (RFC 5256 §3)', async () => {
    const c = await imap.selected();
    expect(await c.command('a UID THREAD REFERENCES UTF-8 SUBJECT budget')).toEqual([
      '* THREAD (1 3 4)',
      'a OK UID THREAD completed',
    ]);
    expect(await c.command('b THREAD WEAVE UTF-8 ALL')).toEqual(['b BAD unknown thread algorithm WEAVE']);
  });

  it('is BAD outside the selected state', async () => {
    const c = await imap.login();
    expect(await c.command('a THREAD REFERENCES UTF-8 ALL')).toEqual([
      'a BAD THREAD is not allowed in the authenticated state',
    ]);
    expect(await c.command('b SORT (DATE) UTF-8 ALL')).toEqual([
      'b BAD SORT is not allowed in the authenticated state',
    ]);
  });
});
