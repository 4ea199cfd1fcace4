/** Client-side checks of form fields; the server checks again and its errors show the same way. */
import { passwordProblem as policyProblem, PASSWORD_HINT } from '../../src/api/password-policy.js';

export { PASSWORD_HINT };

/** The password rule the API applies (one copy, shared with it), as a sentence. */
export const passwordProblem = (v: string, address = ''): string | undefined => {
  const problem = policyProblem(v, address);
  return problem === undefined ? undefined : `The password ${problem}.`;
};
export const isDomain = (v: string): string | undefined =>
  /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/i.test(
    v.trim(),
  )
    ? undefined
    : 'Enter a domain name such as example.com.';
export const isAddress = (v: string): string | undefined =>
  /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v.trim()) ? undefined : 'Enter an address such as name@example.com.';
export const isPassword = (v: string): string | undefined => passwordProblem(v);
export const isCount = (v: string): string | undefined =>
  /^\d+$/.test(v) ? undefined : 'Enter a whole number (0 = unlimited).';
export const isLimit = (v: string): string | undefined =>
  /^\d{1,7}$/.test(v) ? undefined : 'Enter a whole number (0 = the service default).';

/** Sizes are typed in MiB or GiB (binary units, as quotas are shown). */
export const SIZE_UNITS = ['MiB', 'GiB'] as const;
const UNIT_BYTES: Readonly<Record<string, number>> = { MiB: 1024 ** 2, GiB: 1024 ** 3 };

export const isSize = (v: string): string | undefined =>
  /^\d{1,7}(\.\d{1,3})?$/.test(v.trim()) ? undefined : 'Enter a size such as 512 or 1.5 (0 = unlimited).';

/** "1.5", "GiB" → 1610612736 (whole bytes). */
export const toBytes = (value: string, unit: string): number =>
  Math.round(Number(value.trim()) * (UNIT_BYTES[unit] ?? UNIT_BYTES.MiB ?? 1));

/** 1610612736 → ["1.5", "GiB"]; 0 → ["0", "MiB"]: the starting values of a size field. */
export function sizeFields(bytes: number): [string, string] {
  const gib = UNIT_BYTES.GiB ?? 1;
  if (bytes >= gib) return [String(Math.round((bytes / gib) * 1000) / 1000), 'GiB'];
  return [String(Math.round((bytes / (UNIT_BYTES.MiB ?? 1)) * 1000) / 1000), 'MiB'];
}

/** A message count quota: a whole number, 0 = unlimited (the API takes up to a billion). */
export const isMessageCount = (v: string): string | undefined =>
  /^\d{1,10}$/.test(v.trim()) && Number(v.trim()) <= 1_000_000_000
    ? undefined
    : 'Enter a whole number of messages (0 = unlimited).';

/** A mailbox path as storage accepts it: levels separated by /, no control characters, * or %. */
export const isMailboxPath = (v: string): string | undefined =>
  // eslint-disable-next-line no-control-regex
  /^(?!\/)(?!.*\/\/)[^\u0000-\u001f\u007f*%]{1,1024}$/.test(v.trim())
    ? undefined
    : 'Enter a mailbox such as INBOX or Queue/Escalations (levels separated by /, no * or %).';

/** A team mailbox member: a user's address, or `anyone`. */
export const isMember = (v: string): string | undefined =>
  v.trim() === 'anyone' || /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v.trim())
    ? undefined
    : "Enter a user's address, or anyone.";

/** RFC 4314 rights letters (§2.1), and the RFC 2086 c and d (§2.1.1). */
export const isRights = (v: string): string | undefined =>
  /^[lrswipkxteacd]{1,32}$/.test(v.trim())
    ? undefined
    : 'Use the letters l r s w i p k x t e a (or c d), for example lrs or lrswite.';

const RIGHT_WORDS: readonly [string, string][] = [
  ['l', 'see'],
  ['r', 'read'],
  ['s', 'mark seen'],
  ['w', 'flag'],
  ['i', 'add mail'],
  ['p', 'post'],
  ['k', 'create folders'],
  ['x', 'delete the mailbox'],
  ['t', 'mark deleted'],
  ['e', 'expunge'],
  ['a', 'share'],
];

/** "lrs" → "(see, read, mark seen)": what a member may do, in words. */
export function rightsText(rights: string): string {
  const words = RIGHT_WORDS.filter(([letter]) => rights.includes(letter)).map(([, word]) => word);
  return words.length === 0 ? '' : `(${words.join(', ')})`;
}
