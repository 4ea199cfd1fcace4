/**
 * Blind index of searchable text (docs/adr/0003-search-over-encrypted-mail.md): normalised
 * trigrams of header fields and body text, stored as keyed hashes (HMAC-SHA256 under the user's
 * search key, truncated to 96 bits) prefixed by field, never as plaintext.
 *
 * IMAP SEARCH string keys are case-insensitive substring matches (RFC 9051 §6.4.4). Every
 * substring of at least three characters of a token contains the trigrams the query yields, so
 * the index narrows the candidates without missing any; candidates are then confirmed by
 * decrypting the message, which gives exact substring semantics.
 */
import { createHmac } from 'node:crypto';

/** Field prefixes of terms. */
export const TermField = {
  subject: 's',
  from: 'f',
  to: 't',
  cc: 'c',
  bcc: 'bc',
  body: 'b',
} as const;
export type TermField = (typeof TermField)[keyof typeof TermField];

/** Case folding for matching: NFKC, then lower case (RFC 9051 §6.4.4 leaves the method open). */
export function foldForSearch(text: string): string {
  return text.normalize('NFKC').toLowerCase();
}

const TOKEN = /[\p{L}\p{N}]+/gu;

/** A UTF-16 surrogate: the token has characters outside the BMP, which take two code units. */
const SURROGATE = /[\uD800-\uDFFF]/;

/** A character beyond US-ASCII. Without one, NFKC leaves a text as it is and its letters and digits are [A-Za-z0-9]. */
const NON_ASCII = /[\u0080-\uffff]/;

/** The distinct tokens of a text, folded (`foldForSearch`, then TOKEN). */
export function unicodeTokens(text: string): Set<string> {
  const tokens = new Set<string>();
  for (const match of foldForSearch(text).matchAll(TOKEN)) tokens.add(match[0]);
  return tokens;
}

/**
 * `unicodeTokens` of an ASCII text, by a scan of its character codes: mail is mostly ASCII, and
 * the Unicode regex's matches cost more than the rest of the trigrams.
 */
export function asciiTokens(text: string): Set<string> {
  const tokens = new Set<string>();
  const folded = text.toLowerCase();
  let start = -1;
  for (let i = 0; i <= folded.length; i++) {
    const c = i < folded.length ? folded.charCodeAt(i) : 0;
    if ((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39)) {
      if (start < 0) start = i;
    } else if (start >= 0) {
      tokens.add(folded.slice(start, i));
      start = -1;
    }
  }
  return tokens;
}

/** Trigrams of the tokens of a text (tokens shorter than three characters are kept whole). */
export function trigramsOf(text: string, out = new Set<string>()): Set<string> {
  // Mail repeats its words: each distinct token once.
  const tokens = NON_ASCII.test(text) ? unicodeTokens(text) : asciiTokens(text);
  for (const token of tokens) {
    if (SURROGATE.test(token)) {
      const chars = [...token];
      if (chars.length < 3) out.add(`=${token}`);
      else for (let i = 0; i + 3 <= chars.length; i++) out.add(chars.slice(i, i + 3).join(''));
      continue;
    }
    // One code unit per character: slice the string itself.
    if (token.length < 3) out.add(`=${token}`);
    else for (let i = 0; i + 3 <= token.length; i++) out.add(token.slice(i, i + 3));
  }
  return out;
}

/**
 * Trigrams every message matching the substring `query` must have. Only trigrams that lie
 * entirely inside one query token are certain: a token at the edge of the query may be the
 * middle of a longer stored token, and its trigrams are still trigrams of that token.
 */
export function requiredTrigrams(query: string): Set<string> {
  const out = new Set<string>();
  for (const match of foldForSearch(query).matchAll(TOKEN)) {
    const chars = [...match[0]];
    for (let i = 0; i + 3 <= chars.length; i++) out.add(chars.slice(i, i + 3).join(''));
  }
  return out;
}

/** Hashes remembered per hasher, at most (then forgotten all at once). */
const MEMO_LIMIT = 16_384;

export class TermHasher {
  /**
   * `field:trigram` → hash: mail repeats most of its trigrams from message to message, and an
   * HMAC costs microseconds. Holds no more than the search key already gives.
   */
  private readonly memo = new Map<string, string>();

  constructor(readonly searchKey: Uint8Array) {}

  hash(field: TermField, trigram: string): string {
    const term = `${field}:${trigram}`;
    let hashed = this.memo.get(term);
    if (hashed === undefined) {
      hashed = createHmac('sha256', this.searchKey)
        .update(term, 'utf8')
        .digest()
        .subarray(0, 12)
        .toString('base64url');
      if (this.memo.size >= MEMO_LIMIT) this.memo.clear();
      this.memo.set(term, hashed);
    }
    return hashed;
  }

  hashAll(field: TermField, trigrams: Iterable<string>, out: Set<string>): void {
    for (const t of trigrams) out.add(this.hash(field, t));
  }
}

/** Trigrams of each indexed part of a message, computed once per body. */
export type IndexedTrigrams = ReadonlyMap<TermField, ReadonlySet<string>>;

/** The parts of a message the index covers. */
export interface IndexedText {
  readonly subject: string | null;
  readonly from: readonly string[];
  readonly to: readonly string[];
  readonly cc: readonly string[];
  readonly bcc: readonly string[];
  readonly body: string;
}

export function trigramsFor(text: IndexedText): IndexedTrigrams {
  return new Map<TermField, ReadonlySet<string>>([
    [TermField.subject, trigramsOf(text.subject ?? '')],
    [TermField.from, trigramsOf(text.from.join(' '))],
    [TermField.to, trigramsOf(text.to.join(' '))],
    [TermField.cc, trigramsOf(text.cc.join(' '))],
    [TermField.bcc, trigramsOf(text.bcc.join(' '))],
    [TermField.body, trigramsOf(text.body)],
  ]);
}

/** Most terms kept per message (bounds the document size; the rest is found by scanning). */
export const MAX_TERMS = 20_000;

/** The keyed hashes stored in `MessageDoc.terms` for one user. */
export function termsFor(
  hasher: TermHasher,
  trigrams: IndexedTrigrams,
): { terms: string[]; complete: boolean } {
  const out = new Set<string>();
  for (const [field, set] of trigrams) hasher.hashAll(field, set, out);
  const terms = [...out];
  if (terms.length <= MAX_TERMS) return { terms, complete: true };
  return { terms: terms.slice(0, MAX_TERMS), complete: false };
}
