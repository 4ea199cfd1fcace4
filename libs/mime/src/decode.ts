/**
 * Decoding a part's body for IMAP BINARY[] (RFC 3516) and for search: transfer decoding
 * (RFC 2045 §6) and, for text, charset decoding to a string (RFC 2046 §4.1.2).
 */

import type { BodyPart } from './types.js';
import { decodeCharset } from './charset.js';
import { paramValue } from './mime-params.js';
import { decodeTransferEncoding } from './transfer-encoding.js';

export type DecodedBody =
  | { readonly ok: true; readonly bytes: Uint8Array }
  | { readonly ok: false; readonly error: 'unknown-cte' | 'multipart' };

/** Transfer-decode the raw body bytes of `part` (the `offsets.bodyStart..bodyEnd` range). */
export function decodePartBody(part: BodyPart, body: Uint8Array): DecodedBody {
  // RFC 3516 §4.2: BINARY on a multipart part is not a single body to decode.
  if (part.kind === 'multipart') return { ok: false, error: 'multipart' };
  const bytes = decodeTransferEncoding(body, part.encoding);
  if (bytes === null) return { ok: false, error: 'unknown-cte' }; // RFC 3516 §4.3 UNKNOWN-CTE
  return { ok: true, bytes };
}

/** The decoded text of a text part, or null for non-text parts and unknown encodings. */
export function decodePartText(part: BodyPart, body: Uint8Array): string | null {
  if (part.kind !== 'text') return null;
  const decoded = decodePartBody(part, body);
  if (!decoded.ok) return null;
  return decodeCharset(decoded.bytes, paramValue(part.params, 'charset'));
}
