/** LSUB — RFC 3501 §6.3.9 (IMAP4rev1; deprecated by RFC 9051 Appendix E but still used). */
import { serializeList } from '@postmesh/imap-protocol';
import type { CommandOf, Handler } from './context.js';
import { SPECIAL_USE_ATTRIBUTE } from './list.js';
import { userOf } from './selection.js';

export const lsub: Handler<CommandOf<'LSUB'>> = async (ctx, command) => {
  const user = userOf(ctx);
  const out: Uint8Array[] = [];
  if (command.pattern !== '') {
    const response = await ctx.services.mailstore.listMailboxes({
      userId: user.id,
      reference: command.reference,
      pattern: command.pattern,
      subscribedOnly: true,
      specialUse: [],
    });
    for (const mailbox of response.mailboxes) {
      const attributes = mailbox.nonexistent ? ['\\Noselect'] : [];
      const special = SPECIAL_USE_ATTRIBUTE[mailbox.specialUse];
      if (special !== undefined) attributes.push(special);
      out.push(
        serializeList({ kind: 'LSUB', attributes, delimiter: '/', name: mailbox.path }, { utf8: ctx.utf8 }),
      );
    }
  }
  await ctx.send(out);
  return { tag: command.tag, condition: 'OK', text: 'LSUB completed' };
};
