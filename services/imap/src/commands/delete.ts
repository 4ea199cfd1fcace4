/**
 * DELETE — RFC 9051 §6.3.5. INBOX cannot be deleted (`NO [CANNOT]`). A mailbox with children is
 * refused by storage (no \Noselect parents are kept), which RFC 9051 §7.1 answers
 * `NO [HASCHILDREN]`.
 */
import { ErrorReason, StorageError } from '../storage.js';
import type { CommandOf, Handler } from './context.js';
import { userOf } from './selection.js';

export const deleteMailbox: Handler<CommandOf<'DELETE'>> = async (ctx, command) => {
  const user = userOf(ctx);
  try {
    await ctx.services.mailstore.deleteMailbox({
      userId: user.id,
      mailbox: { selector: { $case: 'path', value: command.mailbox } },
    });
  } catch (error) {
    // Storage refuses two deletes as NOT_ALLOWED: INBOX (CANNOT, the session's mapping) and a
    // mailbox with children.
    if (
      error instanceof StorageError &&
      error.reason === ErrorReason.NOT_ALLOWED &&
      command.mailbox.toUpperCase() !== 'INBOX'
    ) {
      return {
        tag: command.tag,
        condition: 'NO',
        code: { code: 'HASCHILDREN' },
        text: 'Mailbox has children',
      };
    }
    throw error;
  }
  return { tag: command.tag, condition: 'OK', text: 'DELETE completed' };
};
