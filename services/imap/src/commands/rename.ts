/** RENAME — RFC 9051 §6.3.6 (renaming INBOX moves its messages, done by storage). */
import type { CommandOf, Handler } from './context.js';
import { userOf } from './selection.js';

export const rename: Handler<CommandOf<'RENAME'>> = async (ctx, command) => {
  const user = userOf(ctx);
  await ctx.services.mailstore.renameMailbox({
    userId: user.id,
    mailbox: { selector: { $case: 'path', value: command.from } },
    newPath: command.to,
  });
  return { tag: command.tag, condition: 'OK', text: 'RENAME completed' };
};
