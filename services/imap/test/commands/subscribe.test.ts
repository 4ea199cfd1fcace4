/** SUBSCRIBE and UNSUBSCRIBE — RFC 9051 §6.3.7, §6.3.8. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InprocImap } from '../inproc/driver.js';

let imap: InprocImap;
beforeEach(() => {
  imap = new InprocImap();
});
afterEach(() => imap.close());

describe('SUBSCRIBE / UNSUBSCRIBE', () => {
  it('adds and removes a name in the subscription list', async () => {
    const c = await imap.login();
    await c.command('a CREATE News');
    expect(await c.command('b SUBSCRIBE News')).toEqual(['b OK SUBSCRIBE completed']);
    expect(await c.command('c LIST (SUBSCRIBED) "" News')).toEqual([
      '* LIST (\\HasNoChildren \\Subscribed) "/" News',
      'c OK LIST completed',
    ]);
    expect(await c.command('d UNSUBSCRIBE News')).toEqual(['d OK UNSUBSCRIBE completed']);
    expect(await c.command('e LIST (SUBSCRIBED) "" News')).toEqual(['e OK LIST completed']);
  });

  it('keeps a subscription when the mailbox is deleted (RFC 9051 §6.3.7: not unilaterally removed)', async () => {
    const c = await imap.login();
    await c.command('a CREATE Temp');
    await c.command('b SUBSCRIBE Temp');
    await c.command('c DELETE Temp');
    expect(await c.command('d LIST (SUBSCRIBED) "" Temp')).toEqual([
      '* LIST (\\NonExistent \\Subscribed) "/" Temp',
      'd OK LIST completed',
    ]);
  });

  it('is BAD before authentication and without a name', async () => {
    const c = await imap.connect();
    expect(await c.command('a SUBSCRIBE x')).toEqual([
      'a BAD SUBSCRIBE is not allowed in the not authenticated state',
    ]);
    expect(await c.command('b UNSUBSCRIBE x')).toEqual([
      'b BAD UNSUBSCRIBE is not allowed in the not authenticated state',
    ]);
    await c.command('l LOGIN alice@example.test alice-pw');
    expect((await c.command('c SUBSCRIBE'))[0]).toMatch(/^c BAD /);
  });
});
