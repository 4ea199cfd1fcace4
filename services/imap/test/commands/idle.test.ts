/** IDLE — RFC 2177, RFC 9051 §6.3.13. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InprocImap, message } from '../inproc/driver.js';

let imap: InprocImap;
beforeEach(() => {
  imap = new InprocImap();
});
afterEach(() => imap.close());

describe('IDLE', () => {
  it('answers "+ idling", pushes new mail as it arrives and ends on DONE (RFC 9051 §6.3.13)', async () => {
    const c = await imap.selected();
    c.write('a IDLE\r\n');
    expect(await c.lines('\r\n')).toEqual(['+ idling']);
    await imap.store.deliver(imap.alice.id, 'INBOX', message());
    // RFC 9051 §6.3.13: untagged EXISTS while idling, without the client asking.
    expect(await c.lines('* 1 RECENT')).toEqual(['* 1 EXISTS', '* 1 RECENT']);
    c.write('DONE\r\n');
    expect(await c.lines(/a (OK|NO|BAD)/)).toEqual(['a OK IDLE terminated']);
  });

  it('pushes flag changes and expunges made by another session (RFC 9051 §7.5.1)', async () => {
    await imap.store.deliver(imap.alice.id, 'INBOX', message({ subject: 'one' }));
    await imap.store.deliver(imap.alice.id, 'INBOX', message({ subject: 'two' }));
    const c = await imap.selected();
    const other = await imap.selected();
    c.write('a IDLE\r\n');
    await c.lines('+ idling');
    await other.command('b STORE 2 +FLAGS.SILENT (\\Flagged)');
    expect(await c.lines('FETCH')).toEqual(['* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent))']);
    await other.command('c STORE 1 +FLAGS.SILENT (\\Deleted)');
    await other.command('d EXPUNGE');
    // The flag change and the expunge arrive in the order they happened.
    expect(await c.lines('EXPUNGE')).toEqual(['* 1 FETCH (UID 1 FLAGS (\\Deleted \\Recent))', '* 1 EXPUNGE']);
    c.write('DONE\r\n');
    expect(await c.lines(/a (OK|NO|BAD)/)).toEqual(['a OK IDLE terminated']);
  });

  it('answers anything but DONE with BAD (RFC 2177 §3)', async () => {
    const c = await imap.selected();
    c.write('a IDLE\r\n');
    await c.lines('+ idling');
    c.write('b NOOP\r\n');
    expect(await c.lines(/a (OK|NO|BAD)/)).toEqual(['a BAD Expected DONE']);
  });

  it('works in the authenticated state too (RFC 9051 §6.3.13)', async () => {
    const c = await imap.login();
    c.write('a IDLE\r\n');
    expect(await c.lines('\r\n')).toEqual(['+ idling']);
    c.write('done\r\n');
    expect(await c.lines(/a (OK|NO|BAD)/)).toEqual(['a OK IDLE terminated']);
  });

  it('is BAD before authentication', async () => {
    const c = await imap.connect();
    expect(await c.command('a IDLE')).toEqual(['a BAD IDLE is not allowed in the not authenticated state']);
  });
});
