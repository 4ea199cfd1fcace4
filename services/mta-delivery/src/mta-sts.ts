/**
 * MTA-STS, RFC 8461: discover (§3.1 TXT `_mta-sts.<domain>`), fetch (§3.3 HTTPS, no redirects),
 * parse (§3.2), cache (§5.1, by `id` and `max_age`) and match MX names (§4.1). The parser and
 * the matcher are pure; the fetch is injected (tests serve policies over plain HTTP on 127.0.0.1).
 */
import type { Resolver } from './dns.js';

export type StsMode = 'enforce' | 'testing' | 'none';

export interface StsPolicy {
  readonly mode: StsMode;
  readonly mx: readonly string[];
  /** Seconds. */
  readonly maxAge: number;
}

export type StsParse =
  { readonly ok: true; readonly policy: StsPolicy } | { readonly ok: false; readonly problem: string };

/** RFC 8461 §3.2: `key: value` lines; version, mode and max_age required; mx required unless mode none. */
export function parseStsPolicy(text: string): StsParse {
  const fields = new Map<string, string[]>();
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) return { ok: false, problem: `malformed line ${JSON.stringify(line.slice(0, 80))}` };
    const key = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    fields.set(key, [...(fields.get(key) ?? []), value]);
  }
  if (fields.get('version')?.[0] !== 'STSv1') return { ok: false, problem: 'version is not STSv1' };
  const mode = fields.get('mode')?.[0];
  if (mode !== 'enforce' && mode !== 'testing' && mode !== 'none')
    return { ok: false, problem: `mode ${String(mode)} is not enforce, testing or none` };
  const maxAgeText = fields.get('max_age')?.[0] ?? '';
  // §3.2: max_age is a plain integer of at most 10 digits, up to 31557600.
  if (!/^\d{1,10}$/.test(maxAgeText)) return { ok: false, problem: 'max_age missing or not a number' };
  const maxAge = Math.min(Number(maxAgeText), 31_557_600);
  const mx = (fields.get('mx') ?? []).map((m) => m.toLowerCase().replace(/\.$/, ''));
  if (mode !== 'none' && mx.length === 0) return { ok: false, problem: 'no mx patterns' };
  return { ok: true, policy: { mode, mx, maxAge } };
}

/** RFC 8461 §4.1: exact name, or `*.` matching exactly one leftmost label. */
export function mxMatches(host: string, patterns: readonly string[]): boolean {
  const name = host.toLowerCase().replace(/\.$/, '');
  return patterns.some((p) => {
    if (p.startsWith('*.')) {
      const suffix = p.slice(1);
      const dot = name.indexOf('.');
      return dot > 0 && name.slice(dot) === suffix;
    }
    return p === name;
  });
}

/** RFC 8461 §3.1: `v=STSv1; id=<1-32 alphanumerics>`; several STSv1 records mean no policy. */
export function parseStsRecord(records: readonly string[]): { id: string } | undefined {
  const sts = records.filter((r) => /^v=STSv1\s*(;|$)/.test(r.trim()));
  if (sts.length !== 1) return undefined;
  const id = /(?:^|;)\s*id=([A-Za-z0-9]{1,32})\s*(?:;|$)/.exec(sts[0] ?? '')?.[1];
  return id === undefined ? undefined : { id };
}

export interface PolicyFetchResult {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}
export type PolicyFetcher = (domain: string) => Promise<PolicyFetchResult>;

const MAX_POLICY_BYTES = 64 * 1024;

/** §3.3: HTTPS GET of `https://mta-sts.<domain>/.well-known/mta-sts.txt`, redirects not followed. */
export function httpsPolicyFetcher(base?: string, timeoutMs = 60_000): PolicyFetcher {
  return async (domain) => {
    const url =
      base === undefined
        ? `https://mta-sts.${domain}/.well-known/mta-sts.txt`
        : `${base.replace(/\/$/, '')}/${domain}/.well-known/mta-sts.txt`;
    // §3.3: "Senders MUST NOT follow HTTP redirects" — a 3xx is a fetch failure.
    const response = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
    const body = await response.text();
    return {
      status: response.status,
      contentType: response.headers.get('content-type') ?? '',
      body: body.slice(0, MAX_POLICY_BYTES),
    };
  };
}

/** What applies to one delivery attempt. `policy` undefined: no MTA-STS for the domain. */
export interface StsLookup {
  readonly policy: StsPolicy | undefined;
  /** A problem worth a TLS-RPT entry (RFC 8460 §4.3 result types), e.g. `sts-policy-fetch-error`. */
  readonly failure?: {
    readonly type: 'sts-policy-fetch-error' | 'sts-policy-invalid';
    readonly detail: string;
  };
}

interface Cached {
  readonly id: string;
  readonly policy: StsPolicy;
  readonly expires: number;
}

export class StsPolicyCache {
  private readonly cache = new Map<string, Cached>();

  constructor(
    private readonly resolver: Resolver,
    private readonly fetcher: PolicyFetcher,
    private readonly now: () => number = Date.now,
  ) {}

  async lookup(domain: string): Promise<StsLookup> {
    const cached = this.cache.get(domain);
    const valid = cached !== undefined && cached.expires > this.now() ? cached : undefined;
    const txt = await this.resolver.txt(`_mta-sts.${domain}`);
    const record = txt.kind === 'ok' ? parseStsRecord(txt.records) : undefined;
    // §5.1: no (valid) TXT record but a cached policy that has not expired → keep using it.
    if (record === undefined) return { policy: valid?.policy };
    if (valid !== undefined && valid.id === record.id) return { policy: valid.policy };
    let fetched: PolicyFetchResult;
    try {
      fetched = await this.fetcher(domain);
    } catch (error) {
      return {
        policy: valid?.policy,
        failure: {
          type: 'sts-policy-fetch-error',
          detail: error instanceof Error ? error.message : String(error),
        },
      };
    }
    // §3.3: only a 200 with `text/plain` is a policy.
    if (fetched.status !== 200 || !/^text\/plain\b/i.test(fetched.contentType)) {
      return {
        policy: valid?.policy,
        failure: {
          type: 'sts-policy-fetch-error',
          detail: `policy fetch answered ${fetched.status} ${fetched.contentType}`,
        },
      };
    }
    const parsed = parseStsPolicy(fetched.body);
    if (!parsed.ok) {
      return { policy: valid?.policy, failure: { type: 'sts-policy-invalid', detail: parsed.problem } };
    }
    this.cache.set(domain, {
      id: record.id,
      policy: parsed.policy,
      expires: this.now() + parsed.policy.maxAge * 1000,
    });
    return { policy: parsed.policy };
  }
}
