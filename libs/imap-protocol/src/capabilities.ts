/**
 * The capability list (RFC 9051 §6.1.1, §7.2.2): exactly what the imap server (services/imap)
 * implements. Here, not in imap, so that the IMAP proxy (services/imap-proxy) announces before
 * login what the backends it routes to announce, from the same list. Before TLS
 * the server offers STARTTLS and announces LOGINDISABLED (RFC 9051 §6.2.3, §11.1) unless
 * plaintext logins are allowed for development; AUTH= mechanisms appear only where they work.
 */
import type { SessionStateName } from './commands/parse.js';

export interface CapabilityInput {
  readonly state: SessionStateName;
  readonly tls: boolean;
  readonly starttls: boolean;
  readonly allowPlaintext: boolean;
  readonly appendLimit: number;
  /** COMPRESS is active (RFC 4978 §3: not offered again). */
  readonly compressed?: boolean;
}

const BASE = [
  'IMAP4rev2',
  'IMAP4rev1',
  // RFC 7888 §5: LITERAL+ once authenticated; replaced by LITERAL- (non-synchronizing literals
  // up to 4096 octets only) before, where only small literals are taken.
  'LITERAL+',
  'SASL-IR',
  'ENABLE',
  'IDLE',
  'NAMESPACE',
  'UIDPLUS',
  'MOVE',
  'UNSELECT',
  'CHILDREN',
  'SPECIAL-USE',
  // RFC 6154 §3: CREATE takes a USE list, so the server must say so.
  'CREATE-SPECIAL-USE',
  'LIST-EXTENDED',
  'LIST-STATUS',
  'ESEARCH',
  'ID',
  'BINARY',
  'STATUS=SIZE',
  'UTF8=ACCEPT',
  // RFC 4978
  'COMPRESS=DEFLATE',
  // RFC 9208 §3.1: one quota root per user, with the STORAGE and MESSAGE resources.
  'QUOTA',
  'QUOTA=RES-STORAGE',
  'QUOTA=RES-MESSAGE',
  // RFC 5256, RFC 5267 §3, RFC 5957
  'SORT',
  'SORT=DISPLAY',
  'ESORT',
  'THREAD=ORDEREDSUBJECT',
  'THREAD=REFERENCES',
  // RFC 5032: SEARCH OLDER / YOUNGER
  'WITHIN',
  // RFC 5182: SEARCH RETURN (SAVE) and `$`
  'SEARCHRES',
  // RFC 7162: per-message MODSEQ from storage's mailbox index; expunges leave tombstones, so
  // VANISHED (EARLIER) is exact.
  'CONDSTORE',
  'QRESYNC',
  // RFC 8970: FETCH PREVIEW from the first text part.
  'PREVIEW',
  // RFC 8474: MAILBOXID (SELECT, STATUS, CREATE), EMAILID and THREADID (FETCH, SEARCH).
  'OBJECTID',
  // RFC 4314 §5.1.1: ACL, with the rights beyond RFC 2086; storage enforces them
  // (docs/shared-mailboxes.md).
  'ACL',
  'RIGHTS=texk',
] as const;

export function capabilityList(input: CapabilityInput): string[] {
  const caps: string[] = [...BASE, `APPENDLIMIT=${input.appendLimit}`];
  if (input.compressed === true) caps.splice(caps.indexOf('COMPRESS=DEFLATE'), 1);
  if (input.state === 'notAuthenticated') {
    caps[caps.indexOf('LITERAL+')] = 'LITERAL-';
    if (!input.tls && input.starttls) caps.push('STARTTLS');
    if (input.tls || input.allowPlaintext) caps.push('AUTH=PLAIN', 'AUTH=LOGIN');
    else caps.push('LOGINDISABLED'); // RFC 9051 §6.2.3
  }
  return caps;
}
