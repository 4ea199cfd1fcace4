/**
 * Mailbox names and LIST patterns (RFC 9051 §5.1, §6.3.4, §6.3.9): table tests of the pure
 * matcher and validator the mailstore uses for ListMailboxes / CreateMailbox / RenameMailbox.
 */
import { ErrorReason } from '@postmesh/contracts';
import fc from 'fast-check';
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

/**
 * The definition of RFC 9051 §6.3.9 matching, written for clarity (memoized recursion over
 * positions), to check the bit-parallel matcher against.
 */
function referenceMatch(pattern: string, path: string): boolean {
  const p = [...pattern];
  const t = [...path];
  const memo = new Map<number, boolean>();
  const at = (i: number, j: number): boolean => {
    const key = i * (t.length + 1) + j;
    const known = memo.get(key);
    if (known !== undefined) return known;
    let result: boolean;
    if (i === p.length) result = j === t.length;
    else if (p[i] === '*') result = at(i + 1, j) || (j < t.length && at(i, j + 1));
    else if (p[i] === '%') result = at(i + 1, j) || (j < t.length && t[j] !== '/' && at(i, j + 1));
    else result = j < t.length && p[i] === t[j] && at(i + 1, j + 1);
    memo.set(key, result);
    return result;
  };
  return at(0, 0);
}

describe('LIST pattern matching cost and correctness', () => {
  it('answers a backtracking-prone pattern against a long name at once', () => {
    // A regular expression built from `*a*a*a*a*b` backtracks for minutes against 400 `a`s; the
    // matcher visits each character once per pattern position. Bounded, not timed: the test
    // would hang (and hit vitest's timeout) on a backtracking matcher.
    const name = 'a'.repeat(400);
    const many = Array.from({ length: 200 }, (_, i) => `${name}/${'a'.repeat(i)}`);
    for (const pattern of ['*a*a*a*a*b', '%a%a%a%a%a%a%b', `${'*a'.repeat(300)}*b`]) {
      const m = listMatcher('', pattern);
      expect(m(name)).toBe(false);
      expect(many.filter((p) => m(p))).toEqual([]);
    }
    expect(listMatcher('', '*a*a*a*a*')(name)).toBe(true);
    expect(listMatcher('', `${'%a'.repeat(400)}%`)(name)).toBe(true);
    expect(listMatcher('', `${'%a'.repeat(401)}%`)(name)).toBe(false);
  });

  it('matches wildcards at every position of patterns longer than one bit-set word', () => {
    const level = 'x'.repeat(40);
    const path = `${level}/${level}/${level}`;
    expect(listMatcher('', `${level}/%/${level}`)(path)).toBe(true);
    expect(listMatcher('', `${level}%${level}`)(path)).toBe(false);
    expect(listMatcher('', `${level}*${level}`)(path)).toBe(true);
    expect(listMatcher('', `${level}/${level}/${level.slice(1)}%`)(path)).toBe(true);
    expect(listMatcher('', `${level}/${level}/${level}x`)(path)).toBe(false);
  });

  it('takes every other character literally, regular-expression syntax included', () => {
    const name = "!#$&'+,-.0123456789:;<=>?@^_`|[}{]()\\";
    expect(listMatcher('', name)(name)).toBe(true);
    expect(listMatcher('', `${name}%*`)(name)).toBe(true);
    expect(listMatcher('', `${name}%*`)(`${name}/child`)).toBe(true);
    expect(listMatcher('', '[a]')('a')).toBe(false);
    expect(listMatcher('', 'a-b')('a-b')).toBe(true);
  });

  it('agrees with the definition on random patterns and names (fixed seed)', () => {
    const char = fc.constantFrom('a', 'b', '/', '*', '%', 'Ω');
    const nameChar = fc.constantFrom('a', 'b', '/', 'Ω');
    fc.assert(
      fc.property(
        fc.array(char, { maxLength: 70 }).map((c) => c.join('')),
        fc.array(nameChar, { maxLength: 70 }).map((c) => c.join('')),
        (pattern, path) => {
          // Names never start with INBOX here, so the INBOX rule plays no part.
          expect(listMatcher('', pattern)(path)).toBe(referenceMatch(pattern, path));
        },
      ),
      { seed: 20261206, numRuns: 2000 },
    );
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
