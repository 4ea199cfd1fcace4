/**
 * SELECT and EXAMINE — RFC 9051 §6.3.2, §6.3.3 (and RFC 3501 §6.3.1-§6.3.2 for IMAP4rev1:
 * RECENT, [UNSEEN n]); `* OK [CLOSED]` when another mailbox was selected (RFC 9051 §7.1).
 * The session's MSN↔UID map is built from one streamed FetchMessages call over `1:*`, so a
 * large mailbox costs one round trip, not one per message (issue item 5).
 */
import type { mailstore } from '@postmesh/contracts';
import {
  serializeExists,
  serializeFlags,
  serializeRecent,
  serializeStatus,
  type StatusResponse,
} from '@postmesh/imap-protocol';
import { isNotFound } from '../errors.js';
import { COMMON_KEYWORDS, SYSTEM_FLAGS } from '../flags.js';
import { MessageMap } from '../message-map.js';
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
  for await (const message of ctx.services.mailstore.fetchMessages({
    userId: user.id,
    mailboxId: counters.mailboxId,
    uids: { ranges: [{ first: 1, last: 0 }] },
    changedSince: undefined,
    fields: [],
  })) {
    map.append(message.uid, message.modseq);
  }
  const recentFloor = readOnly ? counters.uidNext : status.firstRecentUid || counters.uidNext;
  const mailbox: SelectedMailbox = {
    id: counters.mailboxId,
    path: counters.path,
    readOnly,
    uidValidity: counters.uidValidity,
    map,
    knownModseq: counters.highestModseq,
    recentFloor,
    savedSearch: [],
  };
  const uidNext = Math.max(counters.uidNext, map.maxUid + 1);
  const out: Uint8Array[] = [serializeExists(map.size)];
  if (!ctx.rev2) out.push(serializeRecent(map.uidsInUidRange(recentFloor, map.maxUid).length));
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
    serializeFlags([...SYSTEM_FLAGS, ...COMMON_KEYWORDS]),
    serializeStatus({
      tag: null,
      condition: 'OK',
      code: { code: 'PERMANENTFLAGS', flags: readOnly ? [] : [...SYSTEM_FLAGS, ...COMMON_KEYWORDS, '\\*'] },
      text: readOnly ? 'No permanent flags permitted' : 'Flags permitted',
    }),
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
