/** ENABLE — RFC 5161 §3.1-§3.2; RFC 9051 §6.3.1. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { utf8, InprocImap, message } from '../inproc/driver.js';

let imap: InprocImap;
beforeEach(() => {
  imap = new InprocImap();
});
afterEach(() => imap.close());

describe('ENABLE', () => {
  it('lists in ENABLED only what this command newly enabled (RFC 5161 §3.2)', async () => {
    const c = await imap.login();
    expect(await c.command('a ENABLE CONDSTORE X-UNKNOWN')).toEqual([
      '* ENABLED CONDSTORE',
      'a OK ENABLE completed',
    ]);
    // RFC 5161 §3.2: the ENABLED response lists capabilities newly enabled; none here.
    expect(await c.command('b ENABLE CONDSTORE')).toEqual(['* ENABLED', 'b OK ENABLE completed']);
  });

  it('QRESYNC enables CONDSTORE too (RFC 7162 §3.2.3)', async () => {
    const c = await imap.login();
    expect(await c.command('a ENABLE QRESYNC')).toEqual(['* ENABLED QRESYNC', 'a OK ENABLE completed']);
    const select = await c.command('b SELECT INBOX');
    // RFC 7162 §3.1.2.1: HIGHESTMODSEQ in SELECT once CONDSTORE is enabled.
    expect(select).toContain('* OK [HIGHESTMODSEQ 1] Highest');
  });

  it('IMAP4rev2 drops \\Recent and RECENT responses (RFC 9051 §6.3.1, appendix E)', async () => {
    await imap.store.deliver(imap.alice.id, 'INBOX', message());
    const c = await imap.login();
    expect(await c.command('a ENABLE IMAP4rev2')).toEqual(['* ENABLED IMAP4rev2', 'a OK ENABLE completed']);
    const select = await c.command('b SELECT INBOX');
    expect(select.some((l) => / RECENT$/.test(l))).toBe(false);
    expect(select).not.toContain('* OK [UNSEEN 1] First unseen');
    expect(await c.command('c FETCH 1 FLAGS')).toEqual(['* 1 FETCH (FLAGS ())', 'c OK FETCH completed']);
  });

  it('UTF8=ACCEPT makes mailbox names UTF-8 instead of modified UTF-7 (RFC 6855 §3)', async () => {
    const c = await imap.login();
    await c.command('a CREATE "Entw&APw-rfe"');
    expect(await c.command('b LIST "" Entw*')).toEqual([
      '* LIST (\\HasNoChildren) "/" Entw&APw-rfe',
      'b OK LIST completed',
    ]);
    expect(await c.command('c ENABLE UTF8=ACCEPT')).toEqual([
      '* ENABLED UTF8=ACCEPT',
      'c OK ENABLE completed',
    ]);
    // RFC 6855 §3: the name is sent as UTF-8 (quoted: it is not an atom).
    expect((await c.command('d LIST "" Entw*')).map(utf8)).toEqual([
      '* LIST (\\HasNoChildren) "/" "Entwürfe"',
      'd OK LIST completed',
    ]);
  });

  it('is BAD before authentication (RFC 5161 §3.1: authenticated state only)', async () => {
    const c = await imap.connect();
    expect(await c.command('a ENABLE CONDSTORE')).toEqual([
      'a BAD ENABLE is not allowed in the not authenticated state',
    ]);
  });

  it('is BAD without an argument (RFC 5161 §4: 1*(SP capability))', async () => {
    const c = await imap.login();
    expect((await c.command('a ENABLE'))[0]).toMatch(/^a BAD /);
  });
});
