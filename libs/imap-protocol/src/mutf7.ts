/**
 * Mailbox name codecs.
 *
 * Modified UTF-7 (RFC 3501 §5.1.3, kept by RFC 9051 §5.1.3 for IMAP4rev1 clients): printable
 * US-ASCII except `&` stands for itself, `&` is `&-`, and any other run of characters is
 * UTF-16BE in modified BASE64 (`,` instead of `/`, no padding) between `&` and `-`.
 *
 * IMAP4rev2 and UTF8=ACCEPT (RFC 9051 §5.1, RFC 6855 §3) send mailbox names as UTF-8.
 */

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,';
const B64_VALUE = new Map([...B64].map((ch, i) => [ch.charCodeAt(0), i]));

function isDirect(code: number): boolean {
  return code >= 0x20 && code <= 0x7e && code !== 0x26; /* & */
}

/** Encodes a mailbox name in modified UTF-7. */
export function encodeMutf7(name: string): string {
  let out = '';
  let i = 0;
  while (i < name.length) {
    const code = name.charCodeAt(i);
    if (code === 0x26) {
      out += '&-';
      i++;
    } else if (isDirect(code)) {
      out += name[i];
      i++;
    } else {
      let j = i;
      while (j < name.length && !isDirect(name.charCodeAt(j)) && name.charCodeAt(j) !== 0x26) j++;
      out += '&' + encodeBase64Utf16(name.slice(i, j)) + '-';
      i = j;
    }
  }
  return out;
}

function encodeBase64Utf16(s: string): string {
  const bytes: number[] = [];
  for (let k = 0; k < s.length; k++) {
    const u = s.charCodeAt(k);
    bytes.push(u >> 8, u & 0xff);
  }
  let out = '';
  for (let k = 0; k < bytes.length; k += 3) {
    const b0 = bytes[k]!;
    const b1 = bytes[k + 1];
    const b2 = bytes[k + 2];
    out += B64[b0 >> 2];
    out += B64[((b0 & 3) << 4) | ((b1 ?? 0) >> 4)];
    if (b1 !== undefined) out += B64[((b1 & 15) << 2) | ((b2 ?? 0) >> 6)];
    if (b2 !== undefined) out += B64[b2 & 63];
  }
  return out;
}

export type Mutf7DecodeResult =
  { readonly ok: true; readonly value: string } | { readonly ok: false; readonly reason: string };

/**
 * Decodes a modified UTF-7 mailbox name. Only the canonical form is accepted (RFC 3501 §5.1.3:
 * no encoded printable ASCII, no zero-length or needlessly split shifts, no stray bits, well
 * formed UTF-16), so every valid name has exactly one encoding.
 */
export function decodeMutf7(encoded: string): Mutf7DecodeResult {
  let out = '';
  let i = 0;
  let lastShiftEnd = -1;
  while (i < encoded.length) {
    const code = encoded.charCodeAt(i);
    if (code !== 0x26) {
      if (!isDirect(code)) return { ok: false, reason: `character U+${hex(code)} must be encoded` };
      out += encoded[i];
      i++;
      continue;
    }
    const end = encoded.indexOf('-', i + 1);
    if (end < 0) return { ok: false, reason: 'unterminated "&" shift' };
    if (end === i + 1) {
      out += '&';
      i = end + 1;
      continue;
    }
    const decoded = decodeBase64Utf16(encoded.slice(i + 1, end));
    if (decoded === null) return { ok: false, reason: 'invalid modified BASE64 in mailbox name' };
    // RFC 3501 §5.1.3: printable US-ASCII "MUST NOT be encoded in modified BASE64", and
    // "&" is only represented as "&-".
    for (let k = 0; k < decoded.length; k++) {
      const u = decoded.charCodeAt(k);
      if (isDirect(u) || u === 0x26) return { ok: false, reason: 'printable ASCII encoded in BASE64' };
    }
    // Two adjacent shifts should have been one ("&AOQ-&AOQ-" is "&AOQA5A-").
    if (i === lastShiftEnd) return { ok: false, reason: 'adjacent BASE64 shifts' };
    out += decoded;
    i = end + 1;
    lastShiftEnd = i;
  }
  return { ok: true, value: out };
}

function decodeBase64Utf16(s: string): string | null {
  let bits = 0;
  let nbits = 0;
  const units: number[] = [];
  let pending = -1;
  for (let k = 0; k < s.length; k++) {
    const v = B64_VALUE.get(s.charCodeAt(k));
    if (v === undefined) return null;
    bits = (bits << 6) | v;
    nbits += 6;
    if (nbits >= 16) {
      nbits -= 16;
      const unit = (bits >> nbits) & 0xffff;
      bits &= (1 << nbits) - 1;
      if (pending >= 0) {
        if (unit < 0xdc00 || unit > 0xdfff) return null;
        units.push(pending, unit);
        pending = -1;
      } else if (unit >= 0xd800 && unit <= 0xdbff) {
        pending = unit;
      } else if (unit >= 0xdc00 && unit <= 0xdfff) {
        return null;
      } else {
        units.push(unit);
      }
    }
  }
  // Leftover bits must be fewer than 6 and zero; a dangling high surrogate is malformed.
  if (nbits >= 6 || bits !== 0 || pending >= 0 || units.length === 0) return null;
  let out = '';
  for (const u of units) out += String.fromCharCode(u);
  return out;
}

function hex(code: number): string {
  return code.toString(16).toUpperCase().padStart(4, '0');
}

/** `INBOX` is case-insensitive (RFC 9051 §5.1): any spelling is normalised to `INBOX`. */
export function normalizeMailboxName(name: string): string {
  if (name.length === 5 && name.toUpperCase() === 'INBOX') return 'INBOX';
  return name;
}

/** The wire form of a mailbox name: UTF-8 as is when enabled, else modified UTF-7. */
export function encodeMailboxName(name: string, utf8: boolean): string {
  return utf8 ? name : encodeMutf7(name);
}

/**
 * A mailbox name from the wire: UTF-8 when enabled (RFC 6855 §3, RFC 9051 §5.1), else
 * modified UTF-7. INBOX in any case becomes `INBOX`.
 */
export function decodeMailboxName(wire: string, utf8: boolean): Mutf7DecodeResult {
  if (utf8) return { ok: true, value: normalizeMailboxName(wire) };
  const decoded = decodeMutf7(wire);
  return decoded.ok ? { ok: true, value: normalizeMailboxName(decoded.value) } : decoded;
}
