/**
 * Address lists (RFC 5322 §3.4, obsolete forms §4.4) turned into IMAP ENVELOPE addresses
 * (RFC 9051 §7.5.2): `(name adl mailbox host)`, with group syntax as a start marker (host NIL,
 * mailbox = group name) and an end marker (mailbox and host NIL).
 *
 * Choices for malformed or unusual input (documented in README.md):
 * - Display names are unquoted (quoted-pairs removed) and their words joined by single spaces;
 *   RFC 2047 encoded words are kept raw. With no display name, a comment after the address
 *   (`user@host (Real Name)`) becomes the name.
 * - A quoted local part keeps its quotes (`"john doe"`), so `mailbox@host` stays a valid address.
 * - An address without `@` has host `""` (empty, not NIL, which would mean a group marker).
 * - The obsolete route (`<@a,@b:user@host>`) is the adl `@a,@b`.
 * - An unterminated group, angle address, quoted string or comment ends at the end of the field.
 */

import type { EnvelopeAddress } from './types.js';

type Token =
  | { readonly kind: 'atom'; readonly text: string; readonly spaceBefore: boolean }
  | { readonly kind: 'quoted'; readonly text: string; readonly spaceBefore: boolean }
  | { readonly kind: 'comment'; readonly text: string; readonly spaceBefore: boolean }
  | { readonly kind: 'special'; readonly text: string; readonly spaceBefore: boolean };

const SPECIALS = '<>@,;:';

function tokenize(s: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let space = false;
  while (i < s.length) {
    const c = s[i] as string;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      space = true;
      i++;
      continue;
    }
    if (c === '"') {
      let text = '';
      i++;
      while (i < s.length && s[i] !== '"') {
        if (s[i] === '\\' && i + 1 < s.length) i++;
        text += s[i] as string;
        i++;
      }
      i++;
      tokens.push({ kind: 'quoted', text, spaceBefore: space });
    } else if (c === '(') {
      let depth = 1;
      let text = '';
      i++;
      while (i < s.length && depth > 0) {
        const d = s[i] as string;
        if (d === '\\' && i + 1 < s.length) {
          text += s[i + 1] as string;
          i += 2;
          continue;
        }
        if (d === '(') depth++;
        if (d === ')') depth--;
        if (depth > 0) text += d;
        i++;
      }
      tokens.push({ kind: 'comment', text: text.trim(), spaceBefore: space });
    } else if (c === '[') {
      // domain-literal (RFC 5322 §3.4.1), kept as written
      const end = s.indexOf(']', i);
      const stop = end < 0 ? s.length : end + 1;
      tokens.push({ kind: 'atom', text: s.slice(i, stop), spaceBefore: space });
      i = stop;
    } else if (SPECIALS.includes(c)) {
      tokens.push({ kind: 'special', text: c, spaceBefore: space });
      i++;
    } else {
      let j = i;
      while (j < s.length && !' \t\r\n"(['.includes(s[j] as string) && !SPECIALS.includes(s[j] as string))
        j++;
      if (j === i) j++; // a lone `)` or `]`
      tokens.push({ kind: 'atom', text: s.slice(i, j), spaceBefore: space });
      i = j;
    }
    space = false;
  }
  return tokens;
}

function phraseText(tokens: readonly Token[]): string | null {
  const words = tokens.filter((t) => t.kind === 'atom' || t.kind === 'quoted').map((t) => t.text);
  const text = words.join(' ').trim();
  return text === '' ? null : text;
}

function localPartText(tokens: readonly Token[]): string {
  return tokens
    .map((t) => (t.kind === 'quoted' ? `"${t.text.replace(/(["\\])/g, '\\$1')}"` : t.text))
    .join('');
}

/** Addr-spec from tokens without angle brackets; the name may come from a comment. */
function bareMailbox(tokens: readonly Token[]): EnvelopeAddress | null {
  const words = tokens.filter((t) => t.kind !== 'comment');
  // Only a comment after the address can stand for the name (`user@host (Real Name)`).
  let lastWord = tokens.length - 1;
  while (lastWord >= 0 && tokens[lastWord]?.kind === 'comment') lastWord--;
  const comment = tokens.slice(lastWord + 1).find((t) => t.text !== '');
  if (words.length === 0) return null;
  const at = words.findIndex((t) => t.kind === 'special' && t.text === '@');
  if (at < 0) {
    // No `@`: the last word is the mailbox, anything before it a name.
    const last = words[words.length - 1] as Token;
    const name = phraseText(words.slice(0, -1)) ?? comment?.text ?? null;
    return { name, adl: null, mailbox: localPartText([last]), host: '' };
  }
  // The local part is the run of tokens glued to the `@` without whitespace; words before it are a
  // (malformed, unbracketed) display name.
  let startLocal = at;
  while (startLocal > 0) {
    const t = words[startLocal - 1] as Token;
    if (t.kind === 'special') break;
    startLocal--;
    if (t.spaceBefore) break;
  }
  let endDomain = at + 1;
  while (endDomain < words.length) {
    const t = words[endDomain] as Token;
    if (t.kind === 'special' || (endDomain > at + 1 && t.spaceBefore)) break;
    endDomain++;
  }
  const name = phraseText(words.slice(0, startLocal)) ?? comment?.text ?? null;
  return {
    name: name === '' ? null : name,
    adl: null,
    mailbox: localPartText(words.slice(startLocal, at)),
    host: words
      .slice(at + 1, endDomain)
      .map((t) => t.text)
      .join(''),
  };
}

/** `<[route:]addr-spec>` contents. */
function angleMailbox(name: string | null, inner: readonly Token[]): EnvelopeAddress {
  let tokens = inner.filter((t) => t.kind !== 'comment');
  let adl: string | null = null;
  const colon = tokens.findIndex((t) => t.kind === 'special' && t.text === ':');
  if (colon >= 0 && tokens[0]?.kind === 'special' && tokens[0].text === '@') {
    adl = tokens
      .slice(0, colon)
      .map((t) => t.text)
      .join('');
    tokens = tokens.slice(colon + 1);
  }
  const at = tokens.findIndex((t) => t.kind === 'special' && t.text === '@');
  if (at < 0) return { name, adl, mailbox: localPartText(tokens), host: '' };
  return {
    name,
    adl,
    mailbox: localPartText(tokens.slice(0, at)),
    host: tokens
      .slice(at + 1)
      .map((t) => t.text)
      .join(''),
  };
}

/** Parse an address-list field value into ENVELOPE addresses; `[]` when it holds none. */
export function parseAddressList(value: string): EnvelopeAddress[] {
  const tokens = tokenize(value);
  const out: EnvelopeAddress[] = [];
  let inGroup = false;
  let current: Token[] = [];
  let i = 0;

  const finishBare = (): void => {
    const a = bareMailbox(current);
    if (a !== null) out.push(a);
    current = [];
  };

  while (i < tokens.length) {
    const t = tokens[i] as Token;
    if (t.kind === 'special' && t.text === '<') {
      let end = i + 1;
      while (end < tokens.length && !(tokens[end]?.kind === 'special' && tokens[end]?.text === '>')) end++;
      const comment = current.find((u) => u.kind === 'comment' && u.text !== '');
      out.push(angleMailbox(phraseText(current) ?? comment?.text ?? null, tokens.slice(i + 1, end)));
      current = [];
      // Skip whatever follows up to the next separator (comments, junk).
      i = end + 1;
      while (i < tokens.length) {
        const u = tokens[i] as Token;
        if (u.kind === 'special' && (u.text === ',' || u.text === ';')) break;
        i++;
      }
      continue;
    }
    if (t.kind === 'special' && t.text === ':' && !inGroup) {
      // group = display-name ":" [group-list] ";" (RFC 5322 §3.4)
      out.push({ name: null, adl: null, mailbox: phraseText(current) ?? '', host: null });
      current = [];
      inGroup = true;
    } else if (t.kind === 'special' && t.text === ',') {
      finishBare();
    } else if (t.kind === 'special' && t.text === ';') {
      finishBare();
      if (inGroup) out.push({ name: null, adl: null, mailbox: null, host: null });
      inGroup = false;
    } else {
      current.push(t);
    }
    i++;
  }
  finishBare();
  if (inGroup) out.push({ name: null, adl: null, mailbox: null, host: null });
  return out;
}
