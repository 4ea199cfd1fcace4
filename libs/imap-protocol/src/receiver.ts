/**
 * Streaming command receiver: fed arbitrary byte chunks from a connection, it yields complete
 * commands (the command line plus every literal it announces), or tells the server that it needs
 * more data, that it must send a continuation request for a synchronizing literal, or that the
 * command is over a limit.
 *
 * RFC 9051 §2.2.1 (client commands, literals, continuation request), §4.3 (literal syntax),
 * §7.5 (command continuation request); RFC 7888 §3-§4 (non-synchronizing literals `{N+}`, and
 * what a server does with one that is too large); RFC 3516 §4.3 (literal8 `~{N}`).
 *
 * Memory is bounded: at most one line (`maxLineLength`) plus the literals of one command
 * (`maxLiteralSize` each, `maxCommandSize` together) are held. An over-limit non-synchronizing
 * literal is skipped by counting its octets, not by buffering them.
 */

/** One literal of a command, in the order the command line announced it. */
export interface ReceivedLiteral {
  readonly data: Buffer;
  /** `~{N}` (RFC 3516 literal8): the data may contain NUL. */
  readonly binary: boolean;
  /** `{N+}` (RFC 7888): the client did not wait for a continuation request. */
  readonly nonSynchronizing: boolean;
}

/**
 * A complete command as received. `lines[i]` (without its CRLF, literal marker included) is
 * followed by `literals[i]`; the last line has no literal after it, so
 * `lines.length === literals.length + 1`.
 */
export interface RawCommand {
  readonly lines: readonly Buffer[];
  readonly literals: readonly ReceivedLiteral[];
}

export interface ReceiverLimits {
  /** Longest command line (without CRLF) accepted, in octets. */
  readonly maxLineLength: number;
  /** Largest single literal accepted, in octets (APPEND message size). */
  readonly maxLiteralSize: number;
  /** Largest whole command (lines and literals), in octets. */
  readonly maxCommandSize: number;
}

export const DEFAULT_RECEIVER_LIMITS: ReceiverLimits = {
  maxLineLength: 64 * 1024,
  maxLiteralSize: 64 * 1024 * 1024,
  maxCommandSize: 64 * 1024 * 1024 + 256 * 1024,
};

export type ReceiverErrorCode = 'lineTooLong' | 'literalTooLarge' | 'commandTooLarge';

/**
 * The command was refused before it was complete. `tag` is the command's tag when the first
 * line started with a readable one. What the receiver does next is in `recovery`:
 * - `resume`: it dropped the command and reads the next one (a synchronizing literal the
 *   client is still waiting to be invited to send; answer `<tag> NO [TOOBIG]` or `BAD`).
 * - `skipping`: it is discarding the rest of the command, literal octets included, without
 *   buffering them (RFC 7888 §4; answer `<tag> BAD [TOOBIG]`, or close the connection).
 * - `discardLine`: it is discarding the overlong line up to its CRLF.
 */
export interface ReceiverError {
  readonly code: ReceiverErrorCode;
  readonly tag: string | null;
  readonly message: string;
  readonly recovery: 'resume' | 'skipping' | 'discardLine';
  /** For `literalTooLarge`: the announced size. */
  readonly size?: number;
  readonly limit: number;
}

export type ReceiverEvent =
  | { readonly kind: 'command'; readonly command: RawCommand }
  /** Send `+ <text>\r\n` now: the client waits for it before sending `size` octets (RFC 9051 §7.5). */
  | { readonly kind: 'continue'; readonly size: number; readonly tag: string | null }
  | { readonly kind: 'error'; readonly error: ReceiverError }
  | { readonly kind: 'needMore' };

interface LiteralMarker {
  readonly size: number;
  readonly binary: boolean;
  readonly nonSynchronizing: boolean;
}

type State =
  | { readonly kind: 'line' }
  | { readonly kind: 'literal'; readonly marker: LiteralMarker }
  /** Discarding `remaining` literal octets, then lines until the command ends. */
  | { kind: 'skipLiteral'; remaining: number }
  | { readonly kind: 'skipLine' };

const LF = 0x0a;
const CR = 0x0d;

export class CommandReceiver {
  readonly #limits: ReceiverLimits;
  #buffer: Buffer = Buffer.alloc(0);
  /** How far into `#buffer` the current line has been searched for LF. */
  #scanned = 0;
  #state: State = { kind: 'line' };
  #lines: Buffer[] = [];
  #literals: ReceivedLiteral[] = [];
  #commandSize = 0;

  constructor(limits: Partial<ReceiverLimits> = {}) {
    this.#limits = { ...DEFAULT_RECEIVER_LIMITS, ...limits };
  }

  /** Appends bytes read from the connection. Call `next()` until it answers `needMore`. */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    this.#buffer = this.#buffer.length === 0 ? bytes : Buffer.concat([this.#buffer, bytes]);
  }

  /** Number of buffered, not yet consumed octets (bounded by the limits). */
  get buffered(): number {
    return this.#buffer.length;
  }

  /** True when the receiver is in the middle of a command (useful to detect a truncated stream). */
  get inCommand(): boolean {
    return this.#lines.length > 0 || this.#state.kind !== 'line' || this.#buffer.length > 0;
  }

  next(): ReceiverEvent {
    for (;;) {
      const state = this.#state;
      switch (state.kind) {
        case 'line': {
          const event = this.#readLine();
          if (event !== undefined) return event;
          break;
        }
        case 'literal': {
          const { size } = state.marker;
          if (this.#buffer.length < size) return { kind: 'needMore' };
          // Copy out so the (possibly large) connection chunk the literal came from is released.
          const data = Buffer.from(this.#buffer.subarray(0, size));
          this.#consume(size);
          this.#literals.push({
            data,
            binary: state.marker.binary,
            nonSynchronizing: state.marker.nonSynchronizing,
          });
          this.#state = { kind: 'line' };
          break;
        }
        case 'skipLiteral': {
          const n = Math.min(state.remaining, this.#buffer.length);
          this.#consume(n);
          state.remaining -= n;
          if (state.remaining > 0) return { kind: 'needMore' };
          this.#state = { kind: 'skipLine' };
          break;
        }
        case 'skipLine': {
          const lf = this.#buffer.indexOf(LF);
          if (lf < 0) {
            // Keep the tail, which may hold the start of a literal marker split across chunks.
            this.#consume(Math.max(0, this.#buffer.length - MAX_MARKER_LENGTH));
            return { kind: 'needMore' };
          }
          const line = stripCr(this.#buffer.subarray(0, lf));
          const marker = findLiteralMarker(line);
          this.#consume(lf + 1);
          if (marker !== null && marker.nonSynchronizing) {
            this.#state = { kind: 'skipLiteral', remaining: marker.size };
          } else {
            // A synchronizing literal here is never sent: the client waits for `+` and sees the
            // tagged response instead, so the command ends with this line.
            this.#state = { kind: 'line' };
          }
          break;
        }
      }
    }
  }

  /** Returns an event, or undefined when a literal state was entered and reading goes on. */
  #readLine(): ReceiverEvent | undefined {
    const lf = this.#buffer.indexOf(LF, this.#scanned);
    if (lf < 0) {
      this.#scanned = this.#buffer.length;
      if (this.#buffer.length > this.#limits.maxLineLength + 1) {
        const tag = this.#lines.length > 0 ? tagOf(this.#lines[0]!) : tagOf(this.#buffer);
        this.#resetCommand();
        this.#consume(this.#buffer.length);
        this.#state = { kind: 'skipLine' };
        return {
          kind: 'error',
          error: {
            code: 'lineTooLong',
            tag,
            message: `line longer than ${this.#limits.maxLineLength} octets`,
            recovery: 'discardLine',
            limit: this.#limits.maxLineLength,
          },
        };
      }
      return { kind: 'needMore' };
    }
    const line = Buffer.from(stripCr(this.#buffer.subarray(0, lf)));
    this.#consume(lf + 1);
    if (line.length > this.#limits.maxLineLength) {
      const tag = this.#lines.length > 0 ? tagOf(this.#lines[0]!) : tagOf(line);
      this.#resetCommand();
      return {
        kind: 'error',
        error: {
          code: 'lineTooLong',
          tag,
          message: `line longer than ${this.#limits.maxLineLength} octets`,
          recovery: 'resume',
          limit: this.#limits.maxLineLength,
        },
      };
    }
    this.#lines.push(line);
    this.#commandSize += line.length + 2;
    const tag = tagOf(this.#lines[0]!);
    const marker = findLiteralMarker(line);
    if (marker === null) {
      if (this.#commandSize > this.#limits.maxCommandSize) return this.#commandTooLarge(tag);
      const command: RawCommand = { lines: this.#lines, literals: this.#literals };
      this.#resetCommand();
      return { kind: 'command', command };
    }
    if (marker.size > this.#limits.maxLiteralSize) {
      return this.#literalTooLarge(tag, marker, this.#limits.maxLiteralSize, 'literalTooLarge');
    }
    this.#commandSize += marker.size;
    if (this.#commandSize > this.#limits.maxCommandSize) {
      return this.#literalTooLarge(tag, marker, this.#limits.maxCommandSize, 'commandTooLarge');
    }
    this.#state = { kind: 'literal', marker };
    if (!marker.nonSynchronizing) return { kind: 'continue', size: marker.size, tag };
    return undefined;
  }

  #literalTooLarge(
    tag: string | null,
    marker: LiteralMarker,
    limit: number,
    code: ReceiverErrorCode,
  ): ReceiverEvent {
    this.#resetCommand();
    // RFC 7888 §4: the client sends a non-synchronizing literal without waiting, so its octets
    // are on their way; skip them (and the rest of the command). A synchronizing literal is
    // never sent once the server refuses it, so the next line is a new command.
    if (marker.nonSynchronizing) this.#state = { kind: 'skipLiteral', remaining: marker.size };
    return {
      kind: 'error',
      error: {
        code,
        tag,
        message:
          code === 'literalTooLarge'
            ? `literal of ${marker.size} octets is larger than ${limit}`
            : `command is larger than ${limit} octets`,
        recovery: marker.nonSynchronizing ? 'skipping' : 'resume',
        size: marker.size,
        limit,
      },
    };
  }

  #commandTooLarge(tag: string | null): ReceiverEvent {
    this.#resetCommand();
    return {
      kind: 'error',
      error: {
        code: 'commandTooLarge',
        tag,
        message: `command is larger than ${this.#limits.maxCommandSize} octets`,
        recovery: 'resume',
        limit: this.#limits.maxCommandSize,
      },
    };
  }

  #consume(n: number): void {
    this.#buffer = n >= this.#buffer.length ? Buffer.alloc(0) : this.#buffer.subarray(n);
    this.#scanned = 0;
  }

  #resetCommand(): void {
    this.#lines = [];
    this.#literals = [];
    this.#commandSize = 0;
    this.#state = { kind: 'line' };
  }
}

function stripCr(line: Buffer): Buffer {
  return line.length > 0 && line[line.length - 1] === CR ? line.subarray(0, line.length - 1) : line;
}

const MAX_LITERAL_DIGITS = 15; // below 2^53, so the size is an exact number
/** `~{` + digits + `+}` + CR */
const MAX_MARKER_LENGTH = MAX_LITERAL_DIGITS + 5;

/**
 * The literal announced at the end of a line (RFC 9051 §9 `literal`, RFC 7888 `literal-nonsync`,
 * RFC 3516 `literal8`), or null. A `{` inside a quoted string does not count.
 */
export function findLiteralMarker(line: Uint8Array): LiteralMarker | null {
  const n = line.length;
  if (n < 3 || line[n - 1] !== 0x7d /* } */) return null;
  let i = n - 2;
  let nonSynchronizing = false;
  if (line[i] === 0x2b /* + */) {
    nonSynchronizing = true;
    i--;
  }
  const digitsEnd = i + 1;
  while (i >= 0 && line[i]! >= 0x30 && line[i]! <= 0x39) i--;
  const digits = digitsEnd - (i + 1);
  if (digits === 0 || digits > MAX_LITERAL_DIGITS || i < 0 || line[i] !== 0x7b /* { */) return null;
  const open = i;
  if (endsInsideQuoted(line, open)) return null;
  let size = 0;
  for (let k = open + 1; k < digitsEnd; k++) size = size * 10 + (line[k]! - 0x30);
  const binary = open > 0 && line[open - 1] === 0x7e; /* ~ */
  return { size, binary, nonSynchronizing };
}

/** Whether position `end` of the line lies inside a quoted string (RFC 9051 §4.3 `quoted`). */
function endsInsideQuoted(line: Uint8Array, end: number): boolean {
  let inside = false;
  for (let i = 0; i < end; i++) {
    const c = line[i];
    if (inside && c === 0x5c /* \ */) i++;
    else if (c === 0x22 /* " */) inside = !inside;
  }
  return inside;
}

/** The tag of a command line when it starts with a valid one (RFC 9051 §9 `tag`). */
export function tagOf(line: Uint8Array): string | null {
  let i = 0;
  while (i < line.length && i < 256 && isTagChar(line[i]!)) i++;
  if (i === 0 || (i < line.length && line[i] !== 0x20)) return null;
  return Buffer.from(line.subarray(0, i)).toString('latin1');
}

/** tag = 1*<any ASTRING-CHAR except "+"> */
export function isTagChar(c: number): boolean {
  return isAstringChar(c) && c !== 0x2b;
}

/** ATOM-CHAR: any CHAR except atom-specials (RFC 9051 §9). */
export function isAtomChar(c: number): boolean {
  if (c <= 0x20 || c >= 0x7f) return false;
  switch (c) {
    case 0x28: // (
    case 0x29: // )
    case 0x7b: // {
    case 0x25: // % list-wildcards
    case 0x2a: // *
    case 0x22: // " quoted-specials
    case 0x5c: // \
    case 0x5d: // ] resp-specials
      return false;
    default:
      return true;
  }
}

/** ASTRING-CHAR = ATOM-CHAR / resp-specials */
export function isAstringChar(c: number): boolean {
  return isAtomChar(c) || c === 0x5d;
}
