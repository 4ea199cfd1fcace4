/**
 * GETQUOTA and GETQUOTAROOT — RFC 9208 §4.2, §4.3, with QUOTA=RES-STORAGE (§5.1, units of
 * 1024 octets) and QUOTA=RES-MESSAGE (§5.2). SETQUOTA (§4.1.3) is not offered: limits are set by
 * the operator, so the server does not advertise QUOTASET and the command is unknown.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InprocImap, message } from '../inproc/driver.js';

let imap: InprocImap;
const MSG = message({ body: 'x'.repeat(3000) });
beforeEach(async () => {
  imap = new InprocImap();
  await imap.store.deliver(imap.alice.id, 'INBOX', MSG);
});
afterEach(() => imap.close());

describe('GETQUOTAROOT / GETQUOTA', () => {
  it('names the user\'s root "" and its STORAGE and MESSAGE usage (RFC 9208 §4.3, §5)', async () => {
    imap.alice.limitBytes = 1024 * 1024;
    imap.alice.limitMessages = 100;
    const c = await imap.login();
    const storage = `STORAGE ${Math.ceil(MSG.length / 1024)} 1024`;
    expect(await c.command('a GETQUOTAROOT INBOX')).toEqual([
      '* QUOTAROOT INBOX ""',
      `* QUOTA "" (${storage} MESSAGE 1 100)`,
      'a OK GETQUOTAROOT completed',
    ]);
    expect(await c.command('b GETQUOTA ""')).toEqual([
      `* QUOTA "" (${storage} MESSAGE 1 100)`,
      'b OK GETQUOTA completed',
    ]);
  });

  it('lists only the limited resources', async () => {
    imap.alice.limitMessages = 10;
    const c = await imap.login();
    expect(await c.command('a GETQUOTA ""')).toEqual([
      '* QUOTA "" (MESSAGE 1 10)',
      'a OK GETQUOTA completed',
    ]);
  });

  it('names no root for a user without limits (RFC 9208 §4.3)', async () => {
    const c = await imap.login();
    expect(await c.command('a GETQUOTAROOT INBOX')).toEqual([
      '* QUOTAROOT INBOX',
      'a OK GETQUOTAROOT completed',
    ]);
    expect(await c.command('b GETQUOTA ""')).toEqual(['b NO [NONEXISTENT] No such quota root']);
  });

  it('answers an unknown root or mailbox NO [NONEXISTENT]', async () => {
    imap.alice.limitBytes = 1024 * 1024;
    const c = await imap.login();
    expect(await c.command('a GETQUOTA other')).toEqual(['a NO [NONEXISTENT] No such quota root']);
    expect(await c.command('b GETQUOTAROOT Nope')).toEqual(['b NO [NONEXISTENT] No such mailbox']);
  });

  it('is BAD before authentication and without an argument', async () => {
    const c = await imap.connect();
    expect(await c.command('a GETQUOTA ""')).toEqual([
      'a BAD GETQUOTA is not allowed in the not authenticated state',
    ]);
    expect(await c.command('b GETQUOTAROOT INBOX')).toEqual([
      'b BAD GETQUOTAROOT is not allowed in the not authenticated state',
    ]);
    await c.command('l LOGIN alice@example.test alice-pw');
    expect((await c.command('c GETQUOTAROOT'))[0]).toMatch(/^c BAD /);
  });

  it('SETQUOTA is unknown: QUOTASET is not advertised (RFC 9208 §4.1.3)', async () => {
    const c = await imap.login();
    expect(await c.command('a SETQUOTA "" (STORAGE 100)')).toEqual(['a BAD unknown command SETQUOTA']);
  });
});
