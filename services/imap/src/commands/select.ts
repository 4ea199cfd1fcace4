/**
 * SELECT and EXAMINE — RFC 9051 §6.3.2, §6.3.3 (and RFC 3501 §6.3.1-§6.3.2 for IMAP4rev1:
 * RECENT, [UNSEEN n]); `* OK [CLOSED]` when another mailbox was selected (RFC 9051 §7.1).
 * The session's MSN↔UID map is built from one streamed FetchMessages call over `1:*`, so a
 * large mailbox costs one round trip, not one per message (issue item 5).
 * CONDSTORE / QRESYNC (RFC 7162 §3.1.8, §3.2.5): HIGHESTMODSEQ always, and with QRESYNC the
 * expunges and flag changes since the client's mod-sequence.
 */
import { MAX_UID, resolveUidSet, type mailstore } from '@postmesh/contracts';
import {
  serializeExists,
  serializeFetch,
  serializeList,
  serializeRecent,
  serializeStatus,
  serializeVanished,
  type QresyncParams,
  type StatusResponse,
} from '@postmesh/imap-protocol';
import { highestModseqResponse } from '../condstore.js';
import { isNotFound } from '../errors.js';
import { announceKeywords, flagsResponses, imapFlags, initialKeywords, learnKeywords } from '../flags.js';
import { MessageMap } from '../message-map.js';
import { RecentSet } from '../recent.js';
import type { SelectedMailbox } from '../state.js';
import type { CommandContext, CommandOf, Handler } from './context.js';
import { toRanges, uidSetOf, userOf, vanishedUids } from './selection.js';
import { sharedRights } from './acl.js';
import { listAttributes } from './list.js';

export const select: Handler<CommandOf<'SELECT' | 'EXAMINE'>> = async (ctx, command) => {
  const user = userOf(ctx);
  let readOnly = command.name === 'EXAMINE';
  // RFC 7162 §3.2.5: QRESYNC parameters without ENABLE QRESYNC are BAD (and nothing is closed).
  if (command.qresync !== null && !ctx.qresync) {
    return { tag: command.tag, condition: 'BAD', text: 'QRESYNC parameter requires ENABLE QRESYNC' };
  }
  // RFC 7162 §3.1.8: the CONDSTORE parameter is a CONDSTORE enabling command.
  if (command.condstore) ctx.enable('CONDSTORE');
  if (ctx.state.kind === 'selected') {
    // RFC 9051 §6.3.2: selecting closes the current mailbox first, without expunging.
    ctx.setState({ kind: 'authenticated', user });
    await ctx.send(
      serializeStatus({
        tag: null,
        condition: 'OK',
        code: { code: 'CLOSED' },
        text: 'Previous mailbox closed',
      }),
    );
  }
  let status: mailstore.GetMailboxStatusResponse;
  try {
    status = await ctx.services.mailstore.getMailboxStatus({
      userId: user.id,
      mailbox: { selector: { $case: 'path', value: command.mailbox } },
      claimRecent: !readOnly,
    });
  } catch (error) {
    if (isNotFound(error)) {
      return { tag: command.tag, condition: 'NO', code: { code: 'NONEXISTENT' }, text: 'No such mailbox' };
    }
    throw error;
  }
  const counters = status.status;
  if (counters === undefined) throw new Error('GetMailboxStatus returned no status');
  // RFC 4314 §5.2: a shared mailbox is READ-ONLY without any of "i", "e", "w", "s", "t".
  const rights = await sharedRights(ctx, command.mailbox);
  if (rights !== undefined && ![...'iewst'].some((right) => rights.includes(right))) readOnly = true;
  const map = new MessageMap();
  const keywords = initialKeywords();
  for await (const messages of ctx.services.mailstore.fetchMessageBatches({
    userId: user.id,
    mailboxId: counters.mailboxId,
    uids: { ranges: [{ first: 1, last: 0 }] },
    changedSince: undefined,
    fields: [],
  })) {
    for (const message of messages) {
      map.append(message.uid, message.modseq);
      learnKeywords(keywords, message.keywords);
    }
  }
  // RFC 3501 §2.3.2: SELECT claims the messages no session has seen yet. EXAMINE claims nothing
  // (RFC 3501 §6.3.2: it MUST NOT make messages lose \Recent) but reports the ones still recent:
  // the highest `status.recent` UIDs below UIDNEXT as storage counted them.
  const recent = new RecentSet();
  if (readOnly) {
    const known = map.uidsInUidRange(1, counters.uidNext - 1);
    const first = known[Math.max(0, known.length - counters.recent)];
    if (counters.recent > 0 && first !== undefined) recent.add(first, counters.uidNext - 1);
  } else {
    recent.add(status.firstRecentUid || counters.uidNext, counters.uidNext - 1);
  }
  const mailbox: SelectedMailbox = {
    id: counters.mailboxId,
    path: counters.path,
    readOnly,
    uidValidity: counters.uidValidity,
    map,
    knownModseq: counters.highestModseq,
    recent,
    keywords,
    ...(rights === undefined ? {} : { rights }),
    savedSearch: [],
  };
  const uidNext = Math.max(counters.uidNext, map.maxUid + 1);
  const out: Uint8Array[] = [serializeExists(map.size)];
  if (!ctx.rev2) {
    out.push(serializeRecent(recent.known(map).length));
  }
  out.push(
    serializeStatus({
      tag: null,
      condition: 'OK',
      code: { code: 'UIDVALIDITY', value: counters.uidValidity },
      text: 'UIDs valid',
    }),
    serializeStatus({
      tag: null,
      condition: 'OK',
      code: { code: 'UIDNEXT', value: uidNext },
      text: 'Predicted next UID',
    }),
    // RFC 8474 §4.2: SELECT and EXAMINE return the MAILBOXID.
    serializeStatus({
      tag: null,
      condition: 'OK',
      code: { code: 'MAILBOXID', id: counters.mailboxId },
      text: 'Mailbox id',
    }),
    ...flagsResponses(keywords, readOnly, rights),
  );
  if (ctx.rev2) out.push(...(await mailboxListing(ctx, user.id, command.mailbox)));
  if (!ctx.rev2 && counters.firstUnseenUid > 0) {
    const msn = map.msnOf(counters.firstUnseenUid);
    if (msn > 0) {
      out.push(
        serializeStatus({
          tag: null,
          condition: 'OK',
          code: { code: 'UNSEEN', value: msn },
          text: 'First unseen',
        }),
      );
    }
  }
  // RFC 7162 §3.1.2.1: HIGHESTMODSEQ once CONDSTORE is enabled (NOMODSEQ never: every mailbox
  // keeps mod-sequences).
  if (ctx.condstore) out.push(highestModseqResponse(counters.highestModseq));
  await ctx.send(out);
  const qresync = command.qresync;
  if (qresync !== null && qresync.uidValidity === counters.uidValidity) {
    await resync(ctx, user.id, mailbox, qresync);
  }
  ctx.setState({ kind: 'selected', user, mailbox });
  const done: StatusResponse = {
    tag: command.tag,
    condition: 'OK',
    code: { code: readOnly ? 'READ-ONLY' : 'READ-WRITE' },
    text: `${command.name} completed`,
  };
  return done;
};

/**
 * RFC 9051 §6.3.2: an IMAP4rev2 SELECT / EXAMINE answers a LIST response with the mailbox name
 * and its attributes, as LIST would show them (the canonical name, e.g. INBOX for "inbox").
 */
async function mailboxListing(ctx: CommandContext, userId: string, name: string): Promise<Uint8Array[]> {
  const { mailboxes } = await ctx.services.mailstore.listMailboxes({
    userId,
    reference: '',
    pattern: name,
    subscribedOnly: false,
    specialUse: [],
  });
  const mailbox = mailboxes[0];
  if (mailbox === undefined) return [];
  const attributes = listAttributes(mailbox, false);
  return [
    serializeList({ kind: 'LIST', attributes, delimiter: '/', name: mailbox.path }, { utf8: ctx.utf8 }),
  ];
}

/**
 * RFC 7162 §3.2.5.2: the client's cache is valid (same UIDVALIDITY), so the changes since its
 * mod-sequence follow the usual SELECT responses: `* VANISHED (EARLIER)` with the UIDs expunged
 * since then, then `* n FETCH (UID FLAGS MODSEQ)` for each message whose flags changed, both
 * limited to the client's known UIDs when it sent them. Storage keeps a tombstone for every
 * expunge, so the VANISHED list is exact and the sequence match data (which only narrows a
 * server's guess when it has forgotten expunges, §3.2.5.2) is not needed.
 */
async function resync(
  ctx: CommandContext,
  userId: string,
  mailbox: SelectedMailbox,
  params: QresyncParams,
): Promise<void> {
  const known = params.knownUids === null ? undefined : uidSetOf(params.knownUids, mailbox);
  const changes = await ctx.services.mailstore.getChanges({
    userId,
    mailboxId: mailbox.id,
    sinceModseq: Number(params.modseq),
    uidValidity: mailbox.uidValidity,
    knownUids: known,
  });
  if (changes.uidValidityChanged) return;
  const out: Uint8Array[] = [];
  const gone = vanishedUids(changes.vanished, mailbox);
  if (gone.length > 0) out.push(serializeVanished(toRanges(gone), true));
  const knownRanges = known === undefined ? null : resolveUidSet(known, MAX_UID);
  for (const message of changes.changed) {
    const msn = mailbox.map.msnOf(message.uid);
    if (msn === 0) continue;
    if (knownRanges !== null && !knownRanges.some(([lo, hi]) => message.uid >= lo && message.uid <= hi))
      continue;
    mailbox.map.setModseq(message.uid, Math.max(mailbox.map.modseqOf(message.uid), message.modseq));
    // RFC 9051 §7.3.5: a keyword first set since the FLAGS above is announced before its FETCH.
    out.push(...announceKeywords(mailbox, message.keywords));
    const recent = !ctx.rev2 && mailbox.recent.has(message.uid);
    out.push(
      ...(serializeFetch(msn, [
        { item: 'UID', uid: message.uid },
        { item: 'FLAGS', flags: imapFlags(message.flags, message.keywords, recent) },
        { item: 'MODSEQ', modseq: message.modseq },
      ]) as Uint8Array[]),
    );
  }
  if (out.length > 0) await ctx.send(out);
}
