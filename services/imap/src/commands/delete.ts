/** DELETE — RFC 9051 §6.3.5. INBOX cannot be deleted (`NO [CANNOT]`); children are kept. */
import type { CommandOf, Handler } from './context.js';
import { userOf } from './selection.js';

export const deleteMailbox: Handler<CommandOf<'DELETE'>> = async (ctx, command) => {
  const user = userOf(ctx);
  await ctx.services.mailstore.deleteMailbox({
    userId: user.id,
    mailbox: { selector: { $case: 'path', value: command.mailbox } },
  });
  return { tag: command.tag, condition: 'OK', text: 'DELETE completed' };
};
