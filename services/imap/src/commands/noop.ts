/**
 * NOOP — RFC 9051 §6.1.2. Its purpose is polling: the session asks storage for changes (the
 * dispatch table's `always` update policy), so a session that missed events converges here.
 */
import type { CommandOf, Handler } from './context.js';

export const noop: Handler<CommandOf<'NOOP'>> = (_ctx, command) =>
  Promise.resolve({ tag: command.tag, condition: 'OK', text: 'NOOP completed' });
