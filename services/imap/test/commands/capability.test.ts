/**
 * CAPABILITY — RFC 9051 §6.1.1, §7.2.2, and the greeting (§7.1.1). What a client may rely on is
 * the exact list, so it is asserted whole; each extension's own behaviour is tested in the file
 * of its commands (coverage.test.ts checks that every advertised name has one).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InprocImap } from '../inproc/driver.js';

let imap: InprocImap;
beforeEach(() => {
  imap = new InprocImap();
});
afterEach(() => imap.close());

const COMMON =
  'IMAP4rev2 IMAP4rev1 %LITERAL% SASL-IR ENABLE IDLE NAMESPACE UIDPLUS MOVE UNSELECT CHILDREN SPECIAL-USE CREATE-SPECIAL-USE ' +
  'LIST-EXTENDED LIST-STATUS ESEARCH ID BINARY STATUS=SIZE UTF8=ACCEPT COMPRESS=DEFLATE QUOTA ' +
  'QUOTA=RES-STORAGE QUOTA=RES-MESSAGE SORT SORT=DISPLAY ESORT THREAD=ORDEREDSUBJECT THREAD=REFERENCES ' +
  'WITHIN SEARCHRES CONDSTORE QRESYNC PREVIEW OBJECTID ACL RIGHTS=texk APPENDLIMIT=65536';

describe('CAPABILITY', () => {
  it('greets with OK and no capability data it would have to take back (RFC 9051 §7.1.1)', async () => {
    const c = await imap.connect();
    // RFC 9051 §7.1.1: the greeting is an untagged OK, PREAUTH or BYE.
    expect(c.greeting).toMatch(/^\* OK /);
  });

  it('lists IMAP4rev2, LITERAL- and the plaintext mechanisms before login', async () => {
    const c = await imap.connect();
    // RFC 9051 §6.1.1: the untagged CAPABILITY response MUST list IMAP4rev2.
    // RFC 7888 §5: LITERAL- before authentication, where only small literals are taken.
    expect(await c.command('a CAPABILITY')).toEqual([
      `* CAPABILITY ${COMMON.replace('%LITERAL%', 'LITERAL-')} AUTH=PLAIN AUTH=LOGIN`,
      'a OK CAPABILITY completed',
    ]);
  });

  it('announces LOGINDISABLED and no AUTH= without TLS when plaintext is not allowed (RFC 9051 §6.2.3)', async () => {
    const c = await imap.connect({ allowPlaintext: false, starttls: true });
    const [line, done] = await c.command('a CAPABILITY');
    // RFC 9051 §6.2.3, §11.1: LOGINDISABLED where LOGIN would expose the password.
    expect(line).toBe(`* CAPABILITY ${COMMON.replace('%LITERAL%', 'LITERAL-')} STARTTLS LOGINDISABLED`);
    expect(done).toBe('a OK CAPABILITY completed');
  });

  it('lists LITERAL+ and no AUTH= once authenticated, and the LOGIN OK carries the new list', async () => {
    const c = await imap.connect();
    // RFC 9051 §7.1: a CAPABILITY response code in the tagged OK of LOGIN spares a round trip.
    expect(await c.command('l LOGIN alice@example.test alice-pw')).toEqual([
      `l OK [CAPABILITY ${COMMON.replace('%LITERAL%', 'LITERAL+')}] Logged in`,
    ]);
    expect(await c.command('a CAPABILITY')).toEqual([
      `* CAPABILITY ${COMMON.replace('%LITERAL%', 'LITERAL+')}`,
      'a OK CAPABILITY completed',
    ]);
  });

  it('answers CAPABILITY in the selected state too (RFC 9051 §6.1: any state)', async () => {
    const c = await imap.selected();
    const response = await c.command('a CAPABILITY');
    expect(response[0]).toMatch(/^\* CAPABILITY IMAP4rev2 /);
    expect(response[1]).toBe('a OK CAPABILITY completed');
  });

  it('refuses arguments with BAD (RFC 9051 §6.1.1: no arguments)', async () => {
    const c = await imap.connect();
    const [done] = await c.command('a CAPABILITY extra');
    expect(done).toMatch(/^a BAD /);
  });
});

describe('unknown and malformed commands', () => {
  it('answers an unknown command BAD and keeps the connection (RFC 9051 §7.1.3)', async () => {
    const c = await imap.login();
    // METADATA (RFC 5464) and SETQUOTA (RFC 9208 §4.1.3) are not offered, so not advertised.
    expect(await c.command('a GETMETADATA INBOX /private/comment')).toEqual([
      'a BAD unknown command GETMETADATA',
    ]);
    expect(await c.command('b SETQUOTA "" (STORAGE 100)')).toEqual(['b BAD unknown command SETQUOTA']);
    expect(await c.command('c XYZZY')).toEqual(['c BAD unknown command XYZZY']);
    expect(await c.command('d NOOP')).toEqual(['d OK NOOP completed']);
  });

  it('answers a line without a tag with an untagged BAD (RFC 9051 §7.1.3)', async () => {
    const c = await imap.connect();
    c.write('\r\n');
    const [line] = await c.lines('\r\n');
    expect(line).toMatch(/^\* BAD /);
  });
});
