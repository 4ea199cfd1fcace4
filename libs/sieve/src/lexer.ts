/**
 * Sieve lexical analysis, RFC 5228 §2.2-§2.4 and §8.1: comments (hash and bracket), identifiers,
 * tags, numbers with K/M/G quantifiers, quoted strings with `\\` and `\"` escapes, and
 * `text:` multi-line strings with dot-unstuffing. Line breaks are CRLF in the RFC; a bare LF is
 * accepted too, since scripts uploaded from Unix editors use it.
 */
import { SieveCompileError, type SourcePosition } from './errors.js';

export type Token =
  | { readonly kind: 'identifier'; readonly value: string; readonly at: SourcePosition }
  | { readonly kind: 'tag'; readonly value: string; readonly at: SourcePosition }
  | { readonly kind: 'number'; readonly value: number; readonly at: SourcePosition }
  | { readonly kind: 'string'; readonly value: string; readonly at: SourcePosition }
  | {
      readonly kind: 'punct';
      readonly value: '[' | ']' | '(' | ')' | '{' | '}' | ',' | ';';
      readonly at: SourcePosition;
    }
  | { readonly kind: 'end'; readonly at: SourcePosition };

/** RFC 5228 §2.4.1: implementations MUST support numbers up to 2^31 - 1 after the quantifier. */
const MAX_NUMBER = 2 ** 31 - 1;
const QUANTIFIERS: Readonly<Record<string, number>> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

const isAlpha = (c: string): boolean => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
const isDigit = (c: string): boolean => c >= '0' && c <= '9';
const isIdentStart = (c: string): boolean => isAlpha(c) || c === '_';
const isIdentChar = (c: string): boolean => isAlpha(c) || isDigit(c) || c === '_';

export function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const here = (): SourcePosition => ({ line, column: i - lineStart + 1 });
  const fail = (reason: string, at: SourcePosition = here()): never => {
    throw new SieveCompileError(reason, at);
  };
  const newline = (): void => {
    line++;
    lineStart = i;
  };

  while (i < source.length) {
    const c = source[i] as string;
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    if (c === '\n') {
      i++;
      newline();
      continue;
    }
    if (c === '#') {
      while (i < source.length && source[i] !== '\n') i++;
      continue;
    }
    if (c === '/' && source[i + 1] === '*') {
      const start = here();
      i += 2;
      for (;;) {
        if (i >= source.length) fail('unterminated comment (missing "*/")', start);
        if (source[i] === '*' && source[i + 1] === '/') {
          i += 2;
          break;
        }
        if (source[i] === '\n') {
          i++;
          newline();
        } else i++;
      }
      continue;
    }
    const at = here();
    if ('[](){},;'.includes(c)) {
      tokens.push({ kind: 'punct', value: c as '[' | ']' | '(' | ')' | '{' | '}' | ',' | ';', at });
      i++;
      continue;
    }
    if (c === '"') {
      i++;
      let value = '';
      for (;;) {
        if (i >= source.length) fail('unterminated string (missing closing quote)', at);
        const d = source[i] as string;
        if (d === '"') {
          i++;
          break;
        }
        if (d === '\\') {
          // RFC 5228 §2.4.2: "\\" and "\"" are the defined escapes; any other backslash
          // sequence stands for the character after the backslash.
          const next = source[i + 1];
          if (next === undefined) fail('unterminated string (missing closing quote)', at);
          value += next;
          i += 2;
          if (next === '\n') newline();
          continue;
        }
        value += d;
        i++;
        if (d === '\n') newline();
      }
      tokens.push({ kind: 'string', value, at });
      continue;
    }
    if (isDigit(c)) {
      let end = i;
      while (end < source.length && isDigit(source[end] as string)) end++;
      let value = Number(source.slice(i, end));
      const q = source[end]?.toLowerCase();
      if (q !== undefined && q in QUANTIFIERS) {
        value *= QUANTIFIERS[q] as number;
        end++;
      }
      if (end < source.length && isIdentChar(source[end] as string)) fail('malformed number');
      if (!Number.isSafeInteger(value) || value > MAX_NUMBER)
        fail('number too large (the limit is 2^31 - 1)', at);
      tokens.push({ kind: 'number', value, at });
      i = end;
      continue;
    }
    if (c === ':') {
      i++;
      if (i >= source.length || !isIdentStart(source[i] as string))
        fail('":" must be followed by a tag name', at);
      const start = i;
      while (i < source.length && isIdentChar(source[i] as string)) i++;
      tokens.push({ kind: 'tag', value: source.slice(start, i).toLowerCase(), at });
      continue;
    }
    if (isIdentStart(c)) {
      const start = i;
      while (i < source.length && isIdentChar(source[i] as string)) i++;
      const word = source.slice(start, i);
      if (word.toLowerCase() === 'text' && source[i] === ':') {
        i++;
        tokens.push({ kind: 'string', value: readMultiLine(), at });
        continue;
      }
      tokens.push({ kind: 'identifier', value: word.toLowerCase(), at });
      continue;
    }
    fail(`unexpected character ${JSON.stringify(c)}`);
  }
  tokens.push({ kind: 'end', at: here() });
  return tokens;

  /** RFC 5228 §2.4.2 multi-line: after "text:", blanks and an optional hash comment end the line. */
  function readMultiLine(): string {
    const start = here();
    while (source[i] === ' ' || source[i] === '\t') i++;
    if (source[i] === '#') while (i < source.length && source[i] !== '\n') i++;
    if (source[i] === '\r') i++;
    if (source[i] !== '\n') fail('"text:" must be followed by a line break', start);
    i++;
    newline();
    const lines: string[] = [];
    for (;;) {
      if (i >= source.length)
        fail('unterminated multi-line string (missing a line with a single ".")', start);
      let end = source.indexOf('\n', i);
      if (end < 0) end = source.length;
      let text = source.slice(i, end);
      if (text.endsWith('\r')) text = text.slice(0, -1);
      i = Math.min(end + 1, source.length);
      if (end < source.length) newline();
      if (text === '.') return lines.map((l) => l + '\r\n').join('');
      // Dot-stuffing: a line that starts with "." has one removed.
      lines.push(text.startsWith('.') ? text.slice(1) : text);
      if (end >= source.length)
        fail('unterminated multi-line string (missing a line with a single ".")', start);
    }
  }
}
