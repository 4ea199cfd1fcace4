/**
 * Flags as stored (`\Seen` …, keywords as written) and as the contract carries them
 * (RFC 9051 §2.3.2). `\Recent` is per session and never stored.
 */
import { ErrorReason, mailstore } from '@postmesh/contracts';
import { MailstoreError } from './errors.js';

type Flag = mailstore.Flag;
const Flag = mailstore.Flag;

const SYSTEM: Readonly<Record<string, string>> = {
  [Flag.SEEN]: '\\Seen',
  [Flag.ANSWERED]: '\\Answered',
  [Flag.FLAGGED]: '\\Flagged',
  [Flag.DELETED]: '\\Deleted',
  [Flag.DRAFT]: '\\Draft',
};
const BY_NAME = new Map<string, Flag>(Object.entries(SYSTEM).map(([flag, name]) => [name, flag as Flag]));

export const SEEN = '\\Seen';
export const DELETED = '\\Deleted';

export function systemFlagName(flag: Flag, field: string): string {
  const name = SYSTEM[flag];
  if (name === undefined) throw new MailstoreError(ErrorReason.INVALID_ARGUMENT, 'not a system flag', field);
  return name;
}

/**
 * RFC 9051 §9 `flag-keyword = "$MDNSent" / "$Forwarded" / … / atom`: an atom has no
 * atom-specials (`(){ %*"\]` controls, space) and a keyword does not start with `\`.
 */
// eslint-disable-next-line no-control-regex
const ATOM = /^[^(){ %*"\\\]\u0000-\u001f\u007f]+$/;

export function validateKeyword(keyword: string, field: string): string {
  if (!ATOM.test(keyword) || Buffer.byteLength(keyword, 'utf8') > 128) {
    throw new MailstoreError(ErrorReason.INVALID_NAME, 'keyword is not an IMAP atom', field);
  }
  return keyword;
}

/** Contract flags + keywords → stored names, without duplicates. */
export function storedFlags(flags: readonly Flag[], keywords: readonly string[], field: string): string[] {
  const out = new Set<string>();
  for (const [i, flag] of flags.entries()) out.add(systemFlagName(flag, `${field}.flags[${i}]`));
  for (const [i, keyword] of keywords.entries()) out.add(validateKeyword(keyword, `${field}.keywords[${i}]`));
  return [...out];
}

/** Stored names → contract flags and keywords. */
export function splitFlags(stored: readonly string[]): { flags: Flag[]; keywords: string[] } {
  const flags: Flag[] = [];
  const keywords: string[] = [];
  for (const name of stored) {
    const flag = BY_NAME.get(name);
    if (flag !== undefined) flags.push(flag);
    else keywords.push(name);
  }
  return { flags, keywords };
}
