/**
 * ACL — RFC 4314 §3.1-§3.5 (SETACL, DELETEACL, GETACL, LISTRIGHTS, MYRIGHTS) with RIGHTS=texk
 * (§5.1.1), and the "Other Users" namespace (RFC 2342 §5) a grant makes visible. The fake
 * mailstore enforces the rights as storage does; acl.int.test.ts checks storage's enforcement.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InprocImap, message } from '../inproc/driver.js';

let imap: InprocImap;
beforeEach(() => {
  imap = new InprocImap();
});
afterEach(() => imap.close());

describe('SETACL / GETACL / DELETEACL', () => {
  it('grants, shows and removes rights; "c" and "d" stand for k and x t e (RFC 4314 §2.1.1)', async () => {
    const c = await imap.login();
    expect(await c.command('a SETACL Archive bob@example.test lrd')).toEqual(['a OK SETACL completed']);
    expect(await c.command('b GETACL Archive')).toEqual([
      '* ACL Archive alice@example.test lrswipkxteacd bob@example.test lrxted',
      'b OK GETACL completed',
    ]);
    expect(await c.command('c SETACL Archive bob@example.test +w')).toEqual(['c OK SETACL completed']);
    expect(await c.command('d SETACL Archive bob@example.test -x')).toEqual(['d OK SETACL completed']);
    expect(await c.command('e GETACL Archive')).toEqual([
      '* ACL Archive alice@example.test lrswipkxteacd bob@example.test lrwted',
      'e OK GETACL completed',
    ]);
    expect(await c.command('f DELETEACL Archive bob@example.test')).toEqual(['f OK DELETEACL completed']);
    expect(await c.command('g GETACL Archive')).toEqual([
      '* ACL Archive alice@example.test lrswipkxteacd',
      'g OK GETACL completed',
    ]);
  });

  it('answers an unknown right BAD (RFC 4314 §3.1: MUST NOT ignore it)', async () => {
    const c = await imap.login();
    expect(await c.command('a SETACL Archive bob@example.test lrQ')).toEqual([
      'a BAD Unsupported right; this server knows lrswipkxtea and c, d',
    ]);
  });

  it("refuses to change the owner's rights NO [CANNOT] and an unknown user NO", async () => {
    const c = await imap.login();
    expect(await c.command('a SETACL Archive alice@example.test r')).toEqual([
      "a NO [CANNOT] The owner's rights cannot change",
    ]);
    expect(await c.command('b SETACL Archive nobody@example.test r')).toEqual(['b NO No such user']);
    expect(await c.command('c GETACL Nope')).toEqual(['c NO [NONEXISTENT] No such mailbox']);
  });
});

describe('LISTRIGHTS / MYRIGHTS', () => {
  it('lists the rights an identifier can be given (RFC 4314 §3.4, §3.7)', async () => {
    const c = await imap.login();
    expect(await c.command('a LISTRIGHTS INBOX bob@example.test')).toEqual([
      '* LISTRIGHTS INBOX bob@example.test "" l r s w i p k x t e a c d',
      'a OK LISTRIGHTS completed',
    ]);
    expect(await c.command('b LISTRIGHTS INBOX alice@example.test')).toEqual([
      '* LISTRIGHTS INBOX alice@example.test lrswipkxteacd',
      'b OK LISTRIGHTS completed',
    ]);
  });

  it('MYRIGHTS shows all rights on an own mailbox (RFC 4314 §3.5)', async () => {
    const c = await imap.login();
    expect(await c.command('a MYRIGHTS INBOX')).toEqual([
      '* MYRIGHTS INBOX lrswipkxteacd',
      'a OK MYRIGHTS completed',
    ]);
  });
});

describe('shared mailboxes (RFC 4314 §4, RFC 2342 §5)', () => {
  it('a grantee with "lr" lists, selects READ-ONLY and cannot change the mailbox', async () => {
    await imap.store.deliver(imap.alice.id, 'Archive', message());
    const owner = await imap.login();
    await owner.command('a SETACL Archive bob@example.test lr');
    const bob = await imap.login(imap.bob);
    const name = '"Other Users/alice@example.test/Archive"';
    expect(await bob.command('b LIST "" "Other Users/*"')).toEqual(
      expect.arrayContaining([
        '* LIST (\\HasNoChildren \\Archive) "/" "Other Users/alice@example.test/Archive"',
      ]),
    );
    expect(await bob.command(`c MYRIGHTS ${name}`)).toEqual([
      '* MYRIGHTS "Other Users/alice@example.test/Archive" lr',
      'c OK MYRIGHTS completed',
    ]);
    // RFC 4314 §5.2: without i, e, w, s and t, SELECT answers READ-ONLY.
    expect((await bob.command(`d SELECT ${name}`)).at(-1)).toBe('d OK [READ-ONLY] SELECT completed');
    expect((await bob.command('e STORE 1 +FLAGS (\\Seen)'))[0]).toMatch(/^e NO /);
    // RFC 4314 §4: GETACL needs "a".
    expect(await bob.command(`f GETACL ${name}`)).toEqual(['f NO [NOPERM] Permission denied']);
  });

  it('without "l" or "r" the mailbox does not exist for the grantee (RFC 4314 §6)', async () => {
    const bob = await imap.login(imap.bob);
    expect(await bob.command('a SELECT "Other Users/alice@example.test/INBOX"')).toEqual([
      'a NO [NONEXISTENT] No such mailbox',
    ]);
    expect(await bob.command('b LIST "" "Other Users/*"')).toEqual(['b OK LIST completed']);
  });

  it('a grantee with "i" may APPEND, without it NO [NOPERM] (RFC 4314 §4)', async () => {
    const owner = await imap.login();
    await owner.command('a SETACL Archive bob@example.test lri');
    await owner.command('b SETACL Drafts bob@example.test lr');
    const bob = await imap.login(imap.bob);
    expect(
      (await bob.command('c APPEND "Other Users/alice@example.test/Archive" {5+}\r\nhello\r\n'))[0],
    ).toMatch(/^c OK /);
    expect(await bob.command('d APPEND "Other Users/alice@example.test/Drafts" {5+}\r\nhello\r\n')).toEqual([
      'd NO [NOPERM] Permission denied',
    ]);
  });

  it('ACL commands are BAD before authentication', async () => {
    const c = await imap.connect();
    for (const command of [
      'SETACL INBOX bob r',
      'DELETEACL INBOX bob',
      'GETACL INBOX',
      'LISTRIGHTS INBOX bob',
      'MYRIGHTS INBOX',
    ]) {
      expect((await c.command(`a ${command}`))[0]).toBe(
        `a BAD ${command.split(' ')[0]} is not allowed in the not authenticated state`,
      );
    }
  });
});
