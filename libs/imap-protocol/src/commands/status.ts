/** STATUS — RFC 9051 §6.3.11; SIZE (RFC 8438 §3), HIGHESTMODSEQ (RFC 7162 §3.1.6). */
import type { Cursor } from '../syntax.js';
import { parseMailbox, parseStatusItems } from './common.js';
import type { ParseOptions, StatusCommand } from './types.js';

export function parseStatus(c: Cursor, tag: string, options: ParseOptions): StatusCommand {
  c.sp();
  const mailbox = parseMailbox(c, options);
  c.sp();
  const items = parseStatusItems(c);
  c.expectEnd();
  return { name: 'STATUS', tag, mailbox, items };
}
