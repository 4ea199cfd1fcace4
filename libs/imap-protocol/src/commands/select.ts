/**
 * SELECT and EXAMINE — RFC 9051 §6.3.2, §6.3.3; select-params (RFC 4466 §2.1): CONDSTORE
 * (RFC 7162 §3.1.8) and QRESYNC (RFC 7162 §3.2.5).
 */
import type { SequenceSet } from '../sequence-set.js';
import type { Cursor } from '../syntax.js';
import { parseMailbox } from './common.js';
import type { ParseOptions, QresyncParams, SelectCommand } from './types.js';

export function parseSelect(
  c: Cursor,
  tag: string,
  name: 'SELECT' | 'EXAMINE',
  options: ParseOptions,
): SelectCommand {
  c.sp();
  const mailbox = parseMailbox(c, options);
  let condstore = false;
  let qresync: QresyncParams | null = null;
  if (c.take(0x20)) {
    c.expect(0x28, '"(" before select parameters');
    for (;;) {
      const param = c.keyword('select parameter');
      if (param === 'CONDSTORE') condstore = true;
      else if (param === 'QRESYNC') {
        c.sp();
        qresync = parseQresync(c);
      } else c.fail(`unknown select parameter ${param}`);
      if (c.take(0x29)) break;
      c.sp();
    }
  }
  c.expectEnd();
  return { name, tag, mailbox, condstore, qresync };
}

/** "(" uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data] ")" (RFC 7162 §3.2.5). */
function parseQresync(c: Cursor): QresyncParams {
  c.expect(0x28, '"(" after QRESYNC');
  const uidValidity = c.nzNumber('UIDVALIDITY');
  c.sp();
  const modseq = c.number64('mod-sequence');
  let knownUids: SequenceSet | null = null;
  let sequenceMatch: QresyncParams['sequenceMatch'] = null;
  if (c.take(0x20)) {
    if (c.peek() !== 0x28) {
      knownUids = c.sequenceSet();
      if (knownUids.kind === 'saved') c.fail('"$" is not allowed in QRESYNC');
      // RFC 7162 §7: known-uids is a sequence-set of UIDs where "*" is not allowed.
      if (knownUids.ranges.some((r) => r.start === '*' || r.end === '*'))
        c.fail('"*" is not allowed in known UIDs');
    }
    if (knownUids === null || c.take(0x20)) {
      c.expect(0x28, '"(" before sequence match data');
      const sequences = c.sequenceSet();
      c.sp();
      const uids = c.sequenceSet();
      c.expect(0x29, '")"');
      sequenceMatch = { sequences, uids };
    }
  }
  c.expect(0x29, '")" after QRESYNC parameters');
  return { uidValidity, modseq, knownUids, sequenceMatch };
}
