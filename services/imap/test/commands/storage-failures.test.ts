/**
 * Storage failing under a command: RFC 5530 §3 UNAVAILABLE, the session kept, nothing half done
 * visible to the client. Refusals with a reason are tested with their commands.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InprocImap, message } from '../inproc/driver.js';

let imap: InprocImap;
beforeEach(async () => {
  imap = new InprocImap();
  await imap.store.deliver(imap.alice.id, 'INBOX', message());
});
afterEach(() => imap.close());

describe('storage unreachable', () => {
  it('answers NO [UNAVAILABLE] and keeps the session usable (RFC 5530 §3)', async () => {
    const c = await imap.selected();
    const cases: [string, string][] = [
      ['FetchMessages', 'a FETCH 1 ENVELOPE'],
      ['StoreFlags', 'b STORE 1 +FLAGS (\\Seen)'],
      ['Search', 'c SEARCH ALL'],
      ['CopyMessages', 'd COPY 1 Archive'],
      ['ListMailboxes', 'e LIST "" *'],
      ['GetMailboxStatus', 'f STATUS Sent (MESSAGES)'],
    ];
    for (const [rpc, command] of cases) {
      imap.store.failNext = rpc;
      const tag = command.split(' ')[0]!;
      expect(await c.command(command), rpc).toEqual([
        `${tag} NO [UNAVAILABLE] Mail storage is unavailable; try again later`,
      ]);
    }
    expect(await c.command('g FETCH 1 FLAGS')).toEqual([
      '* 1 FETCH (FLAGS (\\Recent))',
      'g OK FETCH completed',
    ]);
  });

  it('an APPEND that storage could not take stores nothing', async () => {
    const c = await imap.login();
    imap.store.failNext = 'AppendMessage';
    expect(await c.command('a APPEND Drafts {5+}\r\nhello\r\n')).toEqual([
      'a NO [UNAVAILABLE] Mail storage is unavailable; try again later',
    ]);
    expect(await c.command('b STATUS Drafts (MESSAGES)')).toEqual([
      '* STATUS Drafts (MESSAGES 0)',
      'b OK STATUS completed',
    ]);
  });
});
