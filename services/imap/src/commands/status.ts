/**
 * STATUS — RFC 9051 §6.3.11 (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE), RECENT for
 * IMAP4rev1 (RFC 3501 §6.3.10), APPENDLIMIT (RFC 7889 §4), HIGHESTMODSEQ (RFC 7162 §3.1.6),
 * MAILBOXID (RFC 8474 §4.2).
 */
import type { mailstore } from '@postmesh/contracts';
import { serializeStatusData, type StatusItem, type StatusValues } from '@postmesh/imap-protocol';
import { isNotFound } from '../errors.js';
import type { CommandContext, CommandOf, Handler } from './context.js';
import { userOf } from './selection.js';
import { enableCondstore } from '../condstore.js';

export function statusValues(
  ctx: CommandContext,
  items: readonly StatusItem[],
  status: mailstore.MailboxStatus,
): StatusValues {
  const values: { -readonly [K in keyof StatusValues]: StatusValues[K] } = {};
  for (const item of items) {
    switch (item) {
      case 'MESSAGES':
        values.MESSAGES = status.messages;
        break;
      case 'UIDNEXT':
        values.UIDNEXT = status.uidNext;
        break;
      case 'UIDVALIDITY':
        values.UIDVALIDITY = status.uidValidity;
        break;
      case 'UNSEEN':
        values.UNSEEN = status.unseen;
        break;
      case 'DELETED':
        values.DELETED = status.deleted;
        break;
      case 'SIZE':
        values.SIZE = status.size;
        break;
      case 'RECENT':
        values.RECENT = status.recent;
        break;
      case 'HIGHESTMODSEQ':
        values.HIGHESTMODSEQ = status.highestModseq;
        break;
      case 'APPENDLIMIT':
        values.APPENDLIMIT = ctx.services.limits.appendLimit;
        break;
      case 'MAILBOXID':
        values.MAILBOXID = status.mailboxId;
        break;
    }
  }
  return values;
}

export const status: Handler<CommandOf<'STATUS'>> = async (ctx, command) => {
  const user = userOf(ctx);
  let response: mailstore.GetMailboxStatusResponse;
  try {
    response = await ctx.services.mailstore.getMailboxStatus({
      userId: user.id,
      mailbox: { selector: { $case: 'path', value: command.mailbox } },
      claimRecent: false,
    });
  } catch (error) {
    if (isNotFound(error)) {
      return { tag: command.tag, condition: 'NO', code: { code: 'NONEXISTENT' }, text: 'No such mailbox' };
    }
    throw error;
  }
  if (response.status === undefined) throw new Error('GetMailboxStatus returned no status');
  // RFC 7162 §3.1: STATUS (HIGHESTMODSEQ) is a CONDSTORE enabling command.
  if (command.items.includes('HIGHESTMODSEQ')) await enableCondstore(ctx);
  await ctx.send(
    serializeStatusData(command.mailbox, statusValues(ctx, command.items, response.status), {
      utf8: ctx.utf8,
    }),
  );
  return { tag: command.tag, condition: 'OK', text: 'STATUS completed' };
};
