/**
 * RFC 2047 encoded-word decoding, for searchable fields only: ENVELOPE keeps encoded words raw, as
 * RFC 9051 §7.5.2 expects clients to decode them.
 *
 * `=?charset[*lang]?B|Q?text?=` (RFC 2047 §2, RFC 2231 §5 language suffix). Whitespace between two
 * adjacent encoded words is dropped (RFC 2047 §6.2). Adjacent words in the same charset are joined
 * as bytes before decoding, because real senders split multi-byte characters across words.
 * Lenient: words not delimited by whitespace are decoded too; a malformed word stays as written.
 */

import { decodeCharset } from './charset.js';

const ENCODED_WORD = /=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=/g;

type Segment = { readonly kind: 'text'; text: string } | { kind: 'word'; charset: string; bytes: number[] };

/** Decode all encoded words in an (unfolded) header value. Never throws. */
export function decodeEncodedWords(value: string): string {
  if (!value.includes('=?')) return value;
  const segments: Segment[] = [];
  let last = 0;
  for (const m of value.matchAll(ENCODED_WORD)) {
    const between = value.slice(last, m.index);
    const prev = segments[segments.length - 1];
    const charset = (m[1] ?? '').split('*')[0] ?? '';
    const bytes = (m[2] ?? '').toUpperCase() === 'B' ? decodeB(m[3] ?? '') : decodeQ(m[3] ?? '');
    const adjacent = prev?.kind === 'word' && /^[ \t\r\n]*$/.test(between);
    if (!adjacent && between !== '') segments.push({ kind: 'text', text: between });
    const tail = segments[segments.length - 1];
    if (adjacent && tail?.kind === 'word' && tail.charset.toLowerCase() === charset.toLowerCase()) {
      tail.bytes.push(...bytes);
    } else {
      segments.push({ kind: 'word', charset, bytes });
    }
    last = m.index + m[0].length;
  }
  if (last < value.length) segments.push({ kind: 'text', text: value.slice(last) });
  return segments
    .map((s) => (s.kind === 'text' ? s.text : decodeCharset(Uint8Array.from(s.bytes), s.charset)))
    .join('');
}

function decodeB(text: string): number[] {
  return [...Buffer.from(text.replace(/[^A-Za-z0-9+/]/g, ''), 'base64')];
}

/** RFC 2047 §4.2: `_` is SP, `=XX` is an octet; a broken `=` stays literal. */
function decodeQ(text: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5f) {
      out.push(0x20);
    } else if (c === 0x3d && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 1, i + 3))) {
      out.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      out.push(c & 0xff);
    }
  }
  return out;
}
