/**
 * SORT, UID SORT (RFC 5256 §3, ESORT return options RFC 5267 §3.2, DISPLAYFROM / DISPLAYTO
 * RFC 5957) and THREAD, UID THREAD (RFC 5256 §3). The search runs in storage as for SEARCH; the
 * matches' envelopes (and raw headers, for References) come from one FetchMessages stream and
 * are sorted or threaded here (sort-thread.ts).
 */
import { mailstore } from '@postmesh/contracts';
import {
  serializeEsearch,
  serializeSort,
  serializeThread,
  type StatusResponse,
} from '@postmesh/imap-protocol';
import { parseHeaderBlock, parseMessageIds, parseRfc5322Date, type Envelope } from '@postmesh/mime';
import type { SelectedMailbox } from '../state.js';
import {
  sortMessages,
  threadOrderedSubject,
  threadReferences,
  type SortableMessage,
} from '../sort-thread.js';
import type { CommandContext, CommandOf, Handler } from './context.js';
import { enableCondstore } from '../condstore.js';
import { mentionsModseq, toStorageKey } from './search.js';
import { selectedOf, toUidSet } from './selection.js';

function badCharset(command: { readonly tag: string; readonly charset: string }): StatusResponse | null {
  if (command.charset === 'UTF-8' || command.charset === 'US-ASCII') return null;
  return {
    tag: command.tag,
    condition: 'NO',
    code: { code: 'BADCHARSET', charsets: ['US-ASCII', 'UTF-8'] },
    text: 'Unsupported charset',
  };
}

/** A match: what sorting and threading need, and its mod-sequence (RFC 7162 §3.1.5). */
type Matched = SortableMessage & { readonly modseq: number };

/** The messages matching `search`, with what sorting and threading need. */
async function matching(
  ctx: CommandContext,
  userId: string,
  mailbox: SelectedMailbox,
  search: CommandOf<'SORT'>['search'],
  withReferences: boolean,
): Promise<Matched[]> {
  const result = await ctx.services.mailstore.search({
    userId,
    mailboxId: mailbox.id,
    query: toStorageKey(search, mailbox),
  });
  // Only messages this session knows (a delivery not yet announced has no sequence number).
  const uids = result.uids.filter((uid) => mailbox.map.has(uid));
  if (uids.length === 0) return [];
  const fields: mailstore.FetchField[] = [mailstore.FetchField.ENVELOPE];
  if (withReferences) fields.push(mailstore.FetchField.HEADER);
  const out: Matched[] = [];
  for await (const message of ctx.services.mailstore.fetchMessages({
    userId,
    mailboxId: mailbox.id,
    uids: toUidSet(uids),
    changedSince: undefined,
    fields,
  })) {
    const msn = mailbox.map.msnOf(message.uid);
    if (msn === 0) continue;
    const envelope = JSON.parse(message.envelopeJson) as Envelope;
    let references: string[] = [];
    if (withReferences && message.header.length > 0) {
      const field = parseHeaderBlock(message.header).find((f) => f.name.toLowerCase() === 'references');
      if (field !== undefined) references = parseMessageIds(field.value);
    }
    out.push({
      msn,
      uid: message.uid,
      modseq: message.modseq,
      size: message.size,
      internalDate: message.internalDate?.getTime() ?? 0,
      sentDate: envelope.date === null ? null : parseRfc5322Date(envelope.date),
      subject: envelope.subject,
      from: envelope.from,
      to: envelope.to,
      cc: envelope.cc,
      messageId: envelope.messageId,
      inReplyTo: envelope.inReplyTo,
      references,
    });
  }
  return out;
}

export const sort: Handler<CommandOf<'SORT'>> = async (ctx, command) => {
  const { user, mailbox } = selectedOf(ctx);
  const refused = badCharset(command);
  if (refused !== null) return refused;
  // RFC 7162 §3.1: a search program naming MODSEQ is a CONDSTORE enabling command, and the
  // answer carries the highest mod-sequence of the messages found (§7 sort-data).
  const byModseq = mentionsModseq(command.search);
  if (byModseq) await enableCondstore(ctx);
  const matches = await matching(ctx, user.id, mailbox, command.search, false);
  const sorted = sortMessages(matches, command.criteria);
  const numbers = sorted.map((m) => (command.uid ? m.uid : m.msn));
  const modseq =
    byModseq && matches.length > 0 ? BigInt(matches.reduce((high, m) => Math.max(high, m.modseq), 0)) : null;
  const options = command.returnOptions;
  if (options === null) {
    await ctx.send(serializeSort(numbers, modseq));
  } else {
    // RFC 5267 §3.2: MIN / MAX are the first and last messages in sort order; ALL is in sort
    // order too.
    const wanted = options.length === 0 ? ['ALL'] : options;
    const min = numbers[0];
    const max = numbers[numbers.length - 1];
    await ctx.send(
      serializeEsearch({
        tag: command.tag,
        uid: command.uid,
        ...(wanted.includes('MIN') && min !== undefined ? { min } : {}),
        ...(wanted.includes('MAX') && max !== undefined ? { max } : {}),
        ...(wanted.includes('COUNT') ? { count: numbers.length } : {}),
        ...(wanted.includes('ALL') ? { all: numbers, ordered: true } : {}),
        ...(modseq !== null ? { modseq } : {}),
      }),
    );
  }
  return { tag: command.tag, condition: 'OK', text: `${command.uid ? 'UID ' : ''}SORT completed` };
};

export const thread: Handler<CommandOf<'THREAD'>> = async (ctx, command) => {
  const { user, mailbox } = selectedOf(ctx);
  const refused = badCharset(command);
  if (refused !== null) return refused;
  if (mentionsModseq(command.search)) await enableCondstore(ctx);
  const references = command.algorithm === 'REFERENCES';
  const messages = await matching(ctx, user.id, mailbox, command.search, references);
  const id = (m: SortableMessage): number => (command.uid ? m.uid : m.msn);
  const threads = references ? threadReferences(messages, id) : threadOrderedSubject(messages, id);
  await ctx.send(serializeThread(threads));
  return { tag: command.tag, condition: 'OK', text: `${command.uid ? 'UID ' : ''}THREAD completed` };
};
