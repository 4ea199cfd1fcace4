/** SUBSCRIBE and UNSUBSCRIBE — RFC 9051 §6.3.7, §6.3.8. */
import type { CommandOf, Handler } from './context.js';
import { userOf } from './selection.js';

export const subscribe: Handler<CommandOf<'SUBSCRIBE' | 'UNSUBSCRIBE'>> = async (ctx, command) => {
  const user = userOf(ctx);
  await ctx.services.mailstore.setSubscribed({
    userId: user.id,
    path: command.mailbox,
    subscribed: command.name === 'SUBSCRIBE',
  });
  return { tag: command.tag, condition: 'OK', text: `${command.name} completed` };
};
