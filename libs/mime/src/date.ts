/**
 * RFC 5322 §3.3 date-time parsing, with the obsolete forms of §4.3 (two- and three-digit years,
 * alphabetic zones, comments, missing seconds). Used for the searchable `date` (SEARCH SENTON etc.);
 * ENVELOPE keeps the Date field as written.
 *
 * Choices: a missing zone is taken as UTC; military single-letter zones are treated as `-0000`
 * (RFC 5322 §4.3 says their meaning was defined wrongly); unknown alphabetic zones as UTC.
 * Impossible dates (31 Feb, hour 25) give null.
 */

import { stripComments } from './mime-params.js';

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

const ZONES: Readonly<Record<string, number>> = {
  ut: 0,
  utc: 0,
  gmt: 0,
  z: 0,
  est: -300,
  edt: -240,
  cst: -360,
  cdt: -300,
  mst: -420,
  mdt: -360,
  pst: -480,
  pdt: -420,
};

const DATE_TIME =
  /^(?:[a-z]+\s*,?\s*)?(\d{1,2})\s*[- ]?\s*([a-z]{3})[a-z]*\.?\s*[- ]?\s*(\d{2,4})\s+(\d{1,2}):(\d{1,2})(?::(\d{1,2}))?(?:\.\d+)?\s*(.*)$/i;

/** Parse a Date field to epoch milliseconds, or null when it is not a valid date. */
export function parseRfc5322Date(value: string): number | null {
  // Collapse whitespace and bound the length first: the pattern's optional separators would
  // otherwise backtrack polynomially on long runs of spaces.
  const text = stripComments(value).replace(/\s+/g, ' ').trim();
  if (text.length > 200) return null;
  const m = DATE_TIME.exec(text);
  if (m === null) return null;
  const day = Number(m[1]);
  const month = MONTHS.indexOf((m[2] ?? '').toLowerCase());
  let year = Number(m[3]);
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  const second = m[6] === undefined ? 0 : Number(m[6]);
  if (month < 0) return null;
  // Obsolete years: 2 digits → 1950-2049, 3 digits → add 1900 (RFC 5322 §4.3).
  if ((m[3] ?? '').length === 2) year += year < 50 ? 2000 : 1900;
  else if ((m[3] ?? '').length === 3) year += 1900;
  if (hour > 23 || minute > 59 || second > 60) return null;
  const offset = zoneOffsetMinutes((m[7] ?? '').trim());
  if (offset === null) return null;
  const local = Date.UTC(year, month, day, hour, minute, Math.min(second, 59));
  const check = new Date(local);
  if (check.getUTCDate() !== day || check.getUTCMonth() !== month || year < 1000) return null;
  return local - offset * 60_000;
}

function zoneOffsetMinutes(zone: string): number | null {
  if (zone === '') return 0;
  const numeric = /^([+-])(\d{2}):?(\d{2})\b/.exec(zone);
  if (numeric !== null) {
    const h = Number(numeric[2]);
    const min = Number(numeric[3]);
    if (min > 59) return null;
    return (numeric[1] === '-' ? -1 : 1) * (h * 60 + min);
  }
  const alpha = /^[a-z]+/i.exec(zone);
  if (alpha === null) return null;
  return ZONES[alpha[0].toLowerCase()] ?? 0;
}
