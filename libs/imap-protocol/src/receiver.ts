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
  /**
   * Send `+ <text>\r\n` now: the client waits for it before sending `size` octets (RFC 9051
   * §7.5). `partial` is the command so far, so the server may refuse instead (e.g. APPEND to a
   * missing mailbox or over quota): it then sends the tagged response and calls `refuseLiteral()`.
   */
  | {
      readonly kind: 'continue';
      readonly size: number;
      readonly tag: string | null;
      readonly partial: RawCommand;
    }
  | { readonly kind: 'error'; readonly error: ReceiverError }
  | { readonly kind: 'needMore' };

interface LiteralMarker {
  readonly size: number;
  readonly binary: boolean;
  readonly nonSynchronizing: boolean;
}

type State =
  | { readonly kind: 'line' }
  /** Collecting the octets of an announced literal. */
  | { readonly kind: 'literal'; readonly marker: LiteralMarker; readonly parts: Buffer[]; received: number }
  /** Discarding `remaining` literal octets, then lines until the command ends. */
  | { readonly kind: 'skipLiteral'; remaining: number }
  /** Discarding a line; `tail` keeps its last octets to see whether it announces a literal. */
  | { readonly kind: 'skipLine'; tail: Buffer };

const LF = 0x0a;
const CR = 0x0d;

const MAX_LITERAL_DIGITS = 15; // below 2^53, so the size is an exact number
/** `~{` + digits + `+}` + CR */
const MAX_MARKER_LENGTH = MAX_LITERAL_DIGITS + 5;

export class CommandReceiver {
  #limits: ReceiverLimits;
  /**
   * Input not yet looked at. Chunks are kept as pushed (no concatenation per push), so a large
   * literal arriving in many small chunks is copied once, when it is complete.
   */
  #queue: Buffer[] = [];
  #queued = 0;
  /** The pieces of the current, incomplete line. */
  #lineParts: Buffer[] = [];
  #lineLength = 0;
  #state: State = { kind: 'line' };
  #lines: Buffer[] = [];
  #literals: ReceivedLiteral[] = [];
  #commandSize = 0;

  constructor(limits: Partial<ReceiverLimits> = {}) {
    this.#limits = { ...DEFAULT_RECEIVER_LIMITS, ...limits };
  }

  /**
   * Changes the limits for the commands that start from now on (a server accepts far less
   * before authentication than after, RFC 7888 §4 / RFC 9051 §2.2.1).
   */
  setLimits(limits: Partial<ReceiverLimits>): void {
    this.#limits = { ...this.#limits, ...limits };
  }

  get limits(): ReceiverLimits {
    return this.#limits;
  }

  /** Appends bytes read from the connection. Call `next()` until it answers `needMore`. */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    this.#queue.push(bytes);
    this.#queued += bytes.length;
  }

  /** Octets held: unread input and what has been received of the current command. */
  get buffered(): number {
    let held = this.#queued + this.#lineLength;
    if (this.#state.kind === 'literal') held += this.#state.received;
    for (const line of this.#lines) held += line.length;
    for (const literal of this.#literals) held += literal.data.length;
    return held;
  }

  /** True in the middle of a command (e.g. to tell a clean end of stream from a truncated one). */
  get inCommand(): boolean {
    return this.#lines.length > 0 || this.#state.kind !== 'line' || this.#lineLength > 0 || this.#queued > 0;
  }

  next(): ReceiverEvent {
    for (;;) {
      const head = this.#queue[0];
      if (head === undefined) return { kind: 'needMore' };
      const state = this.#state;
      switch (state.kind) {
        case 'line': {
          const event = this.#readLine(head);
          if (event !== undefined) return event;
          break;
        }
        case 'literal': {
          const take = Math.min(state.marker.size - state.received, head.length);
          state.parts.push(this.#take(take));
          state.received += take;
          if (state.received === state.marker.size) {
            // One copy, which also releases the (possibly large) connection chunks.
            const data = Buffer.concat(state.parts, state.marker.size);
            this.#literals.push({
              data,
              binary: state.marker.binary,
              nonSynchronizing: state.marker.nonSynchronizing,
            });
            this.#state = { kind: 'line' };
          }
          break;
        }
        case 'skipLiteral': {
          const take = Math.min(state.remaining, head.length);
          this.#take(take);
          state.remaining -= take;
          if (state.remaining === 0) this.#state = { kind: 'skipLine', tail: Buffer.alloc(0) };
          break;
        }
        case 'skipLine': {
          const lf = head.indexOf(LF);
          const piece = this.#take(lf < 0 ? head.length : lf + 1);
          const joined = Buffer.concat([state.tail, lf < 0 ? piece : piece.subarray(0, lf)]);
          state.tail = joined.subarray(Math.max(0, joined.length - MAX_MARKER_LENGTH));
          if (lf < 0) break;
          const marker = findLiteralMarker(stripCr(state.tail));
          // A synchronizing literal announced here is never sent: the client waits for `+` and
          // gets the tagged response instead, so the command ends with this line.
          this.#state =
            marker !== null && marker.nonSynchronizing
              ? { kind: 'skipLiteral', remaining: marker.size }
              : { kind: 'line' };
          break;
        }
      }
    }
  }

  /**
   * Drops the command whose synchronizing literal was just announced (after a `continue` event),
   * when the server answers with a tagged NO or BAD instead of `+`: the client then does not
   * send the literal (RFC 9051 §7.5), so the next line is a new command.
   */
  refuseLiteral(): void {
    const state = this.#state;
    if (state.kind !== 'literal' || state.marker.nonSynchronizing || state.received > 0) {
      throw new TypeError('refuseLiteral() is only valid right after a continue event');
    }
    this.#resetCommand();
  }

  /**
   * The literal whose octets are being collected now, or null. The same object is returned for
   * as long as the same literal is in progress, so a server can tell literals apart (e.g. to
   * account for the memory each will take before more of it is read).
   */
  get pendingLiteral(): {
    readonly size: number;
    readonly received: number;
    readonly nonSynchronizing: boolean;
    readonly marker: object;
    /** The command's tag, when its first line starts with a readable one. */
    readonly tag: string | null;
  } | null {
    const state = this.#state;
    if (state.kind !== 'literal') return null;
    return {
      size: state.marker.size,
      received: state.received,
      nonSynchronizing: state.marker.nonSynchronizing,
      marker: state.marker,
      tag: this.#lines[0] === undefined ? null : tagOf(this.#lines[0]),
    };
  }

  /**
   * Gives up the command whose literal is in progress: the octets received are dropped, the rest
   * of the literal is counted off without being kept, then the rest of the command is discarded.
   * For a literal the client sends anyway (non-synchronizing, or already invited with `+`).
   */
  skipLiteral(): void {
    const state = this.#state;
    if (state.kind !== 'literal') throw new TypeError('skipLiteral() needs a literal in progress');
    const remaining = state.marker.size - state.received;
    this.#resetCommand();
    this.#state =
      remaining > 0 ? { kind: 'skipLiteral', remaining } : { kind: 'skipLine', tail: Buffer.alloc(0) };
  }

  /**
   * Removes and returns the input not yet part of a command (a proxy that stops parsing after
   * LOGIN forwards it as it came). Only between commands.
   */
  takeUnread(): Buffer {
    if (this.#state.kind !== 'line' || this.#lines.length > 0) {
      throw new TypeError('takeUnread() needs to be between commands');
    }
    const unread = Buffer.concat([...this.#lineParts, ...this.#queue]);
    this.#queue = [];
    this.#queued = 0;
    this.#lineParts = [];
    this.#lineLength = 0;
    return unread;
  }

  /** Removes and returns the first n octets of the head chunk (n <= its length). */
  #take(n: number): Buffer {
    const head = this.#queue[0]!;
    this.#queued -= n;
    if (n === head.length) {
      this.#queue.shift();
      return head;
    }
    this.#queue[0] = head.subarray(n);
    return head.subarray(0, n);
  }

  /** Moves input into the current line; an event when the line ended or broke a limit. */
  #readLine(head: Buffer): ReceiverEvent | undefined {
    const lf = head.indexOf(LF);
    if (lf < 0) {
      this.#lineParts.push(this.#take(head.length));
      this.#lineLength += head.length;
      // + 1 leaves room for the CR of a line that is exactly at the limit.
      if (this.#lineLength <= this.#limits.maxLineLength + 1) return undefined;
      const tag = tagOf(this.#lines[0] ?? Buffer.concat(this.#lineParts));
      const parts = this.#lineParts;
      this.#resetCommand();
      const joined = Buffer.concat(parts.slice(-2));
      this.#state = {
        kind: 'skipLine',
        tail: joined.subarray(Math.max(0, joined.length - MAX_MARKER_LENGTH)),
      };
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
    this.#lineParts.push(this.#take(lf + 1).subarray(0, lf));
    const line = stripCr(Buffer.concat(this.#lineParts));
    this.#lineParts = [];
    this.#lineLength = 0;
    if (line.length > this.#limits.maxLineLength) {
      const tag = tagOf(this.#lines[0] ?? line);
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
    this.#state = { kind: 'literal', marker, parts: [], received: 0 };
    // RFC 9051 §7.5: the client sends a synchronizing literal only after the server's "+".
    if (!marker.nonSynchronizing) {
      return {
        kind: 'continue',
        size: marker.size,
        tag,
        partial: { lines: [...this.#lines], literals: [...this.#literals] },
      };
    }
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

  #resetCommand(): void {
    this.#lines = [];
    this.#literals = [];
    this.#lineParts = [];
    this.#lineLength = 0;
    this.#commandSize = 0;
    this.#state = { kind: 'line' };
  }
}

function stripCr(line: Buffer): Buffer {
  return line.length > 0 && line[line.length - 1] === CR ? line.subarray(0, line.length - 1) : line;
}

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
