/**
 * Where mail for a domain goes. RFC 5321 §5.1 (MX by preference, random order among equal
 * preferences; no MX → the domain's own A/AAAA as an implicit MX with preference 0), RFC 7505
 * (null MX: a single MX "." means the domain accepts no mail), IPv4 and IPv6 addresses of each
 * host (RFC 5321 §5.1 / RFC 6724: try IPv6 and IPv4; we interleave, IPv6 first).
 */
import type { DnsAnswer, Resolver } from './dns.js';

export interface MxHost {
  /** The MX host name (what MTA-STS and certificates are checked against), lower case. */
  readonly name: string;
  readonly preference: number;
  /** Addresses to try, in order; empty when the name did not resolve. */
  readonly addresses: readonly string[];
  /** Why the host has no addresses (for the deferral reason). */
  readonly problem?: string;
}

export type Route =
  | { readonly kind: 'hosts'; readonly hosts: readonly MxHost[]; readonly implicit: boolean }
  /** RFC 7505 §3: the domain publishes that it accepts no mail. */
  | { readonly kind: 'null-mx' }
  /** The domain does not exist (RFC 5321 §5.1: a permanent failure). */
  | { readonly kind: 'no-domain'; readonly detail: string }
  /** DNS did not answer: try later. */
  | { readonly kind: 'temp'; readonly detail: string };

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

async function addresses(resolver: Resolver, name: string): Promise<{ list: string[]; problem?: string }> {
  const [v6, v4] = await Promise.all([resolver.aaaa(name), resolver.a(name)]);
  const pick = (a: DnsAnswer<string>): string[] => (a.kind === 'ok' ? [...a.records] : []);
  const six = pick(v6);
  const four = pick(v4);
  const list: string[] = [];
  for (let i = 0; i < Math.max(six.length, four.length); i++) {
    if (six[i] !== undefined) list.push(six[i] as string);
    if (four[i] !== undefined) list.push(four[i] as string);
  }
  if (list.length > 0) return { list };
  const temp = [v6, v4].find((a) => a.kind === 'temp');
  return { list, problem: temp?.kind === 'temp' ? temp.reason : `${name} has no A or AAAA record` };
}

export async function resolveRoute(
  domain: string,
  resolver: Resolver,
  random: () => number = Math.random,
): Promise<Route> {
  const mx = await resolver.mx(domain);
  switch (mx.kind) {
    case 'temp':
      return { kind: 'temp', detail: `MX lookup for ${domain}: ${mx.reason}` };
    case 'nxdomain':
      return { kind: 'no-domain', detail: `${domain} does not exist (NXDOMAIN)` };
    case 'nodata': {
      // RFC 5321 §5.1: no MX records → the domain itself is the implicit MX, preference 0.
      const { list, problem } = await addresses(resolver, domain);
      if (list.length === 0 && problem !== undefined && !problem.includes('has no A or AAAA'))
        return { kind: 'temp', detail: problem };
      if (list.length === 0) return { kind: 'no-domain', detail: `${domain} has no MX, A or AAAA record` };
      return { kind: 'hosts', implicit: true, hosts: [{ name: domain, preference: 0, addresses: list }] };
    }
    case 'ok': {
      const records = mx.records.map((r) => ({
        name: r.exchange.toLowerCase().replace(/\.$/, ''),
        preference: r.priority,
      }));
      // RFC 7505 §3: a single MX with an empty exchange ("." ) and preference 0 is a null MX.
      if (records.length === 1 && records[0]?.name === '') return { kind: 'null-mx' };
      const usable = records.filter((r) => r.name !== '');
      // RFC 5321 §5.1: lowest preference first; equal preferences in random order.
      const ordered = [...new Set(usable.map((r) => r.preference))]
        .sort((a, b) => a - b)
        .flatMap((p) =>
          shuffle(
            usable.filter((r) => r.preference === p),
            random,
          ),
        );
      const hosts = await Promise.all(
        ordered.map(async (r): Promise<MxHost> => {
          const { list, problem } = await addresses(resolver, r.name);
          return problem === undefined ? { ...r, addresses: list } : { ...r, addresses: list, problem };
        }),
      );
      return { kind: 'hosts', implicit: false, hosts };
    }
  }
}
