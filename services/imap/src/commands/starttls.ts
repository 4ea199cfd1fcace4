/**
 * STARTTLS — RFC 9051 §6.2.1, §11.1: the TLS handshake starts right after the tagged OK; the
 * session discards anything the client pipelined behind the command (see Session.startTls).
 */
import type { CommandOf, Handler } from './context.js';

export const starttls: Handler<CommandOf<'STARTTLS'>> = (ctx, command) => {
  if (ctx.tls) {
    return Promise.resolve({ tag: command.tag, condition: 'BAD', text: 'TLS is already active' });
  }
  if (!ctx.services.starttls) {
    return Promise.resolve({
      tag: command.tag,
      condition: 'NO',
      code: { code: 'UNAVAILABLE' },
      text: 'TLS is not configured',
    });
  }
  return Promise.resolve({ tag: command.tag, condition: 'OK', text: 'Begin TLS negotiation now' });
};
