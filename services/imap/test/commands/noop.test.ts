/** NOOP (RFC 9051 §6.1.2) and CHECK (RFC 3501 §6.4.1, folded into NOOP by RFC 9051 §6.4.1). */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InprocImap, message } from '../inproc/driver.js';

let imap: InprocImap;
beforeEach(() => {
  imap = new InprocImap();
});
afterEach(() => imap.close());

describe('NOOP', () => {
  it('succeeds in every state (RFC 9051 §6.1.2)', async () => {
    const c = await imap.connect();
    expect(await c.command('a NOOP')).toEqual(['a OK NOOP completed']);
    await c.command('l LOGIN alice@example.test alice-pw');
    expect(await c.command('b NOOP')).toEqual(['b OK NOOP completed']);
    await c.command('s SELECT INBOX');
    expect(await c.command('c NOOP')).toEqual(['c OK NOOP completed']);
  });

  it('reports new mail in the selected mailbox as EXISTS and RECENT (RFC 9051 §6.1.2, §7.4.1)', async () => {
    const c = await imap.selected();
    await imap.store.deliver(imap.alice.id, 'INBOX', message());
    // RFC 9051 §6.1.2: NOOP can be used as a periodic poll for new messages.
    expect(await c.command('a NOOP')).toEqual(['* 1 EXISTS', '* 1 RECENT', 'a OK NOOP completed']);
  });

  it('reports an expunge by another session as EXPUNGE (RFC 9051 §7.5.1)', async () => {
    await imap.store.deliver(imap.alice.id, 'INBOX', message({ subject: 'one' }));
    await imap.store.deliver(imap.alice.id, 'INBOX', message({ subject: 'two' }));
    const c = await imap.selected();
    const other = await imap.selected();
    await other.command('a STORE 1 +FLAGS.SILENT (\\Deleted)');
    await other.command('b EXPUNGE');
    expect(await c.command('c NOOP')).toEqual(['* 1 EXPUNGE', 'c OK NOOP completed']);
  });

  it('answers pipelined commands in order, each completion after its own data (RFC 9051 §5.5)', async () => {
    const c = await imap.login();
    c.write('p1 NOOP\r\np2 NAMESPACE\r\np3 NOOP\r\n');
    expect(await c.lines(/p3 OK[^\r]*\r\n/)).toEqual([
      'p1 OK NOOP completed',
      '* NAMESPACE (("" "/")) (("Other Users/" "/")) NIL',
      'p2 OK NAMESPACE completed',
      'p3 OK NOOP completed',
    ]);
  });

  it('refuses arguments with BAD', async () => {
    const c = await imap.connect();
    expect((await c.command('a NOOP now'))[0]).toMatch(/^a BAD /);
  });
});

describe('CHECK', () => {
  it('is OK in the selected state and polls like NOOP', async () => {
    const c = await imap.selected();
    await imap.store.deliver(imap.alice.id, 'INBOX', message());
    expect(await c.command('a CHECK')).toEqual(['* 1 EXISTS', '* 1 RECENT', 'a OK CHECK completed']);
  });

  it('is BAD outside the selected state (RFC 3501 §6.4.1)', async () => {
    const c = await imap.login();
    expect((await c.command('a CHECK'))[0]).toMatch(/^a BAD /);
  });
});
