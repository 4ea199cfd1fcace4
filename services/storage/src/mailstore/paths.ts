/**
 * Mailbox names and LIST patterns (RFC 9051 §5.1, §6.3.9; RFC 5258 §3).
 *
 * Paths are UTF-8 with "/" as the hierarchy delimiter (the imap service converts modified
 * UTF-7). `INBOX` is case-insensitive (RFC 9051 §5.1) and stored upper-case, also as the first
 * component of its children (`INBOX/Lists`).
 */
import { ErrorReason } from '@postmesh/contracts';
import { MailstoreError } from './errors.js';

export const DELIMITER = '/';
/** Longest path in UTF-8 octets and deepest hierarchy we store (LIMIT_EXCEEDED beyond). */
export const MAX_PATH_BYTES = 1024;
export const MAX_PATH_DEPTH = 32;

/** `INBOX` in any case as a first component becomes `INBOX` (RFC 9051 §5.1). */
export function canonicalPath(path: string): string {
  const slash = path.indexOf(DELIMITER);
  const first = slash < 0 ? path : path.slice(0, slash);
  if (first.toUpperCase() !== 'INBOX') return path;
  return slash < 0 ? 'INBOX' : `INBOX${path.slice(slash)}`;
}

/**
 * Validates a path a client wants to create or rename to, and returns its canonical form.
 * A single trailing delimiter is ignored (RFC 9051 §6.3.4: "CREATE foo/" creates `foo`).
 */
export function validateNewPath(raw: string, field: string): string {
  let path = raw;
  if (path.endsWith(DELIMITER)) path = path.slice(0, -1);
  const invalid = (why: string): never => {
    throw new MailstoreError(ErrorReason.INVALID_NAME, `mailbox name ${why}`, field);
  };
  if (path === '') invalid('is empty');
  // NUL, CR, LF and other controls cannot be sent in an IMAP quoted string or astring (RFC 9051
  // §9 `QUOTED-CHAR`, `ATOM-CHAR`); FerretDB cannot store NUL.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(path)) invalid('contains a control character');
  // `*` and `%` are LIST wildcards (RFC 9051 §6.3.9); a mailbox named with them could not be
  // listed unambiguously.
  if (/[*%]/.test(path)) invalid('contains a LIST wildcard');
  if (path.startsWith(DELIMITER)) invalid('starts with the hierarchy delimiter');
  const components = path.split(DELIMITER);
  if (components.some((c) => c === '')) invalid('has an empty hierarchy level');
  if (components.some((c) => c.trim() !== c)) invalid('has a level with leading or trailing spaces');
  if (Buffer.byteLength(path, 'utf8') > MAX_PATH_BYTES || components.length > MAX_PATH_DEPTH) {
    throw new MailstoreError(ErrorReason.LIMIT_EXCEEDED, 'mailbox name too long or too deep', field);
  }
  return canonicalPath(path);
}

/** `a/b/c` → [`a`, `a/b`]: the parents of a path, shallowest first. */
export function parentPaths(path: string): string[] {
  const parts = path.split(DELIMITER);
  const out: string[] = [];
  for (let i = 1; i < parts.length; i++) out.push(parts.slice(0, i).join(DELIMITER));
  return out;
}

export function isDescendant(path: string, ancestor: string): boolean {
  return path.startsWith(ancestor + DELIMITER);
}

function patternRegExp(pattern: string): RegExp {
  let source = '';
  for (const ch of pattern) {
    // RFC 9051 §6.3.9: "*" matches zero or more characters; "%" is like "*" but does not match
    // the hierarchy delimiter.
    if (ch === '*') source += '.*';
    else if (ch === '%') source += '[^/]*';
    else source += ch.replace(/[\\^$.|?+()[\]{}/-]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, 'su');
}

/**
 * A LIST matcher for `reference` + `pattern` (RFC 9051 §6.3.9: the reference is prepended to the
 * pattern). The INBOX part of a path matches case-insensitively (RFC 9051 §5.1), other levels
 * exactly.
 */
export function listMatcher(reference: string, pattern: string): (path: string) => boolean {
  const joined = reference + pattern;
  const exact = patternRegExp(joined);
  const inboxVariant =
    joined.slice(0, 5).toUpperCase() === 'INBOX' ? patternRegExp(`INBOX${joined.slice(5)}`) : null;
  return (path) => {
    if (exact.test(path)) return true;
    if (inboxVariant === null || !(path === 'INBOX' || path.startsWith('INBOX/'))) return false;
    return inboxVariant.test(path);
  };
}
