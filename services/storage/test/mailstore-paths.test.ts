/**
 * Mailbox names and LIST patterns (RFC 9051 §5.1, §6.3.4, §6.3.9): table tests of the pure
 * matcher and validator the mailstore uses for ListMailboxes / CreateMailbox / RenameMailbox.
 */
import { ErrorReason } from '@postmesh/contracts';
import { describe, expect, it } from 'vitest';
import { MailstoreError } from '../src/mailstore/errors.js';
import { canonicalPath, listMatcher, parentPaths, validateNewPath } from '../src/mailstore/paths.js';

const PATHS = [
  'INBOX',
  'INBOX/Lists',
  'INBOX/Lists/node',
  'Archive',
  'Archive/2025',
  'Archive/2026',
  'Sent',
  'a b',
  'a.b',
  'Ünïcödé/Ω',
];

function list(reference: string, pattern: string): string[] {
  const m = listMatcher(reference, pattern);
  return PATHS.filter((p) => m(p));
}

describe('LIST pattern matching (RFC 9051 §6.3.9)', () => {
  it.each([
    // `*` matches across the delimiter.
    ['', '*', PATHS],
    // `%` does not.
    ['', '%', ['INBOX', 'Archive', 'Sent', 'a b', 'a.b']],
    ['', 'Archive/%', ['Archive/2025', 'Archive/2026']],
    ['', 'Archive*', ['Archive', 'Archive/2025', 'Archive/2026']],
    ['', 'Archive%', ['Archive']],
    ['', '%/%', ['INBOX/Lists', 'Archive/2025', 'Archive/2026', 'Ünïcödé/Ω']],
    ['', '*/node', ['INBOX/Lists/node']],
    ['', 'Archive/202_', []],
    // Regex metacharacters in names are literal.
    ['', 'a.b', ['a.b']],
    ['', 'a?b', []],
    // Reference joining: the reference is prepended to the pattern.
    ['Archive/', '%', ['Archive/2025', 'Archive/2026']],
    ['Archive/', '*', ['Archive/2025', 'Archive/2026']],
    ['INBOX/', '%', ['INBOX/Lists']],
    // INBOX is case-insensitive (RFC 9051 §5.1), other names are not.
    ['', 'inbox', ['INBOX']],
    ['', 'InBoX/lists', []],
    ['', 'inbox/Lists', ['INBOX/Lists']],
    ['', 'inbox*', ['INBOX', 'INBOX/Lists', 'INBOX/Lists/node']],
    ['', 'archive', []],
    ['', 'Ünïcödé/*', ['Ünïcödé/Ω']],
  ])('reference %j pattern %j', (reference, pattern, expected) => {
    expect(list(reference, pattern)).toEqual(expected);
  });
});

describe('mailbox names', () => {
  it.each([
    ['INBOX', 'INBOX'],
    ['inbox', 'INBOX'],
    ['Inbox/Sub', 'INBOX/Sub'],
    ['Inboxes', 'Inboxes'],
    ['Archive/2026', 'Archive/2026'],
    // RFC 9051 §6.3.4: a trailing delimiter is ignored.
    ['Projects/', 'Projects'],
  ])('%j is stored as %j', (input, expected) => {
    expect(validateNewPath(input, 'path')).toBe(expected);
  });

  it.each([
    ['', ErrorReason.INVALID_NAME],
    ['/', ErrorReason.INVALID_NAME],
    ['/Leading', ErrorReason.INVALID_NAME],
    ['a//b', ErrorReason.INVALID_NAME],
    ['with\u0000nul', ErrorReason.INVALID_NAME],
    ['with\r\nbreak', ErrorReason.INVALID_NAME],
    ['star*', ErrorReason.INVALID_NAME],
    ['per%cent', ErrorReason.INVALID_NAME],
    [' padded', ErrorReason.INVALID_NAME],
    ['x'.repeat(1025), ErrorReason.LIMIT_EXCEEDED],
    [Array.from({ length: 33 }, () => 'd').join('/'), ErrorReason.LIMIT_EXCEEDED],
  ])('%j is refused with %s', (input, reason) => {
    try {
      validateNewPath(input, 'path');
      expect.unreachable('accepted');
    } catch (error) {
      expect(error).toBeInstanceOf(MailstoreError);
      expect((error as MailstoreError).reason).toBe(reason);
      expect((error as MailstoreError).field).toBe('path');
    }
  });

  it('lists parents shallowest first and canonicalises INBOX', () => {
    expect(parentPaths('a/b/c')).toEqual(['a', 'a/b']);
    expect(parentPaths('top')).toEqual([]);
    expect(canonicalPath('iNbOx/x')).toBe('INBOX/x');
  });
});
