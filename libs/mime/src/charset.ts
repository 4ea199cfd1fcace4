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

/** Decode `bytes` in `charset` (see module comment for the fallback rules). Never throws. */
export function decodeCharset(bytes: Uint8Array, charset: string | null | undefined): string {
  const encoding = resolveCharset(charset);
  if (encoding === null) return isValidUtf8(bytes) ? new TextDecoder('utf-8').decode(bytes) : latin1(bytes);
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
  const decoder = new TextDecoder(resolveCharset(charset) ?? 'utf-8');
  return {
    write: (bytes) => decoder.decode(bytes, { stream: true }),
    end: () => decoder.decode(),
  };
}
