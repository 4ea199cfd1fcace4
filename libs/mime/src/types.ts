/**
 * The shapes `libs/mime` produces at store time and `libs/imap-protocol` serializes at fetch time.
 * They follow the ENVELOPE and BODYSTRUCTURE grammar of RFC 9051 §7.5.2 (and RFC 3501 §7.4.2),
 * and are plain JSON so storage can keep them in a message document and send them over gRPC.
 *
 * Strings are the header values as they appear in the message (RFC 2047 encoded words are kept,
 * as IMAP requires; clients decode them), unfolded, and decoded from bytes as UTF-8 where valid,
 * else Latin-1, so every byte survives.
 */

/**
 * One ENVELOPE address (RFC 9051 §7.5.2 "address"). RFC 5322 group syntax is represented as in
 * IMAP: a start marker `{ name: null, adl: null, mailbox: <group name>, host: null }` and an end
 * marker with `mailbox` and `host` both null.
 */
export interface EnvelopeAddress {
  readonly name: string | null;
  readonly adl: string | null;
  readonly mailbox: string | null;
  readonly host: string | null;
}

/** RFC 9051 §7.5.2 ENVELOPE. An empty address list is `null` (NIL on the wire). */
export interface Envelope {
  readonly date: string | null;
  readonly subject: string | null;
  readonly from: readonly EnvelopeAddress[] | null;
  readonly sender: readonly EnvelopeAddress[] | null;
  readonly replyTo: readonly EnvelopeAddress[] | null;
  readonly to: readonly EnvelopeAddress[] | null;
  readonly cc: readonly EnvelopeAddress[] | null;
  readonly bcc: readonly EnvelopeAddress[] | null;
  readonly inReplyTo: string | null;
  readonly messageId: string | null;
}

/** A parameter list in the order it appeared; names are lower-cased, values decoded (RFC 2231). */
export type BodyParams = readonly (readonly [name: string, value: string])[];

export interface BodyDisposition {
  /** Lower-cased disposition type, e.g. `inline`, `attachment`. */
  readonly type: string;
  readonly params: BodyParams;
}

/**
 * Byte offsets of a part inside the raw message, so `BODY[1.2.HEADER]`, `BODY[1.2.MIME]`,
 * `BODY[1.2]` and `<partial>` fetches read a byte range instead of re-parsing.
 * `headerStart..bodyStart` is the part's header block (including the blank line that ends it),
 * `bodyStart..bodyEnd` its body (excluding the CRLF that precedes the next boundary).
 */
export interface PartOffsets {
  readonly headerStart: number;
  readonly bodyStart: number;
  readonly bodyEnd: number;
}

interface BodyPartCommon {
  /** IMAP section number: `""` for the top level, `"1"`, `"1.2"`, … (RFC 9051 §6.4.5). */
  readonly partId: string;
  /** Lower-cased media subtype (`plain`, `mixed`, `rfc822`, …). */
  readonly subtype: string;
  readonly params: BodyParams;
  readonly disposition: BodyDisposition | null;
  readonly language: readonly string[] | null;
  readonly location: string | null;
  readonly offsets: PartOffsets;
}

/** Fields that every non-multipart part carries ("body-fields" in RFC 9051 §9). */
interface SinglePartCommon extends BodyPartCommon {
  /** Lower-cased media type (`text`, `image`, `application`, `message`, …). */
  readonly type: string;
  readonly id: string | null;
  readonly description: string | null;
  /** Content-Transfer-Encoding as written, upper-cased (`7BIT` when absent). */
  readonly encoding: string;
  /** Size of the body in octets, as transferred (encoded). */
  readonly size: number;
  readonly md5: string | null;
}

export interface MultipartBody extends BodyPartCommon {
  readonly kind: 'multipart';
  readonly parts: readonly BodyPart[];
}

export interface TextBody extends SinglePartCommon {
  readonly kind: 'text';
  /** Number of lines in the (encoded) body. */
  readonly lines: number;
}

export interface MessageBody extends SinglePartCommon {
  readonly kind: 'message';
  /** ENVELOPE of the encapsulated message (message/rfc822 and message/global). */
  readonly envelope: Envelope;
  readonly body: BodyPart;
  readonly lines: number;
}

export interface BasicBody extends SinglePartCommon {
  readonly kind: 'basic';
}

/** BODYSTRUCTURE as a discriminated union on `kind`. */
export type BodyPart = MultipartBody | TextBody | MessageBody | BasicBody;
