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
  const wanted = new Set(names.map((n) => n.toLowerCase()));
  const out: Uint8Array[] = [];
  let i = 0;
  let include = false;
  while (i < header.length) {
    const lf = header.indexOf(LF, i);
    const next = lf < 0 ? header.length : lf + 1;
    const line = header.subarray(i, next);
    i = next;
    const isBlank = line.length === 0 || line[0] === LF || (line[0] === CR && line[1] === LF);
    if (isBlank) break;
    if (line[0] !== SP && line[0] !== HTAB) {
      const colon = line.indexOf(0x3a);
      const name = colon < 0 ? null : headerBytesToString(line.subarray(0, colon)).trim().toLowerCase();
      include = name !== null && wanted.has(name) !== not;
    }
    if (include) out.push(line);
  }
  out.push(Uint8Array.of(CR, LF));
  return Buffer.concat(out);
}
