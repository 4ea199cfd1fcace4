/**
 * AUTHENTICATE — RFC 9051 §6.2.2 with SASL PLAIN (RFC 4616 §2), LOGIN, and initial responses
 * (SASL-IR, RFC 4959 §3).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InprocImap } from '../inproc/driver.js';

let imap: InprocImap;
beforeEach(() => {
  imap = new InprocImap();
});
afterEach(() => imap.close());

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

describe('AUTHENTICATE PLAIN', () => {
  it('takes the initial response on the command line (RFC 4959 §3 SASL-IR)', async () => {
    const c = await imap.connect();
    const [done] = await c.command(`a AUTHENTICATE PLAIN ${b64('\0alice@example.test\0alice-pw')}`);
    expect(done).toMatch(/^a OK \[CAPABILITY IMAP4rev2 .*\] Logged in$/);
  });

  it('asks with an empty continuation when there is no initial response (RFC 9051 §6.2.2)', async () => {
    const c = await imap.connect();
    c.write('a AUTHENTICATE PLAIN\r\n');
    // RFC 9051 §7.5: a continuation request; PLAIN's first challenge is empty.
    expect(await c.lines('\r\n')).toEqual(['+ ']);
    c.write(`${b64('alice@example.test\0alice@example.test\0alice-pw')}\r\n`);
    expect((await c.lines(/a (OK|NO|BAD)[^\r]*\r\n/))[0]).toMatch(/^a OK \[CAPABILITY /);
  });

  it('takes "=" as an empty initial response, which PLAIN cannot use: BAD (RFC 4959 §3)', async () => {
    const c = await imap.connect();
    c.write('a AUTHENTICATE PLAIN =\r\n');
    const [done] = await c.lines(/a (OK|NO|BAD)[^\r]*\r\n/);
    expect(done).toMatch(/^a BAD /);
  });

  it('answers a "*" line with BAD: the exchange is cancelled (RFC 9051 §6.2.2)', async () => {
    const c = await imap.connect();
    c.write('a AUTHENTICATE PLAIN\r\n');
    await c.lines('\r\n');
    c.write('*\r\n');
    expect(await c.lines(/a BAD[^\r]*\r\n/)).toEqual(['a BAD Authentication cancelled']);
    expect(await c.command('b NOOP')).toEqual(['b OK NOOP completed']);
  });

  it('answers wrong credentials NO [AUTHENTICATIONFAILED] (RFC 5530 §3)', async () => {
    const c = await imap.connect();
    expect(await c.command(`a AUTHENTICATE PLAIN ${b64('\0alice@example.test\0nope')}`)).toEqual([
      'a NO [AUTHENTICATIONFAILED] Invalid credentials',
    ]);
  });

  it('refuses to act as another user: NO [AUTHORIZATIONFAILED] (RFC 4616 §2, RFC 5530 §3)', async () => {
    const c = await imap.connect();
    expect(
      await c.command(`a AUTHENTICATE PLAIN ${b64('bob@example.test\0alice@example.test\0alice-pw')}`),
    ).toEqual(['a NO [AUTHORIZATIONFAILED] Cannot act as another user']);
  });

  it('answers a PLAIN message without two NULs BAD', async () => {
    const c = await imap.connect();
    expect(await c.command(`a AUTHENTICATE PLAIN ${b64('alice-pw')}`)).toEqual([
      'a BAD Malformed PLAIN response',
    ]);
  });

  it('answers invalid base64 BAD (RFC 9051 §6.2.2)', async () => {
    const c = await imap.connect();
    c.write('a AUTHENTICATE PLAIN\r\n');
    await c.lines('\r\n');
    c.write('!!!notbase64\r\n');
    expect((await c.lines(/a (OK|NO|BAD)[^\r]*\r\n/))[0]).toMatch(/^a BAD /);
  });
});

describe('AUTHENTICATE LOGIN and other mechanisms', () => {
  it('asks for user name and password in base64 challenges', async () => {
    const c = await imap.connect();
    c.write('a AUTHENTICATE LOGIN\r\n');
    expect(await c.lines('\r\n')).toEqual([`+ ${b64('Username:')}`]);
    c.write(`${b64('alice@example.test')}\r\n`);
    expect(await c.lines('\r\n')).toEqual([`+ ${b64('Password:')}`]);
    c.write(`${b64('alice-pw')}\r\n`);
    expect((await c.lines(/a (OK|NO|BAD)[^\r]*\r\n/))[0]).toMatch(/^a OK \[CAPABILITY /);
  });

  it('answers an unsupported mechanism NO [CANNOT] (RFC 9051 §6.2.2: NO for an unsupported mechanism)', async () => {
    const c = await imap.connect();
    expect(await c.command('a AUTHENTICATE CRAM-MD5')).toEqual([
      'a NO [CANNOT] Unsupported authentication mechanism',
    ]);
  });

  it('is NO [PRIVACYREQUIRED] without TLS when plaintext is not allowed (RFC 9051 §11.1)', async () => {
    const c = await imap.connect({ allowPlaintext: false, starttls: true });
    expect(await c.command(`a AUTHENTICATE PLAIN ${b64('\0alice@example.test\0alice-pw')}`)).toEqual([
      'a NO [PRIVACYREQUIRED] Use STARTTLS first',
    ]);
  });

  it('is BAD once authenticated (RFC 9051 §6.2)', async () => {
    const c = await imap.login();
    expect((await c.command('a AUTHENTICATE PLAIN'))[0]).toMatch(/^a BAD /);
  });
});
