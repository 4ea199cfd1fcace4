/**
 * The DNS questions mta-delivery asks (MX, A, AAAA, TXT), behind one small interface (tests point
 * the real resolver at libs/testing's FakeDnsServer). Answers are values: `nxdomain` (the name
 * does not exist), `nodata` (it exists without records of that type), `temp` (SERVFAIL, timeout:
 * try again later).
 */
import { promises as dns } from 'node:dns';

export type DnsAnswer<T> =
  | { readonly kind: 'ok'; readonly records: readonly T[] }
  | { readonly kind: 'nxdomain' }
  | { readonly kind: 'nodata' }
  | { readonly kind: 'temp'; readonly reason: string };

export interface MxRecord {
  readonly exchange: string;
  readonly priority: number;
}

export interface Resolver {
  mx(name: string): Promise<DnsAnswer<MxRecord>>;
  a(name: string): Promise<DnsAnswer<string>>;
  aaaa(name: string): Promise<DnsAnswer<string>>;
  /** Each record's character-strings joined (RFC 7208 §3.3 style). */
  txt(name: string): Promise<DnsAnswer<string>>;
}

function classify<T>(error: unknown): DnsAnswer<T> {
  const code = (error as { code?: string }).code;
  if (code === 'ENOTFOUND' || code === 'NXDOMAIN') return { kind: 'nxdomain' };
  if (code === 'ENODATA') return { kind: 'nodata' };
  return {
    kind: 'temp',
    reason: `${code ?? 'error'}: ${error instanceof Error ? error.message : String(error)}`,
  };
}

async function ask<T>(query: () => Promise<T[]>): Promise<DnsAnswer<T>> {
  try {
    const records = await query();
    return records.length === 0 ? { kind: 'nodata' } : { kind: 'ok', records };
  } catch (error) {
    return classify<T>(error);
  }
}

/** node:dns, asking `servers` (`host[:port]`) or, without them, the system's resolvers. */
export function systemResolver(servers?: readonly string[]): Resolver {
  const r = new dns.Resolver({ timeout: 5_000, tries: 2 });
  if (servers !== undefined && servers.length > 0) r.setServers(servers);
  return {
    mx: (name) => ask(() => r.resolveMx(name)),
    a: (name) => ask(() => r.resolve4(name)),
    aaaa: (name) => ask(() => r.resolve6(name)),
    txt: (name) => ask(async () => (await r.resolveTxt(name)).map((chunks) => chunks.join(''))),
  };
}
