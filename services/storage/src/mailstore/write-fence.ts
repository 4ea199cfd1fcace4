/**
 * Commit-then-confirm of the IMAP writes (ADR 0007): what an APPEND, STORE, EXPUNGE, COPY or MOVE
 * of the owner writes carries its partition's tag `(p, e, s)`, and the call answers OK only once
 * the coordinator confirmed that tag (its compare-and-set of the partition's commit pointer). A
 * former owner, paused past its lease and resumed, fails its confirm: it removes what the call
 * wrote and refuses the call as "not owner", so the client goes to the partition's owner.
 *
 * On SQLite with the commit pointers in the same file (ADR 0012), APPEND, STORE and EXPUNGE are
 * instead one transaction that checks the partition's pointer is still in this owner's epoch
 * (`guard`, ADR 0014): they count as they commit, untagged, with nothing to confirm.
 */
import { ErrorReason } from './contract.js';
import { MailstoreError } from './errors.js';
import { GUARD_FAILED, type WriteGuard } from '../db/sqlite/write-ops.js';
import type { WriteTag } from './types.js';

/** One write in progress under a tag of its user's partition. */
export interface FencedWrite {
  readonly tag: WriteTag;
  /** Resolves true once the partition's pointer covers the tag; false: the write must not count. */
  confirm(): Promise<boolean>;
  /** Nothing written under the tag counts on it (it failed, or was removed). */
  abandon(): void;
}

export type { WriteGuard } from '../db/sqlite/write-ops.js';

/** Storage's ownership as the mailstore's writers see it (ownership/write-fence.ts). */
export interface WriteFence {
  /**
   * The tag for a write of the user's mail, taken just before its documents are written;
   * undefined when writes are not fenced (ownership off). Throws NOT_OWNER when this replica does
   * not own the user's partition now.
   */
  begin(userId: string): Promise<FencedWrite | undefined>;
  /**
   * How a write of the user's mail is made to count when it can be one transaction of the
   * mailstore's own database (ADR 0014): with the commit pointers in that database (ADR 0012), the
   * guard its transaction checks (the partition's pointer still in this owner's epoch), and no
   * confirm; `unfenced` when writes are not fenced now; `confirm` when the pointers are elsewhere
   * and the write takes `begin` and its confirm. Throws NOT_OWNER when this replica does not own the
   * user's partition now.
   */
  guard(userId: string): Promise<WriteGuard | 'unfenced' | 'confirm'>;
  /** What a failed write left in the caches of the user's partition is read again from the database. */
  forget(userId: string): void;
}

/** The refusal of a write whose confirm failed: UNAVAILABLE with reason NOT_OWNER (ADR 0007, Routing). */
export function notOwner(): MailstoreError {
  return new MailstoreError(ErrorReason.NOT_OWNER, "this storage replica does not own the user's partition");
}

/** Whether an atomic write was refused because its guard no longer matched (ADR 0014). */
export function guardFailed(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === GUARD_FAILED;
}

/** Documents written under exactly this tag. */
export function taggedWith(tag: WriteTag): { 'own.p': number; 'own.e': number; 'own.s': number } {
  return { 'own.p': tag.p, 'own.e': tag.e, 'own.s': tag.s };
}
