// In its pod smtp-inbound runs from a read-only, root-owned working directory (/app) with the
// certificate mounted: it must write nothing there, only under its temporary directory. (As root
// here a write would succeed, so the test looks at what was written rather than waiting for
// EACCES; the image smoke test runs it as a non-root user on a read-only mount.)
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  freePort,
  startService,
  startTestEnvironment,
  type RunningService,
  type TestEnvironment,
} from '@postmesh/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

describe('smtp-inbound with mounted certificates', () => {
  let env: TestEnvironment;
  let smtp: RunningService | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'postmesh-smtp-fs-'));
  const cwd = join(dir, 'app');
  const dataDir = join(dir, 'data');
  const scratch = join(dir, 'tmp');

  beforeAll(async () => {
    env = await startTestEnvironment({ mongo: false });
    for (const d of [cwd, dataDir, scratch]) mkdirSync(d, { recursive: true });
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
      '1',
      '-subj',
      '/CN=mx.example.test',
    ]);
  });
  afterAll(async () => {
    await smtp?.kill();
    await env?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes nothing under its working directory or data directory', async () => {
    const smtpPort = await freePort();
    // A pod's bare environment: a path, and a writable temporary directory of its own.
    smtp = await startService('smtp-inbound', {
      env,
      dir,
      name: 'smtp',
      baseEnv: { PATH: process.env.PATH, TMPDIR: scratch },
      cwd,
      vars: {
        POSTMESH_ALLOW_WEAK_DURABILITY: 'true',
        POSTMESH_SMTP_PORT: String(smtpPort),
        POSTMESH_SUBMISSION_PORT: '0',
        POSTMESH_SUBMISSIONS_PORT: '0',
        POSTMESH_SMTP_DATA_DIR: dataDir,
        POSTMESH_TLS_CERT_FILE: join(dir, 'tls.crt'),
        POSTMESH_TLS_KEY_FILE: join(dir, 'tls.key'),
      },
      waitReady: false,
    });
    const deadline = Date.now() + 40_000;
    while (!smtp.log().includes('"msg":"started"')) {
      if (!smtp.running || Date.now() > deadline)
        throw new Error(`smtp-inbound did not start:\n${smtp.log()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(readdirSync(cwd)).toEqual([]);
    expect(readdirSync(dataDir)).toEqual([]);
    // Haraka's generated configuration and the DH group went to the temporary directory.
    expect(readdirSync(scratch).some((name) => name.startsWith('postmesh-haraka-'))).toBe(true);
  });
});
