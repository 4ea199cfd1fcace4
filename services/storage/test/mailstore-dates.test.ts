/**
 * SENTON / SENTBEFORE / SENTSINCE compare the Date: header's calendar date "disregarding time and
 * timezone" (RFC 9051 §6.4.4): the date as written, in the header's own zone.
 */
import { describe, expect, it } from 'vitest';
import { sentDayOf } from '../src/mailstore/mailstore.js';

describe('sentDayOf', () => {
  it.each([
    ['Tue, 3 Mar 2026 23:30:00 -0800', 20260303],
    ['Wed, 04 Mar 2026 00:10:00 +1400', 20260304],
    ['3 March 2026 10:00 GMT', 20260303],
    // RFC 5322 §4.3 obsolete two- and three-digit years.
    ['Fri, 1 Jan 99 00:00:00 +0000', 19990101],
    ['Fri, 1 Jan 07 00:00:00 +0000', 20070101],
    ['Fri, 1 Jan 103 00:00:00 +0000', 20030101],
  ])('%j is day %i', (header, day) => {
    expect(sentDayOf(header)).toBe(day);
  });

  it('has no day without a usable date', () => {
    expect(sentDayOf(null)).toBeNull();
    expect(sentDayOf('yesterday')).toBeNull();
  });
});
