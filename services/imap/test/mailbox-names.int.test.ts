/**
 * Mailbox names and LIST patterns from a hostile or unusual client, over a real socket to the
 * real imap and storage services:
 * - a LIST pattern that makes a backtracking matcher run for minutes (`*a*a*a*a*b` against a long
 *   name) is answered at once, and storage's health endpoint keeps answering meanwhile;
 * - SUBSCRIBE obeys the naming rules of CREATE (RFC 9051 §6.3.7);
 * - a name made of every atom-special is refused with `NO [CANNOT]` where it is not valid
 *   modified UTF-7 (IMAP4rev1), and is created, selected and found by `LIST "" <name>%*` where
 *   names are UTF-8 (IMAP4rev2) or correctly encoded; no command ends the connection.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loggedIn } from './client.js';
import { startImapStack, type ImapStack, type TestUser } from './harness.js';

/** Every printable ASCII character that is an atom-char, plus `[` `}` (RFC 9051 §9). */
const SPECIALS = "!#$&'+,-.0123456789:;<=>?@^_`|[}";

describe('mailbox names and LIST patterns', () => {
  let stack: ImapStack;
  let user: TestUser;

  beforeAll(async () => {
    stack = await startImapStack();
    user = await stack.createUser();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  async function storageLive(): Promise<number> {
    const response = await fetch(`http://127.0.0.1:${stack.storageOpsPort}/healthz/live`, {
      signal: AbortSignal.timeout(2_000),
    });
    return response.status;
  }

  it('answers a backtracking-prone LIST pattern at once while storage stays healthy', async () => {
    const client = await loggedIn(stack.imapPort, user);
    const long = 'a'.repeat(400);
    expect(await client.command('a1', `CREATE ${long}`)).toMatch(
      /^a1 OK \[MAILBOXID \([0-9a-f]{24}\)\] CREATE completed\r\n$/,
    );
    expect(await client.command('a2', `CREATE ${long}/${long.slice(0, 300)}`)).toMatch(
      /^a2 OK \[MAILBOXID \([0-9a-f]{24}\)\] CREATE completed\r\n$/,
    );
    client.write('a3 LIST "" "*a*a*a*a*b"\r\n');
    // Storage answers its health endpoint during and after the LIST (it hung for minutes).
    const health = [await storageLive()];
    // The 10 s bound is far above what the linear matcher needs and far below what a
    // backtracking one takes (minutes; the imap service gives up on storage after 30 s).
    expect(await client.readLine('a3 ', 10_000)).toBe('a3 OK LIST completed\r\n');
    health.push(await storageLive());
    expect(health).toEqual([200, 200]);
    expect(await client.command('a4', 'LIST "" "*a*a*a*a*"')).toBe(
      `* LIST (\\HasChildren) "/" ${long}\r\n` +
        `* LIST (\\HasNoChildren) "/" ${long}/${long.slice(0, 300)}\r\n` +
        'a4 OK LIST completed\r\n',
    );
    expect(await client.command('a5', `LIST "" "${'%a'.repeat(200)}%"`)).toBe(
      `* LIST (\\HasChildren) "/" ${long}\r\na5 OK LIST completed\r\n`,
    );
    client.close();
  });

  it('refuses SUBSCRIBE to names CREATE would refuse, and UNSUBSCRIBE of them', async () => {
    const client = await loggedIn(stack.imapPort, user);
    for (const [n, name] of [
      ['1', '"a*b"'],
      ['2', '"50%"'],
      ['3', '"/rooted"'],
      ['4', '"a//b"'],
      ['5', '" padded"'],
    ] as const) {
      expect(await client.command(`s${n}`, `SUBSCRIBE ${name}`)).toBe(
        `s${n} NO [CANNOT] Invalid mailbox name\r\n`,
      );
    }
    expect(await client.command('s6', `SUBSCRIBE ${'x'.repeat(1100)}`)).toBe(
      's6 NO [LIMIT] Limit reached\r\n',
    );
    expect(await client.command('s7', 'UNSUBSCRIBE "a*b"')).toBe('s7 NO [CANNOT] Invalid mailbox name\r\n');
    // A name that may exist later is still fine (RFC 9051 §6.3.7), and INBOX is case-insensitive.
    expect(await client.command('s8', 'SUBSCRIBE "Later/Maybe"')).toBe('s8 OK SUBSCRIBE completed\r\n');
    expect(await client.command('s9', 'SUBSCRIBE inbox')).toBe('s9 OK SUBSCRIBE completed\r\n');
    const lsub = await client.command('s10', 'LSUB "" *');
    expect(lsub).toContain('* LSUB (\\Noselect) "/" Later/Maybe\r\n');
    expect(lsub).not.toMatch(/a\*b|50%|rooted|padded|xxxx/);
    expect(await client.command('s11', 'UNSUBSCRIBE "Later/Maybe"')).toBe('s11 OK UNSUBSCRIBE completed\r\n');
    client.close();
  });

  it('IMAP4rev1: a name of atom-specials that is not modified UTF-7 gets NO, and the session goes on', async () => {
    const client = await loggedIn(stack.imapPort, user);
    expect(await client.command('r1', 'SELECT INBOX')).toMatch(/r1 OK \[READ-WRITE\]/);
    const refused = 'NO [CANNOT] invalid modified BASE64 in mailbox name\r\n';
    expect(await client.command('r2', `SELECT ${SPECIALS}`)).toBe(`r2 ${refused}`);
    expect(await client.command('r3', `CREATE "${SPECIALS}"`)).toBe(`r3 ${refused}`);
    expect(await client.command('r4', `LIST "" ${SPECIALS}%*`)).toBe(`r4 ${refused}`);
    expect(await client.command('r5', `LIST "" "${SPECIALS}%*"`)).toBe(`r5 ${refused}`);
    expect(await client.command('r6', `LIST "" {${SPECIALS.length + 2}+}\r\n${SPECIALS}%*`)).toBe(
      `r6 ${refused}`,
    );
    // The same name correctly encoded (`&` is `&-`) is an ordinary mailbox.
    const encoded = SPECIALS.replace('&', '&-');
    expect(await client.command('r7', `CREATE "${encoded}"`)).toMatch(
      /^r7 OK \[MAILBOXID \([0-9a-f]{24}\)\] CREATE completed\r\n$/,
    );
    expect(await client.command('r8', `CREATE "${encoded}/child"`)).toMatch(
      /^r8 OK \[MAILBOXID \([0-9a-f]{24}\)\] CREATE completed\r\n$/,
    );
    expect(await client.command('r9', `LIST "" ${encoded}%*`)).toBe(
      `* LIST (\\HasChildren) "/" ${encoded}\r\n* LIST (\\HasNoChildren) "/" ${encoded}/child\r\n` +
        'r9 OK LIST completed\r\n',
    );
    expect(await client.command('r10', `SELECT "${encoded}"`)).toMatch(/r10 OK \[READ-WRITE\]/);
    expect(await client.command('r11', 'NOOP')).toBe('r11 OK NOOP completed\r\n');
    expect(client.closed).toBe(false);
    client.close();
  });

  it('IMAP4rev2: the same name is UTF-8 and works in SELECT, CREATE and LIST "" <name>%*', async () => {
    const other = await stack.createUser();
    const client = await loggedIn(stack.imapPort, other);
    expect(await client.command('u1', 'ENABLE IMAP4rev2')).toBe(
      '* ENABLED IMAP4rev2\r\nu1 OK ENABLE completed\r\n',
    );
    expect(await client.command('u2', 'SELECT INBOX')).toMatch(/u2 OK \[READ-WRITE\]/);
    expect(await client.command('u3', `SELECT "${SPECIALS}"`)).toBe(
      // RFC 9051 §6.3.2: a failed SELECT closes the mailbox that was selected.
      '* OK [CLOSED] Previous mailbox closed\r\nu3 NO [NONEXISTENT] No such mailbox\r\n',
    );
    expect(await client.command('u4', `CREATE "${SPECIALS}"`)).toMatch(
      /^u4 OK \[MAILBOXID \([0-9a-f]{24}\)\] CREATE completed\r\n$/,
    );
    expect(await client.command('u5', `CREATE ${SPECIALS}/child`)).toMatch(
      /^u5 OK \[MAILBOXID \([0-9a-f]{24}\)\] CREATE completed\r\n$/,
    );
    const listed = `* LIST (\\HasChildren) "/" ${SPECIALS}\r\n* LIST (\\HasNoChildren) "/" ${SPECIALS}/child\r\n`;
    expect(await client.command('u6', `LIST "" ${SPECIALS}%*`)).toBe(`${listed}u6 OK LIST completed\r\n`);
    expect(await client.command('u7', `LIST "" "${SPECIALS}%"`)).toBe(
      `* LIST (\\HasChildren) "/" ${SPECIALS}\r\nu7 OK LIST completed\r\n`,
    );
    expect(await client.command('u8', `LIST "" ${SPECIALS.slice(0, 8)}*`)).toBe(
      `${listed}u8 OK LIST completed\r\n`,
    );
    expect(await client.command('u9', `SELECT ${SPECIALS}`)).toMatch(/u9 OK \[READ-WRITE\]/);
    expect(await client.command('u10', 'NOOP')).toBe('u10 OK NOOP completed\r\n');
    client.close();
  });
});
