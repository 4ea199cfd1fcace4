/** LOGOUT — RFC 9051 §6.1.3: untagged BYE, then the tagged OK, then the server closes. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InprocImap } from '../inproc/driver.js';

let imap: InprocImap;
beforeEach(() => {
  imap = new InprocImap();
});
afterEach(() => imap.close());

describe('LOGOUT', () => {
  it('sends BYE before the tagged OK and closes, in any state (RFC 9051 §6.1.3)', async () => {
    for (const c of [await imap.connect(), await imap.login(), await imap.selected()]) {
      // RFC 9051 §6.1.3: the server MUST send a BYE untagged response before the (tagged) OK.
      expect(await c.command('z LOGOUT')).toEqual(['* BYE Logging out', 'z OK LOGOUT completed']);
      await new Promise((r) => c.pipe.once('close', r));
      expect(c.ended).toBe(true);
    }
  });

  it('leaves a selected mailbox without expunging it (RFC 9051 §6.1.3 is not CLOSE)', async () => {
    await imap.store.deliver(imap.alice.id, 'INBOX', 'Subject: x\r\n\r\nx\r\n');
    const c = await imap.selected();
    await c.command('a STORE 1 +FLAGS (\\Deleted)');
    await c.command('z LOGOUT');
    const again = await imap.login();
    expect(await again.command('b STATUS INBOX (MESSAGES DELETED)')).toEqual([
      '* STATUS INBOX (MESSAGES 1 DELETED 1)',
      'b OK STATUS completed',
    ]);
  });
});
