/**
 * The DNS wizard: the exact records a hosted domain should publish, and a live check of each.
 * MX (RFC 5321 §5.1), SPF (RFC 7208 §3), DKIM (RFC 6376 §3.6.2), DMARC (RFC 7489 §6.1),
 * MTA-STS (RFC 8461 §3.1 TXT + §3.2 policy file) and TLS-RPT (RFC 8460 §3).
 */
import { Resolver } from 'node:dns/promises';

export interface DnsRecord {
  readonly type: 'MX' | 'TXT' | 'CNAME';
  readonly name: string;
  readonly value: string;
  readonly purpose: string;
}

export interface DnsCheck extends DnsRecord {
  readonly status: 'ok' | 'missing' | 'different' | 'error';
  readonly found: readonly string[];
  /** What went wrong looking it up or comparing it, in words; '' when it matched. */
  readonly problem: string;
}

/**
 * The MTA-STS policy id (RFC 8461 §3.1 `id=`): the date of the newest DKIM key, so it changes
 * when the published records do.
 */
export function mtaStsPolicyId(keyCreateTimes: readonly (Date | undefined)[]): string {
  const created = keyCreateTimes.map((t) => t?.getTime() ?? 0).reduce((a, b) => Math.max(a, b), 0);
  return new Date(created || Date.now()).toISOString().slice(0, 10).replace(/-/g, '');
}

export function recordsFor(
  domain: string,
  mailHost: string,
  dkim: readonly { name: string; value: string }[],
  policyId: string,
): DnsRecord[] {
  return [
    { type: 'MX', name: domain, value: `10 ${mailHost}.`, purpose: 'where mail for the domain is delivered' },
    {
      type: 'TXT',
      name: domain,
      value: 'v=spf1 mx -all',
      purpose: 'SPF: only the MX hosts send for the domain',
    },
    ...dkim.map((k) => ({ type: 'TXT' as const, name: k.name, value: k.value, purpose: 'DKIM public key' })),
    {
      type: 'TXT',
      name: `_dmarc.${domain}`,
      value: `v=DMARC1; p=quarantine; adkim=r; aspf=r; rua=mailto:postmaster@${domain}`,
      purpose: 'DMARC policy and aggregate reports',
    },
    {
      type: 'TXT',
      name: `_mta-sts.${domain}`,
      value: `v=STSv1; id=${policyId}`,
      purpose: 'MTA-STS policy id',
    },
    {
      type: 'CNAME',
      name: `mta-sts.${domain}`,
      value: `${mailHost}.`,
      purpose: `serves https://mta-sts.${domain}/.well-known/mta-sts.txt ("version: STSv1", "mode: testing", "mx: ${mailHost}", "max_age: 86400")`,
    },
    {
      type: 'TXT',
      name: `_smtp._tls.${domain}`,
      value: `v=TLSRPTv1; rua=mailto:tlsrpt@${domain}`,
      purpose: 'TLS-RPT reports',
    },
  ];
}

const norm = (s: string): string => s.replace(/\.$/, '').replace(/\s+/g, ' ').trim().toLowerCase();

export async function checkRecords(
  records: readonly DnsRecord[],
  servers: readonly string[],
): Promise<DnsCheck[]> {
  const resolver = new Resolver({ timeout: 2_000, tries: 1 });
  if (servers.length > 0) resolver.setServers([...servers]);
  return Promise.all(
    records.map(async (record): Promise<DnsCheck> => {
      try {
        let found: string[];
        switch (record.type) {
          case 'MX':
            found = (await resolver.resolveMx(record.name)).map((mx) => `${mx.priority} ${mx.exchange}.`);
            break;
          case 'TXT':
            found = (await resolver.resolveTxt(record.name)).map((chunks) => chunks.join(''));
            break;
          case 'CNAME':
            found = (await resolver.resolveCname(record.name)).map((c) => `${c}.`);
            break;
        }
        const wanted = norm(record.value);
        const prefix = record.type === 'TXT' ? (wanted.split(';')[0] ?? wanted) : wanted;
        const status = found.some((f) => norm(f) === wanted)
          ? 'ok'
          : found.some((f) => norm(f).startsWith(prefix))
            ? 'different'
            : found.length === 0
              ? 'missing'
              : 'different';
        const problem =
          status === 'ok'
            ? ''
            : status === 'missing'
              ? `no ${record.type} record at ${record.name}`
              : `${record.name} has ${found.length === 1 ? 'another value' : `${found.length} other values`}`;
        return { ...record, status, found, problem };
      } catch (error) {
        const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : '';
        const missing = code === 'ENOTFOUND' || code === 'ENODATA';
        return {
          ...record,
          status: missing ? 'missing' : 'error',
          found: [],
          problem: missing
            ? `no ${record.type} record at ${record.name}`
            : `lookup failed: ${code || (error instanceof Error ? error.message : String(error))}`,
        };
      }
    }),
  );
}
