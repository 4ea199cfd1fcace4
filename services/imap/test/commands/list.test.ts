/**
 * LIST — RFC 9051 §6.3.9, with LIST-EXTENDED (RFC 5258), CHILDREN (RFC 3348), SPECIAL-USE
 * (RFC 6154) and LIST-STATUS (RFC 5819).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InprocImap, message } from '../inproc/driver.js';

let imap: InprocImap;
beforeEach(() => {
  imap = new InprocImap();
});
afterEach(() => imap.close());

const DEFAULTS = [
  '* LIST (\\HasNoChildren \\Archive) "/" Archive',
  '* LIST (\\HasNoChildren \\Drafts) "/" Drafts',
  '* LIST (\\HasNoChildren) "/" INBOX',
  '* LIST (\\HasNoChildren \\Junk) "/" Junk',
  '* LIST (\\HasNoChildren \\Sent) "/" Sent',
  '* LIST (\\HasNoChildren \\Trash) "/" Trash',
];

describe('LIST', () => {
  it('lists every mailbox with "*", with CHILDREN and SPECIAL-USE attributes (RFC 3348, RFC 6154 §2)', async () => {
    const c = await imap.login();
    expect(await c.command('a LIST "" *')).toEqual([...DEFAULTS, 'a OK LIST completed']);
  });

  it('answers an empty pattern with the delimiter and \\Noselect root (RFC 9051 §6.3.9)', async () => {
    const c = await imap.login();
    // RFC 9051 §6.3.9: the special form `LIST "" ""` returns the hierarchy delimiter.
    expect(await c.command('a LIST "" ""')).toEqual(['* LIST (\\Noselect) "/" ""', 'a OK LIST completed']);
  });

  it('"%" does not cross the delimiter, "*" does (RFC 9051 §6.3.9)', async () => {
    const c = await imap.login();
    await c.command('c CREATE Work/Projects/2026');
    expect(await c.command('a LIST "" Work/%')).toEqual([
      '* LIST (\\HasChildren) "/" Work/Projects',
      'a OK LIST completed',
    ]);
    expect(await c.command('b LIST Work/ *')).toEqual([
      '* LIST (\\HasChildren) "/" Work/Projects',
      '* LIST (\\HasNoChildren) "/" Work/Projects/2026',
      'b OK LIST completed',
    ]);
  });

  it('matches INBOX case-insensitively (RFC 9051 §5.1)', async () => {
    const c = await imap.login();
    expect(await c.command('a LIST "" inbox')).toEqual([
      '* LIST (\\HasNoChildren) "/" INBOX',
      'a OK LIST completed',
    ]);
  });

  it('returns nothing for a pattern that matches nothing', async () => {
    const c = await imap.login();
    expect(await c.command('a LIST "" Nope*')).toEqual(['a OK LIST completed']);
  });

  it('SPECIAL-USE selection lists only special-use mailboxes (RFC 6154 §3)', async () => {
    const c = await imap.login();
    expect(await c.command('a LIST (SPECIAL-USE) "" *')).toEqual([
      '* LIST (\\HasNoChildren \\Archive) "/" Archive',
      '* LIST (\\HasNoChildren \\Drafts) "/" Drafts',
      '* LIST (\\HasNoChildren \\Junk) "/" Junk',
      '* LIST (\\HasNoChildren \\Sent) "/" Sent',
      '* LIST (\\HasNoChildren \\Trash) "/" Trash',
      'a OK LIST completed',
    ]);
  });

  it('SUBSCRIBED selection lists subscriptions, a gone one as \\NonExistent (RFC 5258 §3.1)', async () => {
    const c = await imap.login();
    await c.command('a SUBSCRIBE Gone');
    await c.command('b UNSUBSCRIBE Junk');
    expect(await c.command('c LIST (SUBSCRIBED) "" *')).toEqual([
      '* LIST (\\HasNoChildren \\Subscribed \\Archive) "/" Archive',
      '* LIST (\\HasNoChildren \\Subscribed \\Drafts) "/" Drafts',
      '* LIST (\\NonExistent \\Subscribed) "/" Gone',
      '* LIST (\\HasNoChildren \\Subscribed) "/" INBOX',
      '* LIST (\\HasNoChildren \\Subscribed \\Sent) "/" Sent',
      '* LIST (\\HasNoChildren \\Subscribed \\Trash) "/" Trash',
      'c OK LIST completed',
    ]);
  });

  it('SUBSCRIBED RECURSIVEMATCH reports a parent of a subscribed child with CHILDINFO (RFC 5258 §3.5)', async () => {
    const c = await imap.login();
    await c.command('a CREATE Lists/imap');
    await c.command('b SUBSCRIBE Lists/imap');
    expect(await c.command('c LIST (SUBSCRIBED RECURSIVEMATCH) "" %')).toEqual([
      '* LIST (\\HasNoChildren \\Subscribed \\Archive) "/" Archive',
      '* LIST (\\HasNoChildren \\Subscribed \\Drafts) "/" Drafts',
      '* LIST (\\HasNoChildren \\Subscribed) "/" INBOX',
      '* LIST (\\HasNoChildren \\Subscribed \\Junk) "/" Junk',
      '* LIST (\\HasChildren) "/" Lists ("CHILDINFO" ("SUBSCRIBED"))',
      '* LIST (\\HasNoChildren \\Subscribed \\Sent) "/" Sent',
      '* LIST (\\HasNoChildren \\Subscribed \\Trash) "/" Trash',
      'c OK LIST completed',
    ]);
  });

  it('RETURN (SUBSCRIBED) adds \\Subscribed to the matching mailboxes (RFC 5258 §3.2)', async () => {
    const c = await imap.login();
    await c.command('a CREATE Plain');
    expect(await c.command('b LIST "" P* RETURN (SUBSCRIBED)')).toEqual([
      '* LIST (\\HasNoChildren) "/" Plain',
      'b OK LIST completed',
    ]);
    expect(await c.command('c LIST "" INBOX RETURN (SUBSCRIBED)')).toEqual([
      '* LIST (\\HasNoChildren \\Subscribed) "/" INBOX',
      'c OK LIST completed',
    ]);
  });

  it('several patterns in parentheses list each match once (RFC 5258 §3)', async () => {
    const c = await imap.login();
    expect(await c.command('a LIST "" (INBOX Sent INBOX)')).toEqual([
      '* LIST (\\HasNoChildren) "/" INBOX',
      '* LIST (\\HasNoChildren \\Sent) "/" Sent',
      'a OK LIST completed',
    ]);
  });

  it('RETURN (STATUS ...) follows each LIST with its STATUS (RFC 5819 §2 LIST-STATUS)', async () => {
    await imap.store.deliver(imap.alice.id, 'INBOX', message());
    const c = await imap.login();
    expect(await c.command('a LIST "" INBOX RETURN (STATUS (MESSAGES UNSEEN UIDNEXT))')).toEqual([
      '* LIST (\\HasNoChildren) "/" INBOX',
      '* STATUS INBOX (MESSAGES 1 UNSEEN 1 UIDNEXT 2)',
      'a OK LIST completed',
    ]);
  });

  it('is BAD with an unknown selection option (RFC 5258 §3: MUST reject)', async () => {
    const c = await imap.login();
    expect((await c.command('a LIST (BOGUS) "" *'))[0]).toMatch(/^a BAD /);
  });

  it('is BAD before authentication and with a missing argument', async () => {
    const c = await imap.connect();
    expect(await c.command('a LIST "" *')).toEqual([
      'a BAD LIST is not allowed in the not authenticated state',
    ]);
    await c.command('l LOGIN alice@example.test alice-pw');
    expect((await c.command('b LIST ""'))[0]).toMatch(/^b BAD /);
  });
});
