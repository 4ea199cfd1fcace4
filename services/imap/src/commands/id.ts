/** ID — RFC 2971 §3.1-§3.3: the server answers with its own name and version. */
import { serializeId } from '@postmesh/imap-protocol';
import type { CommandOf, Handler } from './context.js';

export const id: Handler<CommandOf<'ID'>> = async (ctx, command) => {
  if (command.params !== null) {
    ctx.logger.debug({ client: Object.fromEntries(command.params) }, 'client ID');
  }
  await ctx.send(
    serializeId([
      ['name', ctx.services.serverName],
      ['vendor', 'Postmesh'],
      ['version', ctx.services.version],
    ]),
  );
  return { tag: command.tag, condition: 'OK', text: 'ID completed' };
};
