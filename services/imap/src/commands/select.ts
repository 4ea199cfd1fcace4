/**
 * SELECT and EXAMINE — RFC 9051 §6.3.2, §6.3.3 (and RFC 3501 §6.3.1-§6.3.2 for IMAP4rev1:
 * RECENT, [UNSEEN n]); `* OK [CLOSED]` when another mailbox was selected (RFC 9051 §7.1).
 * The session's MSN↔UID map is built from one streamed FetchMessages call over `1:*`, so a
 * large mailbox costs one round trip, not one per message (issue item 5).
 */
import type { mailstore } from '@postmesh/contracts';
import {
  serializeExists,
  serializeRecent,
  serializeStatus,
  type StatusResponse,
} from '@postmesh/imap-protocol';
import { isNotFound } from '../errors.js';
import { flagsResponses, initialKeywords, learnKeywords } from '../flags.js';
import { MessageMap } from '../message-map.js';
import { RecentSet } from '../recent.js';
import type { SelectedMailbox } from '../state.js';
import type { CommandOf, Handler } from './context.js';
import { userOf } from './selection.js';

export const select: Handler<CommandOf<'SELECT' | 'EXAMINE'>> = async (ctx, command) => {
  const user = userOf(ctx);
  const readOnly = command.name === 'EXAMINE';
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
  const map = new MessageMap();
  const keywords = initialKeywords();
  for await (const message of ctx.services.mailstore.fetchMessages({
    userId: user.id,
    mailboxId: counters.mailboxId,
    uids: { ranges: [{ first: 1, last: 0 }] },
    changedSince: undefined,
    fields: [],
  })) {
    map.append(message.uid, message.modseq);
    learnKeywords(keywords, message.keywords);
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
    ...flagsResponses(keywords, readOnly),
  );
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
  await ctx.send(out);
  ctx.setState({ kind: 'selected', user, mailbox });
  const done: StatusResponse = {
    tag: command.tag,
    condition: 'OK',
    code: { code: readOnly ? 'READ-ONLY' : 'READ-WRITE' },
    text: `${command.name} completed`,
  };
  return done;
};
