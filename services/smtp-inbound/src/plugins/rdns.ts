/**
 * The client's reverse DNS name (for the Received header, RFC 5321 §4.4: "from <helo> (<rdns>
 * [<ip>])"), looked up as Haraka does it by default (`dns.reverse`, first name; `NXDOMAIN` when
 * there is none, `DNSERROR` on any other failure) but remembered per address for a while: a
 * sender's MTA opens many connections from one address, and without a local caching resolver
 * every connection paid a reverse query. Answers (names and NXDOMAIN) are kept for `ttlMs`;
 * failures are never kept.
 */
import { promises as dns } from 'node:dns';
import { HookCode, type PluginHooks } from '../haraka/types.js';

/** Codes that mean "no such name" rather than a failure to ask (Haraka's rdns_response). */
const NO_NAME = new Set(['ENOTFOUND', 'NXDOMAIN']);
/** What Haraka records when the lookup itself failed. */
const FAILED = 'DNSERROR';

export interface ReverseDnsOptions {
  readonly reverse?: (ip: string) => Promise<string[]>;
  readonly ttlMs?: number;
  readonly maxEntries?: number;
  readonly now?: () => number;
}

/** The host name Haraka records for `ip`, as its default lookup would, with a per-address cache. */
export function cachingReverseLookup(options: ReverseDnsOptions = {}): (ip: string) => Promise<string> {
  const reverse = options.reverse ?? ((ip: string) => dns.reverse(ip));
  const ttlMs = options.ttlMs ?? 300_000;
  const maxEntries = options.maxEntries ?? 10_000;
  const now = options.now ?? Date.now;
  const cache = new Map<string, { until: number; host: Promise<string> }>();
  const lookup = async (ip: string): Promise<string> => {
    try {
      return (await reverse(ip))[0] ?? '';
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      return typeof code === 'string' && NO_NAME.has(code) ? 'NXDOMAIN' : FAILED;
    }
  };
  return (ip) => {
    const hit = cache.get(ip);
    if (hit !== undefined && hit.until > now()) return hit.host;
    if (cache.size >= maxEntries) cache.clear();
    const entry: { until: number; host: Promise<string> } = { until: now() + ttlMs, host: lookup(ip) };
    cache.set(ip, entry);
    // A failure to ask is not an answer to keep.
    void entry.host.then((host) => {
      if (host === FAILED && cache.get(ip) === entry) cache.delete(ip);
    });
    return entry.host;
  };
}

export function reverseDnsHooks(lookup: (ip: string) => Promise<string>): PluginHooks {
  return {
    hook_lookup_rdns(next, connection) {
      // OK with a name: Haraka records it as the remote host ('Unknown' when empty) and goes on.
      lookup(connection.remote.ip).then(
        (host) => next(HookCode.OK, host),
        () => next(HookCode.OK, FAILED),
      );
    },
  };
}
