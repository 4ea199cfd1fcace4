/**
 * PREVIEW (RFC 8970): a short plain-text extract of a message for list views. The text comes
 * from the first text part a reader would see (§4: text/plain preferred inside
 * multipart/alternative, otherwise text/html with markup removed), decoded from its transfer
 * encoding and charset, with whitespace runs collapsed to one space, and cut to at most 256
 * characters (§3: "MUST NOT ... more than 256 characters"), never inside a surrogate pair. A
 * message without a text part has the empty preview (§3). Attachments (disposition
 * `attachment`) are not read.
 */
import { decodeCharset, paramValue, type BodyPart } from '@postmesh/mime';

export const PREVIEW_CHARACTERS = 256;
/** Octets of the decoded part read for a preview: enough for 256 characters of HTML. */
export const PREVIEW_OCTETS = 16 * 1024;

export interface PreviewSource {
  /** Section to read (`1`, `1.2`, …), decoded from its transfer encoding. */
  readonly section: string;
  readonly html: boolean;
  readonly charset: string | null;
}

/** The part the preview is taken from, or null when the message has no readable text. */
export function previewSource(body: BodyPart): PreviewSource | null {
  switch (body.kind) {
    case 'text': {
      if (body.subtype !== 'plain' && body.subtype !== 'html') return null;
      if (body.disposition?.type === 'attachment') return null;
      return {
        // RFC 9051 §6.4.5: a non-multipart message has only part 1.
        section: body.partId === '' ? '1' : body.partId,
        html: body.subtype === 'html',
        charset: paramValue(body.params, 'charset'),
      };
    }
    case 'multipart': {
      if (body.subtype === 'alternative') {
        const plain = body.parts.find((p) => p.kind === 'text' && p.subtype === 'plain');
        if (plain !== undefined) return previewSource(plain);
      }
      for (const part of body.parts) {
        const source = previewSource(part);
        if (source !== null) return source;
      }
      return null;
    }
    default:
      // message/rfc822 and other types: not the message's own text.
      return null;
  }
}

/** The preview text of a decoded part's octets (possibly cut at PREVIEW_OCTETS). */
export function previewText(octets: Uint8Array, source: PreviewSource): string {
  // A read cut at PREVIEW_OCTETS may end inside a UTF-8 sequence, which would make the whole
  // part look like Latin-1 to the charset guess: the cut sequence is dropped.
  const end = octets.length >= PREVIEW_OCTETS ? completeUtf8End(octets) : octets.length;
  let text = decodeCharset(octets.subarray(0, end), source.charset);
  if (source.html) text = htmlToText(text);
  text = text.replace(/\s+/gu, ' ').trim();
  const characters = [...text];
  return characters.length <= PREVIEW_CHARACTERS
    ? text
    : characters.slice(0, PREVIEW_CHARACTERS).join('').trimEnd();
}

/** Where the octets end once an incomplete trailing UTF-8 sequence is left out. */
function completeUtf8End(octets: Uint8Array): number {
  for (let i = octets.length - 1; i >= Math.max(0, octets.length - 4); i--) {
    const byte = octets[i]!;
    if (byte < 0x80) return octets.length;
    if (byte >= 0xc0) {
      const length = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : 2;
      return octets.length - i >= length ? octets.length : i;
    }
  }
  return octets.length;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

/** Markup removed, the content of head/style/script dropped, common entities decoded. */
function htmlToText(html: string): string {
  return (
    html
      .replace(/<!--[\s\S]*?(-->|$)/g, ' ')
      .replace(/<(head|style|script|title)\b[\s\S]*?(<\/\1\s*>|$)/gi, ' ')
      // Inline markup joins words; any other tag separates them.
      .replace(/<\/?(a|abbr|b|big|code|em|font|i|small|span|strong|sub|sup|u)\b[^>]*>/gi, '')
      .replace(/<[^>]*(>|$)/g, ' ')
      .replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, name: string) => {
        if (name.startsWith('#')) {
          const code =
            name[1] === 'x' || name[1] === 'X' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
          return Number.isFinite(code) && code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : ' ';
        }
        return ENTITIES[name.toLowerCase()] ?? whole;
      })
  );
}
