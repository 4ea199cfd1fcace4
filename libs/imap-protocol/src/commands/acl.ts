/**
 * Access control commands — RFC 4314 §3.1-§3.5 and §8 (formal syntax):
 *
 *   setacl     = "SETACL" SP mailbox SP identifier SP mod-rights
 *   deleteacl  = "DELETEACL" SP mailbox SP identifier
 *   getacl     = "GETACL" SP mailbox
 *   listrights = "LISTRIGHTS" SP mailbox SP identifier
 *   myrights   = "MYRIGHTS" SP mailbox
 *   identifier = astring; mod-rights = astring
 *
 * Which rights exist is the server's business (an unknown right is BAD per §3.1, decided by
 * storage); the parser keeps the strings as sent.
 */
import type { Cursor } from '../syntax.js';
import { parseMailbox } from './common.js';
import type {
  DeleteAclCommand,
  GetAclCommand,
  ListRightsCommand,
  MyRightsCommand,
  ParseOptions,
  SetAclCommand,
} from './types.js';

function identifier(c: Cursor): string {
  c.sp();
  const value = c.astring('identifier').toString('utf8');
  // RFC 4314 §3: an identifier that prepares to the empty string MUST be BAD.
  if (value.length === 0) c.fail('empty identifier');
  return value;
}

export function parseSetAcl(c: Cursor, tag: string, options: ParseOptions): SetAclCommand {
  c.sp();
  const mailbox = parseMailbox(c, options);
  const who = identifier(c);
  c.sp();
  const rights = c.astring('rights').toString('utf8');
  c.expectEnd();
  return { name: 'SETACL', tag, mailbox, identifier: who, rights };
}

export function parseDeleteAcl(c: Cursor, tag: string, options: ParseOptions): DeleteAclCommand {
  c.sp();
  const mailbox = parseMailbox(c, options);
  const who = identifier(c);
  c.expectEnd();
  return { name: 'DELETEACL', tag, mailbox, identifier: who };
}

export function parseGetAcl(c: Cursor, tag: string, options: ParseOptions): GetAclCommand {
  c.sp();
  const mailbox = parseMailbox(c, options);
  c.expectEnd();
  return { name: 'GETACL', tag, mailbox };
}

export function parseListRights(c: Cursor, tag: string, options: ParseOptions): ListRightsCommand {
  c.sp();
  const mailbox = parseMailbox(c, options);
  const who = identifier(c);
  c.expectEnd();
  return { name: 'LISTRIGHTS', tag, mailbox, identifier: who };
}

export function parseMyRights(c: Cursor, tag: string, options: ParseOptions): MyRightsCommand {
  c.sp();
  const mailbox = parseMailbox(c, options);
  c.expectEnd();
  return { name: 'MYRIGHTS', tag, mailbox };
}
