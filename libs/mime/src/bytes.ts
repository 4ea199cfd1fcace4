/**
 * Byte/string conversions shared by the header parsers. Header fields are bytes on the wire; RFC 6532
 * allows UTF-8 in them, and older mail carries raw 8-bit text in unknown charsets. We decode a field as
 * UTF-8 when it is valid UTF-8 and as ISO-8859-1 otherwise, so every byte survives as one character.
 */

const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** Decode header bytes: ASCII fast path, then strict UTF-8, else Latin-1 (never throws). */
export function headerBytesToString(bytes: Uint8Array): string {
  let ascii = true;
  for (let i = 0; i < bytes.length; i++) {
    if ((bytes[i] as number) >= 0x80) {
      ascii = false;
      break;
    }
  }
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (ascii) return buf.toString('latin1');
  try {
    return utf8Strict.decode(bytes);
  } catch {
    return buf.toString('latin1');
  }
}

/** True when `bytes` is well-formed UTF-8. */
export function isValidUtf8(bytes: Uint8Array): boolean {
  try {
    utf8Strict.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** ISO-8859-1: one character per byte. */
export function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

export const CR = 0x0d;
export const LF = 0x0a;
export const SP = 0x20;
export const HTAB = 0x09;
