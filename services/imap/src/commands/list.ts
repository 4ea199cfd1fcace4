/**
 * LIST — RFC 9051 §6.3.9 with LIST-EXTENDED selection and return options (RFC 5258 §3:
 * SUBSCRIBED, REMOTE, RECURSIVEMATCH; RETURN SUBSCRIBED, CHILDREN), SPECIAL-USE (RFC 6154 §3)
 * and LIST-STATUS (RFC 5819 §2). `LIST "" ""` answers the hierarchy delimiter (§6.3.9).
 * Mailbox names are sent as modified UTF-7 unless UTF-8 is enabled (serializer).
 */
import { mailstore } from '@postmesh/contracts';
import { serializeList, serializeStatusData, type StatusItem } from '@postmesh/imap-protocol';
import type { CommandOf, Handler } from './context.js';
import { userOf } from './selection.js';
import { statusValues } from './status.js';

export const SPECIAL_USE_ATTRIBUTE: Readonly<Record<string, string>> = {
  [mailstore.SpecialUse.ALL]: '\\All',
  [mailstore.SpecialUse.ARCHIVE]: '\\Archive',
  [mailstore.SpecialUse.DRAFTS]: '\\Drafts',
  [mailstore.SpecialUse.FLAGGED]: '\\Flagged',
  [mailstore.SpecialUse.JUNK]: '\\Junk',
  [mailstore.SpecialUse.SENT]: '\\Sent',
  [mailstore.SpecialUse.TRASH]: '\\Trash',
};

const ALL_SPECIAL_USES = Object.keys(SPECIAL_USE_ATTRIBUTE) as mailstore.SpecialUse[];

export const list: Handler<CommandOf<'LIST'>> = async (ctx, command) => {
  const user = userOf(ctx);
  const options = { utf8: ctx.utf8 };
  const patterns = command.patterns;
  if (patterns.length === 1 && patterns[0] === '' && !command.extended) {
    // RFC 9051 §6.3.9: an empty pattern returns the delimiter and root name.
    await ctx.send(
      serializeList({ kind: 'LIST', attributes: ['\\Noselect'], delimiter: '/', name: '' }, options),
    );
    return { tag: command.tag, condition: 'OK', text: 'LIST completed' };
  }
  const subscribedOnly = command.selectionOptions.includes('SUBSCRIBED');
  const specialOnly = command.selectionOptions.includes('SPECIAL-USE');
  const returnSubscribed = subscribedOnly || command.returnOptions.some((o) => o.option === 'SUBSCRIBED');
  let statusItems: readonly StatusItem[] | null = null;
  for (const option of command.returnOptions) if (option.option === 'STATUS') statusItems = option.items;

  const seen = new Set<string>();
  const out: Uint8Array[] = [];
  for (const pattern of patterns) {
    if (pattern === '') continue;
    const response = await ctx.services.mailstore.listMailboxes({
      userId: user.id,
      reference: command.reference,
      pattern,
      subscribedOnly,
      specialUse: specialOnly ? ALL_SPECIAL_USES : [],
    });
    for (const mailbox of response.mailboxes) {
      if (seen.has(mailbox.path)) continue;
      seen.add(mailbox.path);
      const attributes: string[] = [];
      if (mailbox.nonexistent) attributes.push('\\NonExistent');
      else attributes.push(mailbox.hasChildren ? '\\HasChildren' : '\\HasNoChildren');
      if (returnSubscribed && mailbox.subscribed) attributes.push('\\Subscribed');
      const special = SPECIAL_USE_ATTRIBUTE[mailbox.specialUse];
      if (special !== undefined) attributes.push(special);
      out.push(serializeList({ kind: 'LIST', attributes, delimiter: '/', name: mailbox.path }, options));
      if (statusItems !== null && !mailbox.nonexistent && mailbox.id !== '') {
        // RFC 5819 §2: STATUS follows the LIST response of each selectable mailbox.
        const status = await ctx.services.mailstore.getMailboxStatus({
          userId: user.id,
          mailbox: { selector: { $case: 'id', value: mailbox.id } },
          claimRecent: false,
        });
        if (status.status !== undefined) {
          out.push(serializeStatusData(mailbox.path, statusValues(ctx, statusItems, status.status), options));
        }
      }
    }
  }
  await ctx.send(out);
  return { tag: command.tag, condition: 'OK', text: 'LIST completed' };
};
