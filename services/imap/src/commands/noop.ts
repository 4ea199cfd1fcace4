/**
 * NOOP — RFC 9051 §6.1.2. Its purpose is polling: the session asks storage for changes (the
 * dispatch table's `always` update policy), so a session that missed events converges here.
 */
import type { CommandOf, Handler } from './context.js';

export const noop: Handler<CommandOf<'NOOP'>> = (_ctx, command) =>
  Promise.resolve({ tag: command.tag, condition: 'OK', text: 'NOOP completed' });

/**
 * CHECK — RFC 3501 §6.4.1 (IMAP4rev1): a checkpoint of the selected mailbox. Every change is
 * already durable in storage, so it acts as NOOP, which RFC 9051 Appendix E says it became.
 */
export const check: Handler<CommandOf<'CHECK'>> = (_ctx, command) =>
  Promise.resolve({ tag: command.tag, condition: 'OK', text: 'CHECK completed' });
