/**
 * How long a storage call may take and when it is tried again, decided here once for every
 * service. A retry is safe only when running the call twice cannot be noticed: storage answers
 * UNAVAILABLE both before and after it has done the work (a database outage midway), so only
 * calls that read are retried. A "not owner" answer is different: the replica checked ownership
 * before running anything, so every call may be sent on to the owner (see client.ts).
 */
import { status } from '@grpc/grpc-js';

export interface CallPolicy {
  /** Whole-call budget of a unary call, retries included. */
  readonly unaryDeadlineMs: number;
  /** Budget of an AppendMessage upload (a large message over a slow link). */
  readonly uploadDeadlineMs: number;
  /** Budget of a streamed answer (FETCH of a large mailbox, a body read by a slow IMAP client). */
  readonly streamDeadlineMs: number;
  /** Attempts of an idempotent call on UNAVAILABLE, the first included. */
  readonly maxAttempts: number;
  /** Backoff before the second attempt; doubles per attempt up to `maxBackoffMs`, with jitter. */
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  /**
   * With owner routing: how long a call waits for its user's partition to have an owner that
   * accepts it (a hand-off in progress: the old owner already refuses, the new one has not taken
   * it yet), with the same backoff. Nothing ran on a refusing replica, so writes wait too.
   */
  readonly ownerWaitMs: number;
}

export const DEFAULT_CALL_POLICY: CallPolicy = {
  unaryDeadlineMs: 30_000,
  uploadDeadlineMs: 5 * 60_000,
  streamDeadlineMs: 15 * 60_000,
  maxAttempts: 3,
  initialBackoffMs: 100,
  maxBackoffMs: 1_000,
  // Above a graceful hand-off (the old owner finishes its delivery batch, then releases), well
  // below a crashed owner's lease TTL, which callers see as UNAVAILABLE.
  ownerWaitMs: 3_000,
};

/** Method names (the generated clients' camelCase) that only read. */
const READS = /^(get|list|query|resolve|search|fetch)[A-Z]/;

/**
 * Whether a call may run twice. `GetMailboxStatus` with `claimRecent` takes the \Recent flags
 * for the calling session (RFC 3501 §2.3.2), so a second run would hide them: not a read then.
 */
export function isIdempotent(method: string, request: unknown): boolean {
  if (!READS.test(method)) return false;
  if (method === 'getMailboxStatus') {
    return !(
      typeof request === 'object' &&
      request !== null &&
      'claimRecent' in request &&
      request.claimRecent
    );
  }
  return true;
}

/** Codes worth another attempt: the call did not reach a replica that could serve it. */
export function isRetryableCode(code: status): boolean {
  return code === status.UNAVAILABLE;
}

/** Backoff before attempt `attempt` (2, 3, …): exponential, capped, with "equal jitter". */
export function backoffMs(policy: CallPolicy, attempt: number): number {
  const ceiling = Math.min(policy.maxBackoffMs, policy.initialBackoffMs * 2 ** (attempt - 2));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}
