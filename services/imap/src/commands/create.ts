/**
 * CREATE — RFC 9051 §6.3.4; `(USE (\Drafts))` special use per RFC 6154 §3. Missing parents are
 * created by storage. Failures: `NO [ALREADYEXISTS]`, `NO [CANNOT]` (RFC 5530 §3). The OK carries
 * `[MAILBOXID (…)]` (RFC 8474 §4.1).
 */
import { mailstore } from '@postmesh/contracts';
import type { CommandOf, Handler } from './context.js';
import { userOf } from './selection.js';

const SPECIAL_USES: Readonly<Record<string, mailstore.SpecialUse>> = {
  '\\ALL': mailstore.SpecialUse.ALL,
  '\\ARCHIVE': mailstore.SpecialUse.ARCHIVE,
  '\\DRAFTS': mailstore.SpecialUse.DRAFTS,
  '\\FLAGGED': mailstore.SpecialUse.FLAGGED,
  '\\JUNK': mailstore.SpecialUse.JUNK,
  '\\SENT': mailstore.SpecialUse.SENT,
  '\\TRASH': mailstore.SpecialUse.TRASH,
};

export const create: Handler<CommandOf<'CREATE'>> = async (ctx, command) => {
  const user = userOf(ctx);
  if (command.specialUse.length > 1) {
    return {
      tag: command.tag,
      condition: 'NO',
      code: { code: 'CANNOT' },
      text: 'One special use per mailbox',
    };
  }
  let specialUse: mailstore.SpecialUse = mailstore.SpecialUse.UNSPECIFIED;
  const requested = command.specialUse[0];
  if (requested !== undefined) {
    const use = SPECIAL_USES[requested.toUpperCase()];
    // RFC 6154 §3: an unsupported attribute fails the CREATE (USEATTR; CANNOT here).
    if (use === undefined) {
      return { tag: command.tag, condition: 'NO', code: { code: 'CANNOT' }, text: 'Unsupported special use' };
    }
    specialUse = use;
  }
  const created = await ctx.services.mailstore.createMailbox({
    userId: user.id,
    path: command.mailbox,
    specialUse,
    subscribe: false,
  });
  const id = created.mailbox?.id ?? '';
  return {
    tag: command.tag,
    condition: 'OK',
    // RFC 8474 §4.1: the new mailbox's MAILBOXID in the tagged OK.
    ...(id === '' ? {} : { code: { code: 'MAILBOXID', id } }),
    text: 'CREATE completed',
  };
};
