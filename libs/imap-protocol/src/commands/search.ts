/**
 * SEARCH and UID SEARCH — RFC 9051 §6.4.4 and §9 `search`, `search-key`, `search-program`;
 * RFC 3501 §6.4.4 (NEW, OLD, RECENT); ESEARCH return options (RFC 4731 §3.1, RFC 9051 §6.4.4);
 * SAVE and `$` (RFC 5182 §2); MODSEQ (RFC 7162 §3.1.5); OLDER / YOUNGER (RFC 5032 §3);
 * EMAILID / THREADID (RFC 8474 §6).
 */
import { TextDecoder } from 'node:util';
import type { Cursor } from '../syntax.js';
import { parseSearchDate } from './common.js';
import type { SearchCommand, SearchKey, SearchReturnOption } from './types.js';

/** Charsets a server must support (RFC 9051 §6.4.4: US-ASCII and UTF-8). */
const REQUIRED_CHARSETS = ['UTF-8', 'US-ASCII'] as const;

/** Nesting bound so a hostile `NOT NOT NOT ...` cannot exhaust the stack. */
const MAX_DEPTH = 64;

const FLAG_KEYS = new Set([
  'ALL',
  'ANSWERED',
  'DELETED',
  'DRAFT',
  'FLAGGED',
  'SEEN',
  'UNANSWERED',
  'UNDELETED',
  'UNDRAFT',
  'UNFLAGGED',
  'UNSEEN',
  'NEW',
  'OLD',
  'RECENT',
] as const);
type FlagKey = typeof FLAG_KEYS extends Set<infer K> ? K : never;

const STRING_KEYS = new Set(['BCC', 'BODY', 'CC', 'FROM', 'SUBJECT', 'TEXT', 'TO'] as const);
type StringKey = typeof STRING_KEYS extends Set<infer K> ? K : never;

const DATE_KEYS = new Set(['BEFORE', 'ON', 'SINCE', 'SENTBEFORE', 'SENTON', 'SENTSINCE'] as const);
type DateKey = typeof DATE_KEYS extends Set<infer K> ? K : never;

const RETURN_OPTIONS: readonly SearchReturnOption[] = ['MIN', 'MAX', 'ALL', 'COUNT', 'SAVE'];

function isIn<T extends string>(set: ReadonlySet<T>, word: string): word is T {
  return (set as ReadonlySet<string>).has(word);
}

export function parseSearch(c: Cursor, tag: string, uid: boolean): SearchCommand {
  c.sp();
  let returnOptions: SearchReturnOption[] | null = null;
  if (c.takeWord('RETURN')) {
    c.sp();
    c.expect(0x28, '"(" after RETURN');
    returnOptions = [];
    if (!c.take(0x29)) {
      for (;;) {
        const word = c.keyword('search return option');
        const option = RETURN_OPTIONS.find((o) => o === word);
        if (option === undefined) c.fail(`unknown search return option ${word}`);
        if (!returnOptions.includes(option)) returnOptions.push(option);
        if (c.take(0x29)) break;
        c.sp();
      }
    }
    c.sp();
  }
  let charset: string | null = null;
  if (c.takeWord('CHARSET')) {
    c.sp();
    charset = parseCharset(c);
    c.sp();
  }
  return { name: 'SEARCH', tag, uid, charset, returnOptions, criteria: parseSearchKeys(c, charset) };
}

/** A charset name, upper-cased; an unknown one is `NO [BADCHARSET]` (RFC 9051 §6.4.4). */
export function parseCharset(c: Cursor): string {
  const charset = c.astring('charset').toString('latin1').toUpperCase();
  if (!REQUIRED_CHARSETS.some((s) => s === charset) && !isSupportedCharset(charset)) {
    // RFC 9051 §6.4.4: unknown charset → tagged NO with BADCHARSET listing what is supported.
    c.fail(`unsupported charset ${charset}`, { code: 'BADCHARSET', charsets: REQUIRED_CHARSETS });
  }
  return charset;
}

/** `1*(SP search-key)` up to the end of the command, as an AND of the keys. */
export function parseSearchKeys(c: Cursor, charset: string | null): SearchKey & { readonly key: 'AND' } {
  const decoder = new TextDecoder(charset === null || charset === 'US-ASCII' ? 'utf-8' : charset);
  const operands: SearchKey[] = [];
  for (;;) {
    operands.push(parseKey(c, decoder, 0));
    if (c.atEnd()) break;
    c.sp();
  }
  return { key: 'AND', operands };
}

function isSupportedCharset(label: string): boolean {
  try {
    new TextDecoder(label);
    return true;
  } catch {
    return false;
  }
}

function parseKey(c: Cursor, decoder: TextDecoder, depth: number): SearchKey {
  if (depth > MAX_DEPTH) c.fail('search criteria nested too deeply');
  if (c.take(0x28)) {
    const operands: SearchKey[] = [];
    for (;;) {
      operands.push(parseKey(c, decoder, depth + 1));
      if (c.take(0x29)) break;
      c.sp();
    }
    return { key: 'AND', operands };
  }
  if (c.atSequenceSet()) return { key: 'SEQUENCE', set: c.sequenceSet() };
  const word = c.keyword('search key');
  const text = (): string => {
    c.sp();
    return decoder.decode(c.astring('search string'));
  };
  if (isIn<FlagKey>(FLAG_KEYS, word)) return { key: word };
  if (isIn<StringKey>(STRING_KEYS, word)) return { key: word, value: text() };
  if (isIn<DateKey>(DATE_KEYS, word)) {
    c.sp();
    return { key: word, date: parseSearchDate(c) };
  }
  switch (word) {
    case 'HEADER': {
      c.sp();
      const field = c.astring('header field name').toString('latin1');
      return { key: 'HEADER', field, value: text() };
    }
    case 'KEYWORD':
    case 'UNKEYWORD':
      c.sp();
      return { key: word, flag: c.atom('keyword') };
    case 'LARGER':
    case 'SMALLER':
      c.sp();
      return { key: word, size: c.number('size') };
    case 'UID':
      c.sp();
      return { key: 'UID', set: c.sequenceSet() };
    case 'NOT':
      c.sp();
      return { key: 'NOT', operand: parseKey(c, decoder, depth + 1) };
    case 'OR': {
      c.sp();
      const left = parseKey(c, decoder, depth + 1);
      c.sp();
      const right = parseKey(c, decoder, depth + 1);
      return { key: 'OR', left, right };
    }
    case 'MODSEQ': {
      c.sp();
      // RFC 7162 §3.1.5: [SP entry-name SP entry-type-req] SP mod-sequence-valzer
      if (c.peek() === 0x22) {
        c.quoted();
        c.sp();
        const type = c.keyword('entry type');
        if (type !== 'PRIV' && type !== 'SHARED' && type !== 'ALL') c.fail(`invalid entry type ${type}`);
        c.sp();
      }
      return { key: 'MODSEQ', modseq: c.number64('mod-sequence') };
    }
    case 'OLDER':
    case 'YOUNGER':
      c.sp();
      return { key: word, seconds: c.nzNumber('interval') };
    case 'EMAILID':
    case 'THREADID':
      // RFC 8474 §6, §7: objectid = 1*255(ALPHA / DIGIT / "_" / "-").
      c.sp();
      return { key: word, id: objectId(c) };
    default:
      return c.fail(`unknown search key ${word}`);
  }
}

function isObjectIdChar(ch: number): boolean {
  return (
    (ch >= 0x41 && ch <= 0x5a) ||
    (ch >= 0x61 && ch <= 0x7a) ||
    (ch >= 0x30 && ch <= 0x39) ||
    ch === 0x5f ||
    ch === 0x2d
  );
}

/** RFC 8474 §7 objectid, case-significant (§3). */
function objectId(c: Cursor): string {
  const id = c.atom('objectid', isObjectIdChar);
  if (id.length > 255) c.fail('objectid longer than 255 characters');
  return id;
}
