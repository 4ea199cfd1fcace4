/**
 * AUTHENTICATE — RFC 9051 §6.2.2 with SASL PLAIN (RFC 4616 §2) and LOGIN
 * (draft-murchison-sasl-login), initial response per SASL-IR (RFC 4959 §3). A `*` line cancels
 * (`BAD`, §6.2.2). Not offered before TLS unless plaintext is allowed (§11.1).
 */
import {
  parseAuthenticateResponse,
  serializeContinuation,
  type StatusResponse,
} from '@postmesh/imap-protocol';
import { authenticate as checkCredentials } from '../login.js';
import type { CommandContext, CommandOf, Handler } from './context.js';

type Step =
  | { readonly kind: 'data'; readonly data: Buffer }
  | { readonly kind: 'end'; readonly response: StatusResponse };

async function challenge(ctx: CommandContext, tag: string, prompt: string): Promise<Step> {
  await ctx.send(serializeContinuation({ base64: Buffer.from(prompt, 'latin1') }));
  const raw = await ctx.readCommand();
  const line = raw?.lines[0];
  if (raw === null || line === undefined || raw.lines.length !== 1) {
    return { kind: 'end', response: { tag, condition: 'BAD', text: 'Invalid SASL response' } };
  }
  const parsed = parseAuthenticateResponse(line);
  switch (parsed.kind) {
    case 'cancel':
      return { kind: 'end', response: { tag, condition: 'BAD', text: 'Authentication cancelled' } };
    case 'invalid':
      return { kind: 'end', response: { tag, condition: 'BAD', text: parsed.message } };
    case 'response':
      return { kind: 'data', data: parsed.data };
  }
}

export const authenticateCommand: Handler<CommandOf<'AUTHENTICATE'>> = async (ctx, command) => {
  const tag = command.tag;
  if (!ctx.tls && !ctx.services.allowPlaintext) {
    return { tag, condition: 'NO', code: { code: 'PRIVACYREQUIRED' }, text: 'Use STARTTLS first' };
  }
  switch (command.mechanism) {
    case 'PLAIN': {
      let data = command.initialResponse;
      if (data === null) {
        const step = await challenge(ctx, tag, '');
        if (step.kind === 'end') return step.response;
        data = step.data;
      }
      // RFC 4616 §2: message = [authzid] NUL authcid NUL passwd
      const parts = data.toString('utf8').split('\0');
      if (parts.length !== 3) return { tag, condition: 'BAD', text: 'Malformed PLAIN response' };
      const [authzid, authcid, password] = parts as [string, string, string];
      if (authzid !== '' && authzid !== authcid) {
        return {
          tag,
          condition: 'NO',
          code: { code: 'AUTHORIZATIONFAILED' },
          text: 'Cannot act as another user',
        };
      }
      return checkCredentials(ctx, tag, authcid, password);
    }
    case 'LOGIN': {
      let username: Buffer;
      if (command.initialResponse !== null && command.initialResponse.length > 0) {
        username = command.initialResponse;
      } else {
        const step = await challenge(ctx, tag, 'Username:');
        if (step.kind === 'end') return step.response;
        username = step.data;
      }
      const step = await challenge(ctx, tag, 'Password:');
      if (step.kind === 'end') return step.response;
      return checkCredentials(ctx, tag, username.toString('utf8'), step.data.toString('utf8'));
    }
    default:
      return { tag, condition: 'NO', code: { code: 'CANNOT' }, text: 'Unsupported authentication mechanism' };
  }
};
