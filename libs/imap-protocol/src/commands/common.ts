/**
 * Grammar rules shared by several commands: `mailbox` (RFC 9051 §9, with the INBOX rule of
 * §5.1 and the encodings of §5.1.3 / RFC 6855 §3), `status-att` and `date`.
 */
import { parseDateText, type ImapDate } from '../date.js';
import { decodeMailboxName } from '../mutf7.js';
import type { Cursor } from '../syntax.js';
import { STATUS_ITEMS, type ParseOptions, type StatusItem } from './types.js';

/** mailbox = "INBOX" / astring, decoded from modified UTF-7 unless UTF-8 is enabled. */
export function parseMailbox(c: Cursor, options: ParseOptions): string {
  const raw = c.astring('mailbox name');
  return decodeWireName(c, raw, options);
}

/**
 * The name is a well-formed astring; only its encoding is wrong. That is a name the server
 * cannot use (`NO [CANNOT]`), not a syntax error (`BAD`).
 */
const CANNOT = { code: 'CANNOT' } as const;

export function decodeWireName(c: Cursor, raw: Buffer, options: ParseOptions): string {
  if (options.utf8) {
    const text = raw.toString('utf8');
    // RFC 6855 §3: names are UTF-8; reject malformed octets rather than guess.
    if (!Buffer.from(text, 'utf8').equals(raw)) c.fail('mailbox name is not valid UTF-8', CANNOT);
    const decoded = decodeMailboxName(text, true);
    return decoded.ok ? decoded.value : c.fail(decoded.reason, CANNOT);
  }
  // A rev1 client sends 7-bit names; 8-bit octets mean it is not using modified UTF-7.
  if (raw.some((b) => b >= 0x80)) c.fail('mailbox name must be modified UTF-7 (RFC 3501 §5.1.3)', CANNOT);
  const decoded = decodeMailboxName(raw.toString('latin1'), false);
  return decoded.ok ? decoded.value : c.fail(decoded.reason, CANNOT);
}

/** status-att list: "(" status-att *(SP status-att) ")" */
export function parseStatusItems(c: Cursor): StatusItem[] {
  c.expect(0x28, '"(" before status items');
  const items: StatusItem[] = [];
  for (;;) {
    const word = c.keyword('status item');
    const item = STATUS_ITEMS.find((s) => s === word);
    if (item === undefined) c.fail(`unknown status item ${word}`);
    if (!items.includes(item)) items.push(item);
    if (c.take(0x29)) return items;
    c.sp();
  }
}

/** date = date-text / DQUOTE date-text DQUOTE */
export function parseSearchDate(c: Cursor): ImapDate {
  const text = c.peek() === 0x22 ? c.quoted().toString('latin1') : c.atom('date');
  const date = parseDateText(text);
  return date ?? c.fail(`invalid date "${text}"`);
}
