// A renewed certificate is served without a restart, on every TLS path Haraka has: STARTTLS on
// the MX port (RFC 3207) and implicit TLS on the submissions port (RFC 8314 §3.3), each with and
// without SNI (RFC 6066 §3), and behind the PROXY protocol. The files are laid out and swapped the
// way the kubelet updates a Secret volume (cert-manager renewal): tls.crt -> ..data/tls.crt, and
// ..data is a symlink moved atomically to a new timestamped directory.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pipeline } from './pipeline.js';

const mount = mkdtempSync(join(tmpdir(), 'postmesh-smtp-tls-mount-'));
let generation = 0;

function swapIn(dir: string): void {
  const next = join(mount, '..data_tmp');
  symlinkSync(dir, next);
  renameSync(next, join(mount, '..data'));
}

/** A new self-signed pair in a new timestamped directory, then the ..data swap. */
function issue(name: string): void {
  generation += 1;
  const dir = `..2026_12_06_${generation}`;
  mkdirSync(join(mount, dir));
  execFileSync('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    join(mount, dir, 'tls.key'),
    '-out',
    join(mount, dir, 'tls.crt'),
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
  ]);
  swapIn(dir);
}

function subjectOf(socket: TLSSocket): string {
  const cn = socket.getPeerCertificate().subject.CN;
  return Array.isArray(cn) ? cn.join(',') : (cn ?? '');
}

/** Reads until a complete SMTP reply (last line `ddd `) has arrived. */
function readReply(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('latin1');
      if (/(^|\r\n)\d{3} [^\r\n]*\r\n$/.test(text)) {
        socket.off('data', onData);
        socket.off('error', reject);
        resolve(text);
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

function handshake(options: { socket?: Socket; port?: number; servername?: string }): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const secure = tlsConnect({
      ...options,
      host: '127.0.0.1',
      rejectUnauthorized: false,
    });
    secure.once('secureConnect', () => resolve(secure));
    secure.once('error', reject);
  });
}

interface Probe {
  readonly proxyLine?: string;
  readonly servername?: string;
}

async function plainSocket(port: number, probe: Probe): Promise<Socket> {
  const socket = connect({ port, host: '127.0.0.1' });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  if (probe.proxyLine !== undefined) socket.write(probe.proxyLine);
  return socket;
}

/** The certificate a STARTTLS handshake on `port` sees (RFC 3207 §4). */
async function starttlsSubject(port: number, probe: Probe = {}): Promise<string> {
  const socket = await plainSocket(port, probe);
  try {
    expect(await readReply(socket)).toMatch(/^220 /);
    socket.write('EHLO client.example.test\r\n');
    expect(await readReply(socket)).toContain('STARTTLS');
    socket.write('STARTTLS\r\n');
    expect(await readReply(socket)).toMatch(/^220 /);
    const secure = await handshake({ socket, ...probe });
    const subject = subjectOf(secure);
    secure.destroy();
    return subject;
  } finally {
    socket.destroy();
  }
}

/** The certificate an implicit-TLS handshake on `port` sees. */
async function implicitTlsSubject(port: number, probe: Probe = {}): Promise<string> {
  const socket = await plainSocket(port, probe);
  try {
    const secure = await handshake({ socket, ...probe });
    const subject = subjectOf(secure);
    secure.destroy();
    return subject;
  } finally {
    socket.destroy();
  }
}

async function waitForSubject(read: () => Promise<string>, expected: string): Promise<string> {
  const deadline = Date.now() + 15_000;
  let last = '';
  while (Date.now() < deadline) {
    last = await read();
    if (last === expected) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  return last;
}

describe('smtp-inbound reloads its certificate when the mounted files change', () => {
  let pipeline: Pipeline;

  beforeAll(async () => {
    issue('first.example.test');
    symlinkSync('..data/tls.crt', join(mount, 'tls.crt'));
    symlinkSync('..data/tls.key', join(mount, 'tls.key'));
    pipeline = await Pipeline.start({
      smtpEnv: {
        POSTMESH_TLS_CERT_FILE: join(mount, 'tls.crt'),
        POSTMESH_TLS_KEY_FILE: join(mount, 'tls.key'),
        POSTMESH_TLS_RELOAD_POLL_MS: '500',
      },
    });
  }, 90_000);
  afterAll(async () => {
    await pipeline?.stop();
    rmSync(mount, { recursive: true, force: true });
  });

  it('serves the renewed certificate on STARTTLS and implicit TLS, with and without SNI', async () => {
    const paths = {
      starttls: () => starttlsSubject(pipeline.smtpPort),
      starttlsSni: () => starttlsSubject(pipeline.smtpPort, { servername: 'mx.example.test' }),
      implicit: () => implicitTlsSubject(pipeline.submissionsPort),
      implicitSni: () => implicitTlsSubject(pipeline.submissionsPort, { servername: 'mx.example.test' }),
    };
    for (const read of Object.values(paths)) expect(await read()).toBe('first.example.test');
    // A session secured before the renewal keeps its connection.
    const before = await plainSocket(pipeline.smtpPort, {});
    expect(await readReply(before)).toMatch(/^220 /);

    issue('renewed.example.test');
    expect(await waitForSubject(paths.starttls, 'renewed.example.test')).toBe('renewed.example.test');
    for (const [name, read] of Object.entries(paths)) {
      expect(`${name}: ${await read()}`).toBe(`${name}: renewed.example.test`);
    }
    before.write('NOOP\r\n');
    expect(await readReply(before)).toMatch(/^250 /);
    before.destroy();
    expect(pipeline.smtp.proc.running).toBe(true);
    expect(pipeline.smtp.log()).toContain('TLS certificate reloaded');
  });

  it('keeps the current certificate while a half-swapped pair does not load', async () => {
    // A key from one issuance with the certificate of another: the pair does not match.
    generation += 1;
    const dir = `..2026_12_06_${generation}`;
    mkdirSync(join(mount, dir));
    execFileSync('openssl', [
      'ecparam',
      '-name',
      'prime256v1',
      '-genkey',
      '-noout',
      '-out',
      join(mount, dir, 'tls.key'),
    ]);
    execFileSync('cp', [join(mount, '..data', 'tls.crt'), join(mount, dir, 'tls.crt')]);
    swapIn(dir);
    const deadline = Date.now() + 10_000;
    while (!pipeline.smtp.log().includes('TLS certificate changed but did not load')) {
      if (Date.now() > deadline) throw new Error('the mismatched pair was never noticed');
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(await starttlsSubject(pipeline.smtpPort)).toBe('renewed.example.test');
    expect(await implicitTlsSubject(pipeline.submissionsPort)).toBe('renewed.example.test');
  });

  it('reloads behind the PROXY protocol, where Haraka wraps its implicit-TLS listener', async () => {
    // A matching pair again (the previous test left a mismatched one), then a restart with PROXY.
    issue('third.example.test');
    await pipeline.smtp.proc.kill();
    await pipeline.startSmtp({ POSTMESH_PROXY_PROTOCOL: 'true' });
    const proxied = (port: number): Probe => ({
      proxyLine: `PROXY TCP4 192.0.2.10 127.0.0.1 40000 ${port}\r\n`,
      servername: 'mx.example.test',
    });
    const starttls = () => starttlsSubject(pipeline.smtpPort, proxied(pipeline.smtpPort));
    const implicit = () => implicitTlsSubject(pipeline.submissionsPort, proxied(pipeline.submissionsPort));
    const implicitNoSni = () =>
      implicitTlsSubject(pipeline.submissionsPort, {
        proxyLine: `PROXY TCP4 192.0.2.10 127.0.0.1 40000 ${pipeline.submissionsPort}\r\n`,
      });
    expect(await implicit()).toBe('third.example.test');

    issue('fourth.example.test');
    expect(await waitForSubject(implicit, 'fourth.example.test')).toBe('fourth.example.test');
    expect(await implicitNoSni()).toBe('fourth.example.test');
    expect(await starttls()).toBe('fourth.example.test');
  });
});
