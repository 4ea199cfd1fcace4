/**
 * What one client, or many from one address, may hold of an imap process before it is
 * authenticated (RFC 7888 §4, RFC 9051 §5.4, §7.1.5): a non-synchronizing literal over the
 * pre-authentication limit is refused with `BAD [TOOBIG]` and the connection closed without
 * reading it; the pre-authentication deadline runs from the last complete command, so trickled
 * bytes do not keep a connection open; connections are capped per client address and in total,
 * with `* BYE` (over TLS on the implicit-TLS port) and a metric.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient, loggedIn, quote } from './client.js';
import { message, startImapStack, type ImapStack, type TestUser } from './harness.js';

describe('limits before authentication and connection caps', () => {
  let stack: ImapStack;
  let user: TestUser;
  let capped: { port: number; opsPort: number };
  let cappedTls: { tlsPort: number };
  /** A short pre-login timeout, for the deadline tests only (a loaded machine may log in slowly). */
  let hurried: { port: number };
  /** 1 MiB of literal memory for all its sessions together. */
  let frugal: { port: number; opsPort: number };

  beforeAll(async () => {
    stack = await startImapStack();
    user = await stack.createUser();
    [capped, cappedTls, hurried, frugal] = await Promise.all([
      stack.startImap({
        POSTMESH_PROXY_PROTOCOL: 'true',
        POSTMESH_IMAP_MAX_CONNECTIONS: '4',
        POSTMESH_IMAP_MAX_CONNECTIONS_PER_IP: '2',
      }),
      stack.startImap({ POSTMESH_IMAP_MAX_CONNECTIONS_PER_IP: '1' }),
      stack.startImap({ POSTMESH_IMAP_PREAUTH_TIMEOUT_MS: '1500' }),
      stack.startImap({
        POSTMESH_IMAP_APPEND_LIMIT: String(1024 * 1024),
        POSTMESH_IMAP_LITERAL_MEMORY: String(1024 * 1024),
        POSTMESH_IMAP_LITERAL_WAIT_MS: '300',
      }),
    ]);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  async function rssBytes(opsPort: number): Promise<number> {
    const metrics = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
    return Number(/^process_resident_memory_bytes\{[^}]*\} (\d+)/m.exec(metrics)?.[1]);
  }

  it('advertises LITERAL- before login and LITERAL+ after (RFC 7888 §5)', async () => {
    const client = await TestClient.connect(stack.imapPort);
    expect(await client.readLine('* OK')).toMatch(/ LITERAL- /);
    const login = await client.command('a1', `LOGIN ${user.address} ${quote(user.password)}`);
    expect(login).toMatch(/^a1 OK \[CAPABILITY [^\]]* LITERAL\+ /);
    expect(login).not.toContain('LITERAL-');
    client.close();
  });

  it('takes small non-synchronizing literals before login', async () => {
    const client = await TestClient.connect(stack.imapPort);
    await client.readLine('* OK');
    const password = Buffer.from(user.password);
    client.write(`b1 LOGIN {${user.address.length}+}\r\n${user.address} {${password.length}+}\r\n`);
    client.write(Buffer.concat([password, Buffer.from('\r\n')]));
    expect(await client.readLine('b1 ')).toMatch(/^b1 OK \[CAPABILITY /);
    client.close();
  });

  it('refuses a huge non-synchronizing literal before login with BAD [TOOBIG] and closes, unread', async () => {
    const before = await rssBytes(stack.opsPort);
    const client = await TestClient.connect(stack.imapPort);
    await client.readLine('* OK');
    client.write('c1 LOGIN {67108864+}\r\n');
    // The client keeps sending; the server neither buffers nor waits for the 64 MiB.
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    for (let i = 0; i < 64 && !client.closed; i++) client.write(chunk);
    expect(await client.readLine('c1 ', 5_000)).toBe(
      'c1 BAD [TOOBIG] Literal too large before authentication\r\n',
    );
    expect(await client.readLine('* BYE', 5_000)).toBe('* BYE Literal too large before authentication\r\n');
    await client.waitClosed();
    // Bounded, not timed: the process did not keep what was sent (4 MiB here; the old receiver
    // buffered the literal up to the APPEND limit).
    expect((await rssBytes(stack.opsPort)) - before).toBeLessThan(32 * 1024 * 1024);
  });

  it('refuses a large synchronizing literal before login with NO [TOOBIG] and goes on', async () => {
    const client = await TestClient.connect(stack.imapPort);
    await client.readLine('* OK');
    client.write('d1 LOGIN {100000}\r\n');
    expect(await client.readLine('d1 ')).toBe('d1 NO [TOOBIG] Literal too large before authentication\r\n');
    expect(await client.command('d2', 'NOOP')).toBe('d2 OK NOOP completed\r\n');
    client.close();
  });

  it('logs out a client that trickles bytes of one command before login (deadline per command)', async () => {
    const client = await TestClient.connect(hurried.port);
    await client.readLine('* OK');
    const started = Date.now();
    client.write('e1 LOGIN ');
    const trickle = setInterval(() => client.write('x'), 100);
    try {
      // The pre-authentication timeout is 1.5 s here; each byte used to restart it.
      expect(await client.readLine('* BYE', 8_000)).toBe('* BYE Autologout; idle for too long\r\n');
    } finally {
      clearInterval(trickle);
    }
    await client.waitClosed();
    expect(Date.now() - started).toBeLessThan(8_000);
  });

  it('keeps a pre-login client that completes commands (the deadline restarts per command)', async () => {
    const client = await TestClient.connect(hurried.port);
    await client.readLine('* OK');
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 600));
      expect(await client.command(`f${i}`, 'NOOP')).toBe(`f${i} OK NOOP completed\r\n`);
    }
    client.close();
  });

  async function viaProxy(address: string): Promise<{ client: TestClient; first: string }> {
    const client = await TestClient.connect(capped.port);
    client.write(`PROXY TCP4 ${address} 127.0.0.1 40000 143\r\n`);
    return { client, first: await client.readLine('* ') };
  }

  it('caps connections per client address and in total with * BYE, and counts them', async () => {
    const open: TestClient[] = [];
    const greet = async (address: string): Promise<string> => {
      const { client, first } = await viaProxy(address);
      open.push(client);
      return first;
    };
    try {
      expect(await greet('192.0.2.1')).toMatch(/^\* OK \[CAPABILITY /);
      expect(await greet('192.0.2.1')).toMatch(/^\* OK \[CAPABILITY /);
      expect(await greet('192.0.2.1')).toBe('* BYE Too many connections; try again later\r\n');
      await open[2]!.waitClosed();
      expect(await greet('192.0.2.2')).toMatch(/^\* OK \[CAPABILITY /);
      expect(await greet('192.0.2.3')).toMatch(/^\* OK \[CAPABILITY /);
      // Four open: the fifth is over the total, whatever its address.
      expect(await greet('192.0.2.4')).toBe('* BYE Too many connections; try again later\r\n');
      await open[5]!.waitClosed();
      // A slot freed is a slot reused.
      open[0]!.close();
      await open[0]!.waitClosed();
      await new Promise((r) => setTimeout(r, 200));
      expect(await greet('192.0.2.1')).toMatch(/^\* OK \[CAPABILITY /);
      const metrics = await (await fetch(`http://127.0.0.1:${capped.opsPort}/metrics`)).text();
      expect(metrics).toMatch(/postmesh_imap_connections_refused_total\{[^}]*cap="per_address"[^}]*\} 1\n/);
      expect(metrics).toMatch(/postmesh_imap_connections_refused_total\{[^}]*cap="total"[^}]*\} 1\n/);
    } finally {
      for (const client of open) client.close();
    }
  });

  it('says * BYE over TLS on the implicit-TLS port when over the cap', async () => {
    const first = await TestClient.connect(cappedTls.tlsPort, true);
    expect(await first.readLine('* OK')).toMatch(/^\* OK \[CAPABILITY /);
    const second = await TestClient.connect(cappedTls.tlsPort, true);
    expect(await second.readLine('* ')).toBe('* BYE Too many connections; try again later\r\n');
    await second.waitClosed();
    first.close();
  });

  it('bounds the literal memory of all sessions together: NO [LIMIT] when spent, served when freed', async () => {
    const big = message('big', `${'x'.repeat(76)}\r\n`.repeat(10_000));
    const holder = await loggedIn(frugal.port, user);
    const other = await loggedIn(frugal.port, user);
    // The holder is invited and sends half of its message: 0.78 of the 1 MiB is reserved.
    holder.write(`h1 APPEND INBOX {${big.length}}\r\n`);
    expect(await holder.readLine('+')).toMatch(/^\+ /);
    holder.write(big.subarray(0, big.length / 2));
    // Another synchronizing literal is not invited: the client keeps its message.
    other.write(`o1 APPEND INBOX {${big.length}}\r\n`);
    expect(await other.readLine('o1 ')).toBe(
      'o1 NO [LIMIT] Too much mail being received at once; try again shortly\r\n',
    );
    // A non-synchronizing one is skipped without being kept, and the session goes on.
    other.write(
      Buffer.concat([Buffer.from(`o2 APPEND INBOX {${big.length}+}\r\n`), big, Buffer.from('\r\n')]),
    );
    expect(await other.readLine('o2 ')).toBe(
      'o2 NO [LIMIT] Too much mail being received at once; try again shortly\r\n',
    );
    expect(await other.command('o3', 'NOOP')).toBe('o3 OK NOOP completed\r\n');
    // Once the holder's APPEND is stored, its memory is free for the other.
    holder.write(Buffer.concat([big.subarray(big.length / 2), Buffer.from('\r\n')]));
    expect(await holder.readLine('h1 ')).toMatch(/^h1 OK \[APPENDUID \d+ 1\] APPEND completed\r\n$/);
    other.write(`o4 APPEND INBOX {${big.length}}\r\n`);
    expect(await other.readLine('+')).toMatch(/^\+ /);
    other.write(Buffer.concat([big, Buffer.from('\r\n')]));
    expect(await other.readLine('o4 ')).toMatch(/^o4 OK \[APPENDUID \d+ 2\] APPEND completed\r\n$/);
    const metrics = await (await fetch(`http://127.0.0.1:${frugal.opsPort}/metrics`)).text();
    expect(metrics).toMatch(/postmesh_imap_literal_bytes\{[^}]*\} 0\n/);
    holder.close();
    other.close();
  });
});
