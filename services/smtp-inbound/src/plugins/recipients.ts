/**
 * RCPT TO validation (RFC 5321 §4.1.1.3) through Directory.ResolveRecipient (DESIGN §2 step 1).
 * Reply codes: RFC 5321 §4.2, enhanced codes RFC 3463.
 */
import type { RecipientDirectory, RecipientResolution } from '../directory.js';
import { DSN, HookCode, type HookCodeValue, type PluginHooks } from '../haraka/types.js';

export type RcptDecision =
  | { readonly kind: 'accept'; readonly userIds: readonly string[] }
  | { readonly kind: 'reply'; readonly code: HookCodeValue; readonly dsn: DSN };

const reply = (code: HookCodeValue, smtp: number, text: string): RcptDecision => ({
  kind: 'reply',
  code,
  dsn: new DSN(smtp, text),
});

/** Pure: what a Directory answer means on the wire. */
export function rcptDecision(resolution: RecipientResolution): RcptDecision {
  switch (resolution.kind) {
    case 'users':
      return { kind: 'accept', userIds: resolution.users.filter((u) => !u.overQuota).map((u) => u.userId) };
    case 'not-found':
      // RFC 3463 §3.2 X.1.1 bad destination mailbox address.
      return reply(HookCode.DENY, 550, '5.1.1 No such user here');
    case 'over-quota':
      // RFC 3463 §3.3 X.2.2 mailbox full; temporary so the sender retries (DESIGN.md).
      return reply(HookCode.DENYSOFT, 452, '4.2.2 Mailbox full, try again later');
    case 'suspended':
      // RFC 3463 §3.3 X.2.1 mailbox disabled.
      return reply(HookCode.DENY, 550, '5.2.1 Mailbox disabled, not accepting messages');
    case 'forward':
      // Relaying forwards is mta-delivery's (MAIL_OUTBOUND), not yet wired for MX mail.
      return reply(HookCode.DENY, 550, '5.3.3 Forwarding is not supported here yet');
    case 'unavailable':
      // RFC 3463 §3.5 X.3.0: our problem, temporary; never a 5xx for a directory outage.
      return reply(HookCode.DENYSOFT, 451, '4.3.0 Temporary directory failure, try again later');
  }
}

export interface RecipientPluginOptions {
  readonly directory: RecipientDirectory;
  readonly maxRecipients: number;
  readonly onError: (error: unknown) => void;
}

/** Declared size from `MAIL FROM ... SIZE=` (RFC 1870 §6), 0 when absent. */
function declaredSize(notes: Record<string, unknown>): number {
  const size = notes.postmeshDeclaredSize;
  return typeof size === 'number' && Number.isFinite(size) ? size : 0;
}

/** Users each accepted recipient (lower-cased address) resolved to, kept in the transaction's notes. */
export function recipientUsers(notes: Record<string, unknown>): Record<string, string[]> {
  const kept = notes.postmeshRcptUsers;
  if (typeof kept === 'object' && kept !== null) return kept as Record<string, string[]>;
  const users: Record<string, string[]> = {};
  notes.postmeshRcptUsers = users;
  return users;
}

export function recipientHooks(options: RecipientPluginOptions): PluginHooks {
  return {
    hook_mail(next, connection, params) {
      const transaction = connection.transaction;
      const args = Array.isArray(params) ? (params[1] as Record<string, unknown> | undefined) : undefined;
      const size = Number(args?.SIZE ?? args?.size ?? 0);
      if (transaction !== null) transaction.notes.postmeshDeclaredSize = Number.isFinite(size) ? size : 0;
      next();
    },
    hook_rcpt(next, connection, params) {
      const transaction = connection.transaction;
      const rcpt = Array.isArray(params)
        ? (params[0] as { address: string; host: string | null })
        : undefined;
      if (transaction === null || rcpt === undefined) {
        next(HookCode.DENYSOFT, new DSN(451, '4.3.0 Internal error'));
        return;
      }
      // RFC 5321 §4.5.3.1.10: too many recipients is a 452, and the client sends the rest later.
      // Haraka has already appended this RCPT to rcpt_to (and drops it again on a refusal).
      if (transaction.rcpt_to.length > options.maxRecipients) {
        next(HookCode.DENYSOFT, new DSN(452, '4.5.3 Too many recipients'));
        return;
      }
      if (!rcpt.host) {
        next(HookCode.DENY, new DSN(550, '5.1.3 Recipient address must have a domain'));
        return;
      }
      const address = rcpt.address;
      options.directory
        .resolveRecipient(address, declaredSize(transaction.notes))
        .then((resolution) => {
          const decision = rcptDecision(resolution);
          if (resolution.kind === 'unavailable') options.onError(new Error(resolution.reason));
          if (resolution.kind === 'users') {
            // The queue hook splits the job by the partitions of these users (ADR 0007).
            recipientUsers(transaction.notes)[address.toLowerCase()] = resolution.users.map((u) => u.userId);
          }
          if (decision.kind === 'accept') next(HookCode.OK);
          else next(decision.code, decision.dsn);
        })
        .catch((error: unknown) => {
          options.onError(error);
          next(HookCode.DENYSOFT, new DSN(451, '4.3.0 Temporary directory failure, try again later'));
        });
    },
  };
}
