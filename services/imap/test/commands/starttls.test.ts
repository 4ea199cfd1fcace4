/**
 * STARTTLS — RFC 9051 §6.2.1. In process there is no certificate: the server must not offer
 * STARTTLS then, and must refuse it without starting a handshake. The TLS handshake itself is
 * covered end to end (security.int.test.ts, tls-reload.int.test.ts).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InprocImap } from '../inproc/driver.js';

let imap: InprocImap;
beforeEach(() => {
  imap = new InprocImap();
});
afterEach(() => imap.close());

describe('STARTTLS', () => {
  it('is not advertised and is refused NO [UNAVAILABLE] without a TLS context', async () => {
    const c = await imap.connect({ starttls: false });
    const [caps] = await c.command('a CAPABILITY');
    expect(caps).not.toContain('STARTTLS');
    expect(await c.command('b STARTTLS')).toEqual(['b NO [UNAVAILABLE] TLS is not configured']);
    // The connection is still usable in clear text.
    expect(await c.command('c NOOP')).toEqual(['c OK NOOP completed']);
  });

  it('is BAD after authentication (RFC 9051 §6.2.1: not-authenticated state only)', async () => {
    const c = await imap.login();
    expect(await c.command('a STARTTLS')).toEqual([
      'a BAD STARTTLS is not allowed in the authenticated state',
    ]);
  });

  it('is BAD with arguments', async () => {
    const c = await imap.connect();
    expect((await c.command('a STARTTLS now'))[0]).toMatch(/^a BAD /);
  });
});
