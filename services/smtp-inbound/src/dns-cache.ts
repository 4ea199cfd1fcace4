/**
 * A small in-process DNS cache in front of mailauth's lookups. Every message asks for the same
 * SPF, DMARC and DKIM key records of its sender's domain; without a cache each costs a round
 * trip to the resolver (the benchmark's first bottleneck on the accept side, docs/benchmarks.md).
 * Answers and NXDOMAIN/NODATA are kept for a short fixed time (Node's resolver does not expose
 * TTLs for TXT); temporary failures are never cached, so a temperror is retried next message.
 */
import { promises as dns } from 'node:dns';
import type { DnsResolver } from './plugins/sender-auth.js';

const NEGATIVE = new Set(['ENOTFOUND', 'ENODATA', 'NXDOMAIN']);

/** node:dns, asking `servers` (`host[:port]`, as `setServers` takes them) or the system's resolvers. */
export function systemResolver(servers?: readonly string[]): DnsResolver {
  if (servers === undefined || servers.length === 0) return (name, rrtype) => dns.resolve(name, rrtype);
  const resolver = new dns.Resolver();
  resolver.setServers(servers);
  return (name, rrtype) => resolver.resolve(name, rrtype);
}

export function cachingResolver(
  base: DnsResolver,
  { ttlMs = 60_000, maxEntries = 10_000, now = Date.now } = {},
): DnsResolver {
  const cache = new Map<string, { until: number; answer: Promise<unknown> }>();
  return (name, rrtype) => {
    const key = `${rrtype.toUpperCase()} ${name.toLowerCase()}`;
    const hit = cache.get(key);
    if (hit !== undefined && hit.until > now()) return hit.answer;
    if (cache.size >= maxEntries) cache.clear();
    const answer = base(name, rrtype);
    cache.set(key, { until: now() + ttlMs, answer });
    answer.catch((error: unknown) => {
      const code = (error as { code?: unknown }).code;
      if (typeof code !== 'string' || !NEGATIVE.has(code)) cache.delete(key);
    });
    return answer;
  };
}
