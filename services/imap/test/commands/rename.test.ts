/** RENAME — RFC 9051 §6.3.6. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InprocImap, message } from '../inproc/driver.js';

let imap: InprocImap;
beforeEach(() => {
  imap = new InprocImap();
});
afterEach(() => imap.close());

describe('RENAME', () => {
  it('renames a mailbox with its children and keeps its messages and UIDVALIDITY', async () => {
    const c = await imap.login();
    await c.command('a CREATE Work/Projects');
    await imap.store.deliver(imap.alice.id, 'Work', message());
    const [before] = await c.command('b STATUS Work (MESSAGES UIDVALIDITY)');
    expect(await c.command('c RENAME Work Jobs')).toEqual(['c OK RENAME completed']);
    // RFC 9051 §6.3.6: inferior hierarchical names are renamed too.
    expect(await c.command('d LIST "" Jobs*')).toEqual([
      '* LIST (\\HasChildren) "/" Jobs',
      '* LIST (\\HasNoChildren) "/" Jobs/Projects',
      'd OK LIST completed',
    ]);
    const [after] = await c.command('e STATUS Jobs (MESSAGES UIDVALIDITY)');
    expect(after).toBe(before!.replace('Work', 'Jobs'));
    expect(await c.command('f LIST "" Work*')).toEqual(['f OK LIST completed']);
  });

  it('renaming INBOX moves its messages and leaves INBOX empty (RFC 9051 §6.3.6)', async () => {
    await imap.store.deliver(imap.alice.id, 'INBOX', message());
    const c = await imap.login();
    expect(await c.command('a RENAME INBOX Saved')).toEqual(['a OK RENAME completed']);
    expect(await c.command('b STATUS INBOX (MESSAGES)')).toEqual([
      '* STATUS INBOX (MESSAGES 0)',
      'b OK STATUS completed',
    ]);
    expect(await c.command('c STATUS Saved (MESSAGES)')).toEqual([
      '* STATUS Saved (MESSAGES 1)',
      'c OK STATUS completed',
    ]);
  });

  it('refuses an existing target NO [ALREADYEXISTS] and a missing source NO [NONEXISTENT] (RFC 9051 §6.3.6)', async () => {
    const c = await imap.login();
    expect(await c.command('a RENAME Sent Trash')).toEqual(['a NO [ALREADYEXISTS] Mailbox already exists']);
    expect(await c.command('b RENAME Nope Other')).toEqual(['b NO [NONEXISTENT] No such mailbox or message']);
  });

  it('refuses renaming a mailbox into itself NO [CANNOT]', async () => {
    const c = await imap.login();
    await c.command('a CREATE Top');
    expect(await c.command('b RENAME Top Top/Below')).toEqual([
      'b NO [CANNOT] Operation not allowed on this mailbox',
    ]);
  });

  it('is BAD with one argument', async () => {
    const c = await imap.login();
    expect((await c.command('a RENAME Sent'))[0]).toMatch(/^a BAD /);
  });
});
