/**
 * Charset decoding to JavaScript strings (RFC 2045 §5.1 `charset`, RFC 2046 §4.1.2). Node's
 * TextDecoder (full ICU) knows the WHATWG Encoding labels: utf-8, iso-8859-*, windows-125*,
 * koi8-r, gbk, gb18030, big5, shift_jis, euc-jp, iso-2022-jp, euc-kr, utf-16*, ...
 *
 * Malformed input never throws: invalid sequences become U+FFFD. An unknown or missing charset
 * falls back to UTF-8 when the bytes are valid UTF-8, else to ISO-8859-1 (every byte survives).
 */

import { isValidUtf8, latin1 } from './bytes.js';

const decoderCache = new Map<string, string | null>();

/** Normalise a charset label and return the TextDecoder encoding name, or null when unknown. */
export function resolveCharset(label: string | null | undefined): string | null {
  if (label === null || label === undefined) return null;
  const key = label.trim().replace(/^"|"$/g, '').toLowerCase();
  if (key === '') return null;
  const cached = decoderCache.get(key);
  if (cached !== undefined) return cached;
  let resolved: string | null;
  try {
    resolved = new TextDecoder(aliasOf(key)).encoding;
  } catch {
    resolved = null;
  }
  if (decoderCache.size < 256) decoderCache.set(key, resolved);
  return resolved;
}

/** A few labels seen in the wild that the WHATWG list spells differently. */
function aliasOf(key: string): string {
  switch (key) {
    case 'utf8':
      return 'utf-8';
    case 'latin-1':
      return 'iso-8859-1';
    case 'cp1252':
      return 'windows-1252';
    case 'ansi_x3.4-1968':
      return 'us-ascii';
    default:
      return key;
  }
}

/**
 * windows-1252 (which WHATWG also uses for `us-ascii`, `iso-8859-1` and `latin1` labels) decoded by
 * table: Node 20's TextDecoder maps 0x80-0x9F to C1 controls instead of `€`, `“`, `”`, ….
 */
const CP1252_C1 = [
  0x20ac, 0x81, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030, 0x160, 0x2039, 0x152, 0x8d,
  0x17d, 0x8f, 0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x2dc, 0x2122, 0x161, 0x203a,
  0x153, 0x9d, 0x17e, 0x178,
];

/** Whether any byte is in 0x80-0x9F (a plain loop: a callback per byte costs more than the decode). */
function hasC1(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (b >= 0x80 && b < 0xa0) return true;
  }
  return false;
}

function decodeWindows1252(bytes: Uint8Array): string {
  // Most text has no byte in 0x80-0x9F, where windows-1252 and latin1 differ: decode natively.
  if (!hasC1(bytes)) {
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  }
  let out = '';
  for (let i = 0; i < bytes.length; i += 8192) {
    const codes = Array.from(bytes.subarray(i, i + 8192), (b) =>
      b >= 0x80 && b < 0xa0 ? (CP1252_C1[b - 0x80] as number) : b,
    );
    out += String.fromCharCode(...codes);
  }
  return out;
}

/** Decode `bytes` in `charset` (see module comment for the fallback rules). Never throws. */
export function decodeCharset(bytes: Uint8Array, charset: string | null | undefined): string {
  const encoding = resolveCharset(charset);
  if (encoding === null) return isValidUtf8(bytes) ? new TextDecoder('utf-8').decode(bytes) : latin1(bytes);
  if (encoding === 'windows-1252') return decodeWindows1252(bytes);
  return new TextDecoder(encoding).decode(bytes);
}

/** An incremental charset decoder; multi-byte sequences may be split across `write` calls. */
export interface CharsetDecoder {
  write(bytes: Uint8Array): string;
  end(): string;
}

/**
 * Streaming variant of {@link decodeCharset}. Without a known charset it cannot look ahead to
 * check UTF-8 validity, so it decodes as UTF-8 with U+FFFD for invalid sequences.
 */
export function createCharsetDecoder(charset: string | null | undefined): CharsetDecoder {
  const encoding = resolveCharset(charset) ?? 'utf-8';
  if (encoding === 'windows-1252') return { write: decodeWindows1252, end: () => '' };
  const decoder = new TextDecoder(encoding);
  return {
    write: (bytes) => decoder.decode(bytes, { stream: true }),
    end: () => decoder.decode(),
  };
}
