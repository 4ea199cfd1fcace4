/**
 * Not-authenticated state: AUTHENTICATE (RFC 9051 §6.2.2, initial response RFC 4959 §3) and
 * LOGIN (RFC 9051 §6.2.3), and the client's answers to AUTHENTICATE challenges (§6.2.2:
 * a BASE64 line, or `*` to cancel).
 */
import type { Cursor } from '../syntax.js';
import type { AuthenticateCommand, LoginCommand } from './types.js';

const BASE64_LINE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Decodes strict BASE64 (RFC 4648 §4, the form RFC 9051 §9 `base64` allows), or null. */
export function decodeBase64Strict(text: string): Buffer | null {
  return BASE64_LINE.test(text) ? Buffer.from(text, 'base64') : null;
}

export function parseAuthenticate(c: Cursor, tag: string): AuthenticateCommand {
  c.sp();
  const mechanism = c.keyword('SASL mechanism');
  let initialResponse: Buffer | null = null;
  if (c.take(0x20)) {
    // RFC 4959 §3: "=" is a zero-length initial response.
    if (c.take(0x3d)) {
      initialResponse = Buffer.alloc(0);
    } else {
      const text = c.atom('initial response', (ch) => ch !== 0x20 && ch > 0x20 && ch < 0x7f);
      initialResponse = decodeBase64Strict(text) ?? c.fail('initial response is not BASE64');
      if (initialResponse.length === 0) c.fail('empty initial response must be sent as "="');
    }
  }
  c.expectEnd();
  return { name: 'AUTHENTICATE', tag, mechanism, initialResponse };
}

export function parseLogin(c: Cursor, tag: string): LoginCommand {
  c.sp();
  const username = c.astringText('user name');
  c.sp();
  const password = c.astringText('password');
  c.expectEnd();
  return { name: 'LOGIN', tag, username, password };
}

export type AuthenticateResponse =
  | { readonly kind: 'response'; readonly data: Buffer }
  | { readonly kind: 'cancel' }
  | { readonly kind: 'invalid'; readonly message: string };

/**
 * A client line sent in answer to an AUTHENTICATE continuation (RFC 9051 §6.2.2): BASE64 data,
 * or `*` to cancel (answer `<tag> BAD`).
 */
export function parseAuthenticateResponse(line: Uint8Array): AuthenticateResponse {
  const text = Buffer.from(line).toString('latin1');
  if (text === '*') return { kind: 'cancel' };
  const data = decodeBase64Strict(text);
  return data === null ? { kind: 'invalid', message: 'response is not BASE64' } : { kind: 'response', data };
}
