/** LSUB — RFC 3501 §6.3.9 (deprecated by RFC 9051 §6.3.9 but still accepted for IMAP4rev1 clients). */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InprocImap } from '../inproc/driver.js';

let imap: InprocImap;
beforeEach(() => {
  imap = new InprocImap();
});
afterEach(() => imap.close());

describe('LSUB', () => {
  it('lists the subscribed mailboxes that match (RFC 3501 §6.3.9)', async () => {
    const c = await imap.login();
    await c.command('a UNSUBSCRIBE Junk');
    expect(await c.command('b LSUB "" *')).toEqual([
      '* LSUB (\\Archive) "/" Archive',
      '* LSUB (\\Drafts) "/" Drafts',
      '* LSUB () "/" INBOX',
      '* LSUB (\\Sent) "/" Sent',
      '* LSUB (\\Trash) "/" Trash',
      'b OK LSUB completed',
    ]);
  });

  it('lists a subscribed mailbox that does not exist as \\Noselect (RFC 3501 §6.3.9: MUST NOT drop it)', async () => {
    const c = await imap.login();
    await c.command('a SUBSCRIBE "Not there"');
    expect(await c.command('b LSUB "" Not*')).toEqual([
      '* LSUB (\\Noselect) "/" "Not there"',
      'b OK LSUB completed',
    ]);
  });

  it('shows a parent of a subscribed child that "%" hides as \\Noselect (RFC 3501 §6.3.9)', async () => {
    const c = await imap.login();
    await c.command('a CREATE Lists/imap');
    await c.command('b SUBSCRIBE Lists/imap');
    expect(await c.command('c LSUB "" Lists')).toEqual(['c OK LSUB completed']);
    expect(await c.command('d LSUB "" L%')).toEqual(['* LSUB (\\Noselect) "/" Lists', 'd OK LSUB completed']);
  });

  it('is BAD before authentication', async () => {
    const c = await imap.connect();
    expect(await c.command('a LSUB "" *')).toEqual([
      'a BAD LSUB is not allowed in the not authenticated state',
    ]);
  });
});
