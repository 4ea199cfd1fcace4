// PROXY protocol on the IMAP listeners, as an AWS NLB sends it: a binary v2 header (or a v1 line)
// ahead of the client's first byte, on the STARTTLS port and ahead of the TLS handshake on the
// implicit-TLS port. The per-IP login throttle proves the session uses the address from the
// header, not the balancer's.
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { proxyV2Header } from '@postmesh/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startImapStack, type ImapStack, type TestUser } from './harness.js';

/** Collects what the server sends on a socket and waits for a pattern in it. */
function reader(socket: Socket | TLSSocket): {
  until(pattern: RegExp): Promise<string>;
  closed: Promise<void>;
} {
  let text = '';
  const waiters: (() => void)[] = [];
  socket.on('data', (chunk: Buffer) => {
    text += chunk.toString('latin1');
    waiters.splice(0).forEach((w) => w());
  });
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  void closed.then(() => waiters.splice(0).forEach((w) => w()));
  return {
    closed,
    async until(pattern) {
      const deadline = Date.now() + 10_000;
      while (!pattern.test(text)) {
        if (Date.now() > deadline) throw new Error(`no ${String(pattern)} in ${JSON.stringify(text)}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 200);
        });
      }
      return text;
    },
  };
}

async function open(port: number, first: Buffer): Promise<{ socket: Socket; r: ReturnType<typeof reader> }> {
  const socket = connect({ port, host: '127.0.0.1' });
  const r = reader(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  // Split across two writes: the server must reassemble a header that arrives in pieces.
  socket.write(first.subarray(0, 7));
  await new Promise((r) => setTimeout(r, 20));
  socket.write(first.subarray(7));
  return { socket, r };
}

const fromClient = (source: string): Buffer =>
  proxyV2Header({ command: 'PROXY', family: 'TCP4', source, destination: '10.0.0.5', ports: [40000, 143] });

describe('imap behind a load balancer sending PROXY protocol', () => {
  let stack: ImapStack;
  let user: TestUser;

  beforeAll(async () => {
    stack = await startImapStack({
      imapEnv: {
        POSTMESH_PROXY_PROTOCOL: 'true',
        POSTMESH_AUTH_LOCKOUT_IP: '2',
        POSTMESH_AUTH_LOCKOUT_ACCOUNT: '1000',
      },
    });
    user = await stack.createUser('proxied');
  });
  afterAll(async () => {
    await stack?.stop();
  });

  async function login(source: string, password: string): Promise<string> {
    const { socket, r } = await open(stack.imapPort, fromClient(source));
    await r.until(/^\* OK/m);
    socket.write(`a1 LOGIN ${user.address} "${password}"\r\n`);
    const text = await r.until(/^a1 (OK|NO|BAD)/m);
    socket.destroy();
    return /^a1 .*$/m.exec(text)?.[0] ?? '';
  }

  it('counts failed logins against the client address in the v2 header', async () => {
    expect(await login('198.51.100.1', 'wrong')).toMatch(/^a1 NO/);
    expect(await login('198.51.100.1', 'wrong')).toMatch(/^a1 NO/);
    // The address from the header is locked out, even with the right password ...
    expect(await login('198.51.100.1', user.password)).toMatch(/^a1 NO .*Too many failed logins/);
    // ... while another client behind the same balancer (same socket peer) logs in.
    expect(await login('203.0.113.9', user.password)).toMatch(/^a1 OK/);
  });

  it('reads the header ahead of the TLS handshake on the implicit-TLS port', async () => {
    const { socket } = await open(stack.imapsPort, fromClient('198.51.100.20'));
    socket.removeAllListeners('data');
    const secure = tlsConnect({ socket, rejectUnauthorized: false });
    const r = reader(secure);
    expect(await r.until(/^\* OK/m)).toMatch(/^\* OK/);
    secure.write('a1 LOGIN ' + user.address + ' "' + user.password + '"\r\n');
    expect(await r.until(/^a1 (OK|NO)/m)).toMatch(/^a1 OK/m);
    secure.destroy();
  });

  it('accepts a v1 line and a v2 LOCAL health check, and closes a connection without a header', async () => {
    const v1 = await open(stack.imapPort, Buffer.from('PROXY TCP4 192.0.2.1 10.0.0.5 5555 143\r\n'));
    expect(await v1.r.until(/^\* OK/m)).toMatch(/^\* OK/);
    v1.socket.destroy();
    const local = await open(stack.imapPort, proxyV2Header({ command: 'LOCAL' }));
    expect(await local.r.until(/^\* OK/m)).toMatch(/^\* OK/);
    local.socket.destroy();
    const bare = await open(stack.imapPort, Buffer.from('a1 CAPABILITY\r\n'));
    await bare.r.closed;
    expect(await bare.r.until(/^/)).toBe('');
  });
});
