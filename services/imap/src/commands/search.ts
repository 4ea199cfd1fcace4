/**
 * SEARCH and UID SEARCH — RFC 9051 §6.4.4 (the full key grammar; CHARSET UTF-8 / US-ASCII, other
 * charsets refused by the parser with `NO [BADCHARSET]`), ESEARCH return options (RFC 4731 §3.1,
 * RFC 9051 §7.3.4), NEW/OLD/RECENT (RFC 3501 §6.4.4), SAVE (RFC 5182). The whole program goes
 * to storage in one Search call; sequence-number keys are translated to UIDs here.
 */
import { mailstore } from '@postmesh/contracts';
import { serializeEsearch, serializeSearch, type SearchKey } from '@postmesh/imap-protocol';
import type { SelectedMailbox } from '../state.js';
import type { CommandOf, Handler } from './context.js';
import { resolveUids, selectedOf, toRanges, toUidSet } from './selection.js';
import { enableCondstore } from '../condstore.js';

const FLAG_KEYS: Readonly<Record<string, [mailstore.Flag, boolean]>> = {
  ANSWERED: [mailstore.Flag.ANSWERED, true],
  DELETED: [mailstore.Flag.DELETED, true],
  DRAFT: [mailstore.Flag.DRAFT, true],
  FLAGGED: [mailstore.Flag.FLAGGED, true],
  SEEN: [mailstore.Flag.SEEN, true],
  UNANSWERED: [mailstore.Flag.ANSWERED, false],
  UNDELETED: [mailstore.Flag.DELETED, false],
  UNDRAFT: [mailstore.Flag.DRAFT, false],
  UNFLAGGED: [mailstore.Flag.FLAGGED, false],
  UNSEEN: [mailstore.Flag.SEEN, false],
};

type Key = mailstore.SearchKey;
const not = (key: Key): Key => ({ key: { $case: 'not', value: key } });
const and = (keys: Key[]): Key => ({ key: { $case: 'and', value: { keys } } });

/** Translates an IMAP search key into a Mailstore search program. */
export function toStorageKey(key: SearchKey, mailbox: SelectedMailbox): Key {
  const map = mailbox.map;
  const recent = (): Key => ({
    key: { $case: 'uid', value: toUidSet(mailbox.recent.known(map)) },
  });
  switch (key.key) {
    case 'ALL':
      return { key: { $case: 'all', value: true } };
    case 'ANSWERED':
    case 'DELETED':
    case 'DRAFT':
    case 'FLAGGED':
    case 'SEEN':
    case 'UNANSWERED':
    case 'UNDELETED':
    case 'UNDRAFT':
    case 'UNFLAGGED':
    case 'UNSEEN': {
      const [flag, set] = FLAG_KEYS[key.key]!;
      const k: Key = { key: { $case: 'flag', value: flag } };
      return set ? k : not(k);
    }
    case 'RECENT':
      return recent();
    case 'NEW':
      return and([recent(), not({ key: { $case: 'flag', value: mailstore.Flag.SEEN } })]);
    case 'OLD':
      return not(recent());
    case 'BCC':
      return { key: { $case: 'bcc', value: key.value } };
    case 'CC':
      return { key: { $case: 'cc', value: key.value } };
    case 'FROM':
      return { key: { $case: 'from', value: key.value } };
    case 'TO':
      return { key: { $case: 'to', value: key.value } };
    case 'SUBJECT':
      return { key: { $case: 'subject', value: key.value } };
    case 'BODY':
      return { key: { $case: 'body', value: key.value } };
    case 'TEXT':
      return { key: { $case: 'text', value: key.value } };
    case 'BEFORE':
      return { key: { $case: 'before', value: key.date } };
    case 'ON':
      return { key: { $case: 'on', value: key.date } };
    case 'SINCE':
      return { key: { $case: 'since', value: key.date } };
    case 'SENTBEFORE':
      return { key: { $case: 'sentBefore', value: key.date } };
    case 'SENTON':
      return { key: { $case: 'sentOn', value: key.date } };
    case 'SENTSINCE':
      return { key: { $case: 'sentSince', value: key.date } };
    case 'HEADER':
      return { key: { $case: 'header', value: { field: key.field, value: key.value } } };
    case 'KEYWORD':
      return { key: { $case: 'keyword', value: key.flag } };
    case 'UNKEYWORD':
      return not({ key: { $case: 'keyword', value: key.flag } });
    case 'LARGER':
      return { key: { $case: 'larger', value: key.size } };
    case 'SMALLER':
      return { key: { $case: 'smaller', value: key.size } };
    case 'UID':
      return { key: { $case: 'uid', value: toUidSet(resolveUids(mailbox, key.set, true)) } };
    case 'SEQUENCE':
      return { key: { $case: 'uid', value: toUidSet(resolveUids(mailbox, key.set, false)) } };
    case 'NOT':
      return not(toStorageKey(key.operand, mailbox));
    case 'OR':
      return {
        key: {
          $case: 'or',
          value: { keys: [toStorageKey(key.left, mailbox), toStorageKey(key.right, mailbox)] },
        },
      };
    case 'AND':
      return and(key.operands.map((k) => toStorageKey(k, mailbox)));
    case 'MODSEQ':
      return { key: { $case: 'modseq', value: Number(key.modseq) } };
    case 'OLDER':
      return { key: { $case: 'olderThanSeconds', value: key.seconds } };
    case 'YOUNGER':
      return { key: { $case: 'youngerThanSeconds', value: key.seconds } };
    case 'EMAILID':
      return { key: { $case: 'emailId', value: key.id } };
    case 'THREADID':
      return { key: { $case: 'threadId', value: key.id } };
  }
}

export const search: Handler<CommandOf<'SEARCH'>> = async (ctx, command) => {
  const { user, mailbox } = selectedOf(ctx);
  // RFC 9051 §6.4.4: US-ASCII and UTF-8 are supported; any other charset is NO [BADCHARSET].
  if (command.charset !== null && command.charset !== 'UTF-8' && command.charset !== 'US-ASCII') {
    return {
      tag: command.tag,
      condition: 'NO',
      code: { code: 'BADCHARSET', charsets: ['US-ASCII', 'UTF-8'] },
      text: 'Unsupported charset',
    };
  }
  // RFC 7162 §3.1: SEARCH MODSEQ is a CONDSTORE enabling command, and its answer carries the
  // highest mod-sequence of the messages found (§3.1.5).
  const byModseq = mentionsModseq(command.criteria);
  if (byModseq) await enableCondstore(ctx);
  const saving = command.returnOptions?.includes('SAVE') === true;
  // RFC 5182 §2.1: a SEARCH with SAVE that fails leaves `$` empty.
  if (saving) mailbox.savedSearch = [];
  const result = await ctx.services.mailstore.search({
    userId: user.id,
    mailboxId: mailbox.id,
    query: toStorageKey(command.criteria, mailbox),
  });
  // Only messages this session knows (a delivery it has not announced yet has no MSN).
  const uids = result.uids.filter((uid) => mailbox.map.has(uid));
  const numbers = command.uid ? uids : uids.map((uid) => mailbox.map.msnOf(uid));
  // RFC 9051 §6.4.4: once IMAP4rev2 is enabled, SEARCH answers ESEARCH, RETURN (ALL) when none is
  // given (the SEARCH response is IMAP4rev1's, Appendix E).
  const options = command.returnOptions ?? (ctx.rev2 ? [] : null);
  const modseq = byModseq && numbers.length > 0 ? BigInt(result.highestModseq) : null;
  if (options === null) {
    await ctx.send(serializeSearch(numbers, modseq));
  } else {
    const wanted = options.length === 0 ? ['ALL'] : options;
    const only = wanted.filter((o) => o !== 'SAVE');
    if (saving) mailbox.savedSearch = toRanges(savedUids(uids, only));
    if (only.length > 0 || !wanted.includes('SAVE')) {
      const all = only.length === 0 ? true : only.includes('ALL');
      await ctx.send(
        serializeEsearch({
          tag: command.tag,
          uid: command.uid,
          ...(only.includes('MIN') && numbers.length > 0 ? { min: numbers[0] } : {}),
          ...(only.includes('MAX') && numbers.length > 0 ? { max: numbers[numbers.length - 1] } : {}),
          ...(only.includes('COUNT') ? { count: numbers.length } : {}),
          ...(all ? { all: numbers } : {}),
          ...(modseq !== null ? { modseq } : {}),
        }),
      );
    }
  }
  return { tag: command.tag, condition: 'OK', text: `${command.uid ? 'UID ' : ''}SEARCH completed` };
};

/** The search program uses MODSEQ (RFC 7162 §3.1.5), anywhere in it. */
export function mentionsModseq(key: SearchKey): boolean {
  switch (key.key) {
    case 'MODSEQ':
      return true;
    case 'NOT':
      return mentionsModseq(key.operand);
    case 'OR':
      return mentionsModseq(key.left) || mentionsModseq(key.right);
    case 'AND':
      return key.operands.some(mentionsModseq);
    default:
      return false;
  }
}

/**
 * What `SAVE` keeps (RFC 5182 §2.4, RFC 9051 §6.4.4.1): with MIN and/or MAX and neither ALL nor
 * COUNT, only those messages; otherwise every match.
 */
function savedUids(uids: readonly number[], others: readonly string[]): number[] {
  if (uids.length === 0 || others.includes('ALL') || others.includes('COUNT')) return [...uids];
  const out: number[] = [];
  if (others.includes('MIN')) out.push(uids[0]!);
  if (others.includes('MAX') && uids[uids.length - 1] !== out[0]) out.push(uids[uids.length - 1]!);
  return out.length > 0 ? out : [...uids];
}
