/**
 * PROXY protocol v1 and v2 in front of Haraka (haproxy.org proxy-protocol.txt §2.1, §2.2).
 * Haraka 3.3 understands only the v1 text line, and an AWS NLB sends only v2. With
 * POSTMESH_PROXY_PROTOCOL=true every connection must start with a header of either version: it is
 * taken off the socket here and put back as the equivalent v1 line, which Haraka applies to the
 * session (client address for SPF, limits and Received:), on the MX and submission ports and
 * ahead of the TLS handshake on the submissions port. A connection without a valid header within
 * a few seconds is closed before Haraka sees it.
 */
import type { Server, Socket } from 'node:net';
import { proxyV1Line, readProxyHeader } from '@postmesh/runtime';

type ConnectionListener = (this: Server, socket: Socket) => void;

/** Haraka's `[haproxy] hosts[]`: every peer, because every connection has passed `requireProxyHeader`. */
export const HARAKA_PROXY_PEERS = ['0.0.0.0/0', '::/0'] as const;

/**
 * Put the header check in front of the listener's own connection handler. Call it before the
 * listener accepts connections that matter (start-up, before readiness).
 */
export function requireProxyHeader(server: Server, timeoutMs = 5_000): void {
  const handlers = server.listeners('connection') as ConnectionListener[];
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => {
    socket.on('error', () => undefined);
    void readProxyHeader(socket, timeoutMs).then((proxied) => {
      if (proxied === null) return;
      socket.unshift(Buffer.from(proxyV1Line(proxied, socket), 'latin1'));
      for (const handler of handlers) handler.call(server, socket);
      socket.resume();
    });
  });
}
