/**
 * IDLE — RFC 2177, RFC 9051 §6.3.13: after `+ idling` the server pushes EXISTS / EXPUNGE /
 * FETCH FLAGS as changes arrive on `mailbox.changed.<userId>`, and also polls storage every
 * `idlePollMs` so a session that missed an event still converges (DESIGN §3). The client ends
 * it with `DONE`; anything else is answered `BAD`.
 */
import { isIdleDone, serializeContinuation } from '@postmesh/imap-protocol';
import type { CommandOf, Handler } from './context.js';

export const idle: Handler<CommandOf<'IDLE'>> = async (ctx, command) => {
  await ctx.send(serializeContinuation({ text: 'idling' }));
  // The client learns at once that IDLE started, before the first look at storage.
  await ctx.flush();
  await ctx.syncMailbox(true);
  for (;;) {
    if (ctx.hasBufferedInput()) {
      const raw = await ctx.readCommand();
      if (raw === null) return { tag: command.tag, condition: 'BAD', text: 'Connection closed' };
      if (isIdleDone(raw)) return { tag: command.tag, condition: 'OK', text: 'IDLE terminated' };
      return { tag: command.tag, condition: 'BAD', text: 'Expected DONE' };
    }
    const event = await ctx.waitForInputOrChanges(ctx.services.limits.idlePollMs);
    switch (event) {
      case 'closed':
        return { tag: command.tag, condition: 'BAD', text: 'Connection closed' };
      case 'changes':
        await ctx.syncMailbox(false);
        break;
      case 'timeout':
        await ctx.syncMailbox(true);
        break;
      case 'input':
        break;
    }
  }
};
