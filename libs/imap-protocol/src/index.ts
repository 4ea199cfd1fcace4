/**
 * @postmesh/imap-protocol — the IMAP wire protocol without I/O: a streaming command receiver,
 * a parser into typed commands, and serializers for every response (RFC 9051 IMAP4rev2 and
 * RFC 3501 IMAP4rev1, with the extensions listed in README.md).
 */

// Receiving: bytes → commands
export {
  CommandReceiver,
  DEFAULT_RECEIVER_LIMITS,
  findLiteralMarker,
  type RawCommand,
  type ReceivedLiteral,
  type ReceiverError,
  type ReceiverErrorCode,
  type ReceiverEvent,
  type ReceiverLimits,
} from './receiver.js';
export { parseCommand, isIdleDone, COMMAND_STATES, type SessionStateName } from './commands/parse.js';
export { parseAuthenticateResponse, type AuthenticateResponse } from './commands/auth.js';
export { capabilityList, type CapabilityInput } from './capabilities.js';
export type * from './commands/types.js';
export { STATUS_ITEMS } from './commands/types.js';
export type { SyntaxResponseCode } from './syntax.js';

// Values shared by both directions
export {
  expandSequenceSet,
  formatNumberSet,
  formatRanges,
  formatSequenceSet,
  resolveSequenceSet,
  sequenceSetHas,
  type ResolvedRange,
  type SeqNumber,
  type SeqRange,
  type SequenceSet,
} from './sequence-set.js';
export {
  decodeMailboxName,
  decodeMutf7,
  encodeMailboxName,
  encodeMutf7,
  normalizeMailboxName,
  type Mutf7DecodeResult,
} from './mutf7.js';
export { compileListPattern } from './pattern.js';
export {
  formatDate,
  formatDateTime,
  parseDateText,
  parseDateTimeText,
  type ImapDate,
  type ImapDateTime,
} from './date.js';

// Serializing: typed responses → bytes
export {
  ResponseBuilder,
  canQuote,
  collectOutput,
  type LiteralData,
  type OutputChunk,
  type StreamedLiteral,
  type StringOptions,
} from './serialize/builder.js';
export {
  SIMPLE_RESPONSE_CODES,
  serializeContinuation,
  serializeStatus,
  type ResponseCode,
  type SimpleResponseCodeName,
  type StatusCondition,
  type StatusResponse,
  type UidSet,
} from './serialize/status.js';
export {
  serializeCapability,
  serializeEnabled,
  serializeEsearch,
  serializeExists,
  serializeExpunge,
  serializeFlags,
  serializeId,
  serializeList,
  serializeNamespace,
  serializeRecent,
  serializeSearch,
  serializeStatusData,
  serializeVanished,
  serializeSort,
  serializeThread,
  serializeQuota,
  serializeQuotaRoot,
  type QuotaResource,
  type ThreadNode,
  type EsearchResult,
  type ListExtendedItem,
  type ListResponse,
  type NamespaceDescriptor,
  type StatusValues,
} from './serialize/data.js';
export {
  serializeFetch,
  serializeEnvelope,
  writeFetch,
  formatSection,
  type FetchItem,
} from './serialize/fetch.js';
export { serializeAcl, serializeListRights, serializeMyRights, type AclPair } from './serialize/acl.js';
export { parseErrorResponse, receiverErrorResponse } from './serialize/errors.js';
export { writeBodyStructure, writeEnvelope } from './serialize/bodystructure.js';
