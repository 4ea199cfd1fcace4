/**
 * Status responses — RFC 9051 §7.1 (OK, NO, BAD, PREAUTH, BYE), `resp-text-code` of §7.1 and §9;
 * RFC 5530 §3 response codes; UIDPLUS APPENDUID/COPYUID (RFC 4315 §3, RFC 9051 §7.1);
 * CONDSTORE/QRESYNC codes (RFC 7162 §3.1.2, §3.1.3, §3.2.7, §3.2.11); BADCHARSET (§6.4.4);
 * TOOBIG (RFC 7888 §4, RFC 4469 §6); and the command continuation request (§7.5).
 */
import { formatRanges, formatSequenceSet, type ResolvedRange, type SequenceSet } from '../sequence-set.js';
import { ResponseBuilder, isAtom, type StringOptions } from './builder.js';

/** Response codes without arguments (RFC 9051 §7.1, RFC 5530 §3, and extensions). */
export const SIMPLE_RESPONSE_CODES = [
  'ALERT',
  'PARSE',
  'READ-ONLY',
  'READ-WRITE',
  'TRYCREATE',
  'UIDNOTSTICKY',
  'CLOSED',
  'NOMODSEQ',
  'TOOBIG',
  'UNKNOWN-CTE',
  'HASCHILDREN',
  'NOTSAVED',
  'UNAVAILABLE',
  'AUTHENTICATIONFAILED',
  'AUTHORIZATIONFAILED',
  'EXPIRED',
  'PRIVACYREQUIRED',
  'CONTACTADMIN',
  'NOPERM',
  'INUSE',
  'EXPUNGEISSUED',
  'CORRUPTION',
  'SERVERBUG',
  'CLIENTBUG',
  'CANNOT',
  'LIMIT',
  'OVERQUOTA',
  'ALREADYEXISTS',
  'NONEXISTENT',
  // RFC 4978 §3: COMPRESS while compression is already active.
  'COMPRESSIONACTIVE',
  // RFC 6154 §3, §6: CREATE with a special use the server cannot give that mailbox.
  'USEATTR',
] as const;
export type SimpleResponseCodeName = (typeof SIMPLE_RESPONSE_CODES)[number];

/** A set of UIDs in a response code: concrete ranges (`4:6,9`). */
export type UidSet = readonly ResolvedRange[];

export type ResponseCode =
  | { readonly code: SimpleResponseCodeName }
  | { readonly code: 'UIDNEXT' | 'UIDVALIDITY' | 'UNSEEN'; readonly value: number }
  | { readonly code: 'HIGHESTMODSEQ'; readonly value: bigint | number }
  | { readonly code: 'PERMANENTFLAGS'; readonly flags: readonly string[] }
  | { readonly code: 'CAPABILITY'; readonly capabilities: readonly string[] }
  | { readonly code: 'BADCHARSET'; readonly charsets: readonly string[] }
  /** RFC 4315 §3: `APPENDUID uidvalidity uid-set`. */
  | { readonly code: 'APPENDUID'; readonly uidValidity: number; readonly uids: UidSet }
  /** RFC 4315 §3: `COPYUID uidvalidity source-uids destination-uids`, in matching order. */
  | {
      readonly code: 'COPYUID';
      readonly uidValidity: number;
      readonly source: UidSet;
      readonly destination: UidSet;
    }
  /** RFC 7162 §3.1.3: the messages that failed UNCHANGEDSINCE. */
  | { readonly code: 'MODIFIED'; readonly set: SequenceSet | UidSet }
  /** RFC 7889 §4 */
  | { readonly code: 'APPENDLIMIT'; readonly limit: number }
  /** RFC 8474 §4.1, §4.2: `MAILBOXID (<objectid>)` after CREATE and in SELECT/EXAMINE. */
  | { readonly code: 'MAILBOXID'; readonly id: string };

export type StatusCondition = 'OK' | 'NO' | 'BAD' | 'PREAUTH' | 'BYE';

export interface StatusResponse {
  /** The command tag, or null for an untagged (`*`) response. */
  readonly tag: string | null;
  readonly condition: StatusCondition;
  readonly code?: ResponseCode | null;
  /** Human-readable text; CR, LF and NUL are replaced so it stays one line. */
  readonly text: string;
}

const DEFAULT_OPTIONS: StringOptions = { utf8: false };

/** `<tag|*> <OK|NO|BAD|PREAUTH|BYE> [<code>] <text>\r\n` */
export function serializeStatus(response: StatusResponse, options: StringOptions = DEFAULT_OPTIONS): Buffer {
  const b = new ResponseBuilder(options);
  // RFC 9051 §7.1.4, §7.1.5: PREAUTH and BYE are always untagged.
  const untagged = response.condition === 'PREAUTH' || response.condition === 'BYE';
  b.text(response.tag === null || untagged ? '*' : assertTag(response.tag))
    .sp()
    .atom(response.condition)
    .sp();
  if (response.code) {
    b.text('[');
    writeResponseCode(b, response.code);
    b.text('] ');
  }
  b.text(sanitizeText(response.text, options.utf8)).crlf();
  return b.bytes();
}

function assertTag(tag: string): string {
  if (!/^[\x21-\x7e]+$/.test(tag) || /[(){%*"\\+]/.test(tag)) throw new RangeError(`invalid tag ${tag}`);
  return tag;
}

/** RFC 9051 §9 `text`: 1*TEXT-CHAR (no CR/LF), UTF-8 only when enabled. Never empty. */
export function sanitizeText(text: string, utf8: boolean): string {
  // eslint-disable-next-line no-control-regex
  let clean = text.replace(/[\x00-\x1f\x7f]/g, ' ');
  if (!utf8) clean = clean.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > 0 ? clean : 'done';
}

export function writeResponseCode(b: ResponseBuilder, rc: ResponseCode): void {
  switch (rc.code) {
    case 'UIDNEXT':
    case 'UIDVALIDITY':
    case 'UNSEEN':
    case 'HIGHESTMODSEQ':
      b.atom(rc.code).sp().number(rc.value);
      return;
    case 'PERMANENTFLAGS':
      b.atom('PERMANENTFLAGS ').text(`(${rc.flags.map(checkFlag).join(' ')})`);
      return;
    case 'CAPABILITY':
      b.atom('CAPABILITY');
      for (const cap of rc.capabilities) b.sp().atom(checkAtom(cap));
      return;
    case 'BADCHARSET':
      b.atom('BADCHARSET');
      if (rc.charsets.length > 0) {
        b.text(' (');
        rc.charsets.forEach((cs, i) => {
          if (i > 0) b.sp();
          b.astring(cs);
        });
        b.text(')');
      }
      return;
    case 'APPENDUID':
      b.atom('APPENDUID').sp().number(rc.uidValidity).sp().text(formatRanges(rc.uids));
      return;
    case 'COPYUID':
      b.atom('COPYUID')
        .sp()
        .number(rc.uidValidity)
        .sp()
        .text(formatRanges(rc.source))
        .sp()
        .text(formatRanges(rc.destination));
      return;
    case 'MODIFIED':
      b.atom('MODIFIED')
        .sp()
        .text('kind' in rc.set ? formatSequenceSet(rc.set) : formatRanges(rc.set));
      return;
    case 'APPENDLIMIT':
      b.atom('APPENDLIMIT').sp().number(rc.limit);
      return;
    case 'MAILBOXID':
      b.atom('MAILBOXID (').atom(checkAtom(rc.id)).text(')');
      return;
    default:
      b.atom(rc.code);
  }
}

/** A flag as it goes on the wire: `\System` flags, keywords, and `\*` (PERMANENTFLAGS). */
export function checkFlag(flag: string): string {
  if (flag === '\\*') return flag;
  const name = flag.startsWith('\\') ? flag.slice(1) : flag;
  return `${flag.startsWith('\\') ? '\\' : ''}${checkAtom(name)}`;
}

function checkAtom(value: string): string {
  // Serializers never produce invalid syntax: a bad flag or capability is a programming error.
  if (!isAtom(value)) throw new RangeError(`not an atom: ${JSON.stringify(value)}`);
  return value;
}

/**
 * Command continuation request (RFC 9051 §7.5): `+ <text>\r\n`, or `+ <base64>\r\n` for a SASL
 * challenge (§6.2.2).
 */
export function serializeContinuation(
  content: { readonly text: string } | { readonly base64: Uint8Array } = { text: 'Ready' },
): Buffer {
  if ('base64' in content) {
    return Buffer.from(`+ ${Buffer.from(content.base64).toString('base64')}\r\n`, 'latin1');
  }
  return Buffer.from(`+ ${sanitizeText(content.text, false)}\r\n`, 'latin1');
}
