/** COPY / UID COPY (RFC 9051 §6.4.7) and MOVE / UID MOVE (RFC 9051 §6.4.8, RFC 6851 §3). */
import type { Cursor } from '../syntax.js';
import { parseMailbox } from './common.js';
import type { CopyCommand, ParseOptions } from './types.js';

export function parseCopy(
  c: Cursor,
  tag: string,
  name: 'COPY' | 'MOVE',
  uid: boolean,
  options: ParseOptions,
): CopyCommand {
  c.sp();
  const set = c.sequenceSet();
  c.sp();
  const mailbox = parseMailbox(c, options);
  c.expectEnd();
  return { name, tag, uid, set, mailbox };
}
