/**
 * EXPUNGE — RFC 9051 §6.4.3 and UID EXPUNGE — RFC 4315 §2.1, RFC 9051 §6.4.9: removes \Deleted
 * messages and sends `* n EXPUNGE` for each (§7.5.1). `NO [READ-ONLY]`-style refusal in a
 * mailbox opened with EXAMINE. With QRESYNC enabled, one `* VANISHED` instead (RFC 7162 §3.2.10).
 */
import { knowOwnChange } from '../condstore.js';
import { expungeResponses } from '../expunged.js';
import type { CommandOf, Handler } from './context.js';
import { resolveUids, selectedOf, toUidSet } from './selection.js';

export const expunge: Handler<CommandOf<'EXPUNGE' | 'UID EXPUNGE'>> = async (ctx, command) => {
  const { user, mailbox } = selectedOf(ctx);
  if (mailbox.readOnly) {
    return { tag: command.tag, condition: 'NO', code: { code: 'READ-ONLY' }, text: 'Mailbox is read-only' };
  }
  let uids;
  if (command.name === 'UID EXPUNGE') {
    const resolved = resolveUids(mailbox, command.uids, true);
    if (resolved.length === 0) return { tag: command.tag, condition: 'OK', text: 'UID EXPUNGE completed' };
    uids = toUidSet(resolved);
  }
  const result = await ctx.services.mailstore.expunge({ userId: user.id, mailboxId: mailbox.id, uids });
  const out = expungeResponses(mailbox.map, result.expungedUids, ctx.qresync);
  knowOwnChange(mailbox, result.expungedUids.length > 0, result.highestModseq);
  if (out.length > 0) await ctx.send(out);
  return { tag: command.tag, condition: 'OK', text: `${command.name} completed` };
};
