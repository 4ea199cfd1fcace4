/**
 * FETCH responses — RFC 9051 §7.5.2 and §9 `message-data`, `msg-att-dynamic`, `msg-att-static`;
 * BINARY[...] and BINARY.SIZE (RFC 3516 §4.2, literal8 when the data holds NUL, §4.3);
 * MODSEQ (RFC 7162 §3.1.4.1); RFC822* items (RFC 3501 §7.4.2); PREVIEW (RFC 8970 §3).
 */
import type { BodyPart, Envelope } from '@postmesh/mime';
import type { Section } from '../commands/types.js';
import { formatDateTime } from '../date.js';
import { ResponseBuilder, type LiteralData, type OutputChunk, type StringOptions } from './builder.js';
import { writeBodyStructure, writeEnvelope } from './bodystructure.js';
import { checkFlag } from './status.js';

export type FetchItem =
  | { readonly item: 'UID'; readonly uid: number }
  | { readonly item: 'FLAGS'; readonly flags: readonly string[] }
  | { readonly item: 'INTERNALDATE'; readonly date: Date; readonly offsetMinutes?: number }
  | { readonly item: 'RFC822.SIZE'; readonly size: number }
  | { readonly item: 'ENVELOPE'; readonly envelope: Envelope }
  /** An ENVELOPE already serialized by `serializeEnvelope` with the same string options. */
  | { readonly item: 'ENVELOPE'; readonly serialized: Uint8Array }
  | { readonly item: 'BODYSTRUCTURE'; readonly body: BodyPart }
  | { readonly item: 'BODY'; readonly body: BodyPart }
  | { readonly item: 'MODSEQ'; readonly modseq: bigint | number }
  /** `BODY[section]<origin>`: `origin` only when the client asked for a partial. */
  | {
      readonly item: 'BODY[]';
      readonly section: Section;
      readonly origin: number | null;
      readonly data: LiteralData | null;
    }
  /**
   * `BINARY[part]<origin>`: literal8 when the data contains NUL (RFC 3516 §4.3). For a stream,
   * `hasNul` must tell, as the content is not seen here.
   */
  | {
      readonly item: 'BINARY[]';
      readonly part: readonly number[];
      readonly origin: number | null;
      readonly data: LiteralData | null;
      readonly hasNul?: boolean;
    }
  | { readonly item: 'BINARY.SIZE'; readonly part: readonly number[]; readonly size: number }
  /** RFC 8970 §3: UTF-8 text, or NIL (only for PREVIEW (LAZY) when not available yet). */
  | { readonly item: 'PREVIEW'; readonly text: string | null }
  /** RFC 8474 §5.1 */
  | { readonly item: 'EMAILID'; readonly id: string }
  /** RFC 8474 §5.2: NIL when the server keeps no thread for the message. */
  | { readonly item: 'THREADID'; readonly id: string | null }
  | { readonly item: 'RFC822' | 'RFC822.HEADER' | 'RFC822.TEXT'; readonly data: LiteralData | null };

const DEFAULT_OPTIONS: StringOptions = { utf8: false };

/**
 * `* <seq> FETCH (<items>)\r\n` as chunks: literal data larger than a few KiB (and every stream)
 * is its own chunk, so message bodies are written without being copied.
 */
export function serializeFetch(
  sequenceNumber: number,
  items: readonly FetchItem[],
  options: StringOptions = DEFAULT_OPTIONS,
): OutputChunk[] {
  const b = new ResponseBuilder(options);
  writeFetch(b, sequenceNumber, items);
  return b.chunks();
}

/**
 * `* <seq> FETCH (<items>)\r\n` added to a builder: the answers of many messages gathered into
 * one (a `FETCH 1:* (FLAGS)` is then one buffer, not one builder and buffer per message).
 */
export function writeFetch(b: ResponseBuilder, sequenceNumber: number, items: readonly FetchItem[]): void {
  b.text(`* ${sequenceNumber} FETCH (`);
  for (let i = 0; i < items.length; i += 1) {
    if (i > 0) b.sp();
    writeItem(b, items[i] as FetchItem);
  }
  b.text(')').crlf();
}

/** RFC 9051 §9 `envelope` as bytes, for a FETCH item `{ item: 'ENVELOPE', serialized }`. */
export function serializeEnvelope(envelope: Envelope, options: StringOptions = DEFAULT_OPTIONS): Buffer {
  const b = new ResponseBuilder(options);
  writeEnvelope(b, envelope);
  return b.bytes();
}

function writeItem(b: ResponseBuilder, item: FetchItem): void {
  switch (item.item) {
    case 'UID':
      b.atom('UID ').number(item.uid);
      return;
    case 'FLAGS':
      b.atom('FLAGS (').text(item.flags.map(checkFlag).join(' ')).text(')');
      return;
    case 'INTERNALDATE':
      b.atom('INTERNALDATE "')
        .text(formatDateTime(item.date, item.offsetMinutes ?? 0))
        .text('"');
      return;
    case 'RFC822.SIZE':
      b.atom('RFC822.SIZE ').number(item.size);
      return;
    case 'ENVELOPE':
      b.atom('ENVELOPE ');
      if ('serialized' in item) b.raw(item.serialized);
      else writeEnvelope(b, item.envelope);
      return;
    case 'BODYSTRUCTURE':
      b.atom('BODYSTRUCTURE ');
      writeBodyStructure(b, item.body, true);
      return;
    case 'BODY':
      b.atom('BODY ');
      writeBodyStructure(b, item.body, false);
      return;
    case 'MODSEQ':
      b.atom('MODSEQ (').number(item.modseq).text(')');
      return;
    case 'EMAILID':
      // RFC 8474 §7: "EMAILID" SP "(" objectid ")"
      b.atom('EMAILID (').atom(item.id).text(')');
      return;
    case 'THREADID':
      // RFC 8474 §7: "THREADID" SP ( "(" objectid ")" / nil )
      if (item.id === null) b.atom('THREADID NIL');
      else b.atom('THREADID (').atom(item.id).text(')');
      return;
    case 'PREVIEW':
      // A literal when the text is not ASCII and UTF8=ACCEPT is off (RFC 8970 §3: UTF-8 always).
      b.atom('PREVIEW ').nstring(item.text);
      return;
    case 'BODY[]':
      b.atom(`BODY[${formatSection(item.section)}]`);
      if (item.origin !== null) b.text(`<${item.origin}>`);
      b.sp();
      writeData(b, item.data, false);
      return;
    case 'BINARY[]': {
      b.atom(`BINARY[${item.part.join('.')}]`);
      if (item.origin !== null) b.text(`<${item.origin}>`);
      b.sp();
      const data = item.data;
      const binary =
        data === null ? false : data instanceof Uint8Array ? data.includes(0) : item.hasNul === true;
      writeData(b, data, binary);
      return;
    }
    case 'BINARY.SIZE':
      b.atom(`BINARY.SIZE[${item.part.join('.')}] `).number(item.size);
      return;
    case 'RFC822':
    case 'RFC822.HEADER':
    case 'RFC822.TEXT':
      b.atom(item.item).sp();
      writeData(b, item.data, false);
      return;
  }
}

/** Message data always goes as a literal (it has CRLFs); NIL when absent. */
function writeData(b: ResponseBuilder, data: LiteralData | null, binary: boolean): void {
  if (data === null) b.nil();
  else b.literal(data, binary);
}

/**
 * The section spec as echoed in the response (RFC 9051 §7.5.2: the server returns the section
 * as requested, header field names upper-cased is allowed; we quote them as astrings).
 */
export function formatSection(section: Section): string {
  const part = section.part.join('.');
  const text = section.text;
  let spec: string;
  switch (text.kind) {
    case 'none':
      spec = '';
      break;
    case 'HEADER':
    case 'TEXT':
    case 'MIME':
      spec = text.kind;
      break;
    case 'HEADER.FIELDS':
    case 'HEADER.FIELDS.NOT':
      spec = `${text.kind} (${text.fields.map(formatFieldName).join(' ')})`;
      break;
  }
  return part && spec ? `${part}.${spec}` : part || spec;
}

function formatFieldName(name: string): string {
  const upper = name.toUpperCase();
  if (/^[\x21-\x7e]+$/.test(upper) && !/[(){%*"\\\]]/.test(upper)) return upper;
  return `"${upper.replace(/(["\\])/g, '\\$1')}"`;
}
