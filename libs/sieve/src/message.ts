/**
 * A {@link SieveMessage} over the raw bytes of a message: header fields parsed once, body parts
 * indexed and decoded only when a `body` test asks (RFC 5173).
 */
import { decodePartText, indexMessage, parseHeaderBlock, type BodyPart } from '@postmesh/mime';
import type { SieveBodyPart, SieveMessage } from './interpreter.js';

/** Offset of the first byte after the header section (after the empty line), or the length. */
function headerEnd(raw: Uint8Array): number {
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] !== 0x0a) continue;
    if (raw[i + 1] === 0x0a) return i + 2;
    if (raw[i + 1] === 0x0d && raw[i + 2] === 0x0a) return i + 3;
  }
  return raw.length;
}

function leaves(part: BodyPart, out: BodyPart[]): void {
  if (part.kind === 'multipart') for (const p of part.parts) leaves(p, out);
  else if (part.kind === 'message') leaves(part.body, out);
  else out.push(part);
}

export function sieveMessageFromRaw(
  raw: Uint8Array,
  envelope: { readonly from: string; readonly to: string },
): SieveMessage {
  const bodyStart = headerEnd(raw);
  const headers = parseHeaderBlock(raw.subarray(0, bodyStart));
  return {
    headers,
    size: raw.length,
    envelope,
    rawBody: () => Buffer.from(raw.subarray(bodyStart)).toString('utf8'),
    bodyParts: (): SieveBodyPart[] => {
      const parts: BodyPart[] = [];
      leaves(indexMessage(raw).bodystructure, parts);
      return parts.map((p) => ({
        contentType: `${p.kind === 'multipart' ? 'multipart' : p.type}/${p.subtype}`,
        text: decodePartText(p, raw.subarray(p.offsets.bodyStart, p.offsets.bodyEnd)) ?? '',
      }));
    },
  };
}
