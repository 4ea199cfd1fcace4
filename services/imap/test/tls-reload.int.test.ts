// A renewed certificate is served without a restart. The files are laid out and swapped the way
// the kubelet updates a Secret volume (cert-manager renewal): tls.crt -> ..data/tls.crt, and
// ..data is a symlink moved atomically to a new timestamped directory.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startImapStack, type ImapStack } from './harness.js';

const mount = mkdtempSync(join(tmpdir(), 'postmesh-tls-mount-'));

/** A new self-signed pair in a new timestamped directory, then the ..data swap. */
function issue(name: string, generation: number): void {
  const dir = join(mount, `..2026_12_06_${generation}`);
  mkdirSync(dir);
  execFileSync('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    join(dir, 'tls.key'),
    '-out',
    join(dir, 'tls.crt'),
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
  ]);
  const next = join(mount, '..data_tmp');
  symlinkSync(`..2026_12_06_${generation}`, next);
  renameSync(next, join(mount, '..data'));
}

function servedSubject(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () => {
      const cn = socket.getPeerCertificate().subject.CN;
      socket.destroy();
      resolve(Array.isArray(cn) ? cn.join(',') : (cn ?? ''));
    });
    socket.once('error', reject);
  });
}

async function waitForSubject(port: number, expected: string, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    last = await servedSubject(port);
    if (last === expected) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  return last;
}

describe('imap reloads its certificate when the mounted files change', () => {
  let stack: ImapStack;

  beforeAll(async () => {
    issue('first.example.test', 1);
    symlinkSync('..data/tls.crt', join(mount, 'tls.crt'));
    symlinkSync('..data/tls.key', join(mount, 'tls.key'));
    stack = await startImapStack({
      imapEnv: {
        POSTMESH_TLS_CERT_FILE: join(mount, 'tls.crt'),
        POSTMESH_TLS_KEY_FILE: join(mount, 'tls.key'),
        POSTMESH_TLS_RELOAD_POLL_MS: '500',
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
    rmSync(mount, { recursive: true, force: true });
  });

  it('serves the renewed certificate on the implicit-TLS port without a restart', async () => {
    expect(await servedSubject(stack.imapsPort)).toBe('first.example.test');
    issue('renewed.example.test', 2);
    expect(await waitForSubject(stack.imapsPort, 'renewed.example.test')).toBe('renewed.example.test');
    expect(stack.imap.running).toBe(true);
    expect(stack.log('imap')).toContain('TLS certificate reloaded');
  });

  it('keeps serving the current certificate while a half-swapped pair does not load', async () => {
    // A key from one issuance with the certificate of another: the pair does not match.
    const dir = join(mount, '..2026_12_06_3');
    mkdirSync(dir);
    execFileSync('openssl', [
      'ecparam',
      '-name',
      'prime256v1',
      '-genkey',
      '-noout',
      '-out',
      join(dir, 'tls.key'),
    ]);
    execFileSync('cp', [join(mount, '..2026_12_06_2', 'tls.crt'), join(dir, 'tls.crt')]);
    symlinkSync('..2026_12_06_3', join(mount, '..data_tmp'));
    renameSync(join(mount, '..data_tmp'), join(mount, '..data'));
    await new Promise((r) => setTimeout(r, 2_500));
    expect(await servedSubject(stack.imapsPort)).toBe('renewed.example.test');
    expect(stack.log('imap')).toContain('TLS certificate changed but did not load');
    // The next renewal loads again.
    issue('third.example.test', 4);
    expect(await waitForSubject(stack.imapsPort, 'third.example.test')).toBe('third.example.test');
  });
});
