/** What a COPY/MOVE teaches the content filter, and which learning requests are accepted. */
import { describe, expect, it } from 'vitest';
import { learnVerdictOf, parseLearnJob } from '../src/spam-learning/junk-learning.js';

describe('learnVerdictOf', () => {
  it.each([
    [null, '\\Junk', 'spam'],
    ['\\Sent', '\\Junk', 'spam'],
    ['\\Junk', null, 'ham'],
    ['\\Junk', '\\Archive', 'ham'],
    ['\\Junk', '\\Trash', undefined],
    ['\\Junk', '\\Junk', undefined],
    [null, '\\Archive', undefined],
    [null, null, undefined],
  ])('%s → %s learns %s', (source, destination, verdict) => {
    expect(learnVerdictOf(source, destination)).toBe(verdict);
  });
});

describe('parseLearnJob', () => {
  const job = { version: 1, userId: 'u', mailboxId: 'm', uids: [1, 2], verdict: 'spam' };
  const bytes = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
  it('accepts a well-formed request', () => {
    expect(parseLearnJob(bytes(job))).toEqual(job);
  });
  it.each([
    ['not JSON', new TextEncoder().encode('{')],
    ['another version', bytes({ ...job, version: 2 })],
    ['a bad UID', bytes({ ...job, uids: [0] })],
    ['too many UIDs', bytes({ ...job, uids: Array.from({ length: 501 }, (_, i) => i + 1) })],
    ['an unknown verdict', bytes({ ...job, verdict: 'maybe' })],
  ])('refuses %s', (_what, data) => {
    expect(parseLearnJob(data)).toBeUndefined();
  });
});
