/** SELECT and EXAMINE — RFC 9051 §6.3.2, §6.3.3; RFC 3501 §6.3.1-§6.3.2 for IMAP4rev1 clients. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mailstore } from '@postmesh/contracts';
import { InprocImap, message } from '../inproc/driver.js';

let imap: InprocImap;
beforeEach(() => {
  imap = new InprocImap();
});
afterEach(() => imap.close());

const FLAGS = '\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded $MDNSent $Junk $NotJunk';

describe('SELECT', () => {
  it('answers the required untagged data and READ-WRITE (RFC 9051 §6.3.2)', async () => {
    await imap.store.deliver(imap.alice.id, 'INBOX', message(), { flags: [mailstore.Flag.SEEN] });
    await imap.store.deliver(imap.alice.id, 'INBOX', message());
    const c = await imap.login();
    const [status] = await c.command('v STATUS INBOX (UIDVALIDITY)');
    const validity = /UIDVALIDITY (\d+)/.exec(status ?? '')?.[1];
    expect(validity).toMatch(/^\d+$/);
    const response = await c.command('a SELECT INBOX');
    expect(response.map((l) => l.replace(/\([0-9a-f]{24}\)/, '(<id>)'))).toEqual([
      // RFC 9051 §6.3.2: REQUIRED untagged responses: FLAGS, EXISTS, LIST (rev2 only);
      // REQUIRED OK untagged responses: PERMANENTFLAGS, UIDNEXT, UIDVALIDITY.
      '* 2 EXISTS',
      // RFC 3501 §6.3.1: RECENT for IMAP4rev1 clients.
      '* 2 RECENT',
      `* OK [UIDVALIDITY ${validity}] UIDs valid`,
      '* OK [UIDNEXT 3] Predicted next UID',
      '* OK [MAILBOXID (<id>)] Mailbox id',
      `* FLAGS (${FLAGS})`,
      // RFC 9051 §7.1: \* — new keywords may be created.
      `* OK [PERMANENTFLAGS (${FLAGS} \\*)] Flags permitted`,
      // RFC 3501 §6.3.1: the first unseen message's sequence number.
      '* OK [UNSEEN 2] First unseen',
      'a OK [READ-WRITE] SELECT completed',
    ]);
  });

  it('answers a LIST response with the mailbox name to an IMAP4rev2 client (RFC 9051 §6.3.2)', async () => {
    await imap.store.deliver(imap.alice.id, 'INBOX', message());
    const c = await imap.login();
    await c.command('e ENABLE IMAP4rev2');
    const response = await c.command('a SELECT inbox');
    expect(
      response.map((l) =>
        l.replace(/\([0-9a-f]{24}\)/, '(<id>)').replace(/UIDVALIDITY \d+/, 'UIDVALIDITY <v>'),
      ),
    ).toEqual([
      '* 1 EXISTS',
      '* OK [UIDVALIDITY <v>] UIDs valid',
      '* OK [UIDNEXT 2] Predicted next UID',
      '* OK [MAILBOXID (<id>)] Mailbox id',
      `* FLAGS (${FLAGS})`,
      `* OK [PERMANENTFLAGS (${FLAGS} \\*)] Flags permitted`,
      // RFC 9051 §6.3.2: REQUIRED; the attributes MUST be accurate; the name as LIST shows it.
      '* LIST (\\HasNoChildren) "/" INBOX',
      'a OK [READ-WRITE] SELECT completed',
    ]);
    await c.command('c CREATE Sent/2026');
    expect(await c.command('b EXAMINE Sent')).toContain('* LIST (\\HasChildren \\Sent) "/" Sent');
  });

  it('claims \\Recent: a second SELECT sees none (RFC 3501 §2.3.2)', async () => {
    await imap.store.deliver(imap.alice.id, 'INBOX', message());
    const first = await imap.login();
    expect(await first.command('a SELECT INBOX')).toContain('* 1 RECENT');
    const second = await imap.login();
    expect(await second.command('b SELECT INBOX')).toContain('* 0 RECENT');
  });

  it('announces keywords in use in FLAGS and PERMANENTFLAGS (RFC 9051 §7.3.5)', async () => {
    await imap.store.deliver(imap.alice.id, 'INBOX', message(), { keywords: ['Project'] });
    const c = await imap.login();
    const response = await c.command('a SELECT INBOX');
    expect(response).toContain(`* FLAGS (${FLAGS} Project)`);
  });

  it('closes the previous mailbox with OK [CLOSED] (RFC 9051 §7.1)', async () => {
    const c = await imap.selected();
    const response = await c.command('a SELECT Sent');
    expect(response[0]).toBe('* OK [CLOSED] Previous mailbox closed');
    expect(response.at(-1)).toBe('a OK [READ-WRITE] SELECT completed');
  });

  it('leaves no mailbox selected when it fails (RFC 9051 §6.3.2)', async () => {
    const c = await imap.selected();
    expect(await c.command('a SELECT Nope')).toEqual([
      '* OK [CLOSED] Previous mailbox closed',
      'a NO [NONEXISTENT] No such mailbox',
    ]);
    // RFC 9051 §6.3.2: a failed SELECT leaves the authenticated state.
    expect(await c.command('b CLOSE')).toEqual(['b BAD CLOSE is not allowed in the authenticated state']);
  });

  it('selects INBOX case-insensitively (RFC 9051 §5.1)', async () => {
    const c = await imap.login();
    expect((await c.command('a SELECT inbox')).at(-1)).toBe('a OK [READ-WRITE] SELECT completed');
  });

  it('is BAD before authentication and without a name', async () => {
    const c = await imap.connect();
    expect(await c.command('a SELECT INBOX')).toEqual([
      'a BAD SELECT is not allowed in the not authenticated state',
    ]);
    await c.command('l LOGIN alice@example.test alice-pw');
    expect((await c.command('b SELECT'))[0]).toMatch(/^b BAD /);
  });
});

describe('EXAMINE', () => {
  it('opens read-only and leaves \\Recent to the next SELECT (RFC 3501 §6.3.2)', async () => {
    await imap.store.deliver(imap.alice.id, 'INBOX', message());
    const c = await imap.login();
    const response = await c.command('a EXAMINE INBOX');
    // RFC 9051 §6.3.3: the tagged OK MUST be [READ-ONLY]; no permanent flags can be changed.
    expect(response.at(-1)).toBe('a OK [READ-ONLY] EXAMINE completed');
    expect(response).toContain('* OK [PERMANENTFLAGS ()] No permanent flags permitted');
    expect(response).toContain('* 1 RECENT');
    const other = await imap.login();
    expect(await other.command('b SELECT INBOX')).toContain('* 1 RECENT');
  });

  it('refuses STORE and EXPUNGE, and BODY[] leaves \\Seen alone, in a read-only mailbox (RFC 9051 §6.3.3)', async () => {
    await imap.store.deliver(imap.alice.id, 'INBOX', message());
    const c = await imap.login();
    await c.command('a EXAMINE INBOX');
    expect((await c.command('b STORE 1 +FLAGS (\\Seen)'))[0]).toMatch(/^b NO /);
    expect((await c.command('c EXPUNGE'))[0]).toMatch(/^c NO /);
    // RFC 9051 §6.4.5: in a read-only mailbox, BODY[] does not set \Seen.
    await c.command('d FETCH 1 BODY[]');
    expect(await c.command('e FETCH 1 FLAGS')).toEqual([
      '* 1 FETCH (FLAGS (\\Recent))',
      'e OK FETCH completed',
    ]);
  });
});
