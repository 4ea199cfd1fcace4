/** CREATE — RFC 9051 §6.3.4, with OBJECTID (RFC 8474 §4.1) and CREATE-SPECIAL-USE-free names. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { utf8, InprocImap } from '../inproc/driver.js';

let imap: InprocImap;
beforeEach(() => {
  imap = new InprocImap();
});
afterEach(() => imap.close());

describe('CREATE', () => {
  it('creates a mailbox and answers its MAILBOXID (RFC 8474 §4.1)', async () => {
    const c = await imap.login();
    const [done] = await c.command('a CREATE Receipts');
    expect(done).toMatch(/^a OK \[MAILBOXID \([0-9a-f]{24}\)\] CREATE completed$/);
    expect(await c.command('b LIST "" Receipts')).toEqual([
      '* LIST (\\HasNoChildren) "/" Receipts',
      'b OK LIST completed',
    ]);
  });

  it('creates missing parents (RFC 9051 §6.3.4: SHOULD create superior names)', async () => {
    const c = await imap.login();
    await c.command('a CREATE a/b/c');
    expect(await c.command('b LIST "" a*')).toEqual([
      '* LIST (\\HasChildren) "/" a',
      '* LIST (\\HasChildren) "/" a/b',
      '* LIST (\\HasNoChildren) "/" a/b/c',
      'b OK LIST completed',
    ]);
  });

  it('ignores one trailing delimiter (RFC 9051 §6.3.4: "CREATE foo/" creates foo)', async () => {
    const c = await imap.login();
    expect((await c.command('a CREATE foo/'))[0]).toMatch(/^a OK /);
    expect(await c.command('b LIST "" foo*')).toEqual([
      '* LIST (\\HasNoChildren) "/" foo',
      'b OK LIST completed',
    ]);
  });

  it('answers an existing name NO [ALREADYEXISTS], INBOX in any case too (RFC 9051 §6.3.4, RFC 5530 §3)', async () => {
    const c = await imap.login();
    expect(await c.command('a CREATE Sent')).toEqual(['a NO [ALREADYEXISTS] Mailbox already exists']);
    // RFC 9051 §6.3.4: it is an error to attempt to create INBOX.
    expect((await c.command('b CREATE inbox'))[0]).toMatch(/^b NO /);
  });

  it('gives a special use with USE, one mailbox per use (RFC 6154 §3 CREATE-SPECIAL-USE)', async () => {
    const c = await imap.login();
    expect(await c.command('a DELETE Archive')).toEqual(['a OK DELETE completed']);
    expect((await c.command('b CREATE Old (USE (\\Archive))'))[0]).toMatch(/^b OK /);
    expect(await c.command('c LIST "" Old')).toEqual([
      '* LIST (\\HasNoChildren \\Archive) "/" Old',
      'c OK LIST completed',
    ]);
    // RFC 6154 §3, §5.3: a use already given to another mailbox fails the CREATE with NO [USEATTR].
    expect(await c.command('d CREATE Older (USE (\\Archive))')).toEqual([
      'd NO [USEATTR] Special use already in use',
    ]);
    expect(await c.command('g LIST "" Older')).toEqual(['g OK LIST completed']);
    // RFC 6154 §3: a use the server cannot give MUST fail with NO, nothing created, and SHOULD say USEATTR.
    expect(await c.command('e CREATE Later (USE (\\Important))')).toEqual([
      'e NO [USEATTR] Unsupported special use',
    ]);
    expect(await c.command('f LIST "" Later')).toEqual(['f OK LIST completed']);
  });

  it('refuses names with wildcards NO [CANNOT]', async () => {
    const c = await imap.login();
    expect(await c.command('a CREATE "a*b"')).toEqual(['a NO [CANNOT] Invalid mailbox name']);
  });

  it('decodes modified UTF-7 names (RFC 9051 §5.1.3)', async () => {
    const c = await imap.login();
    await c.command('a CREATE "Entw&APw-rfe"');
    await c.command('e ENABLE UTF8=ACCEPT');
    // RFC 6855 §3: the name is sent as UTF-8 (quoted: it is not an atom).
    expect((await c.command('b LIST "" Entw*')).map(utf8)).toEqual([
      '* LIST (\\HasNoChildren) "/" "Entwürfe"',
      'b OK LIST completed',
    ]);
  });

  it('is BAD without a name or before authentication', async () => {
    const c = await imap.connect();
    expect(await c.command('a CREATE x')).toEqual([
      'a BAD CREATE is not allowed in the not authenticated state',
    ]);
    await c.command('l LOGIN alice@example.test alice-pw');
    expect((await c.command('b CREATE'))[0]).toMatch(/^b BAD /);
  });
});
