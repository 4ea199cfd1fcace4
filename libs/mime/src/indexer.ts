/**
 * Streaming MIME indexer: RFC 5322 message → ENVELOPE, BODYSTRUCTURE (RFC 9051 §7.5.2) with byte
 * offsets for every part (for RFC 9051 §6.4.5 section fetches), and searchable header fields.
 *
 * Multipart structure follows RFC 2046 §5.1.1: a delimiter line is `--boundary` followed only by
 * transport padding (linear whitespace); a close delimiter is `--boundary--`. The line break
 * before a delimiter belongs to the delimiter, not to the part before it. Nested message/rfc822
 * (RFC 2046 §5.2.1) is parsed as a message of its own.
 *
 * Memory: the indexer holds header blocks (bounded by `maxHeaderBytes` each, parsed and dropped when
 * the block ends), a bounded prefix of the current line (enough to recognise a delimiter), and a few
 * counters per part. Bodies are never retained, so a 50 MB attachment costs no more than a small one.
 *
 * Malformed input never throws; see README.md for the choices made (missing final boundary,
 * unusable multiparts, headers without a blank line, limits on depth and part count).
 */

import type { BodyPart, Envelope } from './types.js';
import { CR, HTAB, LF, SP } from './bytes.js';
import { createCharsetDecoder, type CharsetDecoder } from './charset.js';
import { buildEnvelope, buildSearchableHeaders, type SearchableHeaders } from './envelope.js';
import { parseHeaderBlock, type HeaderField } from './header.js';
import { paramValue } from './mime-params.js';
import { asTextPlain, partInfoFromFields, type PartInfo } from './part-info.js';
import { createTransferDecoder, type TransferDecoder } from './transfer-encoding.js';

/** What {@link MimeIndexer.end} returns: everything storage keeps about a message. */
export interface IndexResult {
  readonly envelope: Envelope;
  readonly bodystructure: BodyPart;
  /** Octets of the whole message (RFC822.SIZE). */
  readonly size: number;
  readonly headers: SearchableHeaders;
  /** Decoded text of the text/plain and text/html parts, when `searchTextBytes` > 0. */
  readonly textForSearch?: string;
}

export interface IndexOptions {
  /** Nesting depth beyond which multiparts and message/rfc822 are not opened. Default 64. */
  readonly maxDepth?: number;
  /** Parts (all levels) beyond which further delimiters are ordinary body lines. Default 10 000. */
  readonly maxParts?: number;
  /** Bytes kept per header block; the rest of an oversized block is skipped. Default 1 MiB. */
  readonly maxHeaderBytes?: number;
  /** Raw body bytes of text parts decoded into `textForSearch`; 0 (default) disables it. */
  readonly searchTextBytes?: number;
}

/** Thrown when the indexer is used after `end()`: a programming error, not bad input. */
export class MimeIndexerStateError extends Error {
  override readonly name = 'MimeIndexerStateError';
}

/** Line prefix kept in bodies: enough for `--` + a 70-octet boundary (RFC 2046 §5.1.1) + padding. */
const LINE_PREFIX = 512;
const DASH = 0x2d;

type EntityMode = 'leaf' | 'multipart' | 'message';

interface SearchCollector {
  /** Null for the identity encodings (7bit, 8bit, binary): lines are taken as they are. */
  readonly transfer: TransferDecoder | null;
  readonly charset: CharsetDecoder;
  readonly html: boolean;
  text: string;
  /**
   * Transfer-decoded bytes not yet charset-decoded: lines are gathered here and decoded in large
   * blocks, since a decode (and a string concatenation) per line costs more than the line.
   */
  pending: Uint8Array;
  pendingLen: number;
}

/** Octets of transfer-decoded text gathered before they are charset-decoded. */
const SEARCH_DECODE_BLOCK = 64 * 1024;

interface Entity {
  readonly depth: number;
  /** Top level or encapsulated by message/rfc822: has an envelope. */
  readonly isMessage: boolean;
  /** Child of multipart/digest: default type message/rfc822 (RFC 2046 §5.1.5). */
  readonly inDigest: boolean;
  readonly headerStart: number;
  /** Header bytes collected so far (one growing buffer); null once the header block has ended. */
  header: { buf: Uint8Array; bytes: number } | null;
  bodyStart: number;
  lfAtBodyStart: number;
  bodyEnd: number;
  lines: number;
  info: PartInfo | null;
  fields: HeaderField[] | null;
  envelope: Envelope | null;
  mode: EntityMode;
  /** Delimiter byte strings (`boundary` as UTF-8 and, if different, as Latin-1). */
  boundaries: Uint8Array[];
  epilogue: boolean;
  children: Entity[];
  inner: Entity | null;
  search: SearchCollector | null;
}

/** Where a closed entity's body ends. */
interface EndInfo {
  readonly raw: number;
  readonly lfAt: number;
  readonly endsWithLF: boolean;
  /** Where a still-open header block ends. */
  readonly headerEnd: number;
  readonly lfAtHeaderEnd: number;
}

function newEntity(depth: number, isMessage: boolean, inDigest: boolean, headerStart: number): Entity {
  return {
    depth,
    isMessage,
    inDigest,
    headerStart,
    header: { buf: new Uint8Array(0), bytes: 0 },
    bodyStart: headerStart,
    lfAtBodyStart: 0,
    bodyEnd: headerStart,
    lines: 0,
    info: null,
    fields: null,
    envelope: null,
    mode: 'leaf',
    boundaries: [],
    epilogue: false,
    children: [],
    inner: null,
    search: null,
  };
}

const IDENTITY_ENCODINGS = new Set(['7BIT', '8BIT', 'BINARY']);

const LF_LINE = Uint8Array.of(LF);

function appendPending(s: SearchCollector, bytes: Uint8Array): void {
  const need = s.pendingLen + bytes.length;
  if (need > s.pending.length) {
    const grown = new Uint8Array(Math.max(need, s.pending.length * 2));
    grown.set(s.pending.subarray(0, s.pendingLen));
    s.pending = grown;
  }
  s.pending.set(bytes, s.pendingLen);
  s.pendingLen = need;
}

/**
 * Feed a message with `write(chunk)` in any chunking, then call `end()`. The result does not
 * depend on how the input was split.
 */
export class MimeIndexer {
  private readonly maxDepth: number;
  private readonly maxParts: number;
  private readonly maxHeaderBytes: number;
  private searchBudget: number;
  private readonly searchEnabled: boolean;
  private readonly searchTexts: string[] = [];

  private readonly root: Entity;
  private readonly stack: Entity[];
  private partCount = 1;
  private ended = false;

  private lineStart = 0;
  private lineLen = 0;
  private lineLast = -1;
  private keep: Uint8Array = new Uint8Array(LINE_PREFIX);
  private keepLen = 0;
  private keepCap = LINE_PREFIX;
  /** Bytes of the current line beyond `keepCap` were all whitespace. */
  private tailWs = true;
  private lfCount = 0;
  private lastByte = -1;
  private prevLineStart = 0;
  private prevContentLen = 0;
  private prevEolLen = 0;

  constructor(options: IndexOptions = {}) {
    this.maxDepth = options.maxDepth ?? 64;
    this.maxParts = options.maxParts ?? 10_000;
    this.maxHeaderBytes = options.maxHeaderBytes ?? 1 << 20;
    this.searchBudget = options.searchTextBytes ?? 0;
    this.searchEnabled = this.searchBudget > 0;
    this.root = newEntity(0, true, false, 0);
    this.stack = [this.root];
    this.keepCap = this.capForNextLine();
  }

  /** Feed the next bytes of the message. */
  write(chunk: Uint8Array): void {
    if (this.ended) throw new MimeIndexerStateError('write() after end()');
    const n = chunk.length;
    if (n === 0) return;
    let i = 0;
    while (i < n) {
      const lf = chunk.indexOf(LF, i);
      const end = lf < 0 ? n : lf;
      this.appendToLine(chunk, i, end);
      if (lf < 0) break;
      this.endLine(true);
      i = lf + 1;
    }
    this.lastByte = chunk[n - 1] as number;
  }

  /** Finish the message and return its index. */
  end(): IndexResult {
    if (this.ended) throw new MimeIndexerStateError('end() called twice');
    this.ended = true;
    if (this.lineLen > 0) this.endLine(false);
    const total = this.lineStart;
    const endInfo: EndInfo = {
      raw: total,
      lfAt: this.lfCount,
      endsWithLF: this.lastByte === LF,
      headerEnd: total,
      lfAtHeaderEnd: this.lfCount,
    };
    while (this.stack.length > 0) this.close(this.stack.pop() as Entity, endInfo);
    const root = this.root;
    const envelope = root.envelope as Envelope;
    const result: IndexResult = {
      envelope,
      bodystructure: this.build(root, ''),
      size: total,
      headers: buildSearchableHeaders(root.fields ?? [], envelope),
    };
    return this.searchEnabled ? { ...result, textForSearch: this.searchTexts.join('\n') } : result;
  }

  // ---- line assembly ------------------------------------------------------------------------

  private appendToLine(chunk: Uint8Array, from: number, to: number): void {
    const len = to - from;
    if (len === 0) return;
    const room = this.keepCap - this.keepLen;
    const take = Math.min(room, len);
    if (take > 0) {
      if (this.keepLen + take > this.keep.length) {
        const grown = new Uint8Array(
          Math.min(this.keepCap, Math.max(this.keep.length * 2, this.keepLen + take)),
        );
        grown.set(this.keep.subarray(0, this.keepLen));
        this.keep = grown;
      }
      this.keep.set(chunk.subarray(from, from + take), this.keepLen);
      this.keepLen += take;
    }
    if (len > take && this.tailWs) {
      for (let k = from + take; k < to; k++) {
        const c = chunk[k];
        if (c !== SP && c !== HTAB && c !== CR) {
          this.tailWs = false;
          break;
        }
      }
    }
    this.lineLen += len;
    this.lineLast = chunk[to - 1] as number;
  }

  private endLine(hasEol: boolean): void {
    const crlf = hasEol && this.lineLen > 0 && this.lineLast === CR;
    const contentLen = this.lineLen - (crlf ? 1 : 0);
    const eolLen = hasEol ? (crlf ? 2 : 1) : 0;
    const keptLen = Math.min(this.keepLen, contentLen);
    this.handleLine(this.keep.subarray(0, keptLen), contentLen, eolLen);
    this.prevLineStart = this.lineStart;
    this.prevContentLen = contentLen;
    this.prevEolLen = eolLen;
    if (hasEol) this.lfCount++;
    this.lineStart += this.lineLen + (hasEol ? 1 : 0);
    this.lineLen = 0;
    this.lineLast = -1;
    this.keepLen = 0;
    this.tailWs = true;
    this.keepCap = this.capForNextLine();
    if (this.keep.length > LINE_PREFIX * 4 && this.keepCap <= LINE_PREFIX)
      this.keep = new Uint8Array(LINE_PREFIX);
  }

  private capForNextLine(): number {
    const top = this.stack[this.stack.length - 1];
    if (top === undefined) return LINE_PREFIX;
    if (top.header !== null) return Math.max(LINE_PREFIX, this.maxHeaderBytes - top.header.bytes);
    if (top.search !== null && this.searchBudget > 0) return Math.max(LINE_PREFIX, this.searchBudget);
    return LINE_PREFIX;
  }

  // ---- line handling ------------------------------------------------------------------------

  private handleLine(kept: Uint8Array, contentLen: number, eolLen: number): void {
    const truncated = contentLen > kept.length;
    if (kept.length >= 2 && kept[0] === DASH && kept[1] === DASH && this.delimiter(kept, truncated, eolLen))
      return;
    const top = this.stack[this.stack.length - 1];
    if (top === undefined) return;
    if (top.header !== null) {
      if (contentLen === 0) {
        // The blank line ends the header block (RFC 5322 §2.1, RFC 2045 §3).
        this.finishHeader(top, this.lineStart + this.lineLen + 1, this.lfCount + 1, true);
        return;
      }
      const h = top.header;
      if (h.bytes < this.maxHeaderBytes) {
        const need = h.bytes + kept.length + 1;
        if (need > h.buf.length) {
          const grown = new Uint8Array(Math.max(need, h.buf.length * 2, 256));
          grown.set(h.buf.subarray(0, h.bytes));
          h.buf = grown;
        }
        h.buf.set(kept, h.bytes);
        h.buf[need - 1] = LF;
        h.bytes = need;
      }
      return;
    }
    if (top.search !== null && this.searchBudget > 0) this.collectSearchText(top.search, kept, eolLen);
  }

  /** Recognise a delimiter line of an enclosing multipart (innermost first); true if handled. */
  private delimiter(kept: Uint8Array, truncated: boolean, eolLen: number): boolean {
    for (let d = this.stack.length - 1; d >= 0; d--) {
      const mp = this.stack[d] as Entity;
      if (mp.mode !== 'multipart' || mp.epilogue || mp.header !== null) continue;
      for (const b of mp.boundaries) {
        const kind = matchDelimiter(kept, truncated && !this.tailWs, b);
        if (kind === null) continue;
        // An open delimiter cut off by the end of input opens nothing: treat it as a close.
        const open = kind === 'open' && eolLen > 0;
        // Past the part limit an open delimiter is an ordinary body line (memory stays bounded).
        if (open && this.partCount >= this.maxParts) return false;
        this.closeAbove(d);
        if (open) {
          const child = newEntity(
            mp.depth + 1,
            false,
            mp.info?.subtype === 'digest',
            this.lineStart + this.lineLen + 1,
          );
          this.partCount++;
          mp.children.push(child);
          this.stack.push(child);
        } else {
          mp.epilogue = true; // RFC 2046 §5.1.1: what follows the close delimiter is the epilogue
        }
        return true;
      }
    }
    return false;
  }

  /** Close every entity above stack index `d`: their bodies end before this line's line break. */
  private closeAbove(d: number): void {
    const end: EndInfo = {
      raw: this.lineStart - this.prevEolLen,
      lfAt: this.lfCount - (this.prevEolLen > 0 ? 1 : 0),
      endsWithLF: this.prevContentLen === 0 && this.prevLineStart > 0,
      headerEnd: this.lineStart,
      lfAtHeaderEnd: this.lfCount,
    };
    while (this.stack.length > d + 1) this.close(this.stack.pop() as Entity, end);
  }

  private close(e: Entity, end: EndInfo): void {
    if (e.header !== null) this.finishHeader(e, end.headerEnd, end.lfAtHeaderEnd, false);
    e.bodyEnd = Math.max(e.bodyStart, end.raw);
    const size = e.bodyEnd - e.bodyStart;
    // Lines of the body: its line breaks, plus a last line that has none (RFC 9051 body-fld-lines).
    e.lines = size === 0 ? 0 : end.lfAt - e.lfAtBodyStart + (end.endsWithLF ? 0 : 1);
    if (e.search !== null) {
      const s = e.search;
      if (s.transfer !== null) appendPending(s, s.transfer.final());
      s.text += s.charset.write(s.pending.subarray(0, s.pendingLen)) + s.charset.end();
      s.pendingLen = 0;
      const text = (s.html ? htmlToText(s.text) : s.text).trim();
      if (text !== '') this.searchTexts.push(text);
      e.search = null;
    }
    if (e.inner !== null && e.inner.header !== null) this.close(e.inner, end);
  }

  private finishHeader(e: Entity, bodyStart: number, lfAtBodyStart: number, openBody: boolean): void {
    const block = e.header === null ? new Uint8Array(0) : e.header.buf.subarray(0, e.header.bytes);
    e.header = null;
    const fields = parseHeaderBlock(block);
    const info = partInfoFromFields(fields, e.inDigest);
    e.info = info;
    e.bodyStart = bodyStart;
    e.lfAtBodyStart = lfAtBodyStart;
    if (e.isMessage) e.envelope = buildEnvelope(fields);
    if (e === this.root) e.fields = fields;
    const canNest = e.depth < this.maxDepth;
    if (info.type === 'multipart') {
      const boundary = paramValue(info.params, 'boundary');
      if (boundary !== null && boundary !== '' && canNest) {
        e.mode = 'multipart';
        const utf8 = Buffer.from(boundary, 'utf8');
        e.boundaries = [utf8];
        // The boundary came from header bytes decoded as UTF-8 or Latin-1; match either form.
        if (/[\u0080-\u00ff]/.test(boundary) && [...boundary].every((c) => c.charCodeAt(0) <= 0xff)) {
          e.boundaries.push(Buffer.from(boundary, 'latin1'));
        }
      }
    } else if (
      info.type === 'message' &&
      (info.subtype === 'rfc822' || info.subtype === 'global') &&
      // RFC 2046 §5.2.1: message/rfc822 may only be 7bit, 8bit or binary; an encoded one is opaque.
      IDENTITY_ENCODINGS.has(info.encoding) &&
      canNest
    ) {
      e.mode = 'message';
      const inner = newEntity(e.depth + 1, true, false, bodyStart);
      inner.lfAtBodyStart = lfAtBodyStart;
      e.inner = inner;
      this.partCount++;
      // When the header block ended without a body (boundary or end of input), `close` closes
      // the still-empty inner message right after this one.
      if (openBody) this.stack.push(inner);
    } else if (openBody && this.searchEnabled && info.type === 'text' && isSearchableText(info)) {
      const transfer = createTransferDecoder(info.encoding);
      if (transfer !== null) {
        e.search = {
          transfer: IDENTITY_ENCODINGS.has(info.encoding) ? null : transfer,
          charset: createCharsetDecoder(paramValue(info.params, 'charset')),
          html: info.subtype === 'html',
          text: '',
          pending: new Uint8Array(1024),
          pendingLen: 0,
        };
      }
    }
  }

  private collectSearchText(s: SearchCollector, kept: Uint8Array, eolLen: number): void {
    const length = kept.length + (eolLen > 0 ? 1 : 0);
    this.searchBudget -= length;
    if (s.transfer === null) {
      appendPending(s, kept);
      if (eolLen > 0) appendPending(s, LF_LINE);
    } else {
      // The line break goes with its line: quoted-printable's soft line breaks need it (RFC 2045 §6.7).
      const line = new Uint8Array(length);
      line.set(kept);
      if (eolLen > 0) line[kept.length] = LF;
      appendPending(s, s.transfer.update(line));
    }
    if (s.pendingLen >= SEARCH_DECODE_BLOCK) {
      s.text += s.charset.write(s.pending.subarray(0, s.pendingLen));
      s.pendingLen = 0;
    }
  }

  // ---- result -------------------------------------------------------------------------------

  private build(e: Entity, partId: string): BodyPart {
    const raw = e.info as PartInfo;
    const offsets = { headerStart: e.headerStart, bodyStart: e.bodyStart, bodyEnd: e.bodyEnd };
    if (e.mode === 'multipart' && e.children.length > 0) {
      return {
        kind: 'multipart',
        partId,
        subtype: raw.subtype,
        params: raw.params,
        disposition: raw.disposition,
        language: raw.language,
        location: raw.location,
        offsets,
        parts: e.children.map((c, i) => this.build(c, partId === '' ? `${i + 1}` : `${partId}.${i + 1}`)),
      };
    }
    // A multipart that yielded no parts (no boundary parameter, boundary never seen, too deep) is
    // reported as text/plain, the RFC 2045 §5.2 default for an unusable Content-Type.
    const info = raw.type === 'multipart' ? asTextPlain(raw) : raw;
    const single = {
      partId,
      type: info.type,
      subtype: info.subtype,
      params: info.params,
      disposition: info.disposition,
      language: info.language,
      location: info.location,
      offsets,
      id: info.id,
      description: info.description,
      encoding: info.encoding,
      size: e.bodyEnd - e.bodyStart,
      md5: info.md5,
    };
    if (e.mode === 'message' && e.inner !== null) {
      // The encapsulated message's parts are numbered under this part (RFC 9051 §6.4.5); the top
      // level, itself part 1 when not multipart, numbers them 1.1, 1.2, …
      const inner = this.build(e.inner, partId === '' ? '1' : partId);
      return {
        kind: 'message',
        ...single,
        envelope: e.inner.envelope as Envelope,
        body: inner,
        lines: e.lines,
      };
    }
    if (info.type === 'text') return { kind: 'text', ...single, lines: e.lines };
    return { kind: 'basic', ...single };
  }
}

/** Match `--boundary` (open) or `--boundary--` (close), each followed only by transport padding. */
function matchDelimiter(
  kept: Uint8Array,
  tailHasText: boolean,
  boundary: Uint8Array,
): 'open' | 'close' | null {
  const bl = boundary.length;
  if (kept.length < 2 + bl) return null;
  for (let k = 0; k < bl; k++) if (kept[2 + k] !== boundary[k]) return null;
  let after = 2 + bl;
  const close = kept[after] === DASH && kept[after + 1] === DASH;
  if (close) after += 2;
  if (tailHasText) return null;
  for (let k = after; k < kept.length; k++) {
    const c = kept[k];
    if (c !== SP && c !== HTAB) return null; // transport-padding = *LWSP-char (RFC 2046 §5.1.1)
  }
  return close ? 'close' : 'open';
}

function isSearchableText(info: PartInfo): boolean {
  if (info.disposition?.type === 'attachment') return false;
  return info.subtype === 'plain' || info.subtype === 'html';
}

/** Crude HTML to text for search: drop scripts, styles and tags, decode a few entities. */
function htmlToText(html: string): string {
  return html
    .replace(/<(script|style)\b[^]*?<\/\1\s*>/gi, ' ')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&nbsp;/gi, ' ')
    .replace(/&lt;/gi, '<')
    .replace(/&gt;/gi, '>')
    .replace(/&quot;/gi, '"')
    .replace(/&#(\d{1,6});/g, (_m, d: string) => String.fromCodePoint(Math.min(Number(d), 0x10ffff)))
    .replace(/&amp;/gi, '&')
    .replace(/\s+/g, ' ')
    .trim();
}

/** Index a whole message held in memory. */
export function indexMessage(message: Uint8Array, options?: IndexOptions): IndexResult {
  const indexer = new MimeIndexer(options);
  indexer.write(message);
  return indexer.end();
}
