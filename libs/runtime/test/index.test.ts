/**
 * The runtime's public surface (src/index.ts): what services import, and the first step of
 * runService — a bad configuration stops the process before anything starts, naming each bad
 * variable, with exit code 78 (sysexits EX_CONFIG); `--check-config` validates and exits.
 * The lifecycle runs in a child process (it calls process.exit), from the built dist/.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as runtime from '../src/index.js';

describe('exports', () => {
  it('offers the lifecycle, TLS reload, PROXY protocol, self-signed certificates and alert watches', () => {
    const functions = [
      'runService',
      'loadCertificate',
      'watchCertificate',
      'ensureSelfSignedCertificate',
      'parseProxyHeader',
      'proxyV1Line',
      'readProxyHeader',
      'checkQueues',
      'readCertificate',
      'watchCertificateExpiry',
      'watchQueues',
    ] as const;
    for (const name of functions) expect(typeof runtime[name], name).toBe('function');
    expect(runtime.EXIT_CONFIG).toBe(78);
    // The PROXY protocol v2 signature (haproxy proxy-protocol.txt §2.2).
    expect([...runtime.PROXY_V2_SIGNATURE]).toEqual([
      0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
    ]);
  });
});

describe('runService configuration step', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postmesh-runtime-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const script = join(dir, 'service.mjs');
  writeFileSync(
    script,
    [
      `import { runService } from ${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)};`,
      `import { commonSchema, port, integer } from ${JSON.stringify(new URL('../../config/dist/index.js', import.meta.url).href)};`,
      `await runService({`,
      `  name: 'storage',`,
      `  schema: { ...commonSchema, POSTMESH_OPS_PORT: port(9199), POSTMESH_WORKERS: integer(2, { min: 1, max: 8 }) },`,
      `  start: async () => { throw new Error('must not start'); },`,
      `});`,
    ].join('\n'),
  );
  const run = (env: Record<string, string>, args: string[] = []) =>
    spawnSync(process.execPath, [script, ...args], {
      // Only PATH: nothing of the test runner's own POSTMESH_* or NATS_* environment.
      env: { PATH: process.env.PATH ?? '', ...env },
      encoding: 'utf8',
      timeout: 30_000,
    });

  it('exits 78 naming every bad variable, and the variables it does not read', () => {
    const result = run({ POSTMESH_OPS_PORT: 'abc', POSTMESH_WORKERS: '9', POSTMESH_WORKER: '3' });
    expect(result.status).toBe(78);
    expect(result.stderr).toContain('storage: Invalid configuration:');
    expect(result.stderr).toContain('POSTMESH_OPS_PORT: expected an integer from 1 to 65535, got "abc"');
    expect(result.stderr).toContain('POSTMESH_WORKERS: expected an integer from 1 to 8, got "9"');
    expect(result.stderr).toContain('storage: variables this service does not read: POSTMESH_WORKER');
  });

  it('--check-config: a valid environment exits 0 without starting; an unread variable exits 78', () => {
    const valid = run({ POSTMESH_WORKERS: '4' }, ['--check-config']);
    expect(valid.stderr).toBe('');
    expect(valid.status).toBe(0);
    expect(valid.stdout).toBe('storage: configuration valid\n');
    const typo = run({ POSTMESH_WORKER: '4' }, ['--check-config']);
    expect(typo.status).toBe(78);
    expect(typo.stderr).toContain('variables this service does not read: POSTMESH_WORKER');
  });
});
