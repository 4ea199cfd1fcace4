/**
 * The lexical layer of the command grammar (RFC 9051 §9, RFC 3501 §9): atoms, astrings, quoted
 * strings, literals (RFC 9051 §4.3; RFC 7888 `{N+}`; RFC 3516 `~{N}`), numbers, flags, dates,
 * sequence sets, read from a {@link RawCommand} that the receiver assembled.
 *
 * A syntax error stops the parse by throwing {@link SyntaxFailure}; it never leaves this package:
 * `parseCommand` turns it into a `CommandParseError` value. Recursive-descent parsing with an
 * early exit keeps every grammar rule one short function.
 */
import type { RawCommand, ReceivedLiteral } from './receiver.js';
import { isAstringChar, isAtomChar } from './receiver.js';
import type { SeqNumber, SeqRange, SequenceSet } from './sequence-set.js';

export class SyntaxFailure extends Error {
  override readonly name = 'SyntaxFailure';
  constructor(
    message: string,
    /** A response code the server should send instead of a plain BAD (e.g. BADCHARSET). */
    readonly responseCode: SyntaxResponseCode | null = null,
  ) {
    super(message);
  }
}

export type SyntaxResponseCode =
  | { readonly code: 'BADCHARSET'; readonly charsets: readonly string[] }
  | { readonly code: 'CLIENTBUG' }
  /** Well-formed syntax whose content cannot be used, such as a badly encoded mailbox name. */
  | { readonly code: 'CANNOT' };

const SP = 0x20;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;

/** A literal or quoted string as read: the raw octets. */
export interface StringToken {
  readonly bytes: Buffer;
  readonly literal: ReceivedLiteral | null;
}

export class Cursor {
  readonly #lines: readonly Buffer[];
  readonly #literals: readonly ReceivedLiteral[];
  #line = 0;
  #pos = 0;

  constructor(raw: RawCommand) {
    this.#lines = raw.lines;
    this.#literals = raw.literals;
  }

  get #current(): Buffer {
    return this.#lines[this.#line]!;
  }

  /** The next octet on the current line, or -1 at its end. */
  peek(offset = 0): number {
    return this.#current[this.#pos + offset] ?? -1;
  }

  /** True at the end of the whole command. */
  atEnd(): boolean {
    return this.#line === this.#lines.length - 1 && this.#pos >= this.#current.length;
  }

  fail(message: string, code: SyntaxResponseCode | null = null): never {
    throw new SyntaxFailure(message, code);
  }

  expectEnd(): void {
    if (!this.atEnd()) this.fail(`unexpected "${this.rest(20)}" at end of command`);
  }

  /** Up to n characters of what remains on the line, for error messages. */
  rest(n: number): string {
    return this.#current
      .subarray(this.#pos, this.#pos + n)
      .toString('latin1')
      .replace(/[^\x20-\x7e]/g, '?');
  }

  take(c: number): boolean {
    if (this.peek() !== c) return false;
    this.#pos++;
    return true;
  }

  expect(c: number, what: string): void {
    if (!this.take(c)) this.fail(`expected ${what}`);
  }

  sp(): void {
    if (!this.take(SP))
      this.fail(this.atEnd() ? 'missing argument' : `expected space before "${this.rest(20)}"`);
  }

  /** Consumes `word` (case-insensitive ASCII) when it comes next and is not followed by an atom char. */
  takeWord(word: string): boolean {
    for (let k = 0; k < word.length; k++) {
      const c = this.peek(k);
      if (c < 0 || String.fromCharCode(c).toUpperCase() !== word[k]) return false;
    }
    const after = this.peek(word.length);
    if (after >= 0 && isAtomChar(after)) return false;
    this.#pos += word.length;
    return true;
  }

  /** ATOM: 1*ATOM-CHAR, as written. */
  atom(what = 'atom', accept: (c: number) => boolean = isAtomChar): string {
    const start = this.#pos;
    while (this.#pos < this.#current.length && accept(this.#current[this.#pos]!)) this.#pos++;
    if (this.#pos === start)
      this.fail(this.atEnd() ? `missing ${what}` : `expected ${what} at "${this.rest(20)}"`);
    return this.#current.toString('latin1', start, this.#pos);
  }

  /** An atom upper-cased, for keywords. */
  keyword(what: string): string {
    return this.atom(what).toUpperCase();
  }

  /** number = 1*DIGIT, at most 2^32-1 (RFC 9051 §9 `number`). */
  number(what = 'number'): number {
    const n = this.#digits(what);
    if (n > 0xffffffff) this.fail(`${what} out of range`);
    return n;
  }

  /** nz-number: 1..2^32-1. */
  nzNumber(what = 'number'): number {
    const n = this.number(what);
    if (n === 0) this.fail(`${what} must not be zero`);
    return n;
  }

  /** number64 (RFC 9051 §9): 0..2^63-1. */
  number64(what = 'number'): bigint {
    const start = this.#pos;
    while (this.peek() >= 0x30 && this.peek() <= 0x39) this.#pos++;
    if (start === this.#pos) this.fail(`expected ${what}`);
    if (this.#pos - start > 19) this.fail(`${what} out of range`);
    const n = BigInt(this.#current.toString('latin1', start, this.#pos));
    if (n > 0x7fffffffffffffffn) this.fail(`${what} out of range`);
    return n;
  }

  #digits(what: string): number {
    const start = this.#pos;
    while (this.peek() >= 0x30 && this.peek() <= 0x39) this.#pos++;
    if (start === this.#pos) this.fail(`expected ${what}`);
    if (this.#pos - start > 10) this.fail(`${what} out of range`);
    return Number(this.#current.toString('latin1', start, this.#pos));
  }

  /** True when a literal marker `{N}`, `{N+}` or `~{N}` comes next. */
  atLiteral(): boolean {
    return this.peek() === 0x7b || (this.peek() === 0x7e && this.peek(1) === 0x7b);
  }

  /**
   * A literal: the marker must end the line (the receiver split the command there), and the
   * literal's data is the next received literal.
   */
  literal(allowBinary: boolean): ReceivedLiteral {
    const binary = this.take(0x7e);
    if (binary && !allowBinary) this.fail('literal8 not allowed here');
    this.expect(0x7b, '"{"');
    const close = this.#current.indexOf(0x7d, this.#pos);
    if (close !== this.#current.length - 1 || this.#line >= this.#literals.length) {
      this.fail('literal must end the line');
    }
    // The receiver matched the marker from the end of the line; make sure this "{" starts it.
    if (!/^\d+\+?$/.test(this.#current.toString('latin1', this.#pos, close))) this.fail('invalid literal');
    const literal = this.#literals[this.#line]!;
    this.#line++;
    this.#pos = 0;
    // RFC 9051 §4.3: a (non-literal8) string literal "MUST NOT" contain NUL; RFC 3516 §4.2.
    if (!literal.binary && literal.data.includes(0)) this.fail('NUL in literal', { code: 'CLIENTBUG' });
    return literal;
  }

  /** quoted = DQUOTE *QUOTED-CHAR DQUOTE; UTF-8 octets are kept (RFC 9051 §9 QUOTED-CHAR). */
  quoted(): Buffer {
    this.expect(DQUOTE, 'quoted string');
    const bytes: number[] = [];
    for (;;) {
      const c = this.peek();
      if (c < 0) this.fail('unterminated quoted string');
      this.#pos++;
      if (c === DQUOTE) break;
      if (c === BACKSLASH) {
        const e = this.peek();
        if (e !== DQUOTE && e !== BACKSLASH) this.fail('invalid escape in quoted string');
        bytes.push(e);
        this.#pos++;
      } else if (c === 0x0d || c === 0x0a || c === 0) {
        this.fail('invalid character in quoted string');
      } else {
        bytes.push(c);
      }
    }
    return Buffer.from(bytes);
  }

  /** string = quoted / literal */
  string(what = 'string'): Buffer {
    if (this.peek() === DQUOTE) return this.quoted();
    if (this.atLiteral()) return this.literal(false).data;
    return this.fail(this.atEnd() ? `missing ${what}` : `expected ${what} at "${this.rest(20)}"`);
  }

  /** astring = 1*ASTRING-CHAR / string */
  astring(what = 'string'): Buffer {
    if (this.peek() === DQUOTE || this.atLiteral()) return this.string(what);
    return Buffer.from(this.atom(what, isAstringChar), 'latin1');
  }

  /** astring decoded as UTF-8 (RFC 9051 §9 `astring` with UTF8-2..4 in quoted and literals). */
  astringText(what = 'string'): string {
    return this.astring(what).toString('utf8');
  }

  /** nstring = string / NIL */
  nstring(what = 'string'): Buffer | null {
    if (this.takeWord('NIL')) return null;
    return this.string(what);
  }

  /** list-mailbox = 1*list-char / string; list-char = ATOM-CHAR / list-wildcards / resp-specials */
  listMailbox(): Buffer {
    if (this.peek() === DQUOTE || this.atLiteral()) return this.string('mailbox pattern');
    return Buffer.from(
      this.atom('mailbox pattern', (c) => isAstringChar(c) || c === 0x25 || c === 0x2a),
      'latin1',
    );
  }

  /** flag = "\Answered" / ... / flag-keyword / flag-extension; returned as written. */
  flag(allowRecent = false): string {
    if (this.take(BACKSLASH)) {
      const name = this.atom('flag');
      // RFC 9051 §2.3.2: \Recent is gone in IMAP4rev2 and never settable by a client.
      if (!allowRecent && name.toUpperCase() === 'RECENT') this.fail('\\Recent cannot be stored');
      return '\\' + name;
    }
    return this.atom('flag');
  }

  /** flag-list = "(" [flag *(SP flag)] ")" */
  flagList(): string[] {
    this.expect(0x28, '"("');
    const flags: string[] = [];
    if (this.take(0x29)) return flags;
    for (;;) {
      flags.push(this.flag());
      if (this.take(0x29)) return flags;
      this.sp();
    }
  }

  /** sequence-set, `$` (RFC 5182), `*` (RFC 9051 §9). */
  sequenceSet(): SequenceSet {
    if (this.take(0x24)) return { kind: 'saved' };
    const ranges: SeqRange[] = [];
    do {
      const start = this.#seqNumber();
      const end = this.take(0x3a) ? this.#seqNumber() : start;
      ranges.push({ start, end });
    } while (this.take(0x2c));
    return { kind: 'ranges', ranges };
  }

  #seqNumber(): SeqNumber {
    if (this.take(0x2a)) return '*';
    return this.nzNumber('sequence number');
  }

  /** True when the next octet could start a sequence set. */
  atSequenceSet(): boolean {
    const c = this.peek();
    return c === 0x24 || c === 0x2a || (c >= 0x31 && c <= 0x39);
  }
}
