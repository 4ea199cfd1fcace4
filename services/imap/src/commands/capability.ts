/** CAPABILITY — RFC 9051 §6.1.1, §7.2.2. */
import { serializeCapability } from '@postmesh/imap-protocol';
import type { CommandOf, Handler } from './context.js';

export const capability: Handler<CommandOf<'CAPABILITY'>> = async (ctx, command) => {
  await ctx.send(serializeCapability(ctx.capabilities()));
  return { tag: command.tag, condition: 'OK', text: 'CAPABILITY completed' };
};
