/**
 * APPEND — RFC 9051 §6.3.12; APPENDUID (RFC 4315 §3); APPENDLIMIT (RFC 7889: larger literals are
 * refused by the receiver with `NO [TOOBIG]` before the client sends them); `NO [TRYCREATE]`
 * when the mailbox does not exist (§6.3.12 MUST); `NO [OVERQUOTA]`.
 */
import { isNotFound } from '../errors.js';
import { splitFlags } from '../flags.js';
import type { CommandOf, Handler } from './context.js';
import { userOf } from './selection.js';

export const append: Handler<CommandOf<'APPEND'>> = async (ctx, command) => {
  const user = userOf(ctx);
  if (command.message.length > ctx.services.limits.appendLimit) {
    return { tag: command.tag, condition: 'NO', code: { code: 'TOOBIG' }, text: 'Message too large' };
  }
  const { flags, keywords } = splitFlags(command.flags);
  let result;
  try {
    result = await ctx.services.mailstore.appendMessage({
      userId: user.id,
      mailbox: { selector: { $case: 'path', value: command.mailbox } },
      flags,
      keywords,
      internalDate: command.internalDate?.date,
      message: command.message,
    });
  } catch (error) {
    if (isNotFound(error)) {
      // RFC 9051 §6.3.12: the server MUST send TRYCREATE when the mailbox does not exist.
      return { tag: command.tag, condition: 'NO', code: { code: 'TRYCREATE' }, text: 'No such mailbox' };
    }
    throw error;
  }
  const state = ctx.state;
  if (state.kind === 'selected' && state.mailbox.id === result.mailboxId) {
    // RFC 9051 §6.3.12: appending to the selected mailbox SHOULD announce the new message.
    await ctx.syncMailbox(true);
  }
  return {
    tag: command.tag,
    condition: 'OK',
    code: { code: 'APPENDUID', uidValidity: result.uidValidity, uids: [[result.uid, result.uid]] },
    text: 'APPEND completed',
  };
};
