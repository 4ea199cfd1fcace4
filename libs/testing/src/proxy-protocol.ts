/**
 * PROXY protocol v2 headers for tests (haproxy.org proxy-protocol.txt §2.2), written the way an
 * AWS NLB or HAProxy's `send-proxy-v2` writes them, to put in front of a real client's bytes.
 */
const SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** A v2 header as an AWS NLB or HAProxy (`send-proxy-v2`) writes it. */
export function proxyV2Header(
  options:
    | { command: 'LOCAL' }
    | {
        command: 'PROXY';
        family: 'TCP4' | 'TCP6';
        source: string;
        destination: string;
        ports: [number, number];
      },
  tlvs: Buffer = Buffer.alloc(0),
): Buffer {
  if (options.command === 'LOCAL') {
    return Buffer.concat([SIGNATURE, Buffer.from([0x20, 0x00, 0x00, 0x00])]);
  }
  const addr = (text: string): Buffer =>
    options.family === 'TCP4'
      ? Buffer.from(text.split('.').map(Number))
      : Buffer.from(
          text
            .split(':')
            .flatMap((g, i, all) =>
              g === '' && i > 0 && i < all.length - 1 ? Array<string>(9 - all.length).fill('0') : [g || '0'],
            )
            .flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]),
        );
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(options.ports[0], 0);
  ports.writeUInt16BE(options.ports[1], 2);
  const body = Buffer.concat([addr(options.source), addr(options.destination), ports, tlvs]);
  const fixed = Buffer.from([0x21, options.family === 'TCP4' ? 0x11 : 0x21, 0, 0]);
  fixed.writeUInt16BE(body.length, 2);
  return Buffer.concat([SIGNATURE, fixed, body]);
}
