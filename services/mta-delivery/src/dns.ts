/**
 * The DNS questions mta-delivery asks (MX, A, AAAA, TXT), behind one small interface so tests
 * answer from a fixture. Answers are values: `nxdomain` (the name does not exist), `nodata` (it
 * exists without records of that type), `temp` (SERVFAIL, timeout: try again later).
 */
import { promises as dns } from 'node:dns';
import { readFileSync } from 'node:fs';

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

export function systemResolver(): Resolver {
  const r = new dns.Resolver({ timeout: 5_000, tries: 2 });
  return {
    mx: (name) => ask(() => r.resolveMx(name)),
    a: (name) => ask(() => r.resolve4(name)),
    aaaa: (name) => ask(() => r.resolve6(name)),
    txt: (name) => ask(async () => (await r.resolveTxt(name)).map((chunks) => chunks.join(''))),
  };
}

/**
 * Answers from a JSON file (tests only):
 * `{ "MX": { "<name>": [{ "exchange": "mx1.example.org", "priority": 10 }] },
 *    "A": { "<name>": ["127.0.0.1"] }, "AAAA": { "<name>": ["::1"] },
 *    "TXT": { "<name>": ["v=STSv1; id=20261127"] } }`
 * A name listed under no type is NXDOMAIN; listed under another type only, NODATA; the value
 * `"TEMPERROR"` answers like a timeout.
 */
export function fixtureResolver(
  zones: Readonly<Record<string, Readonly<Record<string, unknown>>>>,
): Resolver {
  const exists = (name: string): boolean => Object.values(zones).some((z) => name in z);
  const lookup = <T>(type: string, raw: string): Promise<DnsAnswer<T>> => {
    const name = raw.toLowerCase().replace(/\.$/, '');
    const answer = zones[type]?.[name];
    if (answer === 'TEMPERROR') return Promise.resolve({ kind: 'temp', reason: `ETIMEOUT: ${type} ${name}` });
    if (answer === undefined)
      return Promise.resolve(exists(name) ? { kind: 'nodata' } : { kind: 'nxdomain' });
    const records = answer as T[];
    return Promise.resolve(records.length === 0 ? { kind: 'nodata' } : { kind: 'ok', records });
  };
  return {
    mx: (name) => lookup('MX', name),
    a: (name) => lookup('A', name),
    aaaa: (name) => lookup('AAAA', name),
    txt: (name) => lookup('TXT', name),
  };
}

export function fixtureResolverFromFile(file: string): Resolver {
  return fixtureResolver(JSON.parse(readFileSync(file, 'utf8')) as Record<string, Record<string, unknown>>);
}
