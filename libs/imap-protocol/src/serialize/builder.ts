/**
 * Building responses as bytes: the string forms of RFC 9051 §4.3 (atom, quoted, literal, NIL),
 * §4.3.1 (8-bit in quoted strings only with UTF-8 enabled, RFC 6855 §3), literal8 `~{N}`
 * (RFC 3516 §4.3) for binary data. Small pieces are gathered into one buffer; large literal data
 * (message bodies) is passed through as its own chunk, never copied.
 */
import { isAstringChar, isAtomChar } from '../receiver.js';

/** Literal data known by size, produced later (e.g. a body streamed from the blob store). */
export interface StreamedLiteral {
  readonly kind: 'stream';
  readonly size: number;
  readonly source: AsyncIterable<Uint8Array>;
}

/** A piece of a response, in order: bytes to write, or a stream to pipe. */
export type OutputChunk = Uint8Array | StreamedLiteral;

/** Literal data for a response: bytes, or a stream with its size. */
export type LiteralData = Uint8Array | StreamedLiteral;

export interface StringOptions {
  /** UTF-8 is enabled (IMAP4rev2 / UTF8=ACCEPT): 8-bit UTF-8 may be sent in quoted strings. */
  readonly utf8: boolean;
}

/** Quoted strings longer than this are sent as literals (clients handle both; long lines hurt). */
const MAX_QUOTED = 1024;

/** Copy literal data into the gathered buffer below this size rather than emit a chunk. */
const INLINE_LITERAL = 4096;

export class ResponseBuilder {
  readonly #chunks: OutputChunk[] = [];
  #parts: (string | Uint8Array)[] = [];
  readonly #options: StringOptions;

  constructor(options: StringOptions) {
    this.#options = options;
  }

  get options(): StringOptions {
    return this.#options;
  }

  /** Raw protocol text (ASCII: keywords, numbers, punctuation). */
  text(s: string): this {
    this.#push(s);
    return this;
  }

  /**
   * Consecutive text is kept as one string (one conversion to bytes at the end, not one small
   * Buffer per token: a FETCH ENVELOPE of a large mailbox has dozens of tokens per message).
   */
  #push(part: string | Uint8Array): void {
    const last = this.#parts.length - 1;
    if (typeof part === 'string' && last >= 0) {
      const previous = this.#parts[last];
      if (typeof previous === 'string') {
        this.#parts[last] = previous + part;
        return;
      }
    }
    this.#parts.push(part);
  }

  sp(): this {
    return this.text(' ');
  }

  number(n: number | bigint): this {
    return this.text(String(n));
  }

  nil(): this {
    return this.text('NIL');
  }

  crlf(): this {
    return this.text('\r\n');
  }

  /** string (RFC 9051 §9): quoted when safe, else a literal. */
  string(value: string | Uint8Array): this {
    // The common case, 7-bit text that may be quoted, without going through bytes.
    if (typeof value === 'string' && value.length <= MAX_QUOTED) {
      const quotable = plainQuotable(value);
      if (quotable !== false) {
        this.#push(`"${quotable === 'escape' ? value.replace(/(["\\])/g, '\\$1') : value}"`);
        return this;
      }
    }
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    if (canQuote(bytes, this.#options.utf8)) return this.#quoted(bytes);
    return this.literal(bytes);
  }

  /** nstring = string / NIL */
  nstring(value: string | Uint8Array | null): this {
    return value === null ? this.nil() : this.string(value);
  }

  /**
   * astring = 1*ASTRING-CHAR / string. An atom when possible; `NIL` is quoted so it cannot be
   * read as nil.
   */
  astring(value: string): this {
    if (isAstring(value)) return this.text(value);
    return this.string(value);
  }

  /**
   * Protocol bytes another builder made with the same options (a cached ENVELOPE): written as
   * they are.
   */
  raw(bytes: Uint8Array): this {
    this.#push(bytes);
    return this;
  }

  /** An atom the caller knows is valid (flags, capabilities, keywords). */
  atom(value: string): this {
    return this.text(value);
  }

  #quoted(bytes: Uint8Array): this {
    let escaped = false;
    for (const b of bytes) if (b === 0x22 || b === 0x5c) escaped = true;
    this.#push('"');
    if (!escaped) this.#push(bytes);
    else
      this.#push(
        Buffer.from(
          Buffer.from(bytes)
            .toString('latin1')
            .replace(/(["\\])/g, '\\$1'),
          'latin1',
        ),
      );
    this.#push('"');
    return this;
  }

  /** literal = "{" number "}" CRLF *CHAR8 (RFC 9051 §4.3); literal8 with `binary`. */
  literal(data: LiteralData, binary = false): this {
    const size = data instanceof Uint8Array ? data.length : data.size;
    this.text(`${binary ? '~' : ''}{${size}}\r\n`);
    if (data instanceof Uint8Array && data.length <= INLINE_LITERAL) {
      this.#push(data);
      return this;
    }
    this.#flush();
    this.#chunks.push(data);
    return this;
  }

  #flush(): void {
    const parts = this.#parts;
    if (parts.length === 0) return;
    if (parts.length === 1) {
      // The usual case (a FLAGS or UID answer is text only): converted without a second copy.
      const only = parts[0] as string | Uint8Array;
      this.#chunks.push(typeof only === 'string' ? Buffer.from(only, 'utf8') : only);
    } else {
      // One buffer, each part written into it once (not a Buffer per text part, then a copy).
      let size = 0;
      for (const p of parts) size += typeof p === 'string' ? Buffer.byteLength(p, 'utf8') : p.length;
      const out = Buffer.allocUnsafe(size);
      let at = 0;
      for (const p of parts) {
        if (typeof p === 'string') at += out.write(p, at, 'utf8');
        else {
          out.set(p, at);
          at += p.length;
        }
      }
      this.#chunks.push(out);
    }
    this.#parts = [];
  }

  /** The response as chunks, in order. */
  chunks(): OutputChunk[] {
    this.#flush();
    return [...this.#chunks];
  }

  /** The response as one buffer; only for responses without streamed literals. */
  bytes(): Buffer {
    const chunks = this.chunks();
    const bufs = chunks.map((c) => {
      if (c instanceof Uint8Array) return c;
      throw new TypeError('response contains a streamed literal; use chunks()');
    });
    return bufs.length === 1 && Buffer.isBuffer(bufs[0]) ? bufs[0] : Buffer.concat(bufs);
  }
}

/**
 * For a string of 7-bit characters that may be quoted (RFC 9051 §9 QUOTED-CHAR: no NUL, CR or LF):
 * `true`, or `'escape'` when it holds `"` or `\`; `false` for anything else (8-bit text goes the
 * byte way, which checks UTF-8 and length in octets).
 */
function plainQuotable(value: string): boolean | 'escape' {
  let escape = false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0 || c === 0x0a || c === 0x0d || c >= 0x80) return false;
    if (c === 0x22 || c === 0x5c) escape = true;
  }
  return escape ? 'escape' : true;
}

/** Whether bytes may go in a quoted string (RFC 9051 §9 QUOTED-CHAR; 8-bit only as UTF-8). */
export function canQuote(bytes: Uint8Array, utf8: boolean): boolean {
  if (bytes.length > MAX_QUOTED) return false;
  let high = false;
  for (const b of bytes) {
    // RFC 9051 §4.3: CR, LF and NUL can never appear in a quoted string.
    if (b === 0 || b === 0x0a || b === 0x0d) return false;
    if (b >= 0x80) high = true;
  }
  if (!high) return true;
  if (!utf8) return false;
  // Only well-formed UTF-8 may be quoted (RFC 9051 §9 QUOTED-CHAR =/ UTF8-2 / UTF8-3 / UTF8-4).
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  return Buffer.from(buf.toString('utf8'), 'utf8').equals(buf);
}

function isAstring(value: string): boolean {
  if (value.length === 0 || value.toUpperCase() === 'NIL') return false;
  for (let i = 0; i < value.length; i++) if (!isAstringChar(value.charCodeAt(i))) return false;
  return true;
}

/** Whether a string is a valid atom (RFC 9051 §9 `atom`). */
export function isAtom(value: string): boolean {
  if (value.length === 0) return false;
  for (let i = 0; i < value.length; i++) if (!isAtomChar(value.charCodeAt(i))) return false;
  return true;
}

/** Concatenates chunks, reading streamed literals; for tests and small responses. */
export async function collectOutput(chunks: readonly OutputChunk[]): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for (const chunk of chunks) {
    if (chunk instanceof Uint8Array) parts.push(chunk);
    else for await (const piece of chunk.source) parts.push(piece);
  }
  return Buffer.concat(parts);
}
