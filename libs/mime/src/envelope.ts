/**
 * ENVELOPE (RFC 9051 §7.5.2) and the searchable header fields, from a parsed header block.
 *
 * Duplicated fields: the first occurrence wins (the common server practice, e.g. Dovecot), for the
 * envelope and for the searchable fields alike. ENVELOPE strings are kept as written (encoded
 * words included); the searchable fields are RFC 2047-decoded.
 */

import type { Envelope, EnvelopeAddress } from './types.js';
import { parseAddressList } from './address.js';
import { parseRfc5322Date } from './date.js';
import { decodeEncodedWords } from './encoded-words.js';
import { firstField, type HeaderField } from './header.js';

/** A mailbox for search: decoded display name and `mailbox@host`. */
export interface SearchAddress {
  readonly name: string | null;
  readonly address: string;
}

/** Header fields stored with a message for SEARCH and threading. */
export interface SearchableHeaders {
  /** RFC 2047-decoded Subject. */
  readonly subject: string | null;
  readonly from: readonly SearchAddress[];
  readonly to: readonly SearchAddress[];
  readonly cc: readonly SearchAddress[];
  readonly bcc: readonly SearchAddress[];
  readonly messageId: string | null;
  /** Date field as epoch milliseconds, null when absent or invalid. */
  readonly date: number | null;
  readonly inReplyTo: string | null;
  /** Message-IDs listed in References, in order. */
  readonly references: readonly string[];
}

function addressField(fields: readonly HeaderField[], name: string): EnvelopeAddress[] | null {
  const value = firstField(fields, name);
  if (value === null) return null;
  const list = parseAddressList(value);
  return list.length === 0 ? null : list;
}

function nonEmpty(value: string | null): string | null {
  return value === null || value === '' ? null : value;
}

/** Build the ENVELOPE of a message from its header fields. */
export function buildEnvelope(fields: readonly HeaderField[]): Envelope {
  const from = addressField(fields, 'from');
  return {
    date: nonEmpty(firstField(fields, 'date')),
    subject: nonEmpty(firstField(fields, 'subject')),
    from,
    // RFC 9051 §7.5.2: absent or empty Sender / Reply-To take the value of From.
    sender: addressField(fields, 'sender') ?? from,
    replyTo: addressField(fields, 'reply-to') ?? from,
    to: addressField(fields, 'to'),
    cc: addressField(fields, 'cc'),
    bcc: addressField(fields, 'bcc'),
    inReplyTo: nonEmpty(firstField(fields, 'in-reply-to')),
    messageId: nonEmpty(firstField(fields, 'message-id')),
  };
}

function searchAddresses(list: readonly EnvelopeAddress[] | null): SearchAddress[] {
  const out: SearchAddress[] = [];
  for (const a of list ?? []) {
    if (a.host === null) {
      // A group's start marker carries its display name (RFC 9051 §7.5.2): `TO crew` finds
      // `To: crew: a@x, b@y;` (RFC 9051 §6.4.4 matches the field's text). End markers have none.
      if (a.mailbox !== null) out.push({ name: decodeEncodedWords(a.mailbox), address: '' });
      continue;
    }
    const mailbox = a.mailbox ?? '';
    out.push({
      name: a.name === null ? null : decodeEncodedWords(a.name),
      address: a.host === '' ? mailbox : `${mailbox}@${a.host}`,
    });
  }
  return out;
}

/** Build the searchable fields from header fields and the already built envelope. */
export function buildSearchableHeaders(
  fields: readonly HeaderField[],
  envelope: Envelope,
): SearchableHeaders {
  const date = firstField(fields, 'date');
  const references = firstField(fields, 'references');
  return {
    subject: envelope.subject === null ? null : decodeEncodedWords(envelope.subject),
    from: searchAddresses(envelope.from),
    to: searchAddresses(envelope.to),
    cc: searchAddresses(envelope.cc),
    bcc: searchAddresses(envelope.bcc),
    messageId: envelope.messageId,
    date: date === null ? null : parseRfc5322Date(date),
    inReplyTo: envelope.inReplyTo,
    references: references === null ? [] : parseMessageIds(references),
  };
}

/** `<id>` tokens of a References/In-Reply-To value; falls back to whitespace-separated words. */
export function parseMessageIds(value: string): string[] {
  const ids = value.match(/<[^<>\s]*>/g);
  if (ids !== null) return ids;
  return value.split(/\s+/).filter((w) => w !== '');
}
