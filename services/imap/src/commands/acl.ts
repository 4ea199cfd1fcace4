/**
 * SETACL, DELETEACL, GETACL, LISTRIGHTS, MYRIGHTS — RFC 4314 §3.1-§3.5. Storage keeps the ACLs
 * and checks every right (the "a" right for all but MYRIGHTS, §4); this layer names the mailbox
 * through the session's namespaces (shared-mailstore.ts) and serializes the answers (§3.6-§3.8).
 * An unsupported right is BAD (§3.1 MUST); an unknown identifier or a missing right is NO.
 */
import type { mailstore } from '@postmesh/contracts';
import {
  serializeAcl,
  serializeListRights,
  serializeMyRights,
  type StatusResponse,
} from '@postmesh/imap-protocol';
import { ErrorReason, StorageError } from '../storage.js';
import { OTHER_USERS } from '../shared-mailstore.js';
import type { CommandContext, CommandOf, Handler } from './context.js';
import { userOf } from './selection.js';

const byPath = (path: string): mailstore.MailboxSelector => ({ selector: { $case: 'path', value: path } });

/** Refusals with a meaning for these commands; anything else goes to the session's mapping. */
function refused(tag: string, error: unknown): StatusResponse | undefined {
  if (!(error instanceof StorageError)) return undefined;
  if (error.reason === ErrorReason.INVALID_ARGUMENT && error.field === 'rights') {
    return { tag, condition: 'BAD', text: 'Unsupported right; this server knows lrswipkxtea and c, d' };
  }
  if (error.reason === ErrorReason.NOT_FOUND && error.field === 'identifier') {
    return { tag, condition: 'NO', text: 'No such user' };
  }
  if (error.reason === ErrorReason.NOT_FOUND) {
    return { tag, condition: 'NO', code: { code: 'NONEXISTENT' }, text: 'No such mailbox' };
  }
  if (error.reason === ErrorReason.NOT_ALLOWED && error.field === 'identifier') {
    return { tag, condition: 'NO', code: { code: 'CANNOT' }, text: "The owner's rights cannot change" };
  }
  return undefined;
}

async function answer(tag: string, done: string, run: () => Promise<void>): Promise<StatusResponse> {
  try {
    await run();
  } catch (error) {
    const response = refused(tag, error);
    if (response !== undefined) return response;
    throw error;
  }
  return { tag, condition: 'OK', text: `${done} completed` };
}

export const setAcl: Handler<CommandOf<'SETACL'>> = (ctx, command) =>
  answer(command.tag, 'SETACL', async () => {
    await ctx.services.mailstore.setMailboxAcl({
      userId: userOf(ctx).id,
      mailbox: byPath(command.mailbox),
      identifier: command.identifier,
      rights: command.rights,
    });
  });

export const deleteAcl: Handler<CommandOf<'DELETEACL'>> = (ctx, command) =>
  answer(command.tag, 'DELETEACL', async () => {
    await ctx.services.mailstore.deleteMailboxAcl({
      userId: userOf(ctx).id,
      mailbox: byPath(command.mailbox),
      identifier: command.identifier,
    });
  });

export const getAcl: Handler<CommandOf<'GETACL'>> = (ctx, command) =>
  answer(command.tag, 'GETACL', async () => {
    const acl = await ctx.services.mailstore.getMailboxAcl({
      userId: userOf(ctx).id,
      mailbox: byPath(command.mailbox),
    });
    await ctx.send(serializeAcl(command.mailbox, acl.entries, { utf8: ctx.utf8 }));
  });

export const listRights: Handler<CommandOf<'LISTRIGHTS'>> = (ctx, command) =>
  answer(command.tag, 'LISTRIGHTS', async () => {
    const rights = await ctx.services.mailstore.listMailboxRights({
      userId: userOf(ctx).id,
      mailbox: byPath(command.mailbox),
      identifier: command.identifier,
    });
    // RFC 4314 §3.4: the identifier exactly as the client sent it.
    await ctx.send(
      serializeListRights(command.mailbox, command.identifier, rights.required, rights.optional, {
        utf8: ctx.utf8,
      }),
    );
  });

export const myRights: Handler<CommandOf<'MYRIGHTS'>> = (ctx, command) =>
  answer(command.tag, 'MYRIGHTS', async () => {
    const rights = await ctx.services.mailstore.getMyRights({
      userId: userOf(ctx).id,
      mailbox: byPath(command.mailbox),
    });
    await ctx.send(serializeMyRights(command.mailbox, rights.rights, { utf8: ctx.utf8 }));
  });

/**
 * The user's rights on a shared mailbox as SELECT needs them (RFC 4314 §5.1.1 PERMANENTFLAGS,
 * §5.2 READ-ONLY); undefined for the user's own mailboxes, where every right is theirs.
 */
export async function sharedRights(ctx: CommandContext, mailbox: string): Promise<string | undefined> {
  if (!mailbox.startsWith(`${OTHER_USERS}/`)) return undefined;
  const { rights } = await ctx.services.mailstore.getMyRights({
    userId: userOf(ctx).id,
    mailbox: byPath(mailbox),
  });
  return rights;
}
