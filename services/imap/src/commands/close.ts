/**
 * CLOSE — RFC 9051 §6.4.1: silently expunges \Deleted messages (not when read-only) and returns
 * to the authenticated state. UNSELECT — RFC 3691, RFC 9051 §6.4.2: the same without expunging.
 */
import { isPermissionDenied } from '../errors.js';
import type { CommandOf, Handler } from './context.js';
import { selectedOf } from './selection.js';

export const close: Handler<CommandOf<'CLOSE'>> = async (ctx, command) => {
  const { user, mailbox } = selectedOf(ctx);
  ctx.setState({ kind: 'authenticated', user });
  if (!mailbox.readOnly) {
    try {
      await ctx.services.mailstore.expunge({ userId: user.id, mailboxId: mailbox.id, uids: undefined });
    } catch (error) {
      // RFC 4314 §4 CLOSE: without "e" the expunge is ignored and CLOSE still succeeds.
      if (!isPermissionDenied(error)) throw error;
    }
  }
  return { tag: command.tag, condition: 'OK', text: 'CLOSE completed' };
};

export const unselect: Handler<CommandOf<'UNSELECT'>> = (ctx, command) => {
  const { user } = selectedOf(ctx);
  ctx.setState({ kind: 'authenticated', user });
  return Promise.resolve({ tag: command.tag, condition: 'OK', text: 'UNSELECT completed' });
};
