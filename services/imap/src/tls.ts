/**
 * TLS material for STARTTLS and the implicit-TLS port (RFC 8314 §3, RFC 9051 §11.1). Uses the
 * configured certificate and key; without them (local stack, tests) a self-signed certificate is
 * generated once with `openssl` into `<data dir>/tls/` and reused on later starts.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';

export interface TlsMaterial {
  readonly context: SecureContext;
  readonly certFile: string;
  readonly keyFile: string;
  readonly generated: boolean;
}

export function loadTls(options: {
  readonly certFile: string | undefined;
  readonly keyFile: string | undefined;
  readonly dataDir: string;
  readonly hostname: string;
}): TlsMaterial {
  let certFile = options.certFile;
  let keyFile = options.keyFile;
  let generated = false;
  if (certFile === undefined || keyFile === undefined || certFile === '' || keyFile === '') {
    const dir = join(options.dataDir, 'tls');
    certFile = join(dir, 'imap-selfsigned.crt');
    keyFile = join(dir, 'imap-selfsigned.key');
    if (!existsSync(certFile) || !existsSync(keyFile)) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
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
          `subjectAltName=DNS:${options.hostname},DNS:localhost,IP:127.0.0.1`,
        ],
        { stdio: 'ignore' },
      );
      generated = true;
    }
  }
  const context = createSecureContext({
    cert: readFileSync(certFile),
    key: readFileSync(keyFile),
    minVersion: 'TLSv1.2', // DESIGN §5
  });
  return { context, certFile, keyFile, generated };
}
