/**
 * STORE and UID STORE — RFC 9051 §6.4.6 and §9 `store`, `store-att-flags`; UNCHANGEDSINCE
 * (RFC 7162 §3.1.3).
 */
import type { Cursor } from '../syntax.js';
import type { StoreCommand } from './types.js';

export function parseStore(c: Cursor, tag: string, uid: boolean): StoreCommand {
  c.sp();
  const set = c.sequenceSet();
  c.sp();
  let unchangedSince: bigint | null = null;
  if (c.take(0x28)) {
    // store-modifiers (RFC 4466 §2.5)
    for (;;) {
      const modifier = c.keyword('store modifier');
      if (modifier !== 'UNCHANGEDSINCE') c.fail(`unknown store modifier ${modifier}`);
      c.sp();
      unchangedSince = c.number64('mod-sequence');
      if (c.take(0x29)) break;
      c.sp();
    }
    c.sp();
  }
  const operation = c.take(0x2b) ? 'add' : c.take(0x2d) ? 'remove' : 'replace';
  const item = c.atom('store item').toUpperCase();
  if (item !== 'FLAGS' && item !== 'FLAGS.SILENT') c.fail(`unknown store item ${item}`);
  c.sp();
  // store-att-flags: flag-list / (flag *(SP flag))
  let flags: string[];
  if (c.peek() === 0x28) {
    flags = c.flagList();
  } else {
    flags = [c.flag()];
    while (c.take(0x20)) flags.push(c.flag());
  }
  c.expectEnd();
  return { name: 'STORE', tag, uid, set, operation, silent: item === 'FLAGS.SILENT', flags, unchangedSince };
}
