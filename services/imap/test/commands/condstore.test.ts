/**
 * CONDSTORE and QRESYNC — RFC 7162 §3.1 (MODSEQ, HIGHESTMODSEQ, CHANGEDSINCE, UNCHANGEDSINCE,
 * the MODSEQ search key) and §3.2 (SELECT (QRESYNC ...), VANISHED, FETCH ... (VANISHED)).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InprocImap, message, type Connection } from '../inproc/driver.js';

let imap: InprocImap;
beforeEach(async () => {
  imap = new InprocImap();
  for (const subject of ['one', 'two', 'three', 'four'])
    await imap.store.deliver(imap.alice.id, 'INBOX', message({ subject }));
});
afterEach(() => imap.close());

const highest = (lines: readonly string[]): number =>
  Number(lines.map((l) => /HIGHESTMODSEQ (\d+)/.exec(l)?.[1]).find((v) => v !== undefined));

async function validity(c: Connection): Promise<number> {
  const [line] = await c.command('v STATUS INBOX (UIDVALIDITY)');
  return Number(/UIDVALIDITY (\d+)/.exec(line ?? '')?.[1]);
}

describe('CONDSTORE', () => {
  it('SELECT (CONDSTORE) enables it and answers HIGHESTMODSEQ (RFC 7162 §3.1.8, §3.1.2.1)', async () => {
    const c = await imap.login();
    const response = await c.command('a SELECT INBOX (CONDSTORE)');
    expect(response).toContain('* OK [HIGHESTMODSEQ 5] Highest');
    // RFC 7162 §3.1: once enabled, FETCH FLAGS answers carry MODSEQ.
    expect(await c.command('b STORE 1 +FLAGS (\\Seen)')).toEqual([
      '* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent) MODSEQ (6))',
      'b OK STORE completed',
    ]);
  });

  it('every change gets a greater MODSEQ; CHANGEDSINCE returns what changed after it (RFC 7162 §3.1.4.1)', async () => {
    const c = await imap.login();
    const start = highest(await c.command('a SELECT INBOX (CONDSTORE)'));
    await c.command('b STORE 2 +FLAGS.SILENT (\\Flagged)');
    await c.command('c STORE 4 +FLAGS.SILENT (\\Answered)');
    expect(await c.command(`d FETCH 1:* (FLAGS) (CHANGEDSINCE ${start})`)).toEqual([
      `* 2 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ (${start + 1}))`,
      `* 4 FETCH (FLAGS (\\Answered \\Recent) MODSEQ (${start + 2}))`,
      'd OK FETCH completed',
    ]);
    expect(await c.command(`e SEARCH MODSEQ ${start + 2}`)).toEqual([
      `* SEARCH 4 (MODSEQ ${start + 2})`,
      'e OK SEARCH completed',
    ]);
  });

  it('STATUS HIGHESTMODSEQ moves with every change (RFC 7162 §3.1.2.1)', async () => {
    const c = await imap.login();
    const before = highest(await c.command('a STATUS INBOX (HIGHESTMODSEQ)'));
    await imap.store.deliver(imap.alice.id, 'INBOX', message({ subject: 'five' }));
    const after = highest(await c.command('b STATUS INBOX (HIGHESTMODSEQ)'));
    expect(after).toBeGreaterThan(before);
  });
});

describe('QRESYNC', () => {
  it("SELECT (QRESYNC ...) answers VANISHED (EARLIER) and the changed flags since the client's MODSEQ (RFC 7162 §3.2.5)", async () => {
    const first = await imap.login();
    await first.command('e ENABLE QRESYNC');
    const modseq = highest(await first.command('a SELECT INBOX'));
    const uidValidity = await validity(first);
    await first.command('b STORE 2 +FLAGS.SILENT (\\Deleted)');
    await first.command('c EXPUNGE');
    await first.command('d STORE 3 +FLAGS.SILENT (\\Seen)');
    await first.command('z LOGOUT');

    const again = await imap.login();
    await again.command('e ENABLE QRESYNC');
    const response = await again.command(`f SELECT INBOX (QRESYNC (${uidValidity} ${modseq}))`);
    const tail = response.slice(response.findIndex((l) => l.startsWith('* OK [HIGHESTMODSEQ')) + 1);
    expect(tail).toEqual([
      // RFC 7162 §3.2.5.2: VANISHED (EARLIER) before the FETCH responses.
      '* VANISHED (EARLIER) 2',
      // Sequence number 3 was UID 4 once UID 2 was gone.
      expect.stringMatching(/^\* 3 FETCH \(UID 4 FLAGS \(\\Seen\) MODSEQ \(\d+\)\)$/),
      'f OK [READ-WRITE] SELECT completed',
    ]);
  });

  it('a QRESYNC parameter with another UIDVALIDITY gets no resync data (RFC 7162 §3.2.5.2)', async () => {
    const c = await imap.login();
    await c.command('e ENABLE QRESYNC');
    const response = await c.command('a SELECT INBOX (QRESYNC (1 1))');
    expect(response.some((l) => l.startsWith('* VANISHED'))).toBe(false);
    expect(response.at(-1)).toBe('a OK [READ-WRITE] SELECT completed');
  });

  it('UID FETCH (CHANGEDSINCE n VANISHED) reports expunged UIDs (RFC 7162 §3.2.6)', async () => {
    const c = await imap.login();
    await c.command('e ENABLE QRESYNC');
    const modseq = highest(await c.command('a SELECT INBOX'));
    const other = await imap.selected();
    await other.command('b STORE 1 +FLAGS.SILENT (\\Deleted)');
    await other.command('c EXPUNGE');
    const response = await c.command(`d UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${modseq} VANISHED)`);
    expect(response).toEqual([
      // The pending expunge is announced first (a UID command may carry updates, RFC 9051 §7.5.1),
      // then the answer to VANISHED, which may repeat UIDs the client was told of (RFC 7162 §3.2.10).
      '* VANISHED 1',
      '* VANISHED (EARLIER) 1',
      'd OK UID FETCH completed',
    ]);
  });

  it('QRESYNC parameters without ENABLE QRESYNC are BAD (RFC 7162 §3.2.5)', async () => {
    const c = await imap.login();
    expect(await c.command('a SELECT INBOX (QRESYNC (1 1))')).toEqual([
      'a BAD QRESYNC parameter requires ENABLE QRESYNC',
    ]);
    // RFC 7162 §3.2.6: VANISHED in FETCH needs QRESYNC as well.
    await c.command('s SELECT INBOX');
    expect((await c.command('b UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)'))[0]).toMatch(/^b BAD /);
  });
});
