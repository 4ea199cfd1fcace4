/**
 * LSUB — RFC 3501 §6.3.9 (IMAP4rev1; deprecated by RFC 9051 Appendix E but still used). With `%`,
 * a parent that is not subscribed but has subscribed children is returned flagged `\Noselect`
 * ("foo/bar" subscribed, `LSUB "" %` returns "foo"; RFC 3501 §6.3.9 MUST).
 */
import type { mailstore } from '@postmesh/contracts';
import { compileListPattern, serializeList } from '@postmesh/imap-protocol';
import type { CommandOf, Handler } from './context.js';
import { SPECIAL_USE_ATTRIBUTE, comparePaths, parentPaths } from './list.js';
import { userOf } from './selection.js';

export const lsub: Handler<CommandOf<'LSUB'>> = async (ctx, command) => {
  const user = userOf(ctx);
  const out: Uint8Array[] = [];
  if (command.pattern !== '') {
    const wildcard = command.pattern.includes('%');
    const response = await ctx.services.mailstore.listMailboxes({
      userId: user.id,
      reference: wildcard ? '' : command.reference,
      pattern: wildcard ? '*' : command.pattern,
      subscribedOnly: true,
      specialUse: [],
    });
    const matches = compileListPattern(command.reference + command.pattern);
    const listed = new Map<string, { mailbox: mailstore.Mailbox | null }>();
    for (const mailbox of response.mailboxes) {
      if (matches(mailbox.path)) listed.set(mailbox.path, { mailbox });
    }
    if (wildcard) {
      for (const mailbox of response.mailboxes) {
        for (const parent of parentPaths(mailbox.path)) {
          if (!listed.has(parent) && matches(parent)) listed.set(parent, { mailbox: null });
        }
      }
    }
    for (const [path, { mailbox }] of [...listed].sort(([a], [b]) => comparePaths(a, b))) {
      const attributes = mailbox === null || mailbox.nonexistent ? ['\\Noselect'] : [];
      const special = mailbox === null ? undefined : SPECIAL_USE_ATTRIBUTE[mailbox.specialUse];
      if (special !== undefined) attributes.push(special);
      out.push(serializeList({ kind: 'LSUB', attributes, delimiter: '/', name: path }, { utf8: ctx.utf8 }));
    }
  }
  await ctx.send(out);
  return { tag: command.tag, condition: 'OK', text: 'LSUB completed' };
};
