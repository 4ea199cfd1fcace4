/** LOGOUT — RFC 9051 §6.1.3: untagged BYE, then the tagged OK, then the server closes. */
import { serializeStatus } from '@postmesh/imap-protocol';
import type { CommandOf, Handler } from './context.js';

export const logout: Handler<CommandOf<'LOGOUT'>> = async (ctx, command) => {
  await ctx.send(serializeStatus({ tag: null, condition: 'BYE', text: 'Logging out' }));
  return { tag: command.tag, condition: 'OK', text: 'LOGOUT completed' };
};
