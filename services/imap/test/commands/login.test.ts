/** LOGIN — RFC 9051 §6.2.3; failures with RFC 5530 §3 response codes. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InprocImap } from '../inproc/driver.js';

let imap: InprocImap;
beforeEach(() => {
  imap = new InprocImap();
});
afterEach(() => imap.close());

describe('LOGIN', () => {
  it('accepts atoms, quoted strings and literals as the arguments (RFC 9051 §6.2.3, §4.3)', async () => {
    const a = await imap.connect();
    expect((await a.command('a LOGIN alice@example.test alice-pw'))[0]).toMatch(
      /^a OK \[CAPABILITY .*\] Logged in$/,
    );
    const b = await imap.connect();
    expect((await b.command('b LOGIN "alice@example.test" "alice-pw"'))[0]).toMatch(/^b OK /);
    const c = await imap.connect();
    // RFC 9051 §4.3: a synchronizing literal waits for the continuation request.
    c.write('c LOGIN {18}\r\n');
    expect((await c.lines('\r\n'))[0]).toMatch(/^\+ /);
    c.write('alice@example.test alice-pw\r\n');
    expect((await c.lines(/c (OK|NO|BAD)/))[0]).toMatch(/^c OK \[CAPABILITY /);
  });

  it('takes a non-synchronizing literal of up to 4096 octets before login (RFC 7888 §5 LITERAL-)', async () => {
    const c = await imap.connect();
    c.write('a LOGIN {18+}\r\nalice@example.test alice-pw\r\n');
    expect((await c.lines(/a (OK|NO|BAD)/))[0]).toMatch(/^a OK \[CAPABILITY /);
  });

  it('refuses a non-synchronizing literal over 4096 octets before login with BAD and closes (RFC 7888 §4)', async () => {
    const c = await imap.connect();
    c.write(`a LOGIN {5000+}\r\n${'x'.repeat(5000)} pw\r\n`);
    expect(await c.lines('* BYE')).toEqual([
      'a BAD [TOOBIG] Literal too large before authentication',
      '* BYE Literal too large before authentication',
    ]);
  });

  it('answers NO [AUTHENTICATIONFAILED] for a wrong password or unknown user, alike (RFC 5530 §3)', async () => {
    const c = await imap.connect();
    expect(await c.command('a LOGIN alice@example.test wrong')).toEqual([
      'a NO [AUTHENTICATIONFAILED] Invalid credentials',
    ]);
    expect(await c.command('b LOGIN nobody@example.test wrong')).toEqual([
      'b NO [AUTHENTICATIONFAILED] Invalid credentials',
    ]);
    // Still not authenticated: a command of the authenticated state is BAD.
    expect((await c.command('c SELECT INBOX'))[0]).toMatch(/^c BAD /);
  });

  it('closes the connection with BYE after too many failures', async () => {
    const c = await imap.connect();
    await c.command('a LOGIN alice@example.test x1');
    await c.command('b LOGIN alice@example.test x2');
    // The third failure is the last this connection gets (maxAuthFailuresPerConnection).
    expect(await c.command('c LOGIN alice@example.test x3')).toEqual([
      'c NO [AUTHENTICATIONFAILED] Invalid credentials',
    ]);
    expect(await c.lines('* BYE')).toEqual(['* BYE Too many failed authentication attempts']);
  });

  it('is refused with LOGINDISABLED semantics without TLS (RFC 9051 §6.2.3: MUST NOT accept)', async () => {
    const c = await imap.connect({ allowPlaintext: false, starttls: true });
    const [done] = await c.command('a LOGIN alice@example.test alice-pw');
    expect(done).toBe('a NO [PRIVACYREQUIRED] Use STARTTLS or the implicit-TLS port first');
  });

  it('is BAD once authenticated (RFC 9051 §6.2: not-authenticated state only)', async () => {
    const c = await imap.login();
    expect(await c.command('a LOGIN alice@example.test alice-pw')).toEqual([
      'a BAD LOGIN is not allowed in the authenticated state',
    ]);
  });

  it('is BAD with a missing argument (RFC 9051 §9 login = "LOGIN" SP userid SP password)', async () => {
    const c = await imap.connect();
    expect((await c.command('a LOGIN alice@example.test'))[0]).toMatch(/^a BAD /);
  });
});
