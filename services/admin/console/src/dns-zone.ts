/**
 * DNS records as a zone file (RFC 1035 §5.1) that can be pasted into a DNS provider or a BIND
 * zone. A TXT record's value is one or more character-strings of at most 255 bytes each
 * (RFC 1035 §3.3.14); a DKIM RSA key is longer, so it is split, and resolvers join the strings
 * back (RFC 6376 §3.6.2.2).
 */

export interface ZoneRecord {
  readonly type: string;
  readonly name: string;
  readonly value: string;
}

const MAX_STRING_BYTES = 255;

/** A TXT value → its character-strings, each at most 255 bytes of UTF-8, never splitting a character. */
export function splitTxt(value: string): string[] {
  const encoder = new TextEncoder();
  const parts: string[] = [];
  let current = '';
  let bytes = 0;
  for (const char of value) {
    const size = encoder.encode(char).length;
    if (bytes + size > MAX_STRING_BYTES) {
      parts.push(current);
      current = '';
      bytes = 0;
    }
    current += char;
    bytes += size;
  }
  parts.push(current);
  return parts;
}

/** A character-string in master-file syntax: quoted, with `"` and `\` escaped. */
const quoted = (s: string): string => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

/** The value as it goes into the zone file (TXT split and quoted; others as they are). */
export function zoneValue(record: ZoneRecord): string {
  return record.type === 'TXT' ? splitTxt(record.value).map(quoted).join(' ') : record.value;
}

/** A fully qualified owner name (trailing dot), as zone files need outside $ORIGIN. */
const fqdn = (name: string): string => (name.endsWith('.') ? name : `${name}.`);

export function zoneFile(domain: string, records: readonly ZoneRecord[], ttl = 3600): string {
  const lines = records.map((r) => `${fqdn(r.name)}\t${ttl}\tIN\t${r.type}\t${zoneValue(r)}`);
  return `; DNS records for ${domain}, from the Postmesh admin console\n${lines.join('\n')}\n`;
}
