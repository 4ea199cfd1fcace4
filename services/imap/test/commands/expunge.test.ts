/** EXPUNGE (RFC 9051 §6.4.3) and UID EXPUNGE (RFC 4315 §2.1, RFC 9051 §6.4.9). */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mailstore } from '@postmesh/contracts';
import { InprocImap, message } from '../inproc/driver.js';

let imap: InprocImap;
beforeEach(async () => {
  imap = new InprocImap();
  for (const [i, deleted] of [false, true, true, false, true].entries()) {
    await imap.store.deliver(imap.alice.id, 'INBOX', message({ subject: `m${i + 1}` }), {
      flags: deleted ? [mailstore.Flag.DELETED] : [],
    });
  }
});
afterEach(() => imap.close());

describe('EXPUNGE', () => {
  it('sends one EXPUNGE per message, each number valid after the ones before (RFC 9051 §7.5.1)', async () => {
    const c = await imap.selected();
    // Messages 2, 3 and 5 are \Deleted. Sent from the highest down, each number is still the
    // message's number when its EXPUNGE arrives (RFC 9051 §7.5.1: a number valid at that time).
    expect(await c.command('a EXPUNGE')).toEqual([
      '* 5 EXPUNGE',
      '* 3 EXPUNGE',
      '* 2 EXPUNGE',
      'a OK EXPUNGE completed',
    ]);
    expect(await c.command('b SEARCH ALL')).toEqual(['* SEARCH 1 2', 'b OK SEARCH completed']);
  });

  it('sends VANISHED instead once QRESYNC is enabled (RFC 7162 §3.2.10)', async () => {
    const c = await imap.login();
    await c.command('e ENABLE QRESYNC');
    await c.command('s SELECT INBOX');
    expect(await c.command('a EXPUNGE')).toEqual(['* VANISHED 2:3,5', 'a OK EXPUNGE completed']);
  });

  it('is NO in a read-only mailbox and BAD outside the selected state', async () => {
    const c = await imap.login();
    expect(await c.command('a EXPUNGE')).toEqual(['a BAD EXPUNGE is not allowed in the authenticated state']);
    await c.command('s EXAMINE INBOX');
    expect((await c.command('b EXPUNGE'))[0]).toMatch(/^b NO \[READ-ONLY\] /);
  });
});

describe('UID EXPUNGE', () => {
  it('expunges only the \\Deleted messages in the UID set (RFC 4315 §2.1)', async () => {
    const c = await imap.selected();
    expect(await c.command('a UID EXPUNGE 3:5')).toEqual([
      '* 5 EXPUNGE',
      '* 3 EXPUNGE',
      'a OK UID EXPUNGE completed',
    ]);
    expect(await c.command('b UID SEARCH DELETED')).toEqual(['* SEARCH 2', 'b OK UID SEARCH completed']);
  });

  it('is BAD without a UID set (RFC 4315 §4 uid-expunge = "UID" SP "EXPUNGE" SP sequence-set)', async () => {
    const c = await imap.selected();
    expect((await c.command('a UID EXPUNGE'))[0]).toMatch(/^a BAD /);
  });
});
