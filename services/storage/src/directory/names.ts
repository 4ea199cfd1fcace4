/**
 * Parsing and normalising the names the directory stores: domains (RFC 1035 §2.3.1 labels,
 * IDNA A-labels per RFC 5890 §2.3.2.1), addresses (RFC 5321 §4.1.2 Mailbox, RFC 6531 UTF-8 local
 * parts), subaddresses (RFC 5233) and DKIM selectors (RFC 6376 §3.1).
 */
import { domainToASCII } from 'node:url';

/** RFC 1035 §2.3.4: labels of 63 octets at most; names of 255 (253 in text form). */
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** A lower-case A-label domain name, or `undefined` when `raw` is not a valid domain. */
export function normaliseDomain(raw: string): string | undefined {
  const trimmed = raw.trim().replace(/\.$/, '');
  if (trimmed === '' || /[\s@]/.test(trimmed)) return undefined;
  // Converts U-labels to A-labels (RFC 5891 §4) and lower-cases; '' when invalid.
  const ascii = domainToASCII(trimmed).toLowerCase();
  if (ascii === '' || ascii.length > 253) return undefined;
  const labels = ascii.split('.');
  if (labels.length < 2) return undefined;
  return labels.every((label) => LABEL.test(label)) ? ascii : undefined;
}

export interface ParsedAddress {
  /** The local part as given. */
  readonly local: string;
  readonly domain: string;
  /** `local@domain`, both parts lower-cased: the directory's comparison key. */
  readonly key: string;
  /** `local@domain` with the local part as given and the domain normalised. */
  readonly display: string;
}

/**
 * Parses `local@domain`. The local part is kept as given but compared case-insensitively
 * (RFC 5321 §2.4 leaves case-sensitivity to the receiving host; Postmesh folds case).
 */
export function parseAddress(raw: string): ParsedAddress | undefined {
  const text = raw.trim();
  const at = text.lastIndexOf('@');
  if (at <= 0 || at === text.length - 1) return undefined;
  const local = text.slice(0, at);
  const domain = normaliseDomain(text.slice(at + 1));
  if (domain === undefined) return undefined;
  // RFC 5321 §4.5.3.1.1: a local part is at most 64 octets.
  if (Buffer.byteLength(local, 'utf8') > 64) return undefined;
  // Dot-atom-ish: no whitespace, controls, brackets, quotes or a second `@`; no leading,
  // trailing or doubled dots (RFC 5322 §3.4.1). Quoted local parts are not accepted for accounts.
  if (/[\s\p{Cc}@<>()[\]\\,;:"]/u.test(local) || /^\.|\.$|\.\./.test(local)) return undefined;
  return { local, domain, key: `${local.toLowerCase()}@${domain}`, display: `${local}@${domain}` };
}

/** RFC 5233 §1: `user+detail@domain` → base `user@domain` and detail, when there is a `+`. */
export function splitSubaddress(address: ParsedAddress): { base: ParsedAddress; detail: string } | undefined {
  const plus = address.local.indexOf('+');
  if (plus <= 0) return undefined;
  const local = address.local.slice(0, plus);
  return {
    base: {
      local,
      domain: address.domain,
      key: `${local.toLowerCase()}@${address.domain}`,
      display: `${local}@${address.domain}`,
    },
    detail: address.local.slice(plus + 1),
  };
}

/** The `addresses` key of a domain's catch-all entry. */
export const catchAllKey = (domain: string): string => `@${domain}`;

/** RFC 6376 §3.1: a selector is a sequence of DNS labels; Postmesh allows one label. */
export function normaliseSelector(raw: string): string | undefined {
  const selector = raw.trim().toLowerCase();
  return LABEL.test(selector) ? selector : undefined;
}
