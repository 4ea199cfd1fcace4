/**
 * RFC 4314 ACL commands (§3.1-§3.5) and responses (§3.6-§3.8): parsing with the RFC's own
 * examples, and the exact bytes of ACL, LISTRIGHTS and MYRIGHTS.
 */
import { describe, expect, it } from 'vitest';
import { COMMAND_STATES, serializeAcl, serializeListRights, serializeMyRights } from '../src/index.js';
import { parseErr, parseOk } from './helpers.js';

describe('ACL commands', () => {
  it('parses SETACL, DELETEACL, GETACL, LISTRIGHTS and MYRIGHTS (RFC 4314 §3 examples)', () => {
    expect(parseOk('A001 SeTacl INBOX/Drafts David lrswida\r\n')).toEqual({
      name: 'SETACL',
      tag: 'A001',
      mailbox: 'INBOX/Drafts',
      identifier: 'David',
      rights: 'lrswida',
    });
    expect(parseOk('A002 SETACL INBOX/Drafts Chris +cda\r\n')).toMatchObject({ rights: '+cda' });
    expect(parseOk('A003 SETACL "Other Users/a@b/T" "anyone" ""\r\n')).toMatchObject({
      mailbox: 'Other Users/a@b/T',
      identifier: 'anyone',
      rights: '',
    });
    expect(parseOk('B002 DeleteAcl INBOX Fred\r\n')).toEqual({
      name: 'DELETEACL',
      tag: 'B002',
      mailbox: 'INBOX',
      identifier: 'Fred',
    });
    expect(parseOk('A002 getacl inbox\r\n')).toEqual({ name: 'GETACL', tag: 'A002', mailbox: 'INBOX' });
    expect(parseOk('a001 LISTRIGHTS ~/Mail/saved smith\r\n')).toEqual({
      name: 'LISTRIGHTS',
      tag: 'a001',
      mailbox: '~/Mail/saved',
      identifier: 'smith',
    });
    expect(parseOk('A003 MYRIGHTS INBOX\r\n')).toEqual({ name: 'MYRIGHTS', tag: 'A003', mailbox: 'INBOX' });
    expect(COMMAND_STATES.SETACL).toEqual(['authenticated', 'selected']);
    expect(COMMAND_STATES.MYRIGHTS).toEqual(['authenticated', 'selected']);
  });

  it('refuses malformed ACL commands as syntax errors', () => {
    expect(parseErr('a SETACL INBOX Fred\r\n').message).toMatch(/missing/);
    expect(parseErr('a GETACL\r\n').message).toMatch(/missing/);
    expect(parseErr('a GETACL INBOX extra\r\n').message).toMatch(/unexpected/);
    // RFC 4314 §3: an empty identifier is BAD.
    expect(parseErr('a DELETEACL INBOX ""\r\n').message).toMatch(/empty identifier/);
    expect(parseErr('a MYRIGHTS INBOX Fred\r\n').message).toMatch(/unexpected/);
  });

  it('serializes ACL, LISTRIGHTS and MYRIGHTS (RFC 4314 §3.6-§3.8)', () => {
    expect(
      serializeAcl('INBOX/Drafts', [
        { identifier: 'Fred', rights: 'rwipslxetad' },
        { identifier: 'Chris', rights: 'lrswi' },
      ]).toString(),
    ).toBe('* ACL INBOX/Drafts Fred rwipslxetad Chris lrswi\r\n');
    expect(serializeAcl('Other Users/a@b/T', []).toString()).toBe('* ACL "Other Users/a@b/T"\r\n');
    expect(serializeListRights('~/Mail/saved', 'smith', 'la', ['r', 'swicdkxte']).toString()).toBe(
      '* LISTRIGHTS ~/Mail/saved smith la r swicdkxte\r\n',
    );
    expect(serializeListRights('archive/imap', 'anyone', '', ['l', 'r']).toString()).toBe(
      '* LISTRIGHTS archive/imap anyone "" l r\r\n',
    );
    expect(serializeMyRights('INBOX', 'rwiptsldaex').toString()).toBe('* MYRIGHTS INBOX rwiptsldaex\r\n');
    // Mailbox names are modified UTF-7 unless UTF-8 is enabled.
    expect(serializeMyRights('Café', 'lr').toString()).toBe('* MYRIGHTS Caf&AOk- lr\r\n');
    expect(serializeMyRights('Café', 'lr', { utf8: true }).toString()).toBe('* MYRIGHTS "Café" lr\r\n');
  });
});
