/**
 * HAProxy PROXY protocol v1 (text header, haproxy.org proxy-protocol.txt §2.1), used when the
 * service runs behind a TCP load balancer (POSTMESH_PROXY_PROTOCOL=true): the first line of each
 * connection names the real client address. At most 107 octets; anything else closes the
 * connection.
 */
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';

const MAX_HEADER = 107;

export function parseProxyHeader(line: string): string | null {
  const parts = line.split(' ');
  if (parts[0] !== 'PROXY') return null;
  if (parts[1] === 'UNKNOWN') return '';
  if ((parts[1] !== 'TCP4' && parts[1] !== 'TCP6') || parts.length !== 6) return null;
  return parts[2] ?? null;
}

/**
 * Reads the header; resolves the client address and a stream carrying the bytes after it
 * (wrapped so a TLS socket can be layered on top without losing them), or null on bad input.
 */
export function readProxyHeader(
  socket: Socket,
  timeoutMs = 5_000,
): Promise<{ address: string; stream: Duplex } | null> {
  return new Promise((resolve) => {
    let buffered = Buffer.alloc(0);
    const timer = setTimeout(() => finish(null), timeoutMs);
    const finish = (result: { address: string; stream: Duplex } | null): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      if (result === null) socket.destroy();
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n');
      if (end < 0) {
        if (buffered.length > MAX_HEADER) finish(null);
        return;
      }
      const address = parseProxyHeader(buffered.subarray(0, end).toString('latin1'));
      if (address === null) return finish(null);
      socket.pause();
      finish({ address, stream: wrap(socket, buffered.subarray(end + 2)) });
    };
    socket.on('data', onData);
  });
}

function wrap(socket: Socket, rest: Buffer): Duplex {
  const duplex = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      socket.write(chunk, callback);
    },
    final(callback) {
      socket.end(callback);
    },
    destroy(error, callback) {
      socket.destroy(error ?? undefined);
      callback(error);
    },
  });
  if (rest.length > 0) duplex.push(rest);
  socket.on('data', (chunk: Buffer) => {
    if (!duplex.push(chunk)) socket.pause();
  });
  socket.on('end', () => duplex.push(null));
  socket.on('close', () => duplex.destroy());
  socket.on('error', (error) => duplex.destroy(error));
  return duplex;
}
