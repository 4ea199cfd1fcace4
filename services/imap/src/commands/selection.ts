/**
 * Shared pieces of the mailbox and message commands: the state they need, and turning sequence
 * sets (MSNs or UIDs, RFC 9051 §6.4.8-§6.4.9) into the UIDs the session knows.
 */
import { MAX_UID, resolveUidSet, uidSetFromUids, type UidSet } from '@postmesh/contracts';
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

/**
 * Whether an MSN set names numbers past the end of the mailbox (RFC 9051 §6.4.5: BAD). In an
 * empty mailbox every MSN is, `*` too (RFC 9051 §9 seq-number: "This includes "*" if the
 * selected mailbox is empty"); the UID forms and SEARCH answer OK with nothing, as Dovecot does.
 */
export function msnOutOfRange(mailbox: SelectedMailbox, set: SequenceSet, uid: boolean): boolean {
  if (uid || set.kind === 'saved') return false;
  const size = mailbox.map.size;
  if (size === 0) return set.ranges.length > 0;
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

/**
 * A UID sequence set as storage's UidSet, for asking about UIDs the session may no longer have
 * (QRESYNC known-uids, VANISHED): `*` is the highest UID the mailbox ever used, which is at least
 * the session's highest (RFC 9051 §6.4.9).
 */
export function uidSetOf(set: SequenceSet, mailbox: SelectedMailbox): UidSet {
  if (set.kind === 'saved') return { ranges: mailbox.savedSearch.map(([first, last]) => ({ first, last })) };
  return {
    ranges: set.ranges.map((r) => {
      const a = r.start === '*' ? 0 : r.start;
      const b = r.end === '*' ? 0 : r.end;
      // `*:*` is the highest UID alone; `n:*` runs from n to it (either order, RFC 9051 §9).
      if (a === 0 && b === 0) return { first: Math.max(1, mailbox.map.maxUid), last: 0 };
      if (a === 0 || b === 0) return { first: Math.max(a, b), last: 0 };
      return { first: Math.min(a, b), last: Math.max(a, b) };
    }),
  };
}

/**
 * The UIDs of storage's `vanished` set the session does not have: those it may report as
 * `VANISHED (EARLIER)` (RFC 7162 §3.2.5.2, §3.2.6). A vanished UID still in the session's map
 * was expunged after the session last synchronized; the next update announces it.
 */
export function vanishedUids(vanished: UidSet | undefined, mailbox: SelectedMailbox): number[] {
  const out: number[] = [];
  for (const [lo, hi] of resolveUidSet(vanished ?? { ranges: [] }, MAX_UID)) {
    for (let uid = lo; uid <= hi; uid++) if (!mailbox.map.has(uid)) out.push(uid);
  }
  return out;
}
