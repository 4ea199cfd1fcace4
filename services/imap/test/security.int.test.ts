/**
 * TLS, authentication and limits (issue items 1, 4 and 6): STARTTLS and implicit TLS with a
 * generated self-signed certificate, LOGINDISABLED before TLS (RFC 9051 §6.2.3), STARTTLS
 * plaintext injection (§11.1), failed-login lockout shared by two imap processes through the
 * JetStream KV bucket that never refuses simultaneous right logins, per-connection failure limit, autologout, long lines, and a graceful
 * shutdown that says BYE.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient, quote } from './client.js';
import { startImapStack, type ImapStack, type TestUser } from './harness.js';

const CAPS =
  'IMAP4rev2 IMAP4rev1 LITERAL+ SASL-IR ENABLE IDLE NAMESPACE UIDPLUS MOVE UNSELECT CHILDREN SPECIAL-USE CREATE-SPECIAL-USE ' +
  'LIST-EXTENDED LIST-STATUS ESEARCH ID BINARY STATUS=SIZE UTF8=ACCEPT COMPRESS=DEFLATE QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE ' +
  'SORT SORT=DISPLAY ESORT THREAD=ORDEREDSUBJECT THREAD=REFERENCES WITHIN SEARCHRES CONDSTORE QRESYNC PREVIEW OBJECTID ACL RIGHTS=texk APPENDLIMIT=67108864';
/** Before authentication: LITERAL- instead of LITERAL+ (RFC 7888 §5). */
const PRE_CAPS = CAPS.replace('LITERAL+', 'LITERAL-');

const STRICT = {
  POSTMESH_IMAP_ALLOW_PLAINTEXT: 'false',
  POSTMESH_AUTH_LOCKOUT_ACCOUNT: '3',
  POSTMESH_IMAP_PREAUTH_TIMEOUT_MS: '1500',
};

describe('TLS, authentication and limits', () => {
  let stack: ImapStack;
  let strict: { port: number; tlsPort: number };
  let other: { port: number; tlsPort: number };
  let user: TestUser;

  beforeAll(async () => {
    stack = await startImapStack();
    [strict, other] = await Promise.all([stack.startImap(STRICT), stack.startImap(STRICT)]);
    user = await stack.createUser();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('generates a self-signed certificate into the data directory', () => {
    expect(existsSync(join(stack.logDir, 'imap-data', 'tls', 'imap-selfsigned.crt'))).toBe(true);
    expect(existsSync(join(stack.logDir, 'imap-data', 'tls', 'imap-selfsigned.key'))).toBe(true);
  });

  it('before TLS: LOGINDISABLED, no AUTH=, LOGIN refused with PRIVACYREQUIRED; after STARTTLS it works', async () => {
    const client = await TestClient.connect(strict.port);
    expect(await client.readLine('* OK')).toBe(
      `* OK [CAPABILITY ${PRE_CAPS} STARTTLS LOGINDISABLED] Postmesh IMAP ready\r\n`,
    );
    expect(await client.command('a1', `LOGIN ${user.address} ${quote(user.password)}`)).toBe(
      'a1 NO [PRIVACYREQUIRED] Use STARTTLS or the implicit-TLS port first\r\n',
    );
    expect(await client.command('a2', 'AUTHENTICATE PLAIN')).toBe(
      'a2 NO [PRIVACYREQUIRED] Use STARTTLS first\r\n',
    );
    expect(await client.command('a3', 'STARTTLS')).toBe('a3 OK Begin TLS negotiation now\r\n');
    await client.startTls();
    expect(await client.command('a4', 'CAPABILITY')).toBe(
      `* CAPABILITY ${PRE_CAPS} AUTH=PLAIN AUTH=LOGIN\r\na4 OK CAPABILITY completed\r\n`,
    );
    expect(await client.command('a5', 'STARTTLS')).toBe('a5 BAD TLS is already active\r\n');
    expect(await client.command('a6', `LOGIN ${user.address} ${quote(user.password)}`)).toBe(
      `a6 OK [CAPABILITY ${CAPS}] Logged in\r\n`,
    );
    client.close();
  });

  it('discards commands pipelined behind STARTTLS (RFC 9051 §11.1)', async () => {
    const client = await TestClient.connect(strict.port);
    await client.readLine('* OK');
    client.write('b1 STARTTLS\r\nb2 NOOP\r\n');
    expect(await client.readLine('b1 ')).toBe('b1 OK Begin TLS negotiation now\r\n');
    await client.startTls();
    expect(await client.command('b3', 'NOOP')).toBe('b3 OK NOOP completed\r\n');
    expect(await client.drain(200)).toBe('');
    client.close();
  });

  it('serves implicit TLS on the second port', async () => {
    const client = await TestClient.connect(strict.tlsPort, true);
    expect(await client.readLine('* OK')).toBe(
      `* OK [CAPABILITY ${PRE_CAPS} AUTH=PLAIN AUTH=LOGIN] Postmesh IMAP ready\r\n`,
    );
    const plain = Buffer.from(`\0${user.address}\0${user.password}`).toString('base64');
    expect(await client.command('c1', `AUTHENTICATE PLAIN ${plain}`)).toBe(
      `c1 OK [CAPABILITY ${CAPS}] Logged in\r\n`,
    );
    client.close();
  });

  it('locks an account after repeated failures, on every imap process (shared KV counters)', async () => {
    const victim = await stack.createUser();
    for (let i = 0; i < 3; i++) {
      const client = await TestClient.connect(strict.tlsPort, true);
      await client.readLine('* OK');
      expect(await client.command('d1', `LOGIN ${victim.address} wrong${i}`)).toBe(
        'd1 NO [AUTHENTICATIONFAILED] Invalid credentials\r\n',
      );
      client.close();
    }
    // The right password is refused now, here and on the other process.
    for (const port of [strict.tlsPort, other.tlsPort]) {
      const client = await TestClient.connect(port, true);
      await client.readLine('* OK');
      expect(await client.command('d2', `LOGIN ${victim.address} ${quote(victim.password)}`)).toBe(
        'd2 NO [AUTHENTICATIONFAILED] Too many failed logins; try again later\r\n',
      );
      client.close();
    }
    // Another account from the same address is not affected.
    const client = await TestClient.connect(other.tlsPort, true);
    await client.readLine('* OK');
    expect(await client.command('d3', `LOGIN ${user.address} ${quote(user.password)}`)).toBe(
      `d3 OK [CAPABILITY ${CAPS}] Logged in\r\n`,
    );
    client.close();
  });

  it('logs in twenty simultaneous connections with the right password; wrong ones are still locked out', async () => {
    const owner = await stack.createUser();
    const connect = async (): Promise<TestClient> => {
      const client = await TestClient.connect(stack.imapPort);
      await client.readLine('* OK');
      return client;
    };
    // A client opening many connections at once (Thunderbird, mbsync, a webmail front end): an
    // attempt under way is no failure, so none of them may be refused (the default limit is 10).
    const right = await Promise.all(Array.from({ length: 20 }, connect));
    const answers = await Promise.all(
      right.map((c, i) => c.command(`p${i}`, `LOGIN ${owner.address} ${quote(owner.password)}`)),
    );
    expect(answers.filter((a) => !/^p\d+ OK \[CAPABILITY /.test(a))).toEqual([]);
    for (const c of right) c.close();
    // Wrong passwords at once: the account's limit (10) still stops them, and then the right one.
    const wrong = await Promise.all(Array.from({ length: 12 }, connect));
    const refused = await Promise.all(
      wrong.map((c, i) => c.command(`w${i}`, `LOGIN ${owner.address} wrong${i}`)),
    );
    for (const c of wrong) c.close();
    expect(refused.filter((a) => a.includes('Invalid credentials'))).toHaveLength(10);
    expect(refused.filter((a) => a.includes('Too many failed logins'))).toHaveLength(2);
    const after = await connect();
    // RFC 5530 §3 AUTHENTICATIONFAILED: the locked account is refused even with its password.
    expect(await after.command('r1', `LOGIN ${owner.address} ${quote(owner.password)}`)).toBe(
      'r1 NO [AUTHENTICATIONFAILED] Too many failed logins; try again later\r\n',
    );
    after.close();
  }, 60_000);

  it('closes a connection after five failed logins on it', async () => {
    const client = await TestClient.connect(strict.tlsPort, true);
    await client.readLine('* OK');
    for (let i = 1; i <= 4; i++) {
      expect(await client.command(`e${i}`, `LOGIN nobody${i}@example.test x`)).toBe(
        `e${i} NO [AUTHENTICATIONFAILED] Invalid credentials\r\n`,
      );
    }
    expect(await client.command('e5', 'LOGIN nobody5@example.test x')).toBe(
      'e5 NO [AUTHENTICATIONFAILED] Invalid credentials\r\n',
    );
    expect(await client.readLine('* BYE')).toBe('* BYE Too many failed authentication attempts\r\n');
    await client.waitClosed();
  });

  it('logs out an idle unauthenticated connection (autologout, RFC 9051 §5.4)', async () => {
    const client = await TestClient.connect(strict.port);
    await client.readLine('* OK');
    expect(await client.readLine('* BYE', 5_000)).toBe('* BYE Autologout; idle for too long\r\n');
    await client.waitClosed();
  });

  it('answers an overlong line with BAD and keeps serving (RFC 9051 §7.1.3)', async () => {
    const client = await TestClient.connect(stack.imapPort);
    await client.readLine('* OK');
    client.write(`f1 NOOP ${'x'.repeat(70 * 1024)}\r\n`);
    expect(await client.readLine('f1 ')).toMatch(/^f1 BAD /);
    expect(await client.command('f2', 'NOOP')).toBe('f2 OK NOOP completed\r\n');
    client.close();
  });

  it('refuses large literals before authentication without reading them', async () => {
    const client = await TestClient.connect(stack.imapPort);
    await client.readLine('* OK');
    client.write('g1 LOGIN {100000}\r\n');
    expect(await client.readLine('g1 ')).toBe('g1 NO [TOOBIG] Literal too large before authentication\r\n');
    expect(await client.command('g2', 'NOOP')).toBe('g2 OK NOOP completed\r\n');
    client.close();
  });

  it('says BYE to its sessions and exits 0 on SIGTERM', async () => {
    const extra = await stack.startImap();
    const client = await TestClient.connect(extra.port);
    await client.readLine('* OK');
    expect(await client.command('h1', `LOGIN ${user.address} ${quote(user.password)}`)).toMatch(/^h1 OK/);
    client.write('h2 IDLE\r\n');
    await client.readLine('+');
    const started = Date.now();
    const stopped = extra.proc.stop(10_000);
    expect(await client.readLine('* BYE')).toBe('* BYE Server shutting down\r\n');
    await client.waitClosed();
    expect(await stopped).toBe(0);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
