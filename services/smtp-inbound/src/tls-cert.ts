/**
 * STARTTLS needs a certificate (DESIGN §5). When none is configured the service makes a
 * self-signed one once, in its data dir, and reuses it on later starts (the local stack).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ensureSelfSignedCertificate } from '@postmesh/runtime';

const run = promisify(execFile);

export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  /** DH parameters for DHE suites: the RFC 7919 ffdhe2048 group. */
  readonly dhparamFile: string;
  readonly generated: boolean;
}

/**
 * Without a dhparams file Haraka runs `openssl dhparam 2048` at every start (a minute of CPU).
 * The RFC 7919 §A.1 ffdhe2048 group is standard, vetted and instant to write.
 */
async function ensureDhParams(dir: string): Promise<string> {
  const file = join(dir, 'ffdhe2048.pem');
  if (existsSync(file)) return file;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  await run('openssl', [
    'genpkey',
    '-genparam',
    '-algorithm',
    'DH',
    '-pkeyopt',
    'group:ffdhe2048',
    '-out',
    file,
  ]);
  return file;
}

/**
 * `dirs.scratchDir` (under the system temporary directory) gets the DH parameters; `dirs.dataDir`
 * is written only when no certificate is configured, so a pod with mounted certificates and a
 * read-only root filesystem writes nothing outside its temporary directory.
 */
export async function ensureTlsFiles(
  configured: { certFile: string | undefined; keyFile: string | undefined },
  dirs: { readonly dataDir: string; readonly scratchDir: string },
  hostname: string,
): Promise<TlsFiles> {
  const dhparamFile = await ensureDhParams(dirs.scratchDir);
  if (configured.certFile !== undefined && configured.keyFile !== undefined) {
    return { certFile: configured.certFile, keyFile: configured.keyFile, dhparamFile, generated: false };
  }
  const { certFile, keyFile, generated } = ensureSelfSignedCertificate({
    dir: join(dirs.dataDir, 'tls'),
    certName: 'self-signed-cert.pem',
    keyName: 'self-signed-key.pem',
    hostname,
  });
  return { certFile, keyFile, dhparamFile, generated };
}
