/**
 * LOGIN — RFC 9051 §6.2.3. Refused before TLS while LOGINDISABLED is advertised
 * (`NO [PRIVACYREQUIRED]`, RFC 5530 §3); credentials go to Directory.Authenticate through the
 * brute-force throttle.
 */
import { authenticate } from '../login.js';
import type { CommandOf, Handler } from './context.js';

export const login: Handler<CommandOf<'LOGIN'>> = async (ctx, command) => {
  // RFC 9051 §6.2.3: a server advertising LOGINDISABLED MUST reject LOGIN.
  if (!ctx.tls && !ctx.services.allowPlaintext) {
    return {
      tag: command.tag,
      condition: 'NO',
      code: { code: 'PRIVACYREQUIRED' },
      text: 'Use STARTTLS or the implicit-TLS port first',
    };
  }
  return authenticate(ctx, command.tag, command.username, command.password);
};
