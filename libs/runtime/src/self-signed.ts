/**
 * A self-signed certificate for a listener that has none configured (the local stack, tests):
 * made once with Debian's `openssl` into the service's data directory and reused on later starts,
 * so clients that pinned it keep working. Production mounts real certificates instead.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { CertificateFiles } from './tls-reload.js';

export interface SelfSignedOptions {
  /** Directory that holds the pair (created 0700). */
  readonly dir: string;
  /** File names inside `dir`; services keep the names earlier versions wrote. */
  readonly certName: string;
  readonly keyName: string;
  /** The name clients connect to: the subject CN and the first subjectAltName. */
  readonly hostname: string;
}

/**
 * The certificate and key files, generated when either is missing: ECDSA P-256, valid 825 days
 * (the longest lifetime Apple's TLS clients accept), names `hostname`, `localhost` and 127.0.0.1.
 */
export function ensureSelfSignedCertificate(
  options: SelfSignedOptions,
): CertificateFiles & { generated: boolean } {
  const certFile = join(options.dir, options.certName);
  const keyFile = join(options.dir, options.keyName);
  if (existsSync(certFile) && existsSync(keyFile)) return { certFile, keyFile, generated: false };
  mkdirSync(options.dir, { recursive: true, mode: 0o700 });
  const names = [...new Set([`DNS:${options.hostname}`, 'DNS:localhost', 'IP:127.0.0.1'])];
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '825',
      '-subj',
      `/CN=${options.hostname}`,
      '-addext',
      `subjectAltName=${names.join(',')}`,
    ],
    { stdio: 'ignore' },
  );
  return { certFile, keyFile, generated: true };
}
