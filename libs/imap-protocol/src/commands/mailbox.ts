/**
 * Mailbox management — CREATE (RFC 9051 §6.3.4; USE from RFC 6154 §3), DELETE (§6.3.5),
 * RENAME (§6.3.6), SUBSCRIBE (§6.3.7), UNSUBSCRIBE (§6.3.8).
 */
import type { Cursor } from '../syntax.js';
import { parseMailbox } from './common.js';
import type { CreateCommand, DeleteCommand, ParseOptions, RenameCommand, SubscribeCommand } from './types.js';

export function parseCreate(c: Cursor, tag: string, options: ParseOptions): CreateCommand {
  c.sp();
  const mailbox = parseMailbox(c, options);
  const specialUse: string[] = [];
  if (c.take(0x20)) {
    // create-param (RFC 4466 §2.2); the only one defined for us is USE (RFC 6154 §3).
    c.expect(0x28, '"(" before create parameters');
    for (;;) {
      const param = c.keyword('create parameter');
      if (param !== 'USE') c.fail(`unknown create parameter ${param}`);
      c.sp();
      c.expect(0x28, '"(" after USE');
      for (;;) {
        c.expect(0x5c, 'special-use flag');
        specialUse.push('\\' + c.atom('special-use flag'));
        if (c.take(0x29)) break;
        c.sp();
      }
      if (c.take(0x29)) break;
      c.sp();
    }
  }
  c.expectEnd();
  return { name: 'CREATE', tag, mailbox, specialUse };
}

export function parseDelete(c: Cursor, tag: string, options: ParseOptions): DeleteCommand {
  c.sp();
  const mailbox = parseMailbox(c, options);
  c.expectEnd();
  return { name: 'DELETE', tag, mailbox };
}

export function parseRename(c: Cursor, tag: string, options: ParseOptions): RenameCommand {
  c.sp();
  const from = parseMailbox(c, options);
  c.sp();
  const to = parseMailbox(c, options);
  c.expectEnd();
  return { name: 'RENAME', tag, from, to };
}

export function parseSubscribe(
  c: Cursor,
  tag: string,
  name: 'SUBSCRIBE' | 'UNSUBSCRIBE',
  options: ParseOptions,
): SubscribeCommand {
  c.sp();
  const mailbox = parseMailbox(c, options);
  c.expectEnd();
  return { name, tag, mailbox };
}
