/**
 * A DNS server for tests, on 127.0.0.1 (UDP and TCP on one free port), answering from a zone
 * table. The services under test keep their real resolver (node:dns) and are pointed at it
 * (`POSTMESH_DNS_SERVERS=127.0.0.1:<port>`), so no test double ships in a service's source.
 *
 * Zones: `{ "MX": { "<name>": [{ "exchange": "mx1.example.org", "priority": 10 }] },
 *           "A": { "<name>": ["127.0.0.1"] }, "AAAA": { "<name>": ["::1"] },
 *           "TXT": { "<name>": ["one string", ["or", "its character-strings"]] } }`.
 * A name listed under no type answers NXDOMAIN; listed under another type only, NOERROR with no
 * records (NODATA); the value `"TEMPERROR"` answers SERVFAIL (a temporary failure). The table is
 * read on every question, so a test may change it while the server runs.
 */
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { isIPv4, isIPv6, createServer, type Server } from 'node:net';
import { freePort } from './process.js';

export type DnsZones = Record<string, Record<string, unknown>>;

const TYPE = { A: 1, MX: 15, TXT: 16, AAAA: 28 } as const;
const TYPE_NAME = new Map<number, string>(Object.entries(TYPE).map(([name, code]) => [code, name]));
const RCODE = { noError: 0, servFail: 2, nxDomain: 3 } as const;

interface Question {
  readonly id: number;
  readonly flags: number;
  readonly name: string;
  readonly type: number;
  /** The question section's bytes, echoed in the answer (RFC 1035 §4.1.2). */
  readonly section: Buffer;
}

function parseQuestion(query: Buffer): Question | undefined {
  if (query.length < 12 || query.readUInt16BE(4) !== 1) return undefined;
  const labels: string[] = [];
  let at = 12;
  for (;;) {
    if (at >= query.length) return undefined;
    const length = query[at] ?? 0;
    if (length === 0) break;
    if (length > 63) return undefined; // compression never appears in a question we accept
    labels.push(query.subarray(at + 1, at + 1 + length).toString('latin1'));
    at += 1 + length;
  }
  if (at + 5 > query.length) return undefined;
  return {
    id: query.readUInt16BE(0),
    flags: query.readUInt16BE(2),
    name: labels.join('.').toLowerCase(),
    type: query.readUInt16BE(at + 1),
    section: query.subarray(12, at + 5),
  };
}

function encodeName(name: string): Buffer {
  const parts = name
    .replace(/\.$/, '')
    .split('.')
    .filter((l) => l.length > 0)
    .map((label) => {
      const bytes = Buffer.from(label, 'latin1');
      return Buffer.concat([Buffer.from([bytes.length]), bytes]);
    });
  return Buffer.concat([...parts, Buffer.from([0])]);
}

/** Character-strings of at most 255 bytes each (RFC 1035 §3.3). */
function characterStrings(value: unknown): Buffer {
  const chunks = Array.isArray(value) ? value.map(String) : [String(value)];
  const out: Buffer[] = [];
  for (const chunk of chunks) {
    const bytes = Buffer.from(chunk, 'utf8');
    for (let at = 0; at === 0 || at < bytes.length; at += 255) {
      const piece = bytes.subarray(at, at + 255);
      out.push(Buffer.from([piece.length]), piece);
    }
  }
  return Buffer.concat(out);
}

function rdata(type: number, value: unknown): Buffer {
  switch (type) {
    case TYPE.A: {
      const ip = String(value);
      if (!isIPv4(ip)) throw new Error(`fake DNS: ${ip} is not an IPv4 address`);
      return Buffer.from(ip.split('.').map(Number));
    }
    case TYPE.AAAA: {
      const ip = String(value);
      if (!isIPv6(ip)) throw new Error(`fake DNS: ${ip} is not an IPv6 address`);
      const [head = '', tail = ''] = ip.split('::');
      const groups = (s: string): string[] => (s === '' ? [] : s.split(':'));
      const hi = groups(head);
      const lo = ip.includes('::') ? groups(tail) : [];
      const all = [...hi, ...Array<string>(8 - hi.length - lo.length).fill('0'), ...lo];
      const out = Buffer.alloc(16);
      all.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
      return out;
    }
    case TYPE.MX: {
      const mx = value as { exchange: string; priority: number };
      const preference = Buffer.alloc(2);
      preference.writeUInt16BE(mx.priority);
      return Buffer.concat([preference, encodeName(mx.exchange)]);
    }
    default:
      return characterStrings(value);
  }
}

function answer(zones: DnsZones, query: Buffer): Buffer | undefined {
  const question = parseQuestion(query);
  if (question === undefined) return undefined;
  const typeName = TYPE_NAME.get(question.type);
  const records = typeName === undefined ? undefined : zones[typeName]?.[question.name];
  const exists = Object.values(zones).some((zone) => Object.hasOwn(zone, question.name));
  let rcode: number = RCODE.noError;
  const answers: Buffer[] = [];
  if (records === 'TEMPERROR') rcode = RCODE.servFail;
  else if (Array.isArray(records)) {
    for (const record of records) {
      const data = rdata(question.type, record);
      const fixed = Buffer.alloc(10);
      fixed.writeUInt16BE(question.type, 0);
      fixed.writeUInt16BE(1, 2); // class IN
      fixed.writeUInt32BE(60, 4); // TTL
      fixed.writeUInt16BE(data.length, 8);
      // 0xc00c: a pointer to the question's name (RFC 1035 §4.1.4)
      answers.push(Buffer.from([0xc0, 0x0c]), fixed, data);
    }
  } else if (!exists) rcode = RCODE.nxDomain;
  const header = Buffer.alloc(12);
  header.writeUInt16BE(question.id, 0);
  // QR=1, the query's opcode and RD, AA=1, RA=1 (RFC 1035 §4.1.1)
  header.writeUInt16BE(0x8000 | (question.flags & 0x7900) | 0x0400 | 0x0080 | rcode, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(records === 'TEMPERROR' ? 0 : answers.length / 3, 6);
  return Buffer.concat([header, question.section, ...answers]);
}

export class FakeDnsServer {
  private constructor(
    readonly zones: DnsZones,
    readonly port: number,
    private readonly udp: Socket,
    private readonly tcp: Server,
  ) {}

  /** `host:port`, the form node:dns `setServers` and `POSTMESH_DNS_SERVERS` take. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  static async start(zones: DnsZones = {}): Promise<FakeDnsServer> {
    const port = await freePort();
    const udp = createSocket('udp4');
    udp.on('message', (query, peer) => {
      const reply = answer(zones, query);
      if (reply !== undefined) udp.send(reply, peer.port, peer.address);
    });
    // TCP (RFC 1035 §4.2.2: two-byte length prefix) for a resolver that retries a large answer.
    const tcp = createServer((socket) => {
      let pending = Buffer.alloc(0);
      socket.on('error', () => socket.destroy());
      socket.on('data', (data: Buffer) => {
        pending = Buffer.concat([pending, data]);
        while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
          const query = pending.subarray(2, 2 + pending.readUInt16BE(0));
          pending = pending.subarray(2 + query.length);
          const reply = answer(zones, query);
          if (reply === undefined) {
            socket.destroy();
            return;
          }
          const length = Buffer.alloc(2);
          length.writeUInt16BE(reply.length);
          socket.write(Buffer.concat([length, reply]));
        }
      });
    });
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(port, '127.0.0.1', () => resolve());
    });
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(port, '127.0.0.1', () => resolve());
    });
    return new FakeDnsServer(zones, port, udp, tcp);
  }

  static fromFile(file: string): Promise<FakeDnsServer> {
    return FakeDnsServer.start(JSON.parse(readFileSync(file, 'utf8')) as DnsZones);
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.udp.close(() => resolve()));
    await new Promise<void>((resolve) => this.tcp.close(() => resolve()));
  }
}
