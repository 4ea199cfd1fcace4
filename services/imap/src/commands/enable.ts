/**
 * ENABLE — RFC 5161 §3.1-§3.2, RFC 9051 §6.3.1: IMAP4rev2, UTF8=ACCEPT (RFC 6855 §3), CONDSTORE
 * and QRESYNC (RFC 7162 §3.1, §3.2.3; QRESYNC enables CONDSTORE too) can be enabled; `* ENABLED`
 * lists those newly enabled by this command.
 */
import { serializeEnabled } from '@postmesh/imap-protocol';
import type { CommandOf, Handler } from './context.js';

export const enable: Handler<CommandOf<'ENABLE'>> = async (ctx, command) => {
  const enabled: string[] = [];
  for (const capability of command.capabilities) {
    if (capability === 'IMAP4REV2' && ctx.enable('IMAP4REV2')) enabled.push('IMAP4rev2');
    if (capability === 'UTF8=ACCEPT' && ctx.enable('UTF8=ACCEPT')) enabled.push('UTF8=ACCEPT');
    if (capability === 'CONDSTORE' && ctx.enable('CONDSTORE')) enabled.push('CONDSTORE');
    if (capability === 'QRESYNC' && ctx.enable('QRESYNC')) enabled.push('QRESYNC');
  }
  await ctx.send(serializeEnabled(enabled));
  return { tag: command.tag, condition: 'OK', text: 'ENABLE completed' };
};
