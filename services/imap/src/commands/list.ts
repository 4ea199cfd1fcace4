/**
 * LIST — RFC 9051 §6.3.9 with LIST-EXTENDED selection and return options (RFC 5258 §3:
 * SUBSCRIBED, REMOTE, RECURSIVEMATCH; RETURN SUBSCRIBED, CHILDREN), SPECIAL-USE (RFC 6154 §3)
 * and LIST-STATUS (RFC 5819 §2). `LIST "" ""` answers the hierarchy delimiter (§6.3.9).
 * Mailbox names are sent as modified UTF-7 unless UTF-8 is enabled (serializer).
 */
import { mailstore } from '@postmesh/contracts';
import {
  compileListPattern,
  serializeList,
  serializeStatusData,
  type StatusItem,
} from '@postmesh/imap-protocol';
import type { CommandContext, CommandOf, Handler } from './context.js';
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

  if (subscribedOnly && command.selectionOptions.includes('RECURSIVEMATCH')) {
    await ctx.send(await subscribedWithChildInfo(ctx, user.id, command, specialOnly));
    return { tag: command.tag, condition: 'OK', text: 'LIST completed' };
  }
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
      const attributes = listAttributes(mailbox, returnSubscribed);
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

export function listAttributes(mailbox: mailstore.Mailbox, subscribed: boolean): string[] {
  const attributes: string[] = [];
  // A level of the "Other Users" hierarchy (shared-mailstore.ts): no mailbox, only children.
  if (mailbox.id === '' && !mailbox.nonexistent) attributes.push('\\Noselect');
  if (mailbox.nonexistent) attributes.push('\\NonExistent');
  else attributes.push(mailbox.hasChildren ? '\\HasChildren' : '\\HasNoChildren');
  if (subscribed && mailbox.subscribed) attributes.push('\\Subscribed');
  const special = SPECIAL_USE_ATTRIBUTE[mailbox.specialUse];
  if (special !== undefined) attributes.push(special);
  return attributes;
}

/** The parents of a path (`a/b/c` → `a`, `a/b`). */
export function parentPaths(path: string): string[] {
  const parts = path.split('/');
  return parts.slice(1).map((_, i) => parts.slice(0, i + 1).join('/'));
}

/**
 * `LIST (SUBSCRIBED RECURSIVEMATCH)` (RFC 5258 §3.1, §3.5; RFC 9051 §6.3.9.1): the subscribed
 * mailboxes that match, plus every mailbox that matches and has a subscribed descendant the
 * patterns do not match, with `CHILDINFO ("SUBSCRIBED")` and without `\Subscribed` unless it is
 * subscribed itself; a parent that does not exist is `\NonExistent`.
 */
async function subscribedWithChildInfo(
  ctx: CommandContext,
  userId: string,
  command: CommandOf<'LIST'>,
  specialOnly: boolean,
): Promise<Uint8Array[]> {
  const all = async (subscribedOnly: boolean): Promise<mailstore.Mailbox[]> =>
    (
      await ctx.services.mailstore.listMailboxes({
        userId,
        reference: '',
        pattern: '*',
        subscribedOnly,
        specialUse: specialOnly && subscribedOnly ? ALL_SPECIAL_USES : [],
      })
    ).mailboxes;
  const subscribed = await all(true);
  const existing = new Map((await all(false)).map((m) => [m.path, m]));
  const matchers = command.patterns
    .filter((p) => p !== '')
    .map((p) => compileListPattern(command.reference + p));
  const matches = (path: string): boolean => matchers.some((m) => m(path));
  const listed = new Map<string, { mailbox: mailstore.Mailbox; childInfo: boolean }>();
  for (const mailbox of subscribed) {
    if (matches(mailbox.path)) listed.set(mailbox.path, { mailbox, childInfo: false });
  }
  for (const mailbox of subscribed) {
    if (listed.has(mailbox.path)) continue;
    for (const parent of parentPaths(mailbox.path)) {
      if (!matches(parent)) continue;
      const entry = listed.get(parent);
      if (entry !== undefined) {
        entry.childInfo = true;
        continue;
      }
      const found = existing.get(parent);
      listed.set(parent, {
        mailbox:
          found === undefined
            ? mailstore.Mailbox.fromPartial({ path: parent, nonexistent: true })
            : { ...found, subscribed: false },
        childInfo: true,
      });
    }
  }
  const options = { utf8: ctx.utf8 };
  return [...listed.values()]
    .sort((a, b) => comparePaths(a.mailbox.path, b.mailbox.path))
    .map(({ mailbox, childInfo }) =>
      serializeList(
        {
          kind: 'LIST',
          attributes: listAttributes(mailbox, true),
          delimiter: '/',
          name: mailbox.path,
          ...(childInfo ? { extended: [{ item: 'CHILDINFO' as const, options: ['SUBSCRIBED'] }] } : {}),
        },
        options,
      ),
    );
}

/** Hierarchy order: a parent before its children, siblings by name. */
export function comparePaths(a: string, b: string): number {
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const p = x[i] ?? '';
    const q = y[i] ?? '';
    if (p !== q) return p < q ? -1 : 1;
  }
  return x.length - y.length;
}
