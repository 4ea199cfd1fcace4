/**
 * STORE and UID STORE — RFC 9051 §6.4.6 (FLAGS, +FLAGS, -FLAGS, .SILENT), UNCHANGEDSINCE with the
 * MODIFIED code (RFC 7162 §3.1.3). One StoreFlags call for the whole set; the untagged FETCH
 * responses carry the new flags (with UID for UID STORE, §6.4.9). Refused in a read-only mailbox.
 */
import { mailstore } from '@postmesh/contracts';
import { serializeFetch, type FetchItem, type OutputChunk } from '@postmesh/imap-protocol';
import { announceKeywords, imapFlags, splitFlags } from '../flags.js';
import type { CommandOf, Handler } from './context.js';
import { msnOutOfRange, resolveUids, selectedOf, toRanges, toUidSet } from './selection.js';
import { enableCondstore, knowOwnChange } from '../condstore.js';

const MODES = {
  add: mailstore.StoreMode.ADD,
  remove: mailstore.StoreMode.REMOVE,
  replace: mailstore.StoreMode.REPLACE,
} as const;

export const store: Handler<CommandOf<'STORE'>> = async (ctx, command) => {
  const { user, mailbox } = selectedOf(ctx);
  const name = `${command.uid ? 'UID ' : ''}STORE`;
  if (mailbox.readOnly) {
    return { tag: command.tag, condition: 'NO', code: { code: 'READ-ONLY' }, text: 'Mailbox is read-only' };
  }
  if (msnOutOfRange(mailbox, command.set, command.uid)) {
    return { tag: command.tag, condition: 'BAD', text: 'Invalid message sequence number' };
  }
  const uids = resolveUids(mailbox, command.set, command.uid);
  if (uids.length === 0) return { tag: command.tag, condition: 'OK', text: `${name} completed` };
  const { flags, keywords } = splitFlags(command.flags);
  // RFC 7162 §3.1: STORE with UNCHANGEDSINCE is a CONDSTORE enabling command.
  if (command.unchangedSince !== null) await enableCondstore(ctx);
  const condstore = ctx.condstore;
  const result = await ctx.services.mailstore.storeFlags({
    userId: user.id,
    mailboxId: mailbox.id,
    uids: toUidSet(uids),
    mode: MODES[command.operation],
    flags,
    keywords,
    unchangedSince: command.unchangedSince === null ? undefined : Number(command.unchangedSince),
  });
  const out: OutputChunk[] = [];
  const reported = new Set<number>();
  /**
   * One untagged FETCH. Once CONDSTORE is enabled it carries UID and MODSEQ, even for .SILENT
   * (RFC 7162 §3.1, §3.1.3), so the client learns each message's new mod-sequence.
   */
  const fetchLine = (
    uid: number,
    f: readonly mailstore.Flag[],
    k: readonly string[],
    modseq: number,
  ): void => {
    const msn = mailbox.map.msnOf(uid);
    if (msn === 0) return;
    reported.add(uid);
    const items: FetchItem[] = [];
    if (command.uid || condstore) items.push({ item: 'UID', uid });
    if (!command.silent) {
      out.push(...announceKeywords(mailbox, k));
      const recent = !ctx.rev2 && mailbox.recent.has(uid);
      items.push({ item: 'FLAGS', flags: imapFlags(f, k, recent) });
    }
    if (condstore) items.push({ item: 'MODSEQ', modseq });
    out.push(...serializeFetch(msn, items));
  };
  for (const changed of result.changed) {
    mailbox.map.setModseq(changed.uid, changed.modseq);
    if (!command.silent || condstore) fetchLine(changed.uid, changed.flags, changed.keywords, changed.modseq);
  }
  knowOwnChange(mailbox, result.changed.length > 0, result.highestModseq);
  if (!command.silent) {
    // RFC 9051 §6.4.6: report the flags of every message in the set, changed or not.
    const modified = new Set(result.modifiedUids);
    const rest = uids.filter((uid) => !reported.has(uid) && !modified.has(uid));
    if (rest.length > 0) {
      for await (const message of ctx.services.mailstore.fetchMessages({
        userId: user.id,
        mailboxId: mailbox.id,
        uids: toUidSet(rest),
        changedSince: undefined,
        fields: [],
      })) {
        fetchLine(message.uid, message.flags, message.keywords, message.modseq);
      }
    }
  }
  if (out.length > 0) await ctx.send(out);
  if (result.modifiedUids.length > 0) {
    const numbers = command.uid
      ? result.modifiedUids
      : result.modifiedUids.map((uid) => mailbox.map.msnOf(uid)).filter((n) => n > 0);
    return {
      tag: command.tag,
      condition: 'OK',
      code: { code: 'MODIFIED', set: toRanges(numbers.sort((a, b) => a - b)) },
      text: 'Conditional STORE failed for some messages',
    };
  }
  return { tag: command.tag, condition: 'OK', text: `${name} completed` };
};
