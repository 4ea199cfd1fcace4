/**
 * HAProxy PROXY protocol, versions 1 (text, haproxy.org proxy-protocol.txt §2.1) and 2 (binary,
 * §2.2), as sent by TCP load balancers (AWS NLB sends only v2) ahead of the client's first byte,
 * naming the real client address. Used by smtp-inbound and imap when POSTMESH_PROXY_PROTOCOL=true:
 * every connection must then start with a header, or it is closed.
 *
 * `parseProxyHeader` is pure (bytes in, a typed header out) and is fed any prefix of the stream;
 * `readProxyHeader` takes the header off a socket and puts back the bytes that followed it.
 */
import { isIPv4, isIPv6, type Socket } from 'node:net';

/** §2.2: the 12-octet v2 signature, chosen so it cannot start a v1 header or any text protocol. */
export const PROXY_V2_SIGNATURE = Buffer.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);
/** §2.1: a v1 line is at most 107 octets including CRLF. */
const V1_MAX = 107;
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** v2 fixed part: signature, version/command, family/protocol, 16-bit length. */
const V2_FIXED = 16;

export type ProxyHeader =
  | {
      /** A proxied TCP connection: the client's address as the load balancer saw it. */
      readonly kind: 'proxied';
      readonly version: 1 | 2;
      readonly family: 'TCP4' | 'TCP6';
      readonly sourceAddress: string;
      readonly sourcePort: number;
      readonly destinationAddress: string;
      readonly destinationPort: number;
      /** Octets the header takes on the wire. */
      readonly length: number;
    }
  | {
      /**
       * v1 `UNKNOWN`, v2 `LOCAL` (the proxy's own health check) or a v2 family we do not map
       * (AF_UNIX, UDP): §2.2 says to use the real connection's addresses.
       */
      readonly kind: 'local';
      readonly version: 1 | 2;
      readonly length: number;
    };

export type ProxyParse =
  | { readonly status: 'need-more' }
  | { readonly status: 'invalid'; readonly reason: string }
  | { readonly status: 'header'; readonly header: ProxyHeader };

const NEED_MORE = { status: 'need-more' } as const;
const invalid = (reason: string): ProxyParse => ({ status: 'invalid', reason });

function startsLike(bytes: Uint8Array, prefix: Buffer): boolean {
  const n = Math.min(bytes.length, prefix.length);
  return Buffer.from(bytes.buffer, bytes.byteOffset, n).equals(prefix.subarray(0, n));
}

/** Parse the header at the start of `bytes`, which may hold only part of it so far. */
export function parseProxyHeader(bytes: Uint8Array): ProxyParse {
  if (bytes.length === 0) return NEED_MORE;
  if (startsLike(bytes, PROXY_V2_SIGNATURE)) return parseV2(bytes);
  if (startsLike(bytes, V1_PREFIX)) return parseV1(bytes);
  return invalid('no PROXY protocol header');
}

const PORT = /^(0|[1-9]\d{0,4})$/;

function parseV1(bytes: Uint8Array): ProxyParse {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.length, V1_MAX));
  const end = buffer.indexOf('\r\n', 0, 'latin1');
  if (end < 0) return bytes.length >= V1_MAX ? invalid('v1 header longer than 107 octets') : NEED_MORE;
  const length = end + 2;
  const parts = buffer.subarray(0, end).toString('latin1').split(' ');
  // §2.1: "PROXY UNKNOWN" may carry anything up to CRLF; the receiver ignores it.
  if (parts[1] === 'UNKNOWN') return { status: 'header', header: { kind: 'local', version: 1, length } };
  if (parts.length !== 6) return invalid('v1 header does not have six fields');
  const [, family, source, destination, sourcePort, destinationPort] = parts as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if (family !== 'TCP4' && family !== 'TCP6') return invalid(`v1 protocol ${JSON.stringify(family)}`);
  const isAddress = family === 'TCP4' ? isIPv4 : isIPv6;
  if (!isAddress(source) || !isAddress(destination)) return invalid(`v1 addresses are not ${family}`);
  if (!PORT.test(sourcePort) || !PORT.test(destinationPort)) return invalid('v1 ports are not numbers');
  const ports = [Number(sourcePort), Number(destinationPort)] as const;
  if (ports.some((p) => p > 65535)) return invalid('v1 port above 65535');
  return {
    status: 'header',
    header: {
      kind: 'proxied',
      version: 1,
      family,
      sourceAddress: source,
      sourcePort: ports[0],
      destinationAddress: destination,
      destinationPort: ports[1],
      length,
    },
  };
}

function parseV2(bytes: Uint8Array): ProxyParse {
  if (bytes.length < V2_FIXED) return NEED_MORE;
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const versionCommand = buffer[12] ?? 0;
  // §2.2: the high nibble is the version (2); the low nibble the command (0 LOCAL, 1 PROXY).
  if (versionCommand >> 4 !== 2) return invalid(`v2 version ${versionCommand >> 4}`);
  const command = versionCommand & 0x0f;
  if (command > 1) return invalid(`v2 command ${command}`);
  const familyProtocol = buffer[13] ?? 0;
  const addressLength = buffer.readUInt16BE(14);
  const length = V2_FIXED + addressLength;
  if (buffer.length < length) return NEED_MORE;
  // LOCAL: the proxy's own connection (health checks); the address block, if any, is skipped.
  if (command === 0) return { status: 'header', header: { kind: 'local', version: 2, length } };
  const body = buffer.subarray(V2_FIXED, length);
  switch (familyProtocol) {
    case 0x11: {
      // AF_INET, STREAM: 4 + 4 address octets, then 2 + 2 port octets; TLVs may follow.
      if (body.length < 12) return invalid('v2 TCP4 address block shorter than 12 octets');
      return {
        status: 'header',
        header: {
          kind: 'proxied',
          version: 2,
          family: 'TCP4',
          sourceAddress: [...body.subarray(0, 4)].join('.'),
          destinationAddress: [...body.subarray(4, 8)].join('.'),
          sourcePort: body.readUInt16BE(8),
          destinationPort: body.readUInt16BE(10),
          length,
        },
      };
    }
    case 0x21: {
      // AF_INET6, STREAM: 16 + 16 address octets, then 2 + 2 port octets.
      if (body.length < 36) return invalid('v2 TCP6 address block shorter than 36 octets');
      return {
        status: 'header',
        header: {
          kind: 'proxied',
          version: 2,
          family: 'TCP6',
          sourceAddress: ipv6(body.subarray(0, 16)),
          destinationAddress: ipv6(body.subarray(16, 32)),
          sourcePort: body.readUInt16BE(32),
          destinationPort: body.readUInt16BE(34),
          length,
        },
      };
    }
    default:
      // §2.2: AF_UNSPEC, AF_UNIX or datagram — "the receiver ... must use the real connection
      // endpoints and ignore the protocol block".
      return { status: 'header', header: { kind: 'local', version: 2, length } };
  }
}

function ipv6(octets: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(octets.readUInt16BE(i).toString(16));
  // Canonical text form (RFC 5952) by way of the URL parser, which compresses zeros.
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

export interface ProxiedConnection {
  readonly header: ProxyHeader;
  /** The client's address: from the header, or the socket's own peer for a `local` header. */
  readonly remoteAddress: string;
  readonly remotePort: number;
}

/**
 * Read the PROXY header off `socket`. On success the bytes after the header are back in the
 * socket's read buffer (`unshift`), the socket is paused, and the caller may hand it on (a
 * TLSSocket built on it reads them first). On a missing or malformed header, or none within
 * `timeoutMs`, the socket is destroyed and the result is null.
 */
export function readProxyHeader(socket: Socket, timeoutMs = 5_000): Promise<ProxiedConnection | null> {
  return new Promise((resolve) => {
    let buffered: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => fail(), timeoutMs);
    const stopReading = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', fail);
      socket.off('error', fail);
      socket.pause();
    };
    const fail = (): void => {
      stopReading();
      socket.destroy();
      resolve(null);
    };
    const onData = (chunk: Buffer): void => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      const parsed = parseProxyHeader(buffered);
      if (parsed.status === 'need-more') return;
      if (parsed.status === 'invalid') return fail();
      stopReading();
      const rest = buffered.subarray(parsed.header.length);
      if (rest.length > 0) socket.unshift(rest);
      const header = parsed.header;
      resolve(
        header.kind === 'proxied'
          ? { header, remoteAddress: header.sourceAddress, remotePort: header.sourcePort }
          : { header, remoteAddress: socket.remoteAddress ?? '', remotePort: socket.remotePort ?? 0 },
      );
    };
    socket.on('data', onData);
    socket.once('close', fail);
    socket.once('error', fail);
  });
}

/** A v1 header line for `connection`, for a consumer that understands only v1 (Haraka). */
export function proxyV1Line(connection: ProxiedConnection, socket: Socket): string {
  const header = connection.header;
  if (header.kind === 'proxied') {
    return `PROXY ${header.family} ${header.sourceAddress} ${header.destinationAddress} ${header.sourcePort} ${header.destinationPort}\r\n`;
  }
  // LOCAL / UNKNOWN: the real endpoints of this connection, in one address family.
  const unmapped = (address: string | undefined): string => (address ?? '').replace(/^::ffff:(?=\d+\.)/, '');
  const remote = unmapped(socket.remoteAddress);
  const local = unmapped(socket.localAddress);
  const family = isIPv4(remote) && isIPv4(local) ? 'TCP4' : 'TCP6';
  const as6 = (address: string): string => (isIPv4(address) ? `::ffff:${address}` : address);
  return family === 'TCP4'
    ? `PROXY TCP4 ${remote} ${local} ${socket.remotePort ?? 0} ${socket.localPort ?? 0}\r\n`
    : `PROXY TCP6 ${as6(remote)} ${as6(local)} ${socket.remotePort ?? 0} ${socket.localPort ?? 0}\r\n`;
}
