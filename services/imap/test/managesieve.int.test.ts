/**
 * The ManageSieve listener (RFC 5804) in the real imap service against the real storage service
 * (NATS JetStream, FerretDB): exact-bytes conversations for each command, authentication and its
 * failures, STARTTLS on a listener that refuses plaintext passwords, bad input answered with NO
 * or BYE, and Debian's `sieve-connect` uploading and activating a script that then files a
 * delivered message into a folder.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  Bus,
  Streams,
  Subjects,
  encodeInboundJob,
  jobMessageId,
  publishDurable,
  type InboundJob,
} from '@postmesh/bus';
import { mailstore } from '@postmesh/contracts';
import { createLogger } from '@postmesh/telemetry';
import { freePort } from '@postmesh/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startImapStack, type ImapStack, type TestUser } from './harness.js';
import { SieveTestClient, plain } from './managesieve-client.js';

const SIEVE =
  '"SIEVE" "fileinto envelope imap4flags vacation reject ereject copy body comparator-i;octet comparator-i;ascii-casemap"';
const IMPLEMENTATION = '"IMPLEMENTATION" "Postmesh ManageSieve 0.1.0"';

function capabilities(options: { sasl: string; starttls: boolean; owner?: string }): string {
  return [
    IMPLEMENTATION,
    SIEVE,
    `"SASL" "${options.sasl}"`,
    ...(options.starttls ? ['"STARTTLS"'] : []),
    '"MAXREDIRECTS" "4"',
    ...(options.owner === undefined ? [] : [`"OWNER" "${options.owner}"`]),
    '"UNAUTHENTICATE"',
    '"VERSION" "1.0"',
  ]
    .map((l) => `${l}\r\n`)
    .join('');
}

const FILE_WORK =
  'require "fileinto";\r\nif header :contains "subject" "report" {\r\n  fileinto "Work";\r\n}\r\n';

describe('ManageSieve', () => {
  let stack: ImapStack;
  /** Plaintext allowed (as on loopback in development). */
  let sievePort: number;
  /** POSTMESH_IMAP_ALLOW_PLAINTEXT=false: STARTTLS first. */
  let tlsOnlyPort: number;
  let user: TestUser;

  beforeAll(async () => {
    sievePort = await freePort();
    stack = await startImapStack({ imapEnv: { POSTMESH_MANAGESIEVE_PORT: String(sievePort) } });
    tlsOnlyPort = await freePort();
    await stack.startImap({
      POSTMESH_MANAGESIEVE_PORT: String(tlsOnlyPort),
      POSTMESH_IMAP_ALLOW_PLAINTEXT: 'false',
    });
    user = await stack.createUser('sieve1');
  }, 120_000);

  afterAll(async () => {
    await stack?.stop();
  });

  async function signedIn(who: TestUser = user): Promise<SieveTestClient> {
    const c = await SieveTestClient.connect(sievePort);
    await c.response();
    expect(await c.send(`AUTHENTICATE "PLAIN" "${plain(who.address, who.password)}"`)).toBe(
      'OK "Logged in"\r\n',
    );
    return c;
  }

  it('greets with its capabilities; authenticates with PLAIN and LOGIN; refuses bad credentials', async () => {
    const c = await SieveTestClient.connect(sievePort);
    expect(await c.response()).toBe(
      capabilities({ sasl: 'PLAIN LOGIN', starttls: true }) + 'OK "Postmesh ManageSieve ready"\r\n',
    );
    expect(await c.send('LISTSCRIPTS')).toBe('NO "Authenticate first"\r\n');
    expect(await c.send(`AUTHENTICATE "PLAIN" "${plain(user.address, 'wrong')}"`)).toBe(
      'NO "Authentication failed"\r\n',
    );
    expect(await c.send('AUTHENTICATE "DIGEST-MD5"')).toBe('NO "Unsupported SASL mechanism"\r\n');
    // RFC 5804 §2.1: no initial response, an empty challenge, the response as a literal.
    c.write('AUTHENTICATE "PLAIN"\r\n');
    expect(await c.line()).toBe('""\r\n');
    const encoded = plain(user.address, user.password);
    expect(await c.send(`{${encoded.length}+}\r\n${encoded}`)).toBe('OK "Logged in"\r\n');
    expect(await c.send('CAPABILITY')).toBe(
      capabilities({ sasl: '', starttls: true, owner: user.address }) + 'OK "Capability completed"\r\n',
    );
    expect(await c.send('AUTHENTICATE "PLAIN" "AA=="')).toBe('NO "Already authenticated"\r\n');
    expect(await c.send('UNAUTHENTICATE')).toBe('OK "Unauthenticate completed"\r\n');
    expect(await c.send('LISTSCRIPTS')).toBe('NO "Authenticate first"\r\n');
    // LOGIN: user name and password challenges, base64 (the de-facto mechanism).
    c.write('AUTHENTICATE "LOGIN"\r\n');
    expect(await c.line()).toBe('"VXNlcm5hbWU6"\r\n');
    c.write(`"${Buffer.from(user.address).toString('base64')}"\r\n`);
    expect(await c.line()).toBe('"UGFzc3dvcmQ6"\r\n');
    expect(await c.send(`"${Buffer.from(user.password).toString('base64')}"`)).toBe('OK "Logged in"\r\n');
    expect(await c.send('UNAUTHENTICATE')).toBe('OK "Unauthenticate completed"\r\n');
    // "*" cancels (§2.1); another user as authorization identity is refused.
    c.write('AUTHENTICATE "PLAIN"\r\n');
    expect(await c.line()).toBe('""\r\n');
    expect(await c.send('"*"')).toBe('NO "Authentication cancelled"\r\n');
    expect(
      await c.send(`AUTHENTICATE "PLAIN" "${plain(user.address, user.password, 'other@example.test')}"`),
    ).toBe('NO (AUTH-TOO-WEAK) "Authorization as another user is not allowed"\r\n');
    expect(await c.send('LOGOUT')).toBe('OK "Logout completed"\r\n');
    await c.response();
    expect(c.closed).toBe(true);
  });

  it('puts, checks, lists, gets, activates, renames and deletes scripts', async () => {
    const owner = await stack.createUser('sieve2');
    const c = await signedIn(owner);
    const script = 'require "fileinto";\r\nfileinto "Work";\r\n';
    const bad = 'require "fileinto";\r\nfileinto "Work"\r\nkeep;\r\n';
    expect(await c.send('HAVESPACE "main" 100')).toBe('OK "Putscript would succeed"\r\n');
    expect(await c.send(`PUTSCRIPT "main" {${script.length}+}\r\n${script}`)).toBe(
      'OK "Putscript completed"\r\n',
    );
    // A synchronizing literal is read the same way (ManageSieve has no continuation for it).
    expect(await c.send(`PUTSCRIPT "second" {${script.length}}\r\n${script}`)).toBe(
      'OK "Putscript completed"\r\n',
    );
    expect(await c.send(`PUTSCRIPT "broken" {${bad.length}+}\r\n${bad}`)).toBe(
      'NO "line 3, column 1: \\"fileinto\\" takes no test"\r\n',
    );
    expect(await c.send(`CHECKSCRIPT {${bad.length}+}\r\n${bad}`)).toBe(
      'NO "line 3, column 1: \\"fileinto\\" takes no test"\r\n',
    );
    expect(await c.send('CHECKSCRIPT "require \\"regex\\";"')).toMatch(/^NO ".*regex.*"\r\n$/);
    expect(await c.send(`CHECKSCRIPT {${script.length}+}\r\n${script}`)).toBe('OK "Script is valid"\r\n');
    expect(await c.send('LISTSCRIPTS')).toBe('"main"\r\n"second"\r\nOK "Listscripts completed"\r\n');
    expect(await c.send('GETSCRIPT "main"')).toBe(
      `{${script.length}}\r\n${script}\r\nOK "Getscript completed"\r\n`,
    );
    expect(await c.send('GETSCRIPT "nothing"')).toBe('NO (NONEXISTENT) "No such script"\r\n');
    expect(await c.send('SETACTIVE "main"')).toBe('OK "Setactive completed"\r\n');
    expect(await c.send('SETACTIVE "nothing"')).toBe('NO (NONEXISTENT) "No such script"\r\n');
    expect(await c.send('DELETESCRIPT "main"')).toBe('NO (ACTIVE) "The active script cannot be deleted"\r\n');
    expect(await c.send('RENAMESCRIPT "main" "second"')).toBe(
      'NO (ALREADYEXISTS) "A script of that name exists"\r\n',
    );
    expect(await c.send('RENAMESCRIPT "nothing" "x"')).toBe('NO (NONEXISTENT) "No such script"\r\n');
    // The active mark moves with the name.
    expect(await c.send('RENAMESCRIPT "main" "filters"')).toBe('OK "Renamescript completed"\r\n');
    expect(await c.send('LISTSCRIPTS')).toBe(
      '"filters" ACTIVE\r\n"second"\r\nOK "Listscripts completed"\r\n',
    );
    expect(await c.send('SETACTIVE ""')).toBe('OK "No script is active"\r\n');
    expect(await c.send('DELETESCRIPT "filters"')).toBe('OK "Deletescript completed"\r\n');
    expect(await c.send('DELETESCRIPT "filters"')).toBe('NO (NONEXISTENT) "No such script"\r\n');
    expect(await c.send('LISTSCRIPTS')).toBe('"second"\r\nOK "Listscripts completed"\r\n');
    expect(await c.send('NOOP "abc"')).toBe('OK (TAG "abc") "Done"\r\n');
    expect(await c.send('noop')).toBe('OK "Done"\r\n');
    // Names: UTF-8 kept; controls refused by storage (§1.6).
    expect(await c.send(`PUTSCRIPT "Ferien ☀" {${script.length}+}\r\n${script}`)).toBe(
      'OK "Putscript completed"\r\n',
    );
    expect(await c.send('LISTSCRIPTS')).toBe('"Ferien ☀"\r\n"second"\r\nOK "Listscripts completed"\r\n');
    expect(await c.send(`PUTSCRIPT {3+}\r\na\tb {${script.length}+}\r\n${script}`)).toBe(
      'NO "Invalid script name"\r\n',
    );
    c.close();
  });

  it('HAVESPACE and PUTSCRIPT enforce the size and count limits', async () => {
    const owner = await stack.createUser('sieve3');
    const c = await signedIn(owner);
    expect(await c.send('HAVESPACE "big" 65537')).toBe(
      'NO (QUOTA/MAXSIZE) "A script may have at most 65536 octets"\r\n',
    );
    // A literal over the limit is dropped unread, and the connection goes on.
    const huge = `# ${'x'.repeat(70_000)}\r\n`;
    expect(await c.send(`PUTSCRIPT "big" {${huge.length}+}\r\n${huge}`)).toBe(
      'NO (QUOTA/MAXSIZE) "Too large; a script may have 65536 octets"\r\n',
    );
    const script = 'keep;\r\n';
    for (let i = 1; i <= 16; i++) {
      expect(await c.send(`PUTSCRIPT "s${i}" {${script.length}+}\r\n${script}`)).toBe(
        'OK "Putscript completed"\r\n',
      );
    }
    expect(await c.send('HAVESPACE "s17" 10')).toBe('NO (QUOTA/MAXSCRIPTS) "At most 16 scripts"\r\n');
    // Replacing an existing one is fine.
    expect(await c.send('HAVESPACE "s1" 10')).toBe('OK "Putscript would succeed"\r\n');
    expect(await c.send(`PUTSCRIPT "s17" {${script.length}+}\r\n${script}`)).toBe(
      'NO (QUOTA/MAXSCRIPTS) "at most 16 scripts per user"\r\n',
    );
    c.close();
  });

  it('answers bad input with NO, and BYE when it cannot go on', async () => {
    const c = await signedIn();
    expect(await c.send('FROB')).toBe('NO "Unknown command"\r\n');
    expect(await c.send('PUTSCRIPT "only-a-name"')).toBe('NO "Syntax: PUTSCRIPT <name> <script>"\r\n');
    expect(await c.send('HAVESPACE "x" "y"')).toBe('NO "Syntax: HAVESPACE <name> <size>"\r\n');
    expect(await c.send('GETSCRIPT main')).toBe('NO "Syntax error: expected a string or a number"\r\n');
    expect(await c.send('GETSCRIPT "a\\b"')).toBe(
      'NO "Syntax error: only \\\\\\" and \\\\\\\\ may be escaped in a quoted string"\r\n',
    );
    expect(await c.send('HAVESPACE "x" 99999999999')).toBe('NO "Syntax error: number out of range"\r\n');
    expect(await c.send('GETSCRIPT {x+}')).toBe('NO "Syntax error: bad literal length"\r\n');
    const notUtf8 = Buffer.from([0x6b, 0x65, 0x65, 0x70, 0xff, 0x3b]);
    expect(
      await c.send(
        Buffer.concat([
          Buffer.from(`PUTSCRIPT "bin" {${notUtf8.length}+}\r\n`),
          notUtf8,
          Buffer.from('\r\n'),
        ]),
      ),
    ).toBe('NO "A script is UTF-8 text"\r\n');
    // Still usable after all that.
    expect(await c.send('NOOP')).toBe('OK "Done"\r\n');
    // A line with no end within the limit cannot be resynchronised: BYE.
    c.write(`NOOP "${'a'.repeat(1000)}" ${'9 '.repeat(5000)}`);
    expect(await c.response()).toBe('BYE "Line too long"\r\n');
    await c.response();
    expect(c.closed).toBe(true);

    // Twenty malformed commands in a row end the connection.
    const d = await SieveTestClient.connect(sievePort);
    await d.response();
    for (let i = 1; i < 20; i++)
      expect(await d.send('%%%')).toBe('NO "Syntax error: expected a command name"\r\n');
    expect(await d.send('%%%')).toBe('NO "Syntax error: expected a command name"\r\n');
    expect(await d.response()).toBe('BYE "Too many bad commands"\r\n');
    await d.response();
    expect(d.closed).toBe(true);
  });

  it('without TLS refuses to authenticate, and STARTTLS offers SASL again', async () => {
    const c = await SieveTestClient.connect(tlsOnlyPort);
    expect(await c.response()).toBe(
      capabilities({ sasl: '', starttls: true }) + 'OK "Postmesh ManageSieve ready"\r\n',
    );
    expect(await c.send(`AUTHENTICATE "PLAIN" "${plain(user.address, user.password)}"`)).toBe(
      'NO (ENCRYPT-NEEDED) "Use STARTTLS first"\r\n',
    );
    expect(await c.send('STARTTLS')).toBe('OK "Begin TLS negotiation now"\r\n');
    await c.startTls();
    // §2.2: the capabilities again after the handshake, with the mechanisms and without STARTTLS.
    expect(await c.response()).toBe(
      capabilities({ sasl: 'PLAIN LOGIN', starttls: false }) + 'OK "TLS negotiation successful"\r\n',
    );
    expect(await c.send('STARTTLS')).toBe('NO "Already using TLS"\r\n');
    expect(await c.send(`AUTHENTICATE "PLAIN" "${plain(user.address, user.password)}"`)).toBe(
      'OK "Logged in"\r\n',
    );
    expect(await c.send('LISTSCRIPTS')).toBe('OK "Listscripts completed"\r\n');
    c.close();
  });

  it('sieve-connect uploads and activates a script that files delivered mail', async () => {
    const owner = await stack.createUser('sieve4');
    await stack.grpc.mailstore.createMailbox({
      userId: owner.id,
      path: 'Work',
      specialUse: mailstore.SpecialUse.UNSPECIFIED,
      subscribe: true,
    });
    const file = join(stack.logDir, 'work.sieve');
    writeFileSync(file, FILE_WORK);
    const connect = (...action: string[]): Promise<{ code: number | null; out: string }> =>
      new Promise((resolve) => {
        const child = spawn(
          'sieve-connect',
          [
            '--server',
            '127.0.0.1',
            '--port',
            String(tlsOnlyPort),
            '--user',
            owner.address,
            '--passwordfd',
            '3',
            '--notlsverify',
            '--noclearauth',
            '--authmech',
            'PLAIN',
            ...action,
          ],
          { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] },
        );
        let out = '';
        child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
        const fd3 = child.stdio[3] as NodeJS.WritableStream;
        fd3.end(`${owner.password}\n`);
        const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
        child.on('close', (code) => {
          clearTimeout(timer);
          resolve({ code, out });
        });
      });
    const upload = await connect('--upload', '--localsieve', file, '--remotesieve', 'work');
    expect(upload.code, upload.out).toBe(0);
    const activate = await connect('--activate', '--remotesieve', 'work');
    expect(activate.code, activate.out).toBe(0);
    const list = await connect('--list');
    expect(list.code, list.out).toBe(0);
    expect(list.out).toContain('"work" ACTIVE');

    // Deliver one message through storage's inbound queue: the script files it into Work.
    const bus = await Bus.connect({
      ...stack.env.busOptions('operator'),
      name: 'managesieve-test',
      logger: createLogger('managesieve-test', 'silent'),
      replicas: 1,
    });
    try {
      const spoolId = `s${randomBytes(8).toString('hex')}`;
      const body = Buffer.from(
        `From: a@remote.test\r\nTo: ${owner.address}\r\nSubject: Monthly report\r\nMessage-ID: <${spoolId}@remote.test>\r\n\r\nNumbers.\r\n`,
      );
      const job: InboundJob = {
        version: 1,
        spoolId,
        envelope: {
          mailFrom: 'a@remote.test',
          rcptTo: [owner.address],
          remoteIp: '192.0.2.7',
          helo: 'remote.test',
        },
        authResults: { spf: 'pass', dkim: 'none', dmarc: 'pass', arc: 'none', dmarcPolicy: '', junk: false },
        receivedAt: new Date().toISOString(),
        messageId: `${spoolId}@remote.test`,
        traceparent: '',
        body: { kind: 'inline', size: body.length },
      };
      await publishDurable(bus.js, Subjects.inbound(spoolId), encodeInboundJob(job, body), {
        msgId: jobMessageId(spoolId, Streams.MAIL_INBOUND),
      });
    } finally {
      await bus.drain();
    }
    const deadline = Date.now() + 30_000;
    let boxes: Record<string, number> = {};
    while (Date.now() < deadline) {
      const listed = await stack.grpc.mailstore.listMailboxes({
        userId: owner.id,
        reference: '',
        pattern: '*',
        subscribedOnly: false,
        specialUse: [],
      });
      boxes = Object.fromEntries(listed.mailboxes.map((m) => [m.path, m.uidNext]));
      if ((boxes.Work ?? 1) > 1) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(boxes.Work).toBe(2);
    expect(boxes.INBOX).toBe(1);
  }, 90_000);
});
