/**
 * IMAP section specifications (RFC 9051 §6.4.5 FETCH `BODY[<section>]<<partial>>`, `BINARY[...]`
 * RFC 3516) resolved against a BODYSTRUCTURE to byte ranges of the raw message.
 *
 * Part numbering (RFC 9051 §6.4.5): the parts of a multipart are numbered 1, 2, …; a non-multipart
 * message (or encapsulated message) has only part 1, its body; the parts of a message/rfc822 part
 * N are numbered N.1, N.2, … as the parts of that message. HEADER, HEADER.FIELDS[.NOT] and TEXT
 * apply to the top level or to a message/rfc822 part; MIME applies to a numbered part only.
 */

import type { BodyPart } from './types.js';
import { CR, HTAB, LF, SP, headerBytesToString } from './bytes.js';

export type SectionText = 'HEADER' | 'HEADER.FIELDS' | 'HEADER.FIELDS.NOT' | 'TEXT' | 'MIME';

export interface SectionSpec {
  /** Part numbers, e.g. `[1, 2]` for `1.2`; empty for the whole message. */
  readonly part: readonly number[];
  readonly text: SectionText | null;
  /** Field names for HEADER.FIELDS / HEADER.FIELDS.NOT, as given. */
  readonly fields: readonly string[];
}

export interface ByteRange {
  /** Inclusive start offset in the raw message. */
  readonly start: number;
  /** Exclusive end offset. */
  readonly end: number;
}

export type SectionError = 'syntax' | 'no-such-part' | 'not-a-message';

export type SectionResolution =
  | {
      readonly ok: true;
      readonly range: ByteRange;
      /** Set for HEADER.FIELDS[.NOT]: filter the range's bytes with {@link selectHeaderFields}. */
      readonly fields: { readonly names: readonly string[]; readonly not: boolean } | null;
    }
  | { readonly ok: false; readonly error: SectionError };

/**
 * Parse the inside of `[...]`: `""`, `1.2`, `1.2.MIME`, `HEADER`, `3.TEXT`,
 * `HEADER.FIELDS (From To)`. Returns null for anything else.
 */
export function parseSectionSpec(section: string): SectionSpec | null {
  const m =
    /^((?:[1-9]\d{0,8})(?:\.[1-9]\d{0,8})*)?(?:(^|\.)(HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT|MIME)(?:\s+\(([^()]*)\))?)?$/i.exec(
      section.trim(),
    );
  if (m === null) return null;
  const part = m[1] === undefined ? [] : m[1].split('.').map(Number);
  const text = m[3] === undefined ? null : (m[3].toUpperCase() as SectionText);
  const isFields = text === 'HEADER.FIELDS' || text === 'HEADER.FIELDS.NOT';
  if (isFields !== (m[4] !== undefined)) return null;
  const fields = (m[4] ?? '')
    .split(/\s+/)
    .map((f) => f.replace(/^"|"$/g, ''))
    .filter((f) => f !== '');
  if (isFields && fields.length === 0) return null; // header-list = "(" header-fld-name *(SP …) ")"
  return { part, text, fields };
}

type Located =
  | { readonly ok: true; readonly part: BodyPart | null }
  | { readonly ok: false; readonly error: SectionError };

/** Walk part numbers (RFC 9051 §6.4.5); `part: null` is the top level (no numbers). */
function locatePart(root: BodyPart, numbers: readonly number[]): Located {
  let messageBody: BodyPart = root;
  let current: BodyPart | null = null;
  for (const n of numbers) {
    if (!Number.isInteger(n) || n < 1) return { ok: false, error: 'syntax' };
    if (current !== null) {
      if (current.kind === 'multipart') {
        const next: BodyPart | undefined = current.parts[n - 1];
        if (next === undefined) return { ok: false, error: 'no-such-part' };
        current = next;
        continue;
      }
      if (current.kind !== 'message') return { ok: false, error: 'no-such-part' };
      messageBody = current.body;
    }
    // Index into a message: its multipart parts, or part 1 = its single body.
    if (messageBody.kind === 'multipart') {
      const next: BodyPart | undefined = messageBody.parts[n - 1];
      if (next === undefined) return { ok: false, error: 'no-such-part' };
      current = next;
    } else {
      if (n !== 1) return { ok: false, error: 'no-such-part' };
      current = messageBody;
    }
  }
  return { ok: true, part: current };
}

/**
 * The part addressed by IMAP part numbers (`"1.2"` or `[1, 2]`), e.g. to learn the encoding for
 * BINARY[1.2]; null when there is no such part. `""` / `[]` is the top-level body.
 */
export function findSectionPart(root: BodyPart, part: string | readonly number[]): BodyPart | null {
  const numbers = typeof part === 'string' ? (part === '' ? [] : part.split('.').map(Number)) : part;
  const found = locatePart(root, numbers);
  if (!found.ok) return null;
  return found.part ?? root;
}

/** Resolve a section against the message's BODYSTRUCTURE (its root, as produced by the indexer). */
export function resolveSection(root: BodyPart, section: string | SectionSpec): SectionResolution {
  const spec = typeof section === 'string' ? parseSectionSpec(section) : section;
  if (spec === null) return { ok: false, error: 'syntax' };
  const found = locatePart(root, spec.part);
  if (!found.ok) return found;
  const current = found.part;
  const ok = (start: number, end: number, fields: { names: readonly string[]; not: boolean } | null = null) =>
    ({ ok: true, range: { start, end }, fields }) as const;
  const text = spec.text;
  if (text === 'MIME') {
    if (current === null) return { ok: false, error: 'syntax' }; // MIME needs a part number
    return ok(current.offsets.headerStart, current.offsets.bodyStart);
  }
  if (text === null) {
    if (current === null) return ok(root.offsets.headerStart, root.offsets.bodyEnd);
    return ok(current.offsets.bodyStart, current.offsets.bodyEnd);
  }
  // HEADER / HEADER.FIELDS / TEXT: of the top-level message or of an encapsulated message.
  let message: BodyPart;
  if (current === null) message = root;
  else if (current.kind === 'message') message = current.body;
  else return { ok: false, error: 'not-a-message' };
  switch (text) {
    case 'TEXT':
      return ok(message.offsets.bodyStart, message.offsets.bodyEnd);
    case 'HEADER':
      return ok(message.offsets.headerStart, message.offsets.bodyStart);
    case 'HEADER.FIELDS':
    case 'HEADER.FIELDS.NOT':
      return ok(message.offsets.headerStart, message.offsets.bodyStart, {
        names: spec.fields,
        not: text === 'HEADER.FIELDS.NOT',
      });
  }
}

/**
 * Apply a `<origin.count>` partial (RFC 9051 §6.4.5): an origin past the end gives an empty range.
 */
export function applyPartial(range: ByteRange, origin: number, count?: number): ByteRange {
  const start = Math.min(range.start + Math.max(0, origin), range.end);
  const end = count === undefined ? range.end : Math.min(start + Math.max(0, count), range.end);
  return { start, end };
}

/**
 * Filter a header block for HEADER.FIELDS / HEADER.FIELDS.NOT (RFC 9051 §6.4.5): the selected
 * fields as written (folding kept), followed by the blank line. Names compare case-insensitively.
 */
export function selectHeaderFields(header: Uint8Array, names: readonly string[], not: boolean): Uint8Array {
  const wanted = matcherOf(names);
  // The selected lines as [start, end) ranges, adjacent ones merged: copied once at the end.
  const ranges: number[] = [];
  let total = 0;
  let i = 0;
  let include = false;
  while (i < header.length) {
    const lf = header.indexOf(LF, i);
    const next = lf < 0 ? header.length : lf + 1;
    const first = header[i];
    const isBlank = first === LF || (first === CR && header[i + 1] === LF && i + 1 < next);
    if (isBlank) break;
    if (first !== SP && first !== HTAB)
      include = hasColon(header, i, next) && wanted.matches(header, i, next) !== not;
    if (include) {
      if (ranges.length > 0 && ranges[ranges.length - 1] === i) ranges[ranges.length - 1] = next;
      else ranges.push(i, next);
      total += next - i;
    }
    i = next;
  }
  const out = Buffer.allocUnsafe(total + 2);
  let at = 0;
  for (let r = 0; r < ranges.length; r += 2) {
    out.set(header.subarray(ranges[r], ranges[r + 1]), at);
    at += (ranges[r + 1] as number) - (ranges[r] as number);
  }
  out[at] = CR;
  out[at + 1] = LF;
  return out;
}

function hasColon(header: Uint8Array, start: number, end: number): boolean {
  const colon = header.indexOf(0x3a, start);
  return colon >= 0 && colon < end;
}

/**
 * The field names of one HEADER.FIELDS list, compared with a header line's name without
 * decoding it: byte by byte, ASCII case folded, for the names that are ASCII (all real ones,
 * RFC 5322 §3.6.8); a name with other bytes is decoded and compared as a string, as before.
 * Kept per list, which is the same array for every message of one FETCH.
 */
class FieldNames {
  readonly #strings: Set<string>;
  readonly #ascii = new Map<number, Uint8Array[]>();

  constructor(names: readonly string[]) {
    this.#strings = new Set(names.map((n) => n.toLowerCase()));
    for (const name of this.#strings) {
      if ([...name].some((c) => c.charCodeAt(0) >= 0x80)) continue;
      const bytes = Buffer.from(name, 'latin1');
      const list = this.#ascii.get(bytes.length) ?? [];
      list.push(bytes);
      this.#ascii.set(bytes.length, list);
    }
  }

  /** Whether the field starting at `start` (its line ends at `end`) has one of the names. */
  matches(header: Uint8Array, start: number, end: number): boolean {
    const colon = header.indexOf(0x3a, start);
    if (colon < 0 || colon >= end) return false;
    // String.prototype.trim's ASCII whitespace: TAB, LF, VT, FF, CR, SP.
    let from = start;
    let to = colon;
    while (from < to && isTrimmed(header[from] as number)) from += 1;
    while (to > from && isTrimmed(header[to - 1] as number)) to -= 1;
    for (let k = from; k < to; k += 1) {
      if ((header[k] as number) >= 0x80) {
        return this.#strings.has(headerBytesToString(header.subarray(start, colon)).trim().toLowerCase());
      }
    }
    const candidates = this.#ascii.get(to - from);
    if (candidates === undefined) return false;
    outer: for (const candidate of candidates) {
      for (let k = 0; k < candidate.length; k += 1) {
        let b = header[from + k] as number;
        if (b >= 0x41 && b <= 0x5a) b |= 0x20;
        if (b !== candidate[k]) continue outer;
      }
      return true;
    }
    return false;
  }
}

const isTrimmed = (b: number): boolean => b === SP || (b >= 0x09 && b <= 0x0d);

const fieldNames = new WeakMap<readonly string[], FieldNames>();

function matcherOf(names: readonly string[]): FieldNames {
  let matcher = fieldNames.get(names);
  if (matcher === undefined) {
    matcher = new FieldNames(names);
    fieldNames.set(names, matcher);
  }
  return matcher;
}
