/**
 * The dispatch table: command name → handler and when unsolicited mailbox updates may follow it.
 * The states each command is allowed in come from `COMMAND_STATES` (RFC 9051 §6.1-§6.4) in
 * @postmesh/imap-protocol; the session checks them before calling a handler.
 *
 * Update policy (RFC 9051 §7.5.1): no EXPUNGE (and, to keep numbering simple, no other update)
 * while answering FETCH, STORE, SEARCH or COPY by sequence number; their UID forms, NOOP and
 * the mailbox commands may carry pending updates; NOOP always polls storage.
 */
import type { Command, CommandName, StatusResponse } from '@postmesh/imap-protocol';
import { deleteAcl, getAcl, listRights, myRights, setAcl } from './acl.js';
import { append } from './append.js';
import { authenticateCommand } from './authenticate.js';
import { capability } from './capability.js';
import { close, unselect } from './close.js';
import { compress } from './compress.js';
import type { CommandContext, UpdatePolicy } from './context.js';
import { copy } from './copy.js';
import { create } from './create.js';
import { deleteMailbox } from './delete.js';
import { enable } from './enable.js';
import { expunge } from './expunge.js';
import { fetch } from './fetch.js';
import { id } from './id.js';
import { idle } from './idle.js';
import { list } from './list.js';
import { login } from './login.js';
import { logout } from './logout.js';
import { lsub } from './lsub.js';
import { namespace } from './namespace.js';
import { check, noop } from './noop.js';
import { getQuota, getQuotaRoot } from './quota.js';
import { rename } from './rename.js';
import { search } from './search.js';
import { select } from './select.js';
import { sort, thread } from './sort.js';
import { starttls } from './starttls.js';
import { status } from './status.js';
import { store } from './store.js';
import { subscribe } from './subscribe.js';

export interface CommandEntry<C extends Command = Command> {
  readonly run: (ctx: CommandContext, command: C) => Promise<StatusResponse>;
  readonly updates: (command: C) => UpdatePolicy;
}

type Table = { readonly [N in CommandName]: CommandEntry<Extract<Command, { name: N }>> };

const pending = (): UpdatePolicy => 'pending';
const never = (): UpdatePolicy => 'none';
const byUid = (command: { readonly uid: boolean }): UpdatePolicy => (command.uid ? 'pending' : 'none');

const TABLE: Table = {
  CAPABILITY: { run: capability, updates: pending },
  NOOP: { run: noop, updates: () => 'always' },
  LOGOUT: { run: logout, updates: never },
  ID: { run: id, updates: pending },
  STARTTLS: { run: starttls, updates: never },
  AUTHENTICATE: { run: authenticateCommand, updates: never },
  LOGIN: { run: login, updates: never },
  ENABLE: { run: enable, updates: never },
  SELECT: { run: select, updates: never },
  EXAMINE: { run: select, updates: never },
  CREATE: { run: create, updates: pending },
  DELETE: { run: deleteMailbox, updates: pending },
  RENAME: { run: rename, updates: pending },
  SUBSCRIBE: { run: subscribe, updates: pending },
  UNSUBSCRIBE: { run: subscribe, updates: pending },
  LIST: { run: list, updates: pending },
  LSUB: { run: lsub, updates: pending },
  NAMESPACE: { run: namespace, updates: pending },
  STATUS: { run: status, updates: pending },
  APPEND: { run: append, updates: pending },
  IDLE: { run: idle, updates: never },
  CHECK: { run: check, updates: () => 'always' },
  CLOSE: { run: close, updates: never },
  UNSELECT: { run: unselect, updates: never },
  EXPUNGE: { run: expunge, updates: pending },
  'UID EXPUNGE': { run: expunge, updates: pending },
  SEARCH: { run: search, updates: byUid },
  FETCH: { run: fetch, updates: byUid },
  STORE: { run: store, updates: byUid },
  COPY: { run: copy, updates: byUid },
  MOVE: { run: copy, updates: byUid },
  COMPRESS: { run: compress, updates: never },
  GETQUOTA: { run: getQuota, updates: pending },
  GETQUOTAROOT: { run: getQuotaRoot, updates: pending },
  SORT: { run: sort, updates: byUid },
  THREAD: { run: thread, updates: byUid },
  SETACL: { run: setAcl, updates: pending },
  DELETEACL: { run: deleteAcl, updates: pending },
  GETACL: { run: getAcl, updates: pending },
  LISTRIGHTS: { run: listRights, updates: pending },
  MYRIGHTS: { run: myRights, updates: pending },
};

/** Looked up by the parsed command's name; the cast is safe because the table is keyed by it. */
export const COMMANDS = TABLE as unknown as Readonly<Record<CommandName, CommandEntry>>;
