/**
 * The ManageSieve wire format (RFC 5804). A command is an atom followed by arguments separated by
 * one space and ends with CRLF (§4); an argument is a quoted string, a literal or a number. A
 * literal is `{n+}` CRLF and n octets (the client does not wait, §4 `literal-c2s`); `{n}` is
 * read the same way, since ManageSieve has no continuation for literals. Responses (§1.3) are
 * `OK`/`NO`/`BYE`, an optional response code in parentheses and an optional human-readable string.
 */

export type Argument =
  { readonly kind: 'string'; readonly value: Buffer } | { readonly kind: 'number'; readonly value: number };

export interface Command {
  /** Upper-cased (command names are case-insensitive, §4 `command-name`). */
  readonly name: string;
  readonly args: readonly Argument[];
}

export interface ParseLimits {
  /** Octets of one command outside its literals. */
  readonly maxLine: number;
  /** Octets of one literal. */
  readonly maxLiteral: number;
}

export type ParseResult =
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'command'; readonly command: Command; readonly consumed: number }
  /** A syntax error; `consumed` runs through the CRLF ending the bad line. */
  | { readonly kind: 'error'; readonly message: string; readonly consumed: number }
  /**
   * A literal over the limit: its header is `consumed`; the session drops `literal` more octets
   * and the rest of the line, then answers NO (the client does not wait before sending them).
   */
  | { readonly kind: 'literal-too-large'; readonly literal: number; readonly consumed: number }
  /** No CRLF within the line limit: the connection cannot be resynchronised. */
  | { readonly kind: 'line-too-long' };

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;
/** §4: `number = 1*DIGIT` below 4,294,967,296. */
const MAX_NUMBER = 4_294_967_295;
/** §4 `quoted`: at most 1024 octets between the quotes. */
const MAX_QUOTED = 1024;

/** Unwinds the parse: the command has not all arrived. */
class Incomplete extends Error {}
class ParseError extends Error {}
class LiteralTooLarge extends Error {
  constructor(
    readonly size: number,
    readonly end: number,
  ) {
    super('literal too large');
  }
}

/**
 * Parses one command at the start of `buf`; with `bare`, a line of arguments without a command
 * name (a SASL response, §2.1), returned with the name ''.
 */
export function parseCommand(buf: Buffer, limits: ParseLimits, bare = false): ParseResult {
  // Where the current run of non-literal octets started (the line limit counts those).
  let lineStart = 0;
  let pos = 0;
  const args: Argument[] = [];
  try {
    let nameEnd = pos;
    while (!bare && nameEnd < buf.length && isAtomChar(buf[nameEnd] ?? 0)) nameEnd++;
    if (nameEnd === buf.length) throw new Incomplete();
    if (nameEnd === 0 && !bare) throw new ParseError('expected a command name');
    const name = buf.toString('latin1', 0, nameEnd).toUpperCase();
    pos = nameEnd;
    // A bare line starts with its first argument; after a name, each argument follows a space.
    let needSpace = !bare;
    for (;;) {
      if (pos >= buf.length) throw new Incomplete();
      const c = buf[pos];
      if (c === CR) {
        if (pos + 1 >= buf.length) throw new Incomplete();
        if (buf[pos + 1] !== LF) throw new ParseError('CR without LF');
        return { kind: 'command', command: { name, args }, consumed: pos + 2 };
      }
      if (needSpace) {
        if (c !== SP) throw new ParseError('expected a space between arguments');
        pos++;
        if (pos >= buf.length) throw new Incomplete();
      }
      needSpace = true;
      const first = buf[pos] ?? 0;
      if (first === DQUOTE) {
        const [value, end] = readQuoted(buf, pos);
        args.push({ kind: 'string', value });
        pos = end;
      } else if (first === 0x7b /* { */) {
        const [size, headerEnd] = readLiteralHeader(buf, pos, limits);
        if (headerEnd + size > buf.length) throw new Incomplete();
        args.push({ kind: 'string', value: Buffer.from(buf.subarray(headerEnd, headerEnd + size)) });
        pos = headerEnd + size;
        lineStart = pos;
      } else if (isDigit(first)) {
        let end = pos;
        while (end < buf.length && isDigit(buf[end] ?? 0)) end++;
        if (end === buf.length) throw new Incomplete();
        const value = Number(buf.toString('latin1', pos, end));
        if (end - pos > 10 || value > MAX_NUMBER) throw new ParseError('number out of range');
        args.push({ kind: 'number', value });
        pos = end;
      } else {
        throw new ParseError('expected a string or a number');
      }
    }
  } catch (thrown) {
    if (thrown instanceof LiteralTooLarge)
      return { kind: 'literal-too-large', literal: thrown.size, consumed: thrown.end };
    const crlf = buf.indexOf('\r\n', lineStart);
    if (thrown instanceof ParseError) {
      // Nothing before the error was a CRLF (quoted strings cannot hold one): this ends the line.
      if (crlf >= 0) {
        return { kind: 'error', message: thrown.message, consumed: crlf + 2 };
      }
      // The rest of the bad line has not arrived yet.
      return buf.length - lineStart > limits.maxLine ? { kind: 'line-too-long' } : { kind: 'incomplete' };
    }
    if (thrown instanceof Incomplete) {
      return buf.length - lineStart > limits.maxLine ? { kind: 'line-too-long' } : { kind: 'incomplete' };
    }
    throw thrown;
  }
}

/** `"…"` with `\"` and `\\` (§4 `quoted`); returns the value and the position after the quote. */
function readQuoted(buf: Buffer, start: number): [Buffer, number] {
  const out: number[] = [];
  let pos = start + 1;
  for (;;) {
    if (pos >= buf.length) throw new Incomplete();
    const c = buf[pos] ?? 0;
    if (c === DQUOTE) return [Buffer.from(out), pos + 1];
    if (c === CR || c === LF || c === 0) throw new ParseError('line break or NUL in a quoted string');
    if (c === BACKSLASH) {
      if (pos + 1 >= buf.length) throw new Incomplete();
      const next = buf[pos + 1] ?? 0;
      if (next !== DQUOTE && next !== BACKSLASH)
        throw new ParseError('only \\" and \\\\ may be escaped in a quoted string');
      out.push(next);
      pos += 2;
    } else {
      out.push(c);
      pos++;
    }
    if (out.length > MAX_QUOTED) throw new ParseError('quoted string longer than 1024 octets');
  }
}

/** `{n+}` CRLF or `{n}` CRLF; returns n and the position of the first literal octet. */
function readLiteralHeader(buf: Buffer, start: number, limits: ParseLimits): [number, number] {
  let pos = start + 1;
  while (pos < buf.length && isDigit(buf[pos] ?? 0)) pos++;
  if (pos >= buf.length) throw new Incomplete();
  const digits = buf.toString('latin1', start + 1, pos);
  if (digits.length === 0 || digits.length > 10) throw new ParseError('bad literal length');
  const size = Number(digits);
  if (buf[pos] === 0x2b /* + */) pos++;
  const expected = [0x7d /* } */, CR, LF];
  for (let i = 0; i < expected.length; i++) {
    if (pos + i >= buf.length) throw new Incomplete();
    if (buf[pos + i] !== expected[i]) throw new ParseError('a literal header ends with "}" and CRLF');
  }
  if (size > limits.maxLiteral) throw new LiteralTooLarge(size, pos + 3);
  return [size, pos + 3];
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isAtomChar(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

/**
 * A string for the client: quoted when it can be (§4: no CR, LF or NUL, at most 1024 octets),
 * else a literal `{n}` CRLF (server-to-client literals never have the `+`).
 */
export function sieveString(value: string | Buffer): string {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  const text = bytes.toString('utf8');
  if (bytes.length <= MAX_QUOTED && !/[\r\n\0]/.test(text)) {
    return `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  }
  return `{${bytes.length}}\r\n${text}`;
}

export type Condition = 'OK' | 'NO' | 'BYE';

/**
 * `OK`/`NO`/`BYE` [SP "(" code ")"] [SP string] CRLF. `code` is written as given, e.g. `ACTIVE`,
 * `QUOTA/MAXSIZE` or `TAG "x"` (§1.3).
 */
export function response(condition: Condition, text?: string, code?: string): string {
  let line: string = condition;
  if (code !== undefined) line += ` (${code})`;
  if (text !== undefined) line += ` ${sieveString(text)}`;
  return `${line}\r\n`;
}

/** The octets as UTF-8 text, or null when they are not valid UTF-8 (§1.6, §4: strings are UTF-8). */
export function utf8(value: Buffer): string | null {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(value);
  } catch {
    return null;
  }
}
