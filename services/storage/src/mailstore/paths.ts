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

/** Pattern tokens: a Unicode code point, or one of the two wildcards. */
const ANY = -1; // `*`: zero or more characters, the delimiter included
const ANY_IN_LEVEL = -2; // `%`: zero or more characters except the delimiter
const DELIMITER_CODE = DELIMITER.codePointAt(0)!;

/**
 * A compiled LIST pattern, matched by simulating its automaton with one bit per pattern
 * position (bit-parallel): O(path length × pattern length / 32) per path whatever the pattern,
 * so no pattern a client sends can make matching backtrack. A regular expression built from the
 * pattern would backtrack exponentially on `*a*a*a*a*b` against a long name of `a`s.
 */
interface CompiledPattern {
  /** Code points and wildcards; runs of wildcards are collapsed (`*%` is `*`, `%%` is `%`). */
  readonly tokens: readonly number[];
  /** How many tokens are not wildcards: a shorter path cannot match. */
  readonly literals: number;
  /** Words of the bit sets (positions 0..tokens.length). */
  readonly words: number;
  /** Positions holding `*` / `%` / any wildcard. */
  readonly any: Uint32Array;
  readonly anyInLevel: Uint32Array;
  readonly wildcard: Uint32Array;
  /** Per literal code point: the positions holding it. */
  readonly literal: ReadonlyMap<number, Uint32Array>;
}

function compilePattern(pattern: string): CompiledPattern {
  const tokens: number[] = [];
  for (const ch of pattern) {
    const cp = ch.codePointAt(0)!;
    const token = ch === '*' ? ANY : ch === '%' ? ANY_IN_LEVEL : cp;
    const last = tokens[tokens.length - 1];
    if (token < 0 && last !== undefined && last < 0) {
      // Adjacent wildcards match what the wider one matches alone.
      if (token === ANY) tokens[tokens.length - 1] = ANY;
      continue;
    }
    tokens.push(token);
  }
  const words = (tokens.length >>> 5) + 1;
  const any = new Uint32Array(words);
  const anyInLevel = new Uint32Array(words);
  const wildcard = new Uint32Array(words);
  const literal = new Map<number, Uint32Array>();
  let literals = 0;
  tokens.forEach((token, position) => {
    const word = position >>> 5;
    const bit = 1 << (position & 31);
    if (token === ANY) any[word]! |= bit;
    else if (token === ANY_IN_LEVEL) anyInLevel[word]! |= bit;
    else {
      literals++;
      let set = literal.get(token);
      if (set === undefined) literal.set(token, (set = new Uint32Array(words)));
      set[word]! |= bit;
    }
    if (token < 0) wildcard[word]! |= bit;
  });
  return { tokens, literals, words, any, anyInLevel, wildcard, literal };
}

/** Adds, for each wildcard position in `state`, the position after it (a wildcard may match ""). */
function closeOverWildcards(state: Uint32Array, pattern: CompiledPattern): void {
  // Wildcards never follow each other after compilation, so one step is the whole closure.
  let carry = 0;
  for (let w = 0; w < pattern.words; w++) {
    const skipped = state[w]! & pattern.wildcard[w]!;
    state[w] = state[w]! | ((skipped << 1) | carry);
    carry = skipped >>> 31;
  }
}

function matchesPattern(pattern: CompiledPattern, path: string): boolean {
  const codePoints: number[] = [];
  for (const ch of path) codePoints.push(ch.codePointAt(0)!);
  if (codePoints.length < pattern.literals) return false;
  const { words } = pattern;
  let state = new Uint32Array(words);
  let next = new Uint32Array(words);
  state[0] = 1;
  closeOverWildcards(state, pattern);
  for (const cp of codePoints) {
    const literal = pattern.literal.get(cp);
    const inLevel = cp !== DELIMITER_CODE;
    let carry = 0;
    let alive = 0;
    for (let w = 0; w < words; w++) {
      const current = state[w]!;
      // A wildcard consumes the character and stays; a matching literal moves one position on.
      const stay = current & (pattern.any[w]! | (inLevel ? pattern.anyInLevel[w]! : 0));
      const advanced = literal === undefined ? 0 : current & literal[w]!;
      next[w] = stay | (advanced << 1) | carry;
      carry = advanced >>> 31;
      alive |= next[w]!;
    }
    if (alive === 0) return false;
    closeOverWildcards(next, pattern);
    [state, next] = [next, state];
  }
  const end = pattern.tokens.length;
  return (state[end >>> 5]! & (1 << (end & 31))) !== 0;
}

/**
 * A LIST matcher for `reference` + `pattern` (RFC 9051 §6.3.9: the reference is prepended to the
 * pattern; `*` matches zero or more characters, `%` the same except the hierarchy delimiter). The
 * INBOX part of a path matches case-insensitively (RFC 9051 §5.1), other levels exactly. Matching
 * takes time linear in the path for a given pattern; no regular expression is built from input.
 */
export function listMatcher(reference: string, pattern: string): (path: string) => boolean {
  const joined = reference + pattern;
  const exact = compilePattern(joined);
  const inboxVariant =
    joined.slice(0, 5).toUpperCase() === 'INBOX' ? compilePattern(`INBOX${joined.slice(5)}`) : null;
  return (path) => {
    if (matchesPattern(exact, path)) return true;
    if (inboxVariant === null || !(path === 'INBOX' || path.startsWith('INBOX/'))) return false;
    return matchesPattern(inboxVariant, path);
  };
}
