/**
 * @postmesh/mime — pure MIME indexing for storage and IMAP: ENVELOPE and BODYSTRUCTURE
 * (RFC 9051 §7.5.2) with byte offsets per part, section resolution (RFC 9051 §6.4.5), and
 * transfer/charset/encoded-word decoding (RFC 2045, 2046, 2047, 2231).
 */

export type {
  BasicBody,
  BodyDisposition,
  BodyParams,
  BodyPart,
  Envelope,
  EnvelopeAddress,
  MessageBody,
  MultipartBody,
  PartOffsets,
  TextBody,
} from './types.js';
export { MimeIndexer, MimeIndexerStateError, indexMessage } from './indexer.js';
export type { IndexOptions, IndexResult } from './indexer.js';
export type { SearchAddress, SearchableHeaders } from './envelope.js';
export { parseMessageIds } from './envelope.js';
export {
  applyPartial,
  findSectionPart,
  parseSectionSpec,
  resolveSection,
  selectHeaderFields,
} from './section.js';
export type { ByteRange, SectionError, SectionResolution, SectionSpec, SectionText } from './section.js';
export { decodePartBody, decodePartText } from './decode.js';
export type { DecodedBody } from './decode.js';
export {
  createTransferDecoder,
  decodeTransferEncoding,
  isKnownTransferEncoding,
  normalizeTransferEncoding,
} from './transfer-encoding.js';
export type { TransferDecoder } from './transfer-encoding.js';
export { createCharsetDecoder, decodeCharset, resolveCharset } from './charset.js';
export type { CharsetDecoder } from './charset.js';
export { decodeEncodedWords } from './encoded-words.js';
export { parseAddressList } from './address.js';
export { parseRfc5322Date } from './date.js';
export { parseHeaderBlock } from './header.js';
export type { HeaderField } from './header.js';
export { paramValue, parseContentType, parseDisposition } from './mime-params.js';
export type { ContentType } from './mime-params.js';
export { buildDsn, rfc5322Date, statusOf } from './dsn.js';
export type { DsnRecipient, DsnReport } from './dsn.js';
