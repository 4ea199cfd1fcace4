/**
 * SEARCH over the mailbox index (src/mailstore/search.ts `indexMatcher`): the query resolved
 * once per mailbox must decide every message exactly as the general `matches` does, for every
 * key the index (with its summaries) answers, nested in NOT/AND/OR.
 */
import { randomBytes } from 'node:crypto';
import { mailstore } from '@postmesh/contracts';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { MessageSummary } from '../src/mailstore/mailbox-index.js';
import {
  indexMatcher,
  matches,
  summaryAnswers,
  type IndexedFields,
  type SearchContext,
  type SearchSubject,
} from '../src/mailstore/search.js';
import { TermHasher, foldForSearch } from '../src/mailstore/search-terms.js';

type SearchKey = mailstore.SearchKey;
const { Flag } = mailstore;
const DAY_MS = 86_400_000;
const BASE = Date.UTC(2026, 10, 1);

const ctx: SearchContext = {
  hasher: new TermHasher(randomBytes(32)),
  target: 'message',
  highestUid: 40,
  now: BASE + 20 * DAY_MS,
};

const date = fc
  .integer({ min: -3, max: 25 })
  .map((d) => new Date(BASE + d * DAY_MS))
  .map((d) => ({ year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() }));
const words = ['alpha', 'Beta', 'gamma ray', 'ÉTÉ', 'x'];
const text = fc.constantFrom(...words);
const flagName = fc.constantFrom(Flag.SEEN, Flag.ANSWERED, Flag.FLAGGED, Flag.DELETED, Flag.DRAFT);
const keyword = fc.constantFrom('$Junk', '$Forwarded', 'work');

const leaf: fc.Arbitrary<SearchKey> = fc.oneof(
  fc.constant({ key: { $case: 'all' as const, value: true } }),
  fc
    .array(fc.record({ first: fc.integer({ min: 1, max: 45 }), last: fc.integer({ min: 0, max: 45 }) }), {
      maxLength: 3,
    })
    .map((ranges) => ({ key: { $case: 'uid' as const, value: { ranges } } })),
  flagName.map((value) => ({ key: { $case: 'flag' as const, value } })),
  keyword.map((value) => ({ key: { $case: 'keyword' as const, value } })),
  date.map((value) => ({ key: { $case: 'before' as const, value } })),
  date.map((value) => ({ key: { $case: 'on' as const, value } })),
  date.map((value) => ({ key: { $case: 'since' as const, value } })),
  date.map((value) => ({ key: { $case: 'sentBefore' as const, value } })),
  date.map((value) => ({ key: { $case: 'sentOn' as const, value } })),
  date.map((value) => ({ key: { $case: 'sentSince' as const, value } })),
  fc.nat(5_000).map((value) => ({ key: { $case: 'larger' as const, value } })),
  fc.nat(5_000).map((value) => ({ key: { $case: 'smaller' as const, value } })),
  fc.nat(60).map((value) => ({ key: { $case: 'modseq' as const, value } })),
  fc.nat(25 * 86_400).map((value) => ({ key: { $case: 'olderThanSeconds' as const, value } })),
  fc.nat(25 * 86_400).map((value) => ({ key: { $case: 'youngerThanSeconds' as const, value } })),
  fc
    .tuple(
      fc.constantFrom('subject' as const, 'from' as const, 'to' as const, 'cc' as const, 'bcc' as const),
      text,
    )
    .map(([$case, value]) => ({ key: { $case, value } })),
);

const { key: query } = fc.letrec<{ key: SearchKey }>((tie) => ({
  key: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    tie('key').map((inner) => ({ key: { $case: 'not' as const, value: inner } })),
    fc
      .array(tie('key'), { maxLength: 3 })
      .map((keys) => ({ key: { $case: 'and' as const, value: { keys } } })),
    fc
      .array(tie('key'), { maxLength: 3 })
      .map((keys) => ({ key: { $case: 'or' as const, value: { keys } } })),
  ),
}));

const message = fc.record({
  uid: fc.integer({ min: 1, max: 40 }),
  modseq: fc.integer({ min: 1, max: 60 }),
  flags: fc.uniqueArray(
    fc.constantFrom('\\Seen', '\\Answered', '\\Flagged', '\\Deleted', '\\Draft', '$Junk', 'work'),
  ),
  size: fc.nat(5_000),
  // Day starts and the milliseconds around them are where BEFORE/ON/SINCE differ.
  internalDate: fc
    .tuple(fc.integer({ min: -4, max: 26 }), fc.constantFrom(0, 1, -1, 43_200_000))
    .map(([day, ms]) => new Date(BASE + day * DAY_MS + ms)),
});

const summary: fc.Arbitrary<MessageSummary> = fc
  .record({
    sentDay: date.map((d) => d.year * 10_000 + d.month * 100 + d.day),
    subject: fc.array(text, { maxLength: 3 }),
    from: fc.array(text, { maxLength: 2 }),
    to: fc.array(text, { maxLength: 2 }),
    cc: fc.array(text, { maxLength: 2 }),
    bcc: fc.array(text, { maxLength: 2 }),
  })
  .map((s) => ({
    envelopeJson: '{}',
    sentDay: s.sentDay,
    subject: foldForSearch(s.subject.join(' ')),
    from: foldForSearch(s.from.join(', ')),
    to: foldForSearch(s.to.join(', ')),
    cc: foldForSearch(s.cc.join(', ')),
    bcc: foldForSearch(s.bcc.join(', ')),
  }));

function subjectOf(m: IndexedFields, s: MessageSummary): SearchSubject {
  const noContent = (): never => {
    throw new Error('no content in this test');
  };
  return {
    doc: { ...m, flags: [...m.flags], sentDay: s.sentDay },
    summary: s,
    meta: noContent,
    headerFields: noContent,
    bodyText: noContent,
    objectIds: noContent,
  };
}

describe('SEARCH over the mailbox index', () => {
  it('decides every message as matches does (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        query,
        fc.array(fc.tuple(message, summary), { minLength: 1, maxLength: 8 }),
        async (q, ms) => {
          expect(summaryAnswers(q)).toBe(true);
          const test = indexMatcher(q, ctx);
          for (const [m, s] of ms) expect(test(m, s)).toBe(await matches(q, subjectOf(m, s), ctx));
        },
      ),
      { numRuns: 400 },
    );
  });

  it('resolves UID sets with * against the mailbox and refuses content it does not have', () => {
    const last = indexMatcher({ key: { $case: 'uid', value: { ranges: [{ first: 39, last: 0 }] } } }, ctx);
    const at = (uid: number): IndexedFields => ({
      uid,
      modseq: 1,
      flags: [],
      size: 1,
      internalDate: new Date(BASE),
    });
    expect([38, 39, 40].map((uid) => last(at(uid), undefined))).toEqual([false, true, true]);
    const subject = indexMatcher({ key: { $case: 'subject', value: 'x' } }, ctx);
    expect(() => subject(at(1), undefined)).toThrow(/no message content/);
    expect(() => indexMatcher({ key: { $case: 'body', value: 'x' } }, ctx)).toThrow(/cannot answer/);
  });
});
