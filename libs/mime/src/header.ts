/**
 * Header block parsing (RFC 5322 §2.2, §3.6; RFC 2045 §3). A field is a name, a colon and a
 * value; lines starting with WSP continue the previous field and are unfolded by removing the line
 * break (RFC 5322 §2.2.3). Lenient: whitespace before the colon is accepted (obsolete syntax,
 * RFC 5322 §4.5); lines that are not fields (no colon, or a name with spaces such as an mbox
 * `From ` line) are skipped; bare LF ends a line like CRLF.
 */

import { CR, HTAB, LF, SP, headerBytesToString } from './bytes.js';

export interface HeaderField {
  /** Lower-cased field name. */
  readonly name: string;
  /** Unfolded value, leading and trailing whitespace removed, decoded as UTF-8 or Latin-1. */
  readonly value: string;
}

/** Split a header block (bytes up to and including the blank line, or fewer) into fields. */
export function parseHeaderBlock(block: Uint8Array): HeaderField[] {
  const fields: HeaderField[] = [];
  const pieces: Uint8Array[] = [];
  const flush = (): void => {
    if (pieces.length === 0) return;
    const field = toField(pieces.length === 1 ? (pieces[0] as Uint8Array) : Buffer.concat(pieces));
    pieces.length = 0;
    if (field !== null) fields.push(field);
  };
  let start = 0;
  while (start < block.length) {
    let end = block.indexOf(LF, start);
    const next = end < 0 ? block.length : end + 1;
    if (end < 0) end = block.length;
    let contentEnd = end;
    if (contentEnd > start && block[contentEnd - 1] === CR) contentEnd--;
    const line = block.subarray(start, contentEnd);
    start = next;
    if (line.length === 0) break; // the blank line ends the header (RFC 5322 §2.1)
    const first = line[0];
    if (first === SP || first === HTAB) {
      // Continuation: unfolding removes only the line break (RFC 5322 §2.2.3). A continuation
      // with no field before it is junk and is dropped.
      if (pieces.length > 0) pieces.push(line);
      continue;
    }
    flush();
    pieces.push(line);
  }
  flush();
  return fields;
}

function toField(bytes: Uint8Array): HeaderField | null {
  const colon = bytes.indexOf(0x3a);
  if (colon <= 0) return null;
  let nameEnd = colon;
  while (nameEnd > 0 && (bytes[nameEnd - 1] === SP || bytes[nameEnd - 1] === HTAB)) nameEnd--;
  if (nameEnd === 0) return null;
  for (let i = 0; i < nameEnd; i++) {
    const c = bytes[i] as number;
    // ftext = %d33-57 / %d59-126 (RFC 5322 §3.6.8)
    if (c < 33 || c > 126) return null;
  }
  const name = headerBytesToString(bytes.subarray(0, nameEnd)).toLowerCase();
  // Trim by hand: a `\s+$` regex backtracks quadratically on long inner runs of whitespace.
  let start = colon + 1;
  let end = bytes.length;
  while (start < end && isWsp(bytes[start] as number)) start++;
  while (end > start && isWsp(bytes[end - 1] as number)) end--;
  return { name, value: headerBytesToString(bytes.subarray(start, end)) };
}

function isWsp(c: number): boolean {
  return c === SP || c === HTAB || c === CR || c === LF;
}

/** The first field called `name` (first one wins for duplicated fields). */
export function firstField(fields: readonly HeaderField[], name: string): string | null {
  for (const f of fields) if (f.name === name) return f.value;
  return null;
}
