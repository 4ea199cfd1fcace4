/**
 * A DNS resolver answering from a JSON file, for tests of SPF/DKIM/DMARC/ARC (never production).
 * Shape: `{ "TXT": { "<name>": [["chunk", ...], ...] | "TEMPERROR" }, "A": {...}, "MX": {...} }`.
 * A missing name answers like a real NXDOMAIN (`code = 'ENOTFOUND'`); `"TEMPERROR"` like a
 * timeout (`code = 'ETIMEOUT'`), which SPF/DKIM/DMARC report as temperror (RFC 7208 §2.6.6).
 */
import { readFileSync } from 'node:fs';
import type { DnsResolver } from './plugins/sender-auth.js';

class DnsFixtureError extends Error {
  override readonly name = 'DnsFixtureError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function fixtureResolver(file: string): DnsResolver {
  const zones = JSON.parse(readFileSync(file, 'utf8')) as Record<string, Record<string, unknown>>;
  return (name, rrtype) => {
    const answer = zones[rrtype.toUpperCase()]?.[name.toLowerCase().replace(/\.$/, '')];
    if (answer === 'TEMPERROR') {
      return Promise.reject(new DnsFixtureError('ETIMEOUT', `query ${rrtype} ${name} timed out`));
    }
    if (answer === undefined) {
      return Promise.reject(new DnsFixtureError('ENOTFOUND', `queryTxt ENOTFOUND ${name}`));
    }
    return Promise.resolve(answer);
  };
}
