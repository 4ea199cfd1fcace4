/**
 * CREATE — RFC 9051 §6.3.4; `(USE (\Drafts))` special use per RFC 6154 §3. Missing parents are
 * created by storage. Failures: `NO [ALREADYEXISTS]`, `NO [CANNOT]` (RFC 5530 §3), `NO [USEATTR]`
 * for a special use that cannot be given (RFC 6154 §3). The OK carries `[MAILBOXID (…)]` (RFC 8474
 * §4.1).
 */
import { mailstore } from '@postmesh/contracts';
import { ErrorReason, StorageError } from '../storage.js';
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
  // RFC 6154 §3: a special use the server cannot give fails the CREATE, and the tagged NO SHOULD
  // carry USEATTR.
  if (command.specialUse.length > 1) {
    return {
      tag: command.tag,
      condition: 'NO',
      code: { code: 'USEATTR' },
      text: 'One special use per mailbox',
    };
  }
  let specialUse: mailstore.SpecialUse = mailstore.SpecialUse.UNSPECIFIED;
  const requested = command.specialUse[0];
  if (requested !== undefined) {
    const use = SPECIAL_USES[requested.toUpperCase()];
    // RFC 6154 §3: an unsupported attribute fails the CREATE with NO [USEATTR].
    if (use === undefined) {
      return {
        tag: command.tag,
        condition: 'NO',
        code: { code: 'USEATTR' },
        text: 'Unsupported special use',
      };
    }
    specialUse = use;
  }
  let created;
  try {
    created = await ctx.services.mailstore.createMailbox({
      userId: user.id,
      path: command.mailbox,
      specialUse,
      subscribe: false,
    });
  } catch (error) {
    // RFC 6154 §3, §5.3: the use is already another mailbox's (one mailbox per use here): USEATTR.
    if (
      error instanceof StorageError &&
      error.reason === ErrorReason.NOT_ALLOWED &&
      error.field === 'special_use'
    ) {
      return {
        tag: command.tag,
        condition: 'NO',
        code: { code: 'USEATTR' },
        text: 'Special use already in use',
      };
    }
    throw error;
  }
  const id = created.mailbox?.id ?? '';
  return {
    tag: command.tag,
    condition: 'OK',
    // RFC 8474 §4.1: the new mailbox's MAILBOXID in the tagged OK.
    ...(id === '' ? {} : { code: { code: 'MAILBOXID', id } }),
    text: 'CREATE completed',
  };
};
