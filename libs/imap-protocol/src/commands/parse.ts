/**
 * Command dispatch — RFC 9051 §9 `command = tag SP (command-any / command-auth / command-nonauth
 * / command-select) CRLF` (and RFC 3501 §9): reads the tag and the command name, then hands the
 * rest to the parser of that command. Which commands a session state allows is the server's
 * decision; see `COMMAND_STATES` for the states RFC 9051 §6 lists.
 */
import type { RawCommand } from '../receiver.js';
import { isTagChar } from '../receiver.js';
import { Cursor, SyntaxFailure } from '../syntax.js';
import { parseDeleteAcl, parseGetAcl, parseListRights, parseMyRights, parseSetAcl } from './acl.js';
import { parseAppend } from './append.js';
import { parseAuthenticate, parseLogin } from './auth.js';
import { parseCopy } from './copy.js';
import { parseEnable } from './enable.js';
import { parseCompress, parseGetQuota, parseGetQuotaRoot, parseSort, parseThread } from './extensions.js';
import { parseFetch } from './fetch.js';
import { parseId } from './id.js';
import { parseList, parseLsub } from './list.js';
import { parseCreate, parseDelete, parseRename, parseSubscribe } from './mailbox.js';
import { parseSearch } from './search.js';
import { parseSelect } from './select.js';
import { parseStatus } from './status.js';
import { parseStore } from './store.js';
import type { Command, CommandName, CommandParseResult, ParseOptions } from './types.js';

export type SessionStateName = 'notAuthenticated' | 'authenticated' | 'selected' | 'logout';

const ANY: readonly SessionStateName[] = ['notAuthenticated', 'authenticated', 'selected'];
const NOT_AUTH: readonly SessionStateName[] = ['notAuthenticated'];
const AUTH: readonly SessionStateName[] = ['authenticated', 'selected'];
const SELECTED: readonly SessionStateName[] = ['selected'];

/** The states in which RFC 9051 §6.1-§6.4 (and the extensions) allow each command. */
export const COMMAND_STATES: Readonly<Record<CommandName, readonly SessionStateName[]>> = {
  CAPABILITY: ANY,
  NOOP: ANY,
  LOGOUT: ANY,
  ID: ANY,
  STARTTLS: NOT_AUTH,
  AUTHENTICATE: NOT_AUTH,
  LOGIN: NOT_AUTH,
  // RFC 9051 §6.3.1, RFC 5161 §3.1: ENABLE is only valid in the authenticated state.
  ENABLE: ['authenticated'],
  SELECT: AUTH,
  EXAMINE: AUTH,
  CREATE: AUTH,
  DELETE: AUTH,
  RENAME: AUTH,
  SUBSCRIBE: AUTH,
  UNSUBSCRIBE: AUTH,
  LIST: AUTH,
  LSUB: AUTH,
  NAMESPACE: AUTH,
  STATUS: AUTH,
  APPEND: AUTH,
  IDLE: AUTH,
  // RFC 3501 §6.4.1: CHECK is valid in the selected state (IMAP4rev1 clients still send it).
  CHECK: SELECTED,
  CLOSE: SELECTED,
  UNSELECT: SELECTED,
  EXPUNGE: SELECTED,
  'UID EXPUNGE': SELECTED,
  SEARCH: SELECTED,
  FETCH: SELECTED,
  STORE: SELECTED,
  COPY: SELECTED,
  MOVE: SELECTED,
  // RFC 4978 §3: after authentication (the server refuses it while it is already active).
  COMPRESS: AUTH,
  GETQUOTA: AUTH,
  GETQUOTAROOT: AUTH,
  // RFC 4314 §3: authenticated or selected state.
  SETACL: AUTH,
  DELETEACL: AUTH,
  GETACL: AUTH,
  LISTRIGHTS: AUTH,
  MYRIGHTS: AUTH,
  SORT: SELECTED,
  THREAD: SELECTED,
};

const NO_ARGUMENT = new Set([
  'CAPABILITY',
  'NOOP',
  'LOGOUT',
  'STARTTLS',
  'NAMESPACE',
  'IDLE',
  'CHECK',
  'CLOSE',
  'UNSELECT',
  'EXPUNGE',
] as const);
type NoArgumentName = typeof NO_ARGUMENT extends Set<infer K> ? K : never;

function isNoArgument(name: string): name is NoArgumentName {
  return (NO_ARGUMENT as ReadonlySet<string>).has(name);
}

/** Command names: letters, and `-`/digits for extensions. */
function isCommandChar(ch: number): boolean {
  return (
    (ch >= 0x41 && ch <= 0x5a) || (ch >= 0x61 && ch <= 0x7a) || ch === 0x2d || (ch >= 0x30 && ch <= 0x39)
  );
}

/**
 * Parses one received command. Never throws on any input: a syntax error is returned as a
 * value carrying the tag (when one could be read) and the reason.
 */
export function parseCommand(raw: RawCommand, options: ParseOptions = { utf8: false }): CommandParseResult {
  const c = new Cursor(raw);
  let tag: string | null = null;
  let name: string | null = null;
  try {
    tag = c.atom('tag', isTagChar);
    c.sp();
    name = c.atom('command name', isCommandChar).toUpperCase();
    const command = dispatch(c, tag, name, options);
    return { ok: true, command };
  } catch (e) {
    if (!(e instanceof SyntaxFailure)) throw e;
    return { ok: false, error: { tag, command: name, message: e.message, responseCode: e.responseCode } };
  }
}

function dispatch(c: Cursor, tag: string, name: string, options: ParseOptions): Command {
  if (isNoArgument(name)) {
    // RFC 9051 §9: these take no arguments; anything after the name is a syntax error.
    c.expectEnd();
    return { name, tag };
  }
  switch (name) {
    case 'ID':
      return finish(c, parseId(c, tag));
    case 'AUTHENTICATE':
      return parseAuthenticate(c, tag);
    case 'LOGIN':
      return parseLogin(c, tag);
    case 'ENABLE':
      return parseEnable(c, tag);
    case 'SELECT':
    case 'EXAMINE':
      return parseSelect(c, tag, name, options);
    case 'CREATE':
      return parseCreate(c, tag, options);
    case 'DELETE':
      return parseDelete(c, tag, options);
    case 'RENAME':
      return parseRename(c, tag, options);
    case 'SUBSCRIBE':
    case 'UNSUBSCRIBE':
      return parseSubscribe(c, tag, name, options);
    case 'LIST':
      return parseList(c, tag, options);
    case 'LSUB':
      return parseLsub(c, tag, options);
    case 'STATUS':
      return parseStatus(c, tag, options);
    case 'APPEND':
      return parseAppend(c, tag, options);
    case 'SEARCH':
      return parseSearch(c, tag, false);
    case 'FETCH':
      return parseFetch(c, tag, false);
    case 'STORE':
      return parseStore(c, tag, false);
    case 'COPY':
    case 'MOVE':
      return parseCopy(c, tag, name, false, options);
    case 'UID':
      return parseUid(c, tag, options);
    case 'COMPRESS':
      return parseCompress(c, tag);
    case 'GETQUOTA':
      return parseGetQuota(c, tag);
    case 'GETQUOTAROOT':
      return parseGetQuotaRoot(c, tag, options);
    case 'SETACL':
      return parseSetAcl(c, tag, options);
    case 'DELETEACL':
      return parseDeleteAcl(c, tag, options);
    case 'GETACL':
      return parseGetAcl(c, tag, options);
    case 'LISTRIGHTS':
      return parseListRights(c, tag, options);
    case 'MYRIGHTS':
      return parseMyRights(c, tag, options);
    case 'SORT':
      return parseSort(c, tag, false);
    case 'THREAD':
      return parseThread(c, tag, false);
    default:
      return c.fail(`unknown command ${name}`);
  }
}

function finish<T extends Command>(c: Cursor, command: T): T {
  c.expectEnd();
  return command;
}

/** uid = "UID" SP (copy / move / fetch / search / store / uid-expunge) — RFC 9051 §6.4.9. */
function parseUid(c: Cursor, tag: string, options: ParseOptions): Command {
  c.sp();
  const sub = c.atom('UID command', isCommandChar).toUpperCase();
  switch (sub) {
    case 'FETCH':
      return parseFetch(c, tag, true);
    case 'SEARCH':
      return parseSearch(c, tag, true);
    case 'STORE':
      return parseStore(c, tag, true);
    case 'COPY':
    case 'MOVE':
      return parseCopy(c, tag, sub, true, options);
    case 'SORT':
      return parseSort(c, tag, true);
    case 'THREAD':
      return parseThread(c, tag, true);
    case 'EXPUNGE': {
      c.sp();
      const uids = c.sequenceSet();
      c.expectEnd();
      return { name: 'UID EXPUNGE', tag, uids };
    }
    default:
      return c.fail(`unknown UID command ${sub}`);
  }
}

/**
 * The line that ends IDLE (RFC 9051 §6.3.13: "DONE", case-insensitive per §9 `idle`).
 * Anything else is a protocol error the server answers with `BAD` (and ends IDLE).
 */
export function isIdleDone(raw: RawCommand): boolean {
  const only = raw.lines.length === 1 ? raw.lines[0] : undefined;
  return only !== undefined && only.toString('latin1').toUpperCase() === 'DONE';
}
