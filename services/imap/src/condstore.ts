/**
 * CONDSTORE enabling (RFC 7162 §3.1): ENABLE CONDSTORE / QRESYNC, SELECT / EXAMINE with the
 * CONDSTORE parameter, STATUS (HIGHESTMODSEQ), FETCH or SEARCH naming MODSEQ, FETCH CHANGEDSINCE
 * and STORE UNCHANGEDSINCE turn it on for the rest of the connection. From then on SELECT and
 * EXAMINE report HIGHESTMODSEQ, and every untagged FETCH a STORE, an implicit \Seen or another
 * session causes carries UID and MODSEQ. When the first enabling command runs with a mailbox
 * already selected, that mailbox's HIGHESTMODSEQ is reported before its results (§3.1), so the
 * client has a mod-sequence to resynchronize from.
 */
import { serializeStatus } from '@postmesh/imap-protocol';
import type { CommandContext } from './commands/context.js';
import type { SelectedMailbox } from './state.js';

export async function enableCondstore(ctx: CommandContext): Promise<void> {
  if (!ctx.enable('CONDSTORE')) return;
  const state = ctx.state;
  if (state.kind !== 'selected') return;
  await ctx.send(highestModseqResponse(state.mailbox.knownModseq));
}

/** `* OK [HIGHESTMODSEQ n] Highest` (RFC 7162 §3.1.2.1). */
export function highestModseqResponse(modseq: number): Buffer {
  return serializeStatus({
    tag: null,
    condition: 'OK',
    code: { code: 'HIGHESTMODSEQ', value: modseq },
    text: 'Highest',
  });
}

/**
 * After this session's own STORE or EXPUNGE changed the mailbox to HIGHESTMODSEQ `after`: when
 * that is one above what the session knew, nothing else happened in between (each change takes
 * a new, greater mod-sequence, RFC 7162 §3.1.1) and the session already applied its own change,
 * so it knows the mailbox up to `after`, and the notification of that change asks storage nothing.
 */
export function knowOwnChange(mailbox: SelectedMailbox, changed: boolean, after: number): void {
  if (changed && after === mailbox.knownModseq + 1) mailbox.knownModseq = after;
}
