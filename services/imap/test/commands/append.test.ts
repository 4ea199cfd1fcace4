/**
 * APPEND — RFC 9051 §6.3.12, with UIDPLUS (RFC 4315 §3 APPENDUID), LITERAL+ / LITERAL-
 * (RFC 7888), APPENDLIMIT (RFC 7889) and QUOTA (RFC 9208 §4.1 OVERQUOTA).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InprocImap, message } from '../inproc/driver.js';

let imap: InprocImap;
beforeEach(() => {
  imap = new InprocImap();
});
afterEach(() => imap.close());

const MSG = message({ subject: 'Appended' });

async function validity(c: Awaited<ReturnType<InprocImap['login']>>, mailbox: string): Promise<string> {
  const [line] = await c.command(`v STATUS ${mailbox} (UIDVALIDITY)`);
  return /UIDVALIDITY (\d+)/.exec(line ?? '')?.[1] ?? 'none';
}

describe('APPEND', () => {
  it('waits for "+" before a synchronizing literal and answers APPENDUID (RFC 9051 §4.3, RFC 4315 §3)', async () => {
    const c = await imap.login();
    const v = await validity(c, 'INBOX');
    c.write(`a APPEND INBOX {${MSG.length}}\r\n`);
    // RFC 9051 §7.5: the server's continuation request before the client sends the literal.
    expect((await c.lines('\r\n'))[0]).toMatch(/^\+ /);
    c.write(`${MSG}\r\n`);
    expect(await c.lines(/a (OK|NO|BAD)/)).toEqual([`a OK [APPENDUID ${v} 1] APPEND completed`]);
    expect(await c.command('b STATUS INBOX (MESSAGES UIDNEXT)')).toEqual([
      '* STATUS INBOX (MESSAGES 1 UIDNEXT 2)',
      'b OK STATUS completed',
    ]);
  });

  it('takes a non-synchronizing literal without a continuation once authenticated (RFC 7888 §3 LITERAL+)', async () => {
    const c = await imap.login();
    const v = await validity(c, 'Drafts');
    expect(await c.command(`a APPEND Drafts (\\Draft \\Seen) {${MSG.length}+}\r\n${MSG}\r\n`)).toEqual([
      `a OK [APPENDUID ${v} 1] APPEND completed`,
    ]);
    await c.command('s SELECT Drafts');
    expect(await c.command('b FETCH 1 (FLAGS RFC822.SIZE)')).toEqual([
      `* 1 FETCH (FLAGS (\\Draft \\Seen \\Recent) RFC822.SIZE ${MSG.length})`,
      'b OK FETCH completed',
    ]);
  });

  it('keeps flags, keywords and the internal date given (RFC 9051 §6.3.12)', async () => {
    const c = await imap.login();
    await c.command(
      `a APPEND INBOX ($Label \\Flagged) "07-Dec-2026 09:30:00 +0100" {${MSG.length}+}\r\n${MSG}\r\n`,
    );
    await c.command('s SELECT INBOX');
    expect(await c.command('b FETCH 1 (FLAGS INTERNALDATE)')).toEqual([
      // RFC 9051 §9: date-day-fixed is a space and one digit for days below 10.
      '* 1 FETCH (FLAGS (\\Flagged \\Recent $Label) INTERNALDATE " 7-Dec-2026 08:30:00 +0000")',
      'b OK FETCH completed',
    ]);
  });

  it('takes a binary literal8 with NUL octets (RFC 3516 §4.4 BINARY)', async () => {
    const c = await imap.login();
    const raw = 'Subject: bin\r\n\r\nab\x00cd\r\n';
    expect((await c.command(`a APPEND INBOX ~{${raw.length}+}\r\n${raw}\r\n`))[0]).toMatch(
      /^a OK \[APPENDUID \d+ 1\] /,
    );
    await c.command('s EXAMINE INBOX');
    expect(await c.command('b FETCH 1 (RFC822.SIZE BINARY.SIZE[1])')).toEqual([
      `* 1 FETCH (RFC822.SIZE ${raw.length} BINARY.SIZE[1] 7)`,
      'b OK FETCH completed',
    ]);
  });

  it('takes a UTF8 (~{n}) message once UTF8=ACCEPT is enabled (RFC 6855 §4)', async () => {
    const c = await imap.login();
    await c.command('e ENABLE UTF8=ACCEPT');
    const raw = Buffer.from('Subject: Grüße\r\n\r\nhi\r\n', 'utf8').toString('latin1');
    expect((await c.command(`a APPEND INBOX UTF8 (~{${raw.length}+}\r\n${raw})\r\n`))[0]).toMatch(
      /^a OK \[APPENDUID \d+ 1\] /,
    );
    await c.command('s EXAMINE INBOX');
    expect(await c.command('b FETCH 1 RFC822.SIZE')).toEqual([
      `* 1 FETCH (RFC822.SIZE ${raw.length})`,
      'b OK FETCH completed',
    ]);
  });

  it('appends to the selected mailbox and reports it as EXISTS (RFC 9051 §6.3.12)', async () => {
    const c = await imap.selected();
    const response = await c.command(`a APPEND INBOX {${MSG.length}+}\r\n${MSG}\r\n`);
    // RFC 9051 §6.3.12: if the mailbox is selected, the server SHOULD send EXISTS.
    expect(response[0]).toBe('* 1 EXISTS');
    expect(response.at(-1)).toMatch(/^a OK \[APPENDUID \d+ 1\] APPEND completed$/);
  });

  it('answers a missing mailbox NO [TRYCREATE] (RFC 9051 §6.3.12: MUST NOT create it)', async () => {
    const c = await imap.login();
    expect(await c.command(`a APPEND Nope {${MSG.length}+}\r\n${MSG}\r\n`)).toEqual([
      'a NO [TRYCREATE] No such mailbox',
    ]);
    expect(await c.command('b LIST "" Nope')).toEqual(['b OK LIST completed']);
  });

  it('refuses a literal over APPENDLIMIT before reading it: NO [TOOBIG] (RFC 7889 §3.1)', async () => {
    const c = await imap.login();
    c.write('a APPEND INBOX {70000}\r\n');
    // RFC 7889 §3.1: the server can refuse before the client sends the message.
    expect((await c.lines(/a (OK|NO|BAD)/))[0]).toMatch(/^a NO \[TOOBIG\] /);
    expect(await c.command('b NOOP')).toEqual(['b OK NOOP completed']);
  });

  it('answers over quota NO [OVERQUOTA] and stores nothing (RFC 9208 §4.1, RFC 5530 §3)', async () => {
    imap.alice.limitBytes = MSG.length + 10;
    const c = await imap.login();
    expect((await c.command(`a APPEND INBOX {${MSG.length}+}\r\n${MSG}\r\n`))[0]).toMatch(/^a OK /);
    expect(await c.command(`b APPEND INBOX {${MSG.length}+}\r\n${MSG}\r\n`)).toEqual([
      'b NO [OVERQUOTA] Quota exceeded',
    ]);
    expect(await c.command('c STATUS INBOX (MESSAGES)')).toEqual([
      '* STATUS INBOX (MESSAGES 1)',
      'c OK STATUS completed',
    ]);
  });

  it('is BAD with an unclosed flag list or an invalid date, or before authentication (RFC 9051 §9)', async () => {
    const c = await imap.connect();
    expect((await c.command('a APPEND INBOX {3+}\r\nabc\r\n'))[0]).toMatch(/^a BAD /);
    await c.command('l LOGIN alice@example.test alice-pw');
    expect((await c.command('b APPEND INBOX (\\Seen {3+}\r\nabc\r\n'))[0]).toMatch(/^b BAD /);
    expect((await c.command('c APPEND INBOX "32-Dec-2026 00:00:00 +0000" {3+}\r\nabc\r\n'))[0]).toMatch(
      /^c BAD /,
    );
  });
});
