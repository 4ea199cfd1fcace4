/**
 * Access control responses — RFC 4314 §3.6-§3.8 and §8:
 *
 *   acl-data        = "ACL" SP mailbox *(SP identifier SP rights)
 *   listrights-data = "LISTRIGHTS" SP mailbox SP identifier SP rights *(SP rights)
 *   myrights-data   = "MYRIGHTS" SP mailbox SP rights
 *   identifier = astring; rights = astring
 */
import { ResponseBuilder, type StringOptions } from './builder.js';
import { writeMailbox } from './data.js';

const DEFAULT_OPTIONS: StringOptions = { utf8: false };

export interface AclPair {
  readonly identifier: string;
  readonly rights: string;
}

/** `* ACL INBOX/Drafts Fred rwipslxetad Chris lrswi` (RFC 4314 §3.6). */
export function serializeAcl(
  mailbox: string,
  entries: readonly AclPair[],
  options: StringOptions = DEFAULT_OPTIONS,
): Buffer {
  const b = new ResponseBuilder(options).text('* ACL ');
  writeMailbox(b, mailbox);
  for (const entry of entries) b.sp().astring(entry.identifier).sp().astring(entry.rights);
  return b.crlf().bytes();
}

/** `* LISTRIGHTS ~/Mail/saved smith la r swicdkxte` (RFC 4314 §3.7). */
export function serializeListRights(
  mailbox: string,
  identifier: string,
  required: string,
  optional: readonly string[],
  options: StringOptions = DEFAULT_OPTIONS,
): Buffer {
  const b = new ResponseBuilder(options).text('* LISTRIGHTS ');
  writeMailbox(b, mailbox);
  b.sp().astring(identifier).sp().astring(required);
  for (const group of optional) b.sp().astring(group);
  return b.crlf().bytes();
}

/** `* MYRIGHTS INBOX rwiptsldaex` (RFC 4314 §3.8). */
export function serializeMyRights(
  mailbox: string,
  rights: string,
  options: StringOptions = DEFAULT_OPTIONS,
): Buffer {
  const b = new ResponseBuilder(options).text('* MYRIGHTS ');
  writeMailbox(b, mailbox);
  b.sp().astring(rights);
  return b.crlf().bytes();
}
