/**
 * The rights model of RFC 4314 (IMAP ACL), pure: which letters exist (§2.1), how a SETACL
 * modification changes a set (§3.1), how the obsolete virtual rights "c" and "d" map (§2.1.1),
 * and which rights each mailstore operation needs (§4). Storage enforces these for every call
 * made on another user's mailbox; the imap service only relays them.
 */

/** RFC 4314 §2.1, in the order responses list them. */
export const RIGHTS = 'lrswipkxtea';

export type Right = 'l' | 'r' | 's' | 'w' | 'i' | 'p' | 'k' | 'x' | 't' | 'e' | 'a';

/**
 * RFC 4314 §2.1.1: of the two readings the RFC allows, Postmesh takes "create" = k and
 * "delete" = x t e (the reading of servers that let "d" control DELETE).
 */
const CREATE_SET: readonly Right[] = ['k'];
const DELETE_SET: readonly Right[] = ['x', 't', 'e'];

/** A set of rights, kept as the canonical string (letters of RIGHTS, in its order). */
export type Rights = string;

export const ALL_RIGHTS: Rights = RIGHTS;
export const NO_RIGHTS: Rights = '';

export function has(rights: Rights, right: Right): boolean {
  return rights.includes(right);
}

export function hasAny(rights: Rights, wanted: readonly Right[]): boolean {
  return wanted.some((right) => rights.includes(right));
}

function canonical(letters: Iterable<string>): Rights {
  const set = new Set(letters);
  return [...RIGHTS].filter((r) => set.has(r)).join('');
}

export type RightsParse =
  | { readonly ok: true; readonly mode: 'replace' | 'add' | 'remove'; readonly rights: Rights }
  | { readonly ok: false; readonly message: string };

/**
 * RFC 4314 §3.1: `[+|-]rights`. An unrecognised right (upper case included) MUST fail the
 * command (BAD), never be ignored; "c" and "d" stand for their member rights (§2.1.1); the
 * digits of RFC 2086 are not supported here, so they are unrecognised too.
 */
export function parseModification(text: string): RightsParse {
  let mode: 'replace' | 'add' | 'remove' = 'replace';
  let body = text;
  if (text.startsWith('+')) {
    mode = 'add';
    body = text.slice(1);
  } else if (text.startsWith('-')) {
    mode = 'remove';
    body = text.slice(1);
  }
  const letters: string[] = [];
  for (const ch of body) {
    if (RIGHTS.includes(ch)) letters.push(ch);
    else if (ch === 'c') letters.push(...CREATE_SET);
    else if (ch === 'd') letters.push(...DELETE_SET);
    else return { ok: false, message: `the right "${ch}" is not supported` };
  }
  return { ok: true, mode, rights: canonical(letters) };
}

/** The rights after applying a parsed modification to `current`. */
export function applyModification(
  current: Rights,
  change: { readonly mode: 'replace' | 'add' | 'remove'; readonly rights: Rights },
): Rights {
  switch (change.mode) {
    case 'replace':
      return change.rights;
    case 'add':
      return canonical([...current, ...change.rights]);
    case 'remove':
      return canonical([...current].filter((r) => !change.rights.includes(r)));
  }
}

/**
 * A rights set as MYRIGHTS and ACL responses show it: RFC 4314 §2.1.1 requires "c" when any
 * "create" member is present and "d" when any "delete" member is.
 */
export function withVirtualRights(rights: Rights): string {
  let out = rights;
  if (hasAny(rights, CREATE_SET)) out += 'c';
  if (hasAny(rights, DELETE_SET)) out += 'd';
  return out;
}

/**
 * RFC 4314 §3.7 LISTRIGHTS: no rights are tied together here, so each can be granted alone; the
 * virtual "c" and "d" are listed by themselves as §2.1.1 asks of untied member rights. The
 * owner always has every right.
 */
export function listRights(isOwner: boolean): { required: string; optional: string[] } {
  if (isOwner) return { required: withVirtualRights(ALL_RIGHTS), optional: [] };
  return { required: '', optional: [...RIGHTS, 'c', 'd'] };
}

/** RFC 4314 §4: the rights a flag change needs — \Seen "s", \Deleted "t", any other "w". */
export function flagRight(flag: string): Right {
  const lower = flag.toLowerCase();
  if (lower === '\\seen') return 's';
  if (lower === '\\deleted') return 't';
  return 'w';
}

/**
 * RFC 4314 §5.2: SELECT answers READ-ONLY when none of "i", "e" and the shared flag rights
 * ("w", "s", "t": every flag is shared in Postmesh) is granted.
 */
export function isReadOnly(rights: Rights): boolean {
  return !hasAny(rights, ['i', 'e', 'w', 's', 't']);
}

/** RFC 4314 §4 MYRIGHTS: any of "l", "r", "i", "k", "x", "a". */
export function maySeeRights(rights: Rights): boolean {
  return hasAny(rights, ['l', 'r', 'i', 'k', 'x', 'a']);
}
