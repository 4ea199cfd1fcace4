import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureSelfSignedCertificate } from '../src/self-signed.js';

const root = mkdtempSync(join(tmpdir(), 'postmesh-self-signed-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('self-signed certificate for listeners without one', () => {
  const options = {
    dir: join(root, 'tls'),
    certName: 'c.pem',
    keyName: 'k.pem',
    hostname: 'mail.example.test',
  };

  it('is made once, names the host, localhost and 127.0.0.1, and loads as a TLS pair', () => {
    const made = ensureSelfSignedCertificate(options);
    expect(made.generated).toBe(true);
    expect(statSync(options.dir).mode & 0o777).toBe(0o700);
    const cert = new X509Certificate(readFileSync(made.certFile));
    expect(cert.subject).toContain('CN=mail.example.test');
    expect(cert.subjectAltName).toContain('DNS:mail.example.test');
    expect(cert.subjectAltName).toContain('DNS:localhost');
    expect(cert.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(cert.checkHost('mail.example.test')).toBe('mail.example.test');
    expect(() =>
      createSecureContext({ cert: readFileSync(made.certFile), key: readFileSync(made.keyFile) }),
    ).not.toThrow();
  });

  it('is reused on a later start (clients that pinned it keep working)', () => {
    const before = readFileSync(join(options.dir, options.certName));
    const again = ensureSelfSignedCertificate(options);
    expect(again.generated).toBe(false);
    expect(readFileSync(again.certFile).equals(before)).toBe(true);
  });
});
