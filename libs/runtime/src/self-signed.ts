/**
 * A self-signed certificate for a listener that has none configured (the local stack, tests):
 * made once with Debian's `openssl` into the service's data directory and reused on later starts,
 * so clients that pinned it keep working. Production mounts real certificates instead.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
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

/** A listener's TLS material: the files it was built from, and whether they were generated now. */
export interface ListenerTls extends CertificateFiles {
  readonly context: SecureContext;
  readonly generated: boolean;
}

/**
 * The TLS context of a public listener (STARTTLS and implicit TLS, RFC 8314 §3): the configured
 * certificate and key, or without them a self-signed pair named `<name>-selfsigned.crt/.key` in
 * `<dataDir>/tls/` (made once, reused on later starts). TLS 1.2 at least (DESIGN §5).
 */
export function loadListenerTls(options: {
  /** File-name stem of the generated pair: the names earlier versions wrote (`imap`, …). */
  readonly name: string;
  readonly certFile: string | undefined;
  readonly keyFile: string | undefined;
  readonly dataDir: string;
  readonly hostname: string;
}): ListenerTls {
  const configured =
    options.certFile !== undefined &&
    options.keyFile !== undefined &&
    options.certFile !== '' &&
    options.keyFile !== '';
  const files = configured
    ? { certFile: options.certFile, keyFile: options.keyFile, generated: false }
    : ensureSelfSignedCertificate({
        dir: join(options.dataDir, 'tls'),
        certName: `${options.name}-selfsigned.crt`,
        keyName: `${options.name}-selfsigned.key`,
        hostname: options.hostname,
      });
  const context = createSecureContext({
    cert: readFileSync(files.certFile),
    key: readFileSync(files.keyFile),
    minVersion: 'TLSv1.2',
  });
  return { ...files, context };
}
