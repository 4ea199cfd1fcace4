// PROXY protocol in front of Haraka, as an AWS NLB sends it (binary v2, which Haraka 3.3 cannot
// read on its own): the client address in the header reaches the session and the stored message's
// Received: header, on the MX port and ahead of the TLS handshake on the submissions port.
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { proxyV2Header } from '@postmesh/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO, Pipeline } from './pipeline.js';

/** What the server sends on a socket, and a wait for the next reply line matching a pattern. */
function reader(socket: Socket | TLSSocket): {
  until(pattern: RegExp): Promise<string>;
  closed: Promise<void>;
} {
  let text = '';
  let from = 0;
  const waiters: (() => void)[] = [];
  socket.on('data', (chunk: Buffer) => {
    text += chunk.toString('latin1');
    waiters.splice(0).forEach((w) => w());
  });
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return {
    closed,
    async until(pattern) {
      const deadline = Date.now() + 15_000;
      for (;;) {
        const match = pattern.exec(text.slice(from));
        if (match !== null) {
          from += match.index + match[0].length;
          return match[0];
        }
        if (Date.now() > deadline) throw new Error(`no ${String(pattern)} in ${JSON.stringify(text)}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 200);
        });
      }
    },
  };
}

async function open(port: number, header: Buffer): Promise<{ socket: Socket; r: ReturnType<typeof reader> }> {
  const socket = connect({ port, host: '127.0.0.1' });
  const r = reader(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  // In two writes: the header may arrive in pieces.
  socket.write(header.subarray(0, 10));
  await new Promise((resolve) => setTimeout(resolve, 20));
  socket.write(header.subarray(10));
  return { socket, r };
}

const from = (source: string, port: number): Buffer =>
  proxyV2Header({ command: 'PROXY', family: 'TCP4', source, destination: '10.0.0.9', ports: [41000, port] });

describe('smtp-inbound behind a load balancer sending PROXY protocol v2', () => {
  let p: Pipeline;

  beforeAll(async () => {
    p = await Pipeline.start({
      smtpEnv: { POSTMESH_PROXY_PROTOCOL: 'true', POSTMESH_SMTP_VERIFY_SENDERS: 'false' },
    });
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('takes the client address from the header into the session and the Received: header', async () => {
    const { socket, r } = await open(p.smtpPort, from('198.51.100.7', 25));
    await r.until(/^220 .*\r\n/m);
    const say = async (line: string, reply: RegExp): Promise<string> => {
      socket.write(`${line}\r\n`);
      return r.until(reply);
    };
    await say('EHLO client.example', /^250 .*\r\n/m);
    await say('MAIL FROM:<someone@sender.example>', /^250 .*\r\n/m);
    await say(`RCPT TO:<${DEMO}>`, /^250 .*\r\n/m);
    await say('DATA', /^354 .*\r\n/m);
    const queued = await say(
      'From: someone@sender.example\r\nTo: demo@example.test\r\nSubject: via the balancer\r\n\r\nhello\r\n.',
      /^\d{3} .*\r\n/m,
    );
    expect(queued).toMatch(/^250 /);
    socket.end('QUIT\r\n');
    const [stored] = await p.waitForMessages(DEMO, (m) =>
      m.some((x) => x.bytes.includes('Subject: via the balancer')),
    );
    const message = (await p.messages(DEMO)).find((x) => x.bytes.includes('Subject: via the balancer'));
    expect(stored).toBeDefined();
    const received =
      /^Received: [\s\S]*?(?=\r\n\S)/m.exec(message?.bytes.toString('latin1') ?? '')?.[0] ?? '';
    expect(received).toContain('198.51.100.7');
    expect(received).not.toContain('127.0.0.1');
  });

  it('reads the header ahead of the TLS handshake on the submissions port', async () => {
    const { socket } = await open(p.submissionsPort, from('198.51.100.8', 465));
    socket.removeAllListeners('data');
    const secure = tlsConnect({ socket, rejectUnauthorized: false });
    const r = reader(secure);
    expect(await r.until(/^220 .*\r\n/m)).toMatch(/^220 /);
    secure.write('EHLO client.example\r\n');
    expect(await r.until(/^250 .*\r\n/m)).toMatch(/^250 /);
    secure.destroy();
  });

  it('accepts a v2 LOCAL health check and closes a connection that sends no header', async () => {
    const local = await open(p.smtpPort, proxyV2Header({ command: 'LOCAL' }));
    expect(await local.r.until(/^220 .*\r\n/m)).toMatch(/^220 /);
    local.socket.destroy();
    const bare = await open(p.smtpPort, Buffer.from('EHLO client.example\r\n'));
    await bare.r.closed;
    expect(bare.socket.bytesRead).toBe(0);
  });
});
