/**
 * Where webhooks may be sent (server-side request forgery): only `http:`/`https:` URLs without
 * credentials, and by default never to loopback, private (RFC 1918, RFC 4193), link-local,
 * shared (RFC 6598), multicast or reserved addresses, which would let a domain admin reach the
 * cluster's own services. Operators allow chosen addresses or ranges
 * (POSTMESH_WEBHOOK_ALLOW_ADDRESSES). Host names are checked on every request, after resolution
 * and on the address actually connected to (the request's `lookup`), so a name that later
 * resolves to an internal address (DNS rebinding) is refused as well.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

const DENIED_V4 = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.0.2.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '198.51.100.0/24',
  '203.0.113.0/24',
  '224.0.0.0/4',
  '240.0.0.0/4',
];
// IPv4-mapped addresses (::ffff:a.b.c.d) need no rule: BlockList checks them against the IPv4 rules.
const DENIED_V6 = [
  '::/127',
  '64:ff9b::/96',
  '100::/64',
  '2001:db8::/32',
  'fc00::/7',
  'fe80::/10',
  'ff00::/8',
];

export const MAX_WEBHOOK_URL = 2_048;

export class DestinationRefused extends Error {
  override readonly name = 'DestinationRefused';
}

function addRange(list: BlockList, range: string): boolean {
  const [address = '', bits] = range.split('/');
  const family = isIP(address);
  if (family === 0) return false;
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (bits === undefined) {
    list.addAddress(address, type);
    return true;
  }
  const prefix = Number(bits);
  if (!/^\d{1,3}$/.test(bits) || prefix > (family === 4 ? 32 : 128)) return false;
  list.addSubnet(address, prefix, type);
  return true;
}

/** Parses the operator's allow-list (IP addresses and CIDR ranges); answers the bad entries. */
export function allowListProblems(entries: readonly string[]): string[] {
  const scratch = new BlockList();
  return entries.filter((entry) => !addRange(scratch, entry));
}

export class DestinationPolicy {
  private readonly denied = new BlockList();
  private readonly allowed = new BlockList();

  /** `allow`: addresses and CIDR ranges permitted although they are internal. */
  constructor(allow: readonly string[] = []) {
    for (const range of DENIED_V4) addRange(this.denied, range);
    for (const range of DENIED_V6) addRange(this.denied, range);
    for (const entry of allow) addRange(this.allowed, entry);
  }

  /** May a request connect to this IP address? */
  permits(address: string): boolean {
    const family = isIP(address);
    if (family === 0) return false;
    const type = family === 4 ? 'ipv4' : 'ipv6';
    return this.allowed.check(address, type) || !this.denied.check(address, type);
  }

  /** Checks a URL as configured: a reason when it can never be used, else undefined. */
  urlProblem(text: string): string | undefined {
    if (text.length > MAX_WEBHOOK_URL) return `a URL has at most ${MAX_WEBHOOK_URL} characters`;
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      return 'not a URL';
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'only http and https URLs';
    if (url.username !== '' || url.password !== '') return 'a URL with credentials is not allowed';
    if (url.hostname === '') return 'a URL needs a host';
    const literal = url.hostname.replace(/^\[(.*)\]$/, '$1');
    if (isIP(literal) !== 0 && !this.permits(literal))
      return `${literal} is an internal address (allowed only by POSTMESH_WEBHOOK_ALLOW_ADDRESSES)`;
    if (literal.toLowerCase() === 'localhost' && !this.permits('127.0.0.1'))
      return 'localhost is an internal address (allowed only by POSTMESH_WEBHOOK_ALLOW_ADDRESSES)';
    return undefined;
  }

  /** A `lookup` for http.request that resolves and then refuses internal addresses. */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
      if (error !== null) {
        callback(error, '', 0);
        return;
      }
      const usable = addresses.filter((a) => this.permits(a.address));
      if (usable.length === 0 || usable.length < addresses.length) {
        const refused = addresses.find((a) => !this.permits(a.address))?.address ?? hostname;
        callback(new DestinationRefused(`${hostname} resolves to an internal address (${refused})`), '', 0);
        return;
      }
      if (options.all === true) {
        (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, usable);
        return;
      }
      const first = usable[0] as LookupAddress;
      callback(null, first.address, first.family);
    });
  };
}
