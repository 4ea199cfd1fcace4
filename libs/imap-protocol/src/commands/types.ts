/**
 * Typed client commands: RFC 9051 §6 and §9 `command`, RFC 3501 §6 and §9, and the extensions
 * named on each type. A command is a discriminated union on `name`.
 */
import type { ImapDate, ImapDateTime } from '../date.js';
import type { SequenceSet } from '../sequence-set.js';
import type { SyntaxResponseCode } from '../syntax.js';

interface Tagged {
  readonly tag: string;
}

// ---- Any state (RFC 9051 §6.1) --------------------------------------------------------------

export interface CapabilityCommand extends Tagged {
  readonly name: 'CAPABILITY';
}
export interface NoopCommand extends Tagged {
  readonly name: 'NOOP';
}
export interface LogoutCommand extends Tagged {
  readonly name: 'LOGOUT';
}
/** RFC 2971 §3.1: `ID ("name" "value" ...)` or `ID NIL`. */
export interface IdCommand extends Tagged {
  readonly name: 'ID';
  /** null for `ID NIL`; values are null for NIL. */
  readonly params: readonly (readonly [field: string, value: string | null])[] | null;
}

// ---- Not authenticated (RFC 9051 §6.2) ------------------------------------------------------

export interface StarttlsCommand extends Tagged {
  readonly name: 'STARTTLS';
}
/** RFC 9051 §6.2.2; SASL-IR initial response (RFC 4959 §3). */
export interface AuthenticateCommand extends Tagged {
  readonly name: 'AUTHENTICATE';
  /** Upper-cased mechanism name. */
  readonly mechanism: string;
  /**
   * The initial response: `null` when absent, an empty buffer for `=` (RFC 4959 §3),
   * otherwise the decoded BASE64.
   */
  readonly initialResponse: Buffer | null;
}
export interface LoginCommand extends Tagged {
  readonly name: 'LOGIN';
  readonly username: string;
  readonly password: string;
}

// ---- Authenticated (RFC 9051 §6.3) ----------------------------------------------------------

/** RFC 5161 §3.1 */
export interface EnableCommand extends Tagged {
  readonly name: 'ENABLE';
  /** Upper-cased capability names. */
  readonly capabilities: readonly string[];
}

/** RFC 7162 §3.2.5.2 / §3.2.7: `(QRESYNC (uidvalidity modseq [known-uids [seq-match]]))`. */
export interface QresyncParams {
  readonly uidValidity: number;
  readonly modseq: bigint;
  readonly knownUids: SequenceSet | null;
  readonly sequenceMatch: { readonly sequences: SequenceSet; readonly uids: SequenceSet } | null;
}

/** RFC 9051 §6.3.2-§6.3.3; select-param (RFC 4466 §2.1): CONDSTORE (RFC 7162 §3.1.8), QRESYNC. */
export interface SelectCommand extends Tagged {
  readonly name: 'SELECT' | 'EXAMINE';
  readonly mailbox: string;
  readonly condstore: boolean;
  readonly qresync: QresyncParams | null;
}

export interface CreateCommand extends Tagged {
  readonly name: 'CREATE';
  readonly mailbox: string;
  /** RFC 6154 §3: `CREATE name (USE (\Drafts))`. */
  readonly specialUse: readonly string[];
}
export interface DeleteCommand extends Tagged {
  readonly name: 'DELETE';
  readonly mailbox: string;
}
export interface RenameCommand extends Tagged {
  readonly name: 'RENAME';
  readonly from: string;
  readonly to: string;
}
export interface SubscribeCommand extends Tagged {
  readonly name: 'SUBSCRIBE' | 'UNSUBSCRIBE';
  readonly mailbox: string;
}

export const STATUS_ITEMS = [
  'MESSAGES',
  'UIDNEXT',
  'UIDVALIDITY',
  'UNSEEN',
  'DELETED',
  'SIZE',
  'RECENT',
  'HIGHESTMODSEQ',
  'APPENDLIMIT',
  'MAILBOXID',
] as const;
/**
 * RFC 9051 §6.3.11 status-att; SIZE (RFC 8438), RECENT (RFC 3501 only), HIGHESTMODSEQ
 * (RFC 7162 §3.1.6), APPENDLIMIT (RFC 7889), MAILBOXID (RFC 8474 §4.2).
 */
export type StatusItem = (typeof STATUS_ITEMS)[number];

/** RFC 5258 §3.1 selection options (upper-cased); SPECIAL-USE from RFC 6154 §3. */
export type ListSelectionOption = 'SUBSCRIBED' | 'REMOTE' | 'RECURSIVEMATCH' | 'SPECIAL-USE';

/** RFC 5258 §3.2 return options; STATUS from RFC 5819 §2, SPECIAL-USE from RFC 6154 §3. */
export type ListReturnOption =
  | { readonly option: 'SUBSCRIBED' | 'CHILDREN' | 'SPECIAL-USE' }
  | { readonly option: 'STATUS'; readonly items: readonly StatusItem[] };

/** RFC 9051 §6.3.9; LIST-EXTENDED RFC 5258 §3. */
export interface ListCommand extends Tagged {
  readonly name: 'LIST';
  readonly reference: string;
  /** One or more patterns (RFC 5258 §3 allows a parenthesized list). */
  readonly patterns: readonly string[];
  readonly selectionOptions: readonly ListSelectionOption[];
  readonly returnOptions: readonly ListReturnOption[];
  /** True when the client used any LIST-EXTENDED syntax (RFC 5258 §3: "extended LIST"). */
  readonly extended: boolean;
}
/** RFC 3501 §6.3.9 (deprecated in RFC 9051 Appendix E). */
export interface LsubCommand extends Tagged {
  readonly name: 'LSUB';
  readonly reference: string;
  readonly pattern: string;
}
/** RFC 2342, RFC 9051 §6.3.10 */
export interface NamespaceCommand extends Tagged {
  readonly name: 'NAMESPACE';
}
export interface StatusCommand extends Tagged {
  readonly name: 'STATUS';
  readonly mailbox: string;
  readonly items: readonly StatusItem[];
}
/** RFC 9051 §6.3.12; literal8 (RFC 3516 §4.4); UTF8 data item (RFC 6855 §4). */
export interface AppendCommand extends Tagged {
  readonly name: 'APPEND';
  readonly mailbox: string;
  readonly flags: readonly string[];
  readonly internalDate: ImapDateTime | null;
  readonly message: Buffer;
  /** The message came as literal8 (`~{N}`), so it may contain NUL and binary content. */
  readonly binary: boolean;
  /** RFC 6855 §4 `UTF8 (~{N})`. */
  readonly utf8: boolean;
}
/** RFC 2177, RFC 9051 §6.3.13; the client ends it with a `DONE` line (see `parseIdleDone`). */
export interface IdleCommand extends Tagged {
  readonly name: 'IDLE';
}

// ---- Selected (RFC 9051 §6.4) ---------------------------------------------------------------

/** RFC 3501 §6.4.1 CHECK (IMAP4rev1; RFC 9051 Appendix E folds it into NOOP). */
export interface CheckCommand extends Tagged {
  readonly name: 'CHECK';
}
export interface CloseCommand extends Tagged {
  readonly name: 'CLOSE';
}
export interface UnselectCommand extends Tagged {
  readonly name: 'UNSELECT';
}
export interface ExpungeCommand extends Tagged {
  readonly name: 'EXPUNGE';
}
/** RFC 4315 §2.1, RFC 9051 §6.4.9 */
export interface UidExpungeCommand extends Tagged {
  readonly name: 'UID EXPUNGE';
  readonly uids: SequenceSet;
}

/** SEARCH keys (RFC 9051 §6.4.4 and §9 `search-key`; RFC 3501 NEW/OLD/RECENT; RFC 7162 MODSEQ). */
export type SearchKey =
  | {
      readonly key:
        | 'ALL'
        | 'ANSWERED'
        | 'DELETED'
        | 'DRAFT'
        | 'FLAGGED'
        | 'SEEN'
        | 'UNANSWERED'
        | 'UNDELETED'
        | 'UNDRAFT'
        | 'UNFLAGGED'
        | 'UNSEEN'
        | 'NEW'
        | 'OLD'
        | 'RECENT';
    }
  | { readonly key: 'BCC' | 'BODY' | 'CC' | 'FROM' | 'SUBJECT' | 'TEXT' | 'TO'; readonly value: string }
  | {
      readonly key: 'BEFORE' | 'ON' | 'SINCE' | 'SENTBEFORE' | 'SENTON' | 'SENTSINCE';
      readonly date: ImapDate;
    }
  | { readonly key: 'HEADER'; readonly field: string; readonly value: string }
  | { readonly key: 'KEYWORD' | 'UNKEYWORD'; readonly flag: string }
  | { readonly key: 'LARGER' | 'SMALLER'; readonly size: number }
  | { readonly key: 'UID' | 'SEQUENCE'; readonly set: SequenceSet }
  | { readonly key: 'NOT'; readonly operand: SearchKey }
  | { readonly key: 'OR'; readonly left: SearchKey; readonly right: SearchKey }
  /** A parenthesized list, or the top-level list: all must match. */
  | { readonly key: 'AND'; readonly operands: readonly SearchKey[] }
  /** RFC 7162 §3.1.5 (entry name and type are parsed but only the modseq is kept). */
  | { readonly key: 'MODSEQ'; readonly modseq: bigint }
  /** RFC 5032 §3 */
  | { readonly key: 'OLDER' | 'YOUNGER'; readonly seconds: number }
  /** RFC 8474 §6 */
  | { readonly key: 'EMAILID' | 'THREADID'; readonly id: string };

/** RFC 4731 §3.1 / RFC 9051 §6.4.4 search-return-opt; SAVE from RFC 5182. */
export type SearchReturnOption = 'MIN' | 'MAX' | 'ALL' | 'COUNT' | 'SAVE';

export interface SearchCommand extends Tagged {
  readonly name: 'SEARCH';
  readonly uid: boolean;
  /** Upper-cased CHARSET, or null when absent (US-ASCII / UTF-8, RFC 9051 §6.4.4). */
  readonly charset: string | null;
  /**
   * `RETURN (...)` options; null without RETURN (a plain SEARCH, untagged `SEARCH` answer).
   * An empty list means `ALL` (RFC 4731 §3.1), answered with ESEARCH.
   */
  readonly returnOptions: readonly SearchReturnOption[] | null;
  /** The criteria: always an `AND` of the top-level keys. */
  readonly criteria: SearchKey & { readonly key: 'AND' };
}

/** section-text and section-part (RFC 9051 §9 `section-spec`). */
export type SectionText =
  | { readonly kind: 'none' }
  | { readonly kind: 'HEADER' }
  | { readonly kind: 'TEXT' }
  | { readonly kind: 'MIME' }
  | { readonly kind: 'HEADER.FIELDS' | 'HEADER.FIELDS.NOT'; readonly fields: readonly string[] };

export interface Section {
  /** The part numbers (`1.2` is `[1, 2]`); empty for the whole message. */
  readonly part: readonly number[];
  readonly text: SectionText;
}

/** `<origin.length>` (RFC 9051 §6.4.5 partial). */
export interface Partial {
  readonly origin: number;
  readonly length: number;
}

/**
 * FETCH data items (RFC 9051 §6.4.5; BINARY from RFC 3516 §4.2; MODSEQ from RFC 7162 §3.1.4.1;
 * PREVIEW from RFC 8970 §3; EMAILID and THREADID from RFC 8474 §5).
 */
export type FetchAttribute =
  | {
      readonly kind:
        | 'FLAGS'
        | 'INTERNALDATE'
        | 'RFC822.SIZE'
        | 'ENVELOPE'
        | 'BODY'
        | 'BODYSTRUCTURE'
        | 'UID'
        | 'RFC822'
        | 'RFC822.HEADER'
        | 'RFC822.TEXT'
        | 'MODSEQ'
        | 'EMAILID'
        | 'THREADID';
    }
  | {
      readonly kind: 'BODY[]';
      readonly section: Section;
      readonly partial: Partial | null;
      /** BODY.PEEK: do not set \Seen. */
      readonly peek: boolean;
    }
  | {
      readonly kind: 'BINARY[]';
      readonly part: readonly number[];
      readonly partial: Partial | null;
      readonly peek: boolean;
    }
  | { readonly kind: 'BINARY.SIZE'; readonly part: readonly number[] }
  /** RFC 8970 §3: PREVIEW, with the LAZY modifier (the server may answer NIL for now). */
  | { readonly kind: 'PREVIEW'; readonly lazy: boolean };

export type FetchMacro = 'ALL' | 'FAST' | 'FULL';

export interface FetchCommand extends Tagged {
  readonly name: 'FETCH';
  readonly uid: boolean;
  readonly set: SequenceSet;
  /** Macros are expanded here (RFC 9051 §6.4.5); `macro` says which one was used. */
  readonly attributes: readonly FetchAttribute[];
  readonly macro: FetchMacro | null;
  /** RFC 7162 §3.1.4.1 CHANGEDSINCE. */
  readonly changedSince: bigint | null;
  /** RFC 7162 §3.2.6 VANISHED (UID FETCH only). */
  readonly vanished: boolean;
}

/** RFC 9051 §6.4.6; UNCHANGEDSINCE from RFC 7162 §3.1.3. */
export interface StoreCommand extends Tagged {
  readonly name: 'STORE';
  readonly uid: boolean;
  readonly set: SequenceSet;
  readonly operation: 'replace' | 'add' | 'remove';
  readonly silent: boolean;
  readonly flags: readonly string[];
  readonly unchangedSince: bigint | null;
}

/** RFC 9051 §6.4.7 COPY, §6.4.8 MOVE (RFC 6851). */
export interface CopyCommand extends Tagged {
  readonly name: 'COPY' | 'MOVE';
  readonly uid: boolean;
  readonly set: SequenceSet;
  readonly mailbox: string;
}

/** RFC 4978 §3: `COMPRESS DEFLATE`. */
export interface CompressCommand extends Tagged {
  readonly name: 'COMPRESS';
  /** Upper-cased mechanism name. */
  readonly mechanism: string;
}

/** RFC 9208 §4.2: `GETQUOTA quota-root`. */
export interface GetQuotaCommand extends Tagged {
  readonly name: 'GETQUOTA';
  readonly root: string;
}

/** RFC 9208 §4.3: `GETQUOTAROOT mailbox`. */
export interface GetQuotaRootCommand extends Tagged {
  readonly name: 'GETQUOTAROOT';
  readonly mailbox: string;
}

/** RFC 4314 §3.1: `SETACL mailbox identifier mod-rights`. */
export interface SetAclCommand extends Tagged {
  readonly name: 'SETACL';
  readonly mailbox: string;
  readonly identifier: string;
  /** As sent: optional `+`/`-`, then rights letters. */
  readonly rights: string;
}

/** RFC 4314 §3.2: `DELETEACL mailbox identifier`. */
export interface DeleteAclCommand extends Tagged {
  readonly name: 'DELETEACL';
  readonly mailbox: string;
  readonly identifier: string;
}

/** RFC 4314 §3.3: `GETACL mailbox`. */
export interface GetAclCommand extends Tagged {
  readonly name: 'GETACL';
  readonly mailbox: string;
}

/** RFC 4314 §3.4: `LISTRIGHTS mailbox identifier`. */
export interface ListRightsCommand extends Tagged {
  readonly name: 'LISTRIGHTS';
  readonly mailbox: string;
  readonly identifier: string;
}

/** RFC 4314 §3.5: `MYRIGHTS mailbox`. */
export interface MyRightsCommand extends Tagged {
  readonly name: 'MYRIGHTS';
  readonly mailbox: string;
}

/** RFC 5256 §3 sort keys; DISPLAYFROM / DISPLAYTO from RFC 5957 §3. */
export type SortKey =
  'ARRIVAL' | 'CC' | 'DATE' | 'FROM' | 'SIZE' | 'SUBJECT' | 'TO' | 'DISPLAYFROM' | 'DISPLAYTO';

export interface SortCriterion {
  readonly key: SortKey;
  readonly reverse: boolean;
}

/** RFC 5256 §3 SORT, RFC 5267 §3.2 ESORT (`SORT RETURN (...)`). */
export interface SortCommand extends Tagged {
  readonly name: 'SORT';
  readonly uid: boolean;
  readonly criteria: readonly SortCriterion[];
  /** Upper-cased; SORT always names one (RFC 5256 §3). */
  readonly charset: string;
  /** ESORT return options (RFC 5267 §3.2; SAVE from RFC 5182 is not offered with SORT). */
  readonly returnOptions: readonly SearchReturnOption[] | null;
  readonly search: SearchKey & { readonly key: 'AND' };
}

/** RFC 5256 §3 THREAD: ORDEREDSUBJECT or REFERENCES. */
export interface ThreadCommand extends Tagged {
  readonly name: 'THREAD';
  readonly uid: boolean;
  readonly algorithm: 'ORDEREDSUBJECT' | 'REFERENCES';
  readonly charset: string;
  readonly search: SearchKey & { readonly key: 'AND' };
}

export type Command =
  | SetAclCommand
  | DeleteAclCommand
  | GetAclCommand
  | ListRightsCommand
  | MyRightsCommand
  | CompressCommand
  | GetQuotaCommand
  | GetQuotaRootCommand
  | SortCommand
  | ThreadCommand
  | CapabilityCommand
  | NoopCommand
  | LogoutCommand
  | IdCommand
  | StarttlsCommand
  | AuthenticateCommand
  | LoginCommand
  | EnableCommand
  | SelectCommand
  | CreateCommand
  | DeleteCommand
  | RenameCommand
  | SubscribeCommand
  | ListCommand
  | LsubCommand
  | NamespaceCommand
  | StatusCommand
  | AppendCommand
  | IdleCommand
  | CheckCommand
  | CloseCommand
  | UnselectCommand
  | ExpungeCommand
  | UidExpungeCommand
  | SearchCommand
  | FetchCommand
  | StoreCommand
  | CopyCommand;

export type CommandName = Command['name'];

/** What the parser needs to know about the session. */
export interface ParseOptions {
  /**
   * Mailbox names are UTF-8 (IMAP4rev2 or UTF8=ACCEPT enabled, RFC 9051 §5.1, RFC 6855 §3);
   * otherwise they are modified UTF-7 (RFC 3501 §5.1.3) and decoded here.
   */
  readonly utf8: boolean;
}

/** A command that could not be parsed: answer `<tag> BAD <message>` (or `* BAD` without a tag). */
export interface CommandParseError {
  readonly tag: string | null;
  /** The command name when it was recognised. */
  readonly command: string | null;
  readonly message: string;
  /** A code to send with the response (e.g. `NO [BADCHARSET (UTF-8)]` for an unknown charset). */
  readonly responseCode: SyntaxResponseCode | null;
}

export type CommandParseResult =
  | { readonly ok: true; readonly command: Command }
  | { readonly ok: false; readonly error: CommandParseError };
