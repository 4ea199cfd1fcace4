/**
 * IMAP dates: `date` (SEARCH BEFORE/ON/SINCE, RFC 9051 §9 `date`, `date-text`) and `date-time`
 * (APPEND and INTERNALDATE, RFC 9051 §9 `date-time`: `"dd-Mon-yyyy hh:mm:ss +zzzz"` with the
 * day of month space-padded).
 */

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;

/** A calendar date without time zone, as SEARCH compares them (RFC 9051 §6.4.4). */
export interface ImapDate {
  readonly year: number;
  /** 1..12 */
  readonly month: number;
  readonly day: number;
}

/** An instant with the zone offset it was written in. */
export interface ImapDateTime {
  readonly date: Date;
  /** Minutes east of UTC, e.g. -420 for `-0700`. */
  readonly offsetMinutes: number;
}

function monthIndex(name: string): number {
  const lower = name.toLowerCase();
  return MONTHS.findIndex((m) => m.toLowerCase() === lower);
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** date-text = date-day "-" date-month "-" date-year; day is 1*2DIGIT. */
export function parseDateText(text: string): ImapDate | null {
  const m = /^(\d{1,2})-([A-Za-z]{3})-(\d{4})$/.exec(text);
  if (m === null) return null;
  const day = Number(m[1]);
  const month = monthIndex(m[2]!) + 1;
  const year = Number(m[3]);
  if (month === 0 || day < 1 || day > daysInMonth(year, month)) return null;
  return { year, month, day };
}

/** date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE (unquoted). */
export function parseDateTimeText(text: string): ImapDateTime | null {
  // date-day-fixed is (SP DIGIT) / 2DIGIT; a single digit without the space is accepted too,
  // as some clients send it.
  const m = /^ ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)$/.exec(text);
  if (m === null) return null;
  const day = Number(m[1]);
  const month = monthIndex(m[2]!) + 1;
  const year = Number(m[3]);
  const [hh, mm, ss] = [Number(m[4]), Number(m[5]), Number(m[6])];
  const zh = Number(m[8]);
  const zm = Number(m[9]);
  if (month === 0 || day < 1 || day > daysInMonth(year, month)) return null;
  if (hh > 23 || mm > 59 || ss > 60 || zm > 59) return null;
  const offsetMinutes = (m[7] === '-' ? -1 : 1) * (zh * 60 + zm);
  const utc = Date.UTC(year, month - 1, day, hh, mm, Math.min(ss, 59)) - offsetMinutes * 60_000;
  return { date: new Date(utc), offsetMinutes };
}

const pad2 = (n: number): string => String(n).padStart(2, '0');

/** The `date-time` form (without quotes), e.g. `17-Jul-1996 02:44:25 -0700`. */
export function formatDateTime(date: Date, offsetMinutes = 0): string {
  const local = new Date(date.getTime() + offsetMinutes * 60_000);
  const day = String(local.getUTCDate()).padStart(2, ' ');
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  return (
    `${day}-${MONTHS[local.getUTCMonth()]!}-${String(local.getUTCFullYear()).padStart(4, '0')} ` +
    `${pad2(local.getUTCHours())}:${pad2(local.getUTCMinutes())}:${pad2(local.getUTCSeconds())} ` +
    `${sign}${pad2(Math.floor(abs / 60))}${pad2(abs % 60)}`
  );
}

/** The `date` form, e.g. `1-Feb-1994`. */
export function formatDate(date: ImapDate): string {
  return `${date.day}-${MONTHS[date.month - 1]!}-${date.year}`;
}
