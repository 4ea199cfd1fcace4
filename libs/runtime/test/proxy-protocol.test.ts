// PROXY protocol v1 and v2 (haproxy.org proxy-protocol.txt §2.1, §2.2): table-driven, fed one
// byte at a time, and fuzzed so no input throws.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { proxyV2Header as v2Header } from '@postmesh/testing';
import { PROXY_V2_SIGNATURE, parseProxyHeader, type ProxyParse } from '../src/proxy-protocol.js';

function byteByByte(bytes: Buffer): ProxyParse {
  for (let n = 0; n < bytes.length; n++) {
    const partial = parseProxyHeader(bytes.subarray(0, n));
    if (partial.status !== 'need-more') return partial;
  }
  return parseProxyHeader(bytes);
}

describe('PROXY protocol v2', () => {
  it('reads a TCP4 header with TLVs after it, one byte at a time, and leaves the payload', () => {
    // An NLB adds a PP2_TYPE_AWS TLV (0xEA) with the VPC endpoint id.
    const tlv = Buffer.concat([Buffer.from([0xea, 0x00, 0x05, 0x01]), Buffer.from('vpce')]);
    const header = v2Header(
      {
        command: 'PROXY',
        family: 'TCP4',
        source: '198.51.100.7',
        destination: '10.0.3.4',
        ports: [40123, 25],
      },
      tlv,
    );
    const wire = Buffer.concat([header, Buffer.from('EHLO client\r\n')]);
    expect(byteByByte(wire)).toEqual({
      status: 'header',
      header: {
        kind: 'proxied',
        version: 2,
        family: 'TCP4',
        sourceAddress: '198.51.100.7',
        sourcePort: 40123,
        destinationAddress: '10.0.3.4',
        destinationPort: 25,
        length: header.length,
      },
    });
  });

  it('reads a TCP6 header in canonical text form', () => {
    const header = v2Header({
      command: 'PROXY',
      family: 'TCP6',
      source: '2001:db8::7',
      destination: '2001:db8:0:1::4',
      ports: [50000, 993],
    });
    const parsed = parseProxyHeader(header);
    expect(parsed).toMatchObject({
      status: 'header',
      header: { family: 'TCP6', sourceAddress: '2001:db8::7', destinationAddress: '2001:db8:0:1::4' },
    });
  });

  it('treats LOCAL (the balancer health check) as the connection itself', () => {
    expect(parseProxyHeader(v2Header({ command: 'LOCAL' }))).toEqual({
      status: 'header',
      header: { kind: 'local', version: 2, length: 16 },
    });
  });

  it('refuses a wrong version, an unknown command and a short address block', () => {
    const header = v2Header({
      command: 'PROXY',
      family: 'TCP4',
      source: '192.0.2.1',
      destination: '192.0.2.2',
      ports: [1, 2],
    });
    const version1 = Buffer.from(header);
    version1[12] = 0x11;
    expect(parseProxyHeader(version1)).toEqual({ status: 'invalid', reason: 'v2 version 1' });
    const command = Buffer.from(header);
    command[12] = 0x22;
    expect(parseProxyHeader(command)).toEqual({ status: 'invalid', reason: 'v2 command 2' });
    const short = Buffer.from(header.subarray(0, 16 + 8));
    short.writeUInt16BE(8, 14);
    expect(parseProxyHeader(short).status).toBe('invalid');
  });
});

describe('PROXY protocol v1', () => {
  it('reads a TCP4 line one byte at a time', () => {
    const wire = Buffer.from('PROXY TCP4 192.0.2.1 192.0.2.2 5555 993\r\na1 CAPABILITY\r\n', 'latin1');
    expect(byteByByte(wire)).toMatchObject({
      status: 'header',
      header: { kind: 'proxied', version: 1, sourceAddress: '192.0.2.1', sourcePort: 5555, length: 41 },
    });
  });

  it.each([
    ['GET / HTTP/1.1\r\n', 'no PROXY protocol header'],
    ['PROXY TCP4 1.2.3.4\r\n', 'v1 header does not have six fields'],
    ['PROXY TCP4 2001:db8::1 1.2.3.4 1 2\r\n', 'v1 addresses are not TCP4'],
    ['PROXY TCP4 1.2.3.4 1.2.3.5 70000 2\r\n', 'v1 port above 65535'],
    [`PROXY TCP4 ${'1'.repeat(120)}`, 'v1 header longer than 107 octets'],
  ])('refuses %j', (text, reason) => {
    expect(parseProxyHeader(Buffer.from(text, 'latin1'))).toEqual({ status: 'invalid', reason });
  });
});

describe('any input', () => {
  it('never throws and never claims more octets than it was given', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 64 }),
          fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.concat([PROXY_V2_SIGNATURE, b])),
          fc.string({ maxLength: 120 }).map((s) => Buffer.from(`PROXY ${s}`, 'latin1')),
        ),
        (bytes) => {
          const parsed = parseProxyHeader(bytes);
          if (parsed.status === 'header') expect(parsed.header.length).toBeLessThanOrEqual(bytes.length);
        },
      ),
      { numRuns: 2_000 },
    );
  });
});
