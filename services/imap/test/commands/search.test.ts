/**
 * SEARCH — RFC 9051 §6.4.4, with ESEARCH (RFC 4731), SEARCHRES (RFC 5182), WITHIN (RFC 5032),
 * CONDSTORE's MODSEQ key (RFC 7162 §3.1.5) and OBJECTID's EMAILID / THREADID (RFC 8474 §6).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mailstore } from '@postmesh/contracts';
import { InprocImap, message } from '../inproc/driver.js';

let imap: InprocImap;
beforeEach(async () => {
  imap = new InprocImap();
  const deliver = (subject: string, options: Parameters<typeof imap.store.deliver>[3] = {}, extra = {}) =>
    imap.store.deliver(imap.alice.id, 'INBOX', message({ subject, ...extra }), options);
  await deliver('Quarterly report', {
    flags: [mailstore.Flag.SEEN],
    internalDate: new Date('2026-11-02T10:00:00Z'),
  });
  await deliver(
    'Lunch?',
    { keywords: ['$Social'], internalDate: new Date('2026-12-01T12:00:00Z') },
    {
      from: 'Carol <carol@example.test>',
      body: 'Shall we try the new noodle place?',
    },
  );
  await deliver(
    'Re: Quarterly report',
    { flags: [mailstore.Flag.FLAGGED], internalDate: new Date('2026-12-05T08:00:00Z') },
    {
      extra: 'X-Priority: 1\r\n',
      date: 'Sat, 5 Dec 2026 08:00:00 +0000',
    },
  );
});
afterEach(() => imap.close());

describe('SEARCH', () => {
  it('matches nothing, without error, for "1:*" and "*" in an empty mailbox (RFC 9051 §6.4.4)', async () => {
    const c = await imap.selected('Drafts');
    // RFC 9051 §6.4.4: a sequence set is a search key, so numbers past the end match no message
    // (Dovecot answers the same); only FETCH, STORE, COPY and MOVE name messages that must exist.
    expect(await c.command('a SEARCH 1:*')).toEqual(['* SEARCH', 'a OK SEARCH completed']);
    expect(await c.command('b SEARCH *')).toEqual(['* SEARCH', 'b OK SEARCH completed']);
    expect(await c.command('c UID SEARCH UID 1:*')).toEqual(['* SEARCH', 'c OK UID SEARCH completed']);
  });

  it('answers message numbers in SEARCH, UIDs for UID SEARCH (RFC 9051 §6.4.4, §6.4.9)', async () => {
    const c = await imap.selected();
    expect(await c.command('a SEARCH ALL')).toEqual(['* SEARCH 1 2 3', 'a OK SEARCH completed']);
    await c.command('x STORE 1 +FLAGS.SILENT (\\Deleted)');
    await c.command('y EXPUNGE');
    expect(await c.command('b SEARCH ALL')).toEqual(['* SEARCH 1 2', 'b OK SEARCH completed']);
    expect(await c.command('c UID SEARCH ALL')).toEqual(['* SEARCH 2 3', 'c OK UID SEARCH completed']);
  });

  it('matches flags, keywords, header fields and text case-insensitively (RFC 9051 §6.4.4)', async () => {
    const c = await imap.selected();
    const cases: [string, string][] = [
      ['SEEN', '1'],
      ['UNSEEN', '2 3'],
      ['FLAGGED', '3'],
      ['KEYWORD $Social', '2'],
      ['UNKEYWORD $Social', '1 3'],
      ['SUBJECT quarterly', '1 3'],
      ['FROM carol', '2'],
      ['TO alice', '1 2 3'],
      ['BODY NOODLE', '2'],
      ['TEXT noodle', '2'],
      ['HEADER X-Priority 1', '3'],
      // RFC 9051 §6.4.4: HEADER with an empty string matches every message with the field.
      ['HEADER X-Priority ""', '3'],
      ['NOT SUBJECT report', '2'],
      ['OR FLAGGED SEEN', '1 3'],
      ['SEEN FLAGGED', ''],
      ['2:3 UNSEEN', '2 3'],
      ['UID 1,3', '1 3'],
      ['LARGER 10000', ''],
      ['SMALLER 10000', '1 2 3'],
    ];
    for (const [key, hits] of cases) {
      expect(await c.command(`t SEARCH ${key}`), key).toEqual([
        `* SEARCH${hits === '' ? '' : ` ${hits}`}`,
        't OK SEARCH completed',
      ]);
    }
  });

  it('compares dates by day, internal date for BEFORE/ON/SINCE, Date: for SENT* (RFC 9051 §6.4.4)', async () => {
    const c = await imap.selected();
    expect(await c.command('a SEARCH SINCE 1-Dec-2026')).toEqual(['* SEARCH 2 3', 'a OK SEARCH completed']);
    expect(await c.command('b SEARCH BEFORE 1-Dec-2026')).toEqual(['* SEARCH 1', 'b OK SEARCH completed']);
    expect(await c.command('c SEARCH ON 5-Dec-2026')).toEqual(['* SEARCH 3', 'c OK SEARCH completed']);
    expect(await c.command('d SEARCH SENTON 5-Dec-2026')).toEqual(['* SEARCH 3', 'd OK SEARCH completed']);
    // Messages 1 and 2 carry the default Date: of 7 Dec 2026.
    expect(await c.command('e SEARCH SENTBEFORE 6-Dec-2026')).toEqual([
      '* SEARCH 3',
      'e OK SEARCH completed',
    ]);
    expect(await c.command('f SEARCH SENTSINCE 6-Dec-2026')).toEqual([
      '* SEARCH 1 2',
      'f OK SEARCH completed',
    ]);
  });

  it('OLDER and YOUNGER count seconds from now (RFC 5032 §3 WITHIN)', async () => {
    await imap.store.deliver(imap.alice.id, 'INBOX', message({ subject: 'just now' }));
    const c = await imap.selected();
    expect(await c.command('a SEARCH YOUNGER 3600')).toEqual(['* SEARCH 4', 'a OK SEARCH completed']);
    expect(await c.command('b SEARCH OLDER 3600')).toEqual(['* SEARCH 1 2 3', 'b OK SEARCH completed']);
  });

  it('accepts CHARSET UTF-8 and refuses an unknown charset NO [BADCHARSET] (RFC 9051 §6.4.4)', async () => {
    const c = await imap.selected();
    expect(await c.command('a SEARCH CHARSET UTF-8 SUBJECT lunch')).toEqual([
      '* SEARCH 2',
      'a OK SEARCH completed',
    ]);
    const [done] = await c.command('b SEARCH CHARSET X-MARTIAN SUBJECT lunch');
    expect(done).toMatch(/^b NO \[BADCHARSET( \([^)]*\))?\] /);
  });

  it('is BAD for an unknown key and outside the selected state (RFC 9051 §6.4.4)', async () => {
    const c = await imap.login();
    expect(await c.command('a SEARCH ALL')).toEqual([
      'a BAD SEARCH is not allowed in the authenticated state',
    ]);
    await c.command('s SELECT INBOX');
    expect((await c.command('b SEARCH FROBNICATE'))[0]).toMatch(/^b BAD /);
  });
});

describe('ESEARCH (RFC 4731) and SEARCHRES (RFC 5182)', () => {
  it('answers RETURN (MIN MAX COUNT ALL) in one ESEARCH with the tag (RFC 4731 §3.1)', async () => {
    const c = await imap.selected();
    expect(await c.command('a SEARCH RETURN (MIN MAX COUNT ALL) SUBJECT report')).toEqual([
      '* ESEARCH (TAG "a") MIN 1 MAX 3 COUNT 2 ALL 1,3',
      'a OK SEARCH completed',
    ]);
    // RFC 4731 §3.1: UID SEARCH answers with the UID indicator.
    expect(await c.command('b UID SEARCH RETURN (COUNT) ALL')).toEqual([
      '* ESEARCH (TAG "b") UID COUNT 3',
      'b OK UID SEARCH completed',
    ]);
  });

  it('omits MIN, MAX and ALL when nothing matches (RFC 4731 §3.1)', async () => {
    const c = await imap.selected();
    expect(await c.command('a SEARCH RETURN (MIN MAX COUNT) SUBJECT nothing')).toEqual([
      '* ESEARCH (TAG "a") COUNT 0',
      'a OK SEARCH completed',
    ]);
  });

  it('answers ESEARCH, as RETURN (ALL), once IMAP4rev2 is enabled (RFC 9051 §6.4.4, appendix E)', async () => {
    const c = await imap.login();
    await c.command('e ENABLE IMAP4rev2');
    await c.command('s SELECT INBOX');
    expect(await c.command('a SEARCH SUBJECT report')).toEqual([
      '* ESEARCH (TAG "a") ALL 1,3',
      'a OK SEARCH completed',
    ]);
    expect(await c.command('b UID SEARCH ALL')).toEqual([
      '* ESEARCH (TAG "b") UID ALL 1:3',
      'b OK UID SEARCH completed',
    ]);
    // RFC 4731 §3.1: ALL is left out when nothing matches.
    expect(await c.command('c SEARCH SUBJECT nothing')).toEqual([
      '* ESEARCH (TAG "c")',
      'c OK SEARCH completed',
    ]);
  });

  it('SAVE keeps the result for "$" in later commands (RFC 5182 §2.1-§2.2)', async () => {
    const c = await imap.selected();
    // RFC 5182 §2.1: with only SAVE, no ESEARCH response is sent.
    expect(await c.command('a SEARCH RETURN (SAVE) SUBJECT report')).toEqual(['a OK SEARCH completed']);
    expect(await c.command('b FETCH $ (UID)')).toEqual([
      '* 1 FETCH (UID 1)',
      '* 3 FETCH (UID 3)',
      'b OK FETCH completed',
    ]);
    expect(await c.command('c SEARCH $ FLAGGED')).toEqual(['* SEARCH 3', 'c OK SEARCH completed']);
  });
});
