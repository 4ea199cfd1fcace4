/**
 * The overview's certificate check: connect with TLS to the addresses mail clients use and look at
 * the certificate offered, as a client would (trusted chain, name, expiry; RFC 6125 via Node's
 * checkServerIdentity). Nothing is sent after the handshake.
 */
import { connect } from 'node:tls';

export interface TlsProbeResult {
  readonly target: string;
  /** The certificate chains to a trusted CA, matches the name and is within its validity. */
  readonly trusted: boolean;
  /** Why not (the handshake or verification error), '' when trusted. */
  readonly problem: string;
  /** The certificate's notAfter as ISO time, '' when none was offered. */
  readonly expiresAt: string;
}

/** `host:port` → what the certificate there is worth; bounded by `timeoutMs`. */
export function probeTls(target: string, timeoutMs = 3_000): Promise<TlsProbeResult> {
  const colon = target.lastIndexOf(':');
  const host = colon > 0 ? target.slice(0, colon) : target;
  const port = colon > 0 ? Number(target.slice(colon + 1)) : 993;
  return new Promise((resolve) => {
    let settled = false;
    const done = (result: Omit<TlsProbeResult, 'target'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ target, ...result });
    };
    // Verification is done below from `authorized`, so a bad certificate is reported, not thrown.
    const socket = connect({ host, port, servername: host, rejectUnauthorized: false }, () => {
      const cert = socket.getPeerCertificate();
      const expiresAt = cert.valid_to ? new Date(cert.valid_to).toISOString() : '';
      const problem = socket.authorized ? '' : String(socket.authorizationError ?? 'not trusted');
      done({ trusted: socket.authorized, problem, expiresAt });
    });
    socket.on('error', (error: Error & { code?: string }) =>
      done({ trusted: false, problem: `cannot connect: ${error.code ?? error.message}`, expiresAt: '' }),
    );
    const timer = setTimeout(
      () => done({ trusted: false, problem: `no TLS handshake within ${timeoutMs} ms`, expiresAt: '' }),
      timeoutMs,
    );
  });
}
