/** CLOSE (RFC 9051 §6.4.1) and UNSELECT (RFC 3691, RFC 9051 §6.4.2). */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mailstore } from '@postmesh/contracts';
import { InprocImap, message } from '../inproc/driver.js';

let imap: InprocImap;
beforeEach(async () => {
  imap = new InprocImap();
  await imap.store.deliver(imap.alice.id, 'INBOX', message({ subject: 'keep' }));
  await imap.store.deliver(imap.alice.id, 'INBOX', message({ subject: 'gone' }), {
    flags: [mailstore.Flag.DELETED],
  });
});
afterEach(() => imap.close());

describe('CLOSE', () => {
  it('expunges \\Deleted messages silently and leaves the selected state (RFC 9051 §6.4.1)', async () => {
    const c = await imap.selected();
    // RFC 9051 §6.4.1: no untagged EXPUNGE responses are sent.
    expect(await c.command('a CLOSE')).toEqual(['a OK CLOSE completed']);
    expect(await c.command('b STATUS INBOX (MESSAGES)')).toEqual([
      '* STATUS INBOX (MESSAGES 1)',
      'b OK STATUS completed',
    ]);
    expect((await c.command('c FETCH 1 FLAGS'))[0]).toMatch(/^c BAD /);
  });

  it('expunges nothing in a mailbox opened with EXAMINE (RFC 9051 §6.4.1)', async () => {
    const c = await imap.login();
    await c.command('a EXAMINE INBOX');
    expect(await c.command('b CLOSE')).toEqual(['b OK CLOSE completed']);
    expect(await c.command('c STATUS INBOX (MESSAGES)')).toEqual([
      '* STATUS INBOX (MESSAGES 2)',
      'c OK STATUS completed',
    ]);
  });

  it('is BAD outside the selected state', async () => {
    const c = await imap.login();
    expect(await c.command('a CLOSE')).toEqual(['a BAD CLOSE is not allowed in the authenticated state']);
  });
});

describe('UNSELECT', () => {
  it('leaves the selected state without expunging (RFC 3691 §2)', async () => {
    const c = await imap.selected();
    expect(await c.command('a UNSELECT')).toEqual(['a OK UNSELECT completed']);
    expect(await c.command('b STATUS INBOX (MESSAGES)')).toEqual([
      '* STATUS INBOX (MESSAGES 2)',
      'b OK STATUS completed',
    ]);
  });

  it('is BAD outside the selected state (RFC 3691 §2)', async () => {
    const c = await imap.login();
    expect(await c.command('a UNSELECT')).toEqual([
      'a BAD UNSELECT is not allowed in the authenticated state',
    ]);
  });
});
