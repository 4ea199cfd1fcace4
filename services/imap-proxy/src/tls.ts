/**
 * The proxy's own TLS material for STARTTLS and the implicit-TLS port (RFC 8314 §3, RFC 9051
 * §11.1), as imap loads its own: the configured certificate and key; without them (local stack, tests) a self-signed certificate is
 * generated once into `<data dir>/tls/` and reused on later starts (libs/runtime).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import { ensureSelfSignedCertificate } from '@postmesh/runtime';

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
    ({ certFile, keyFile, generated } = ensureSelfSignedCertificate({
      dir: join(options.dataDir, 'tls'),
      certName: 'imap-proxy-selfsigned.crt',
      keyName: 'imap-proxy-selfsigned.key',
      hostname: options.hostname,
    }));
  }
  const context = createSecureContext({
    cert: readFileSync(certFile),
    key: readFileSync(keyFile),
    minVersion: 'TLSv1.2', // DESIGN §5
  });
  return { context, certFile, keyFile, generated };
}
