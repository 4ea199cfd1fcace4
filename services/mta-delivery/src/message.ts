/**
 * The few facts mta-delivery reads from a message it sends: its header section (RFC 5322 §2.1,
 * ends at the first empty line) and the domain of its From: address (the DKIM signing domain).
 * Pure functions over bytes.
 */

/** The header section including its final CRLF, without the empty line. */
export function headerSection(message: Uint8Array): Uint8Array {
  for (let i = 0; i + 3 < message.length; i++) {
    if (message[i] === 13 && message[i + 1] === 10 && message[i + 2] === 13 && message[i + 3] === 10) {
      return message.subarray(0, i + 2);
    }
  }
  for (let i = 0; i + 1 < message.length; i++) {
    if (message[i] === 10 && message[i + 1] === 10) return message.subarray(0, i + 1);
  }
  return message;
}

/** Unfolded header fields, in order (RFC 5322 §2.2.3). */
export function headerFields(message: Uint8Array): { name: string; value: string }[] {
  const text = new TextDecoder('utf-8').decode(headerSection(message));
  const fields: { name: string; value: string }[] = [];
  for (const line of text.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && fields.length > 0) {
      const last = fields[fields.length - 1] as { name: string; value: string };
      last.value += ` ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon > 0) fields.push({ name: line.slice(0, colon).trim(), value: line.slice(colon + 1).trim() });
  }
  return fields;
}

/** Domain of the (first) address in From:, lower case; undefined when there is none. */
export function fromDomain(message: Uint8Array): string | undefined {
  const from = headerFields(message).find((f) => f.name.toLowerCase() === 'from')?.value;
  if (from === undefined) return undefined;
  const bracketed = /<([^<>]*@[^<>]*)>/.exec(from)?.[1];
  const address = bracketed ?? /[^\s<>,;"]+@[^\s<>,;"]+/.exec(from)?.[0];
  const at = address?.lastIndexOf('@') ?? -1;
  if (address === undefined || at < 0) return undefined;
  return (
    address
      .slice(at + 1)
      .toLowerCase()
      .replace(/[>.]+$/, '') || undefined
  );
}
