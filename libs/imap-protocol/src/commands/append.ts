/**
 * APPEND — RFC 9051 §6.3.12: `APPEND mailbox [SP flag-list] [SP date-time] SP literal`;
 * literal8 for binary content (RFC 3516 §4.4); the `UTF8 (literal8)` form (RFC 6855 §4).
 * One message per command (MULTIAPPEND, RFC 3502, is not offered).
 */
import { parseDateTimeText, type ImapDateTime } from '../date.js';
import type { Cursor } from '../syntax.js';
import { parseMailbox } from './common.js';
import type { AppendCommand, ParseOptions } from './types.js';

export function parseAppend(c: Cursor, tag: string, options: ParseOptions): AppendCommand {
  c.sp();
  const mailbox = parseMailbox(c, options);
  c.sp();
  let flags: string[] = [];
  if (c.peek() === 0x28) {
    flags = c.flagList();
    c.sp();
  }
  let internalDate: ImapDateTime | null = null;
  if (c.peek() === 0x22) {
    const text = c.quoted().toString('latin1');
    internalDate = parseDateTimeText(text) ?? c.fail(`invalid date-time "${text}"`);
    c.sp();
  }
  let utf8 = false;
  if (c.takeWord('UTF8')) {
    utf8 = true;
    c.sp();
    c.expect(0x28, '"(" after UTF8');
  }
  if (!c.atLiteral()) c.fail('expected message literal');
  const literal = c.literal(true);
  if (utf8) c.expect(0x29, '")" after UTF8 literal');
  // RFC 9051 §6.3.12 / RFC 3516 §4.4: a zero-length message cannot be appended meaningfully.
  if (literal.data.length === 0) c.fail('empty message');
  c.expectEnd();
  return {
    name: 'APPEND',
    tag,
    mailbox,
    flags,
    internalDate,
    message: literal.data,
    binary: literal.binary,
    utf8,
  };
}
