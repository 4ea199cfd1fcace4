/**
 * Shared pieces of the mailbox and message commands: the state they need, and turning sequence
 * sets (MSNs or UIDs, RFC 9051 §6.4.8-§6.4.9) into the UIDs the session knows.
 */
import { uidSetFromUids, type UidSet } from '@postmesh/contracts';
import { resolveSequenceSet, type SequenceSet } from '@postmesh/imap-protocol';
import type { AuthenticatedUser, SelectedMailbox } from '../state.js';
import type { CommandContext } from './context.js';

export class StateError extends Error {
  override readonly name = 'StateError';
}

export function userOf(ctx: CommandContext): AuthenticatedUser {
  const state = ctx.state;
  if (state.kind === 'authenticated' || state.kind === 'selected') return state.user;
  throw new StateError('not authenticated');
}

export function selectedOf(ctx: CommandContext): { user: AuthenticatedUser; mailbox: SelectedMailbox } {
  const state = ctx.state;
  if (state.kind === 'selected') return state;
  throw new StateError('no mailbox selected');
}

/**
 * The UIDs a set names, ascending, limited to messages the session knows. With `uid`, `*` is
 * the highest known UID and UIDs that do not exist are ignored (RFC 9051 §6.4.9); otherwise the
 * numbers are MSNs, `*` the last one.
 */
export function resolveUids(mailbox: SelectedMailbox, set: SequenceSet, uid: boolean): number[] {
  const map = mailbox.map;
  if (uid) {
    const ranges = resolveSequenceSet(set, map.maxUid, mailbox.savedSearch);
    return ranges.flatMap(([lo, hi]) => map.uidsInUidRange(lo, hi));
  }
  if (set.kind === 'saved') {
    // `$` always holds UIDs (RFC 5182 §2.1).
    return mailbox.savedSearch.flatMap(([lo, hi]) => map.uidsInUidRange(lo, hi));
  }
  return resolveSequenceSet(set, map.size).flatMap(([lo, hi]) => map.uidsInMsnRange(lo, hi));
}

/** Whether an MSN set names numbers past the end of the mailbox (RFC 9051 §6.4.5: BAD). */
export function msnOutOfRange(mailbox: SelectedMailbox, set: SequenceSet, uid: boolean): boolean {
  if (uid || set.kind === 'saved') return false;
  const size = mailbox.map.size;
  return set.ranges.some((r) => (r.start !== '*' && r.start > size) || (r.end !== '*' && r.end > size));
}

export function toUidSet(uids: readonly number[]): UidSet {
  return uidSetFromUids(uids);
}

/** Consecutive-run compression of UIDs paired in order (COPYUID / APPENDUID sets). */
export function toRanges(uids: readonly number[]): [number, number][] {
  const out: [number, number][] = [];
  for (const uid of uids) {
    const last = out[out.length - 1];
    if (last !== undefined && last[1] + 1 === uid) last[1] = uid;
    else out.push([uid, uid]);
  }
  return out;
}
