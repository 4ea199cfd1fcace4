/**
 * ID — RFC 2971 §3.1: `ID SP id-params-list`, where id-params-list is
 * `"(" *(string SP nstring) ")" / NIL`; at most 30 pairs, field names at most 30 octets and
 * values at most 1024 octets (RFC 2971 §3.3).
 */
import type { Cursor } from '../syntax.js';
import type { IdCommand } from './types.js';

export function parseId(c: Cursor, tag: string): IdCommand {
  c.sp();
  if (c.takeWord('NIL')) return { name: 'ID', tag, params: null };
  c.expect(0x28, '"(" or NIL');
  const params: [string, string | null][] = [];
  if (!c.take(0x29)) {
    for (;;) {
      const field = c.string('field name');
      c.sp();
      const value = c.nstring('field value');
      // RFC 2971 §3.3: the limits are MUSTs for clients; enforce them so a peer cannot make us
      // store unbounded identification data.
      if (field.length > 30) c.fail('ID field name longer than 30 octets');
      if (value !== null && value.length > 1024) c.fail('ID field value longer than 1024 octets');
      params.push([field.toString('utf8'), value === null ? null : value.toString('utf8')]);
      if (params.length > 30) c.fail('more than 30 ID field-value pairs');
      if (c.take(0x29)) break;
      c.sp();
    }
  }
  return { name: 'ID', tag, params };
}
