/**
 * COPY, MOVE and their UID forms — RFC 9051 §6.4.7, §6.4.8 (MOVE, RFC 6851 §3.3: untagged
 * `OK [COPYUID]`, then EXPUNGE responses, then the tagged OK), COPYUID (RFC 4315 §3),
 * `NO [TRYCREATE]` for a missing destination (§6.4.7 MUST).
 */
import { mailstore } from '@postmesh/contracts';
import { serializeStatus, type UidSet } from '@postmesh/imap-protocol';
import { expungeResponses } from '../expunged.js';
import { isNotFound } from '../errors.js';
import type { CommandOf, Handler } from './context.js';
import { msnOutOfRange, resolveUids, selectedOf, toRanges, toUidSet } from './selection.js';

export const copy: Handler<CommandOf<'COPY' | 'MOVE'>> = async (ctx, command) => {
  const { user, mailbox } = selectedOf(ctx);
  const name = `${command.uid ? 'UID ' : ''}${command.name}`;
  if (command.name === 'MOVE' && mailbox.readOnly) {
    return { tag: command.tag, condition: 'NO', code: { code: 'READ-ONLY' }, text: 'Mailbox is read-only' };
  }
  if (msnOutOfRange(mailbox, command.set, command.uid)) {
    return { tag: command.tag, condition: 'BAD', text: 'Invalid message sequence number' };
  }
  const uids = resolveUids(mailbox, command.set, command.uid);
  if (uids.length === 0) return { tag: command.tag, condition: 'OK', text: `${name} completed` };
  const request = {
    userId: user.id,
    mailboxId: mailbox.id,
    uids: toUidSet(uids),
    destination: { selector: { $case: 'path' as const, value: command.mailbox } },
  };
  // MOVE into the selected mailbox itself gives the messages new UIDs (RFC 6851 §3.3 defines MOVE
  // as COPY, STORE \Deleted and UID EXPUNGE of the sources); storage moves only between mailboxes.
  const intoItself = command.name === 'MOVE' && samePath(command.mailbox, mailbox.path);
  let result;
  try {
    result =
      command.name === 'COPY' || intoItself
        ? await ctx.services.mailstore.copyMessages(request)
        : await ctx.services.mailstore.moveMessages(request);
    if (intoItself && result.mappings.length > 0) {
      const sources = toUidSet(result.mappings.map((m) => m.sourceUid));
      await ctx.services.mailstore.storeFlags({
        userId: user.id,
        mailboxId: mailbox.id,
        uids: sources,
        mode: mailstore.StoreMode.ADD,
        flags: [mailstore.Flag.DELETED],
        keywords: [],
        unchangedSince: undefined,
      });
      await ctx.services.mailstore.expunge({ userId: user.id, mailboxId: mailbox.id, uids: sources });
    }
  } catch (error) {
    if (isNotFound(error)) {
      return { tag: command.tag, condition: 'NO', code: { code: 'TRYCREATE' }, text: 'No such mailbox' };
    }
    throw error;
  }
  const source: UidSet = toRanges(result.mappings.map((m) => m.sourceUid));
  const destination: UidSet = toRanges(result.mappings.map((m) => m.destinationUid));
  const copyuid =
    result.mappings.length > 0
      ? ({ code: 'COPYUID', uidValidity: result.destinationUidValidity, source, destination } as const)
      : null;
  if (command.name === 'COPY') {
    if (result.destinationMailboxId === mailbox.id) await ctx.syncMailbox(true);
    return { tag: command.tag, condition: 'OK', code: copyuid, text: `${name} completed` };
  }
  const out: Uint8Array[] = [];
  if (copyuid !== null) {
    out.push(serializeStatus({ tag: null, condition: 'OK', code: copyuid, text: 'Moved' }));
  }
  // EXPUNGE responses, or VANISHED once QRESYNC is enabled (RFC 6851 §3.3, RFC 7162 §3.2.10).
  out.push(
    ...expungeResponses(
      mailbox.map,
      result.mappings.map((m) => m.sourceUid),
      ctx.qresync,
    ),
  );
  await ctx.send(out);
  // The moved copies are new messages of this mailbox: EXISTS (and RECENT) before the tagged OK.
  if (intoItself) await ctx.syncMailbox(true);
  return { tag: command.tag, condition: 'OK', text: `${name} completed` };
};

/** Mailbox paths name the same mailbox (INBOX in any case, RFC 9051 §5.1). */
function samePath(a: string, b: string): boolean {
  return a === b || (a.toUpperCase() === 'INBOX' && b.toUpperCase() === 'INBOX');
}
