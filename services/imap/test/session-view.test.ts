/**
 * The stress checker (session-view.ts) catches each protocol error it is meant to catch, and
 * accepts a correct conversation.
 */
import { describe, expect, it } from 'vitest';
import { RecentRegistry, SessionView } from './session-view.js';

const SELECT =
  '* 2 EXISTS\r\n* 1 RECENT\r\n* OK [UIDVALIDITY 7] UIDs valid\r\n* FLAGS (\\Seen \\Deleted kwA)\r\nA1 OK [READ-WRITE] SELECT completed\r\n';

function selected(recent = new RecentRegistry(), name = 's1'): SessionView {
  const view = new SessionView(name, 'u', recent);
  view.consume('SELECT INBOX', 'A1', SELECT);
  return view;
}

describe('SessionView', () => {
  it('follows a correct conversation without complaint', () => {
    const view = selected();
    view.consume(
      'FETCH 1:* (UID FLAGS)',
      'A2',
      '* 1 FETCH (UID 3 FLAGS (kwA))\r\n* 2 FETCH (UID 4 FLAGS (\\Recent))\r\nA2 OK done\r\n',
    );
    view.consume(
      'NOOP',
      'A3',
      '* 1 EXPUNGE\r\n* 2 EXISTS\r\n* FLAGS (\\Seen kwA kwB)\r\n* 2 FETCH (FLAGS (kwB))\r\nA3 OK done\r\n',
    );
    expect(view.violations).toEqual([]);
    expect(view.mailbox).toBe('INBOX');
    expect(view.uids).toEqual([4, 0]);
  });

  it('reports an EXISTS decrease, an EXPUNGE or FETCH beyond the count, BAD and BYE', () => {
    const view = selected();
    view.consume('NOOP', 'A2', '* 1 EXISTS\r\nA2 OK done\r\n');
    view.consume('NOOP', 'A3', '* 3 EXPUNGE\r\nA3 OK done\r\n');
    view.consume('NOOP', 'A4', '* 5 FETCH (FLAGS ())\r\nA4 OK done\r\n');
    view.consume('STORE 1 +FLAGS (x)', 'A5', 'A5 BAD no\r\n');
    view.consume('NOOP', 'A6', '* BYE going\r\n');
    expect(view.violations.map((v) => v.split(': ')[1])).toEqual([
      'EXISTS 1 below the 2 messages known',
      'EXPUNGE 3 with 2 messages',
      'FETCH 5 with 2 messages',
      'BAD to STORE 1 +FLAGS (x)',
      'BYE',
    ]);
  });

  it('reports a keyword before its FLAGS and \\Recent in two sessions', () => {
    const recent = new RecentRegistry();
    const a = selected(recent, 'a');
    const b = selected(recent, 'b');
    a.consume('FETCH 1 (UID FLAGS)', 'A2', '* 1 FETCH (UID 3 FLAGS (\\Recent kwNew))\r\nA2 OK done\r\n');
    b.consume('FETCH 1 (UID FLAGS)', 'A2', '* 1 FETCH (UID 3 FLAGS (\\Recent))\r\nA2 OK done\r\n');
    expect(a.violations).toHaveLength(1);
    expect(a.violations[0]).toMatch(/keyword kwNew not announced/);
    expect(b.violations).toHaveLength(1);
    expect(b.violations[0]).toMatch(/\\Recent also seen by a/);
  });

  it('lets a read-only session see \\Recent as well (RFC 3501 §2.3.2)', () => {
    const recent = new RecentRegistry();
    const examined = new SessionView('ro', 'u', recent);
    examined.consume(
      'EXAMINE INBOX',
      'A1',
      SELECT.replace('READ-WRITE', 'READ-ONLY').replace('SELECT', 'EXAMINE'),
    );
    const first = selected(recent, 'rw');
    for (const view of [examined, first]) {
      view.consume('FETCH 2 (UID FLAGS)', 'A2', '* 2 FETCH (UID 4 FLAGS (\\Recent))\r\nA2 OK done\r\n');
    }
    expect([...examined.violations, ...first.violations]).toEqual([]);
  });
});
