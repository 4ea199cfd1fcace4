/** NAMESPACE — RFC 9051 §6.3.10, RFC 2342 §5: one personal namespace, no shared ones. */
import { serializeNamespace } from '@postmesh/imap-protocol';
import type { CommandOf, Handler } from './context.js';

export const namespace: Handler<CommandOf<'NAMESPACE'>> = async (ctx, command) => {
  await ctx.send(serializeNamespace([{ prefix: '', delimiter: '/' }], [], [], { utf8: ctx.utf8 }));
  return { tag: command.tag, condition: 'OK', text: 'NAMESPACE completed' };
};
