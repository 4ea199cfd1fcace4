/** DELETE — RFC 9051 §6.3.5. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InprocImap, message } from '../inproc/driver.js';

let imap: InprocImap;
beforeEach(() => {
  imap = new InprocImap();
});
afterEach(() => imap.close());

describe('DELETE', () => {
  it('deletes a mailbox with its messages', async () => {
    const c = await imap.login();
    await c.command('a CREATE Old');
    await imap.store.deliver(imap.alice.id, 'Old', message());
    expect(await c.command('b DELETE Old')).toEqual(['b OK DELETE completed']);
    expect(await c.command('c LIST "" Old')).toEqual(['c OK LIST completed']);
    expect(await c.command('d STATUS Old (MESSAGES)')).toEqual(['d NO [NONEXISTENT] No such mailbox']);
  });

  it('refuses INBOX NO [CANNOT] (RFC 9051 §6.3.5: it is an error to delete INBOX)', async () => {
    const c = await imap.login();
    expect(await c.command('a DELETE INBOX')).toEqual([
      'a NO [CANNOT] Operation not allowed on this mailbox',
    ]);
    expect(await c.command('b DELETE inbox')).toEqual([
      'b NO [CANNOT] Operation not allowed on this mailbox',
    ]);
  });

  it('refuses a mailbox with children NO [HASCHILDREN] (RFC 9051 §6.3.5, §7.1)', async () => {
    const c = await imap.login();
    await c.command('a CREATE Parent/Child');
    // Postmesh keeps no \Noselect parents, so it refuses instead of deleting a parent's messages
    // only; RFC 9051 §7.1 names the response code for exactly this refusal.
    expect(await c.command('b DELETE Parent')).toEqual(['b NO [HASCHILDREN] Mailbox has children']);
    expect(await c.command('c DELETE Parent/Child')).toEqual(['c OK DELETE completed']);
    expect(await c.command('d DELETE Parent')).toEqual(['d OK DELETE completed']);
  });

  it('answers a missing mailbox NO [NONEXISTENT] (RFC 5530 §3)', async () => {
    const c = await imap.login();
    expect(await c.command('a DELETE Nope')).toEqual(['a NO [NONEXISTENT] No such mailbox or message']);
  });

  it('closes the selected mailbox when another session deletes it (RFC 9051 §7.1 CLOSED)', async () => {
    const c = await imap.login();
    await c.command('a CREATE Doomed');
    await c.command('b SELECT Doomed');
    const other = await imap.login();
    await other.command('c DELETE Doomed');
    expect(await c.command('d NOOP')).toEqual(['* OK [CLOSED] Mailbox was deleted', 'd OK NOOP completed']);
    expect((await c.command('e FETCH 1 FLAGS'))[0]).toMatch(/^e BAD /);
  });

  it('is BAD without a name', async () => {
    const c = await imap.login();
    expect((await c.command('a DELETE'))[0]).toMatch(/^a BAD /);
  });
});
