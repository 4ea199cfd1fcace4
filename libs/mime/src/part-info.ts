/**
 * The MIME header fields of one entity (RFC 2045 §3-§8, RFC 2183, RFC 3066 via RFC 2045 extension
 * Content-Language, RFC 2557 Content-Location), with the defaults IMAP reports when they are
 * missing. First occurrence wins for duplicated fields.
 */

import type { BodyDisposition, BodyParams } from './types.js';
import { firstField, type HeaderField } from './header.js';
import { parseContentType, parseDisposition, stripComments } from './mime-params.js';

export interface PartInfo {
  readonly type: string;
  readonly subtype: string;
  readonly params: BodyParams;
  readonly disposition: BodyDisposition | null;
  readonly language: readonly string[] | null;
  readonly location: string | null;
  readonly id: string | null;
  readonly description: string | null;
  /** Upper-cased; `7BIT` when absent (RFC 2045 §6.1). */
  readonly encoding: string;
  readonly md5: string | null;
}

/** RFC 2045 §5.2: no (or an invalid) Content-Type means `text/plain; charset=us-ascii`. */
export const DEFAULT_TEXT_PLAIN = {
  type: 'text',
  subtype: 'plain',
  params: [['charset', 'us-ascii']],
} as const satisfies { type: string; subtype: string; params: BodyParams };

/** RFC 2046 §5.1.5: inside multipart/digest the default is `message/rfc822`. */
export const DEFAULT_DIGEST_PART = { type: 'message', subtype: 'rfc822', params: [] } as const;

function nonEmpty(value: string | null): string | null {
  return value === null || value === '' ? null : value;
}

export function partInfoFromFields(fields: readonly HeaderField[], inDigest: boolean): PartInfo {
  const ctValue = firstField(fields, 'content-type');
  const ct =
    (ctValue === null ? null : parseContentType(ctValue)) ??
    (inDigest ? DEFAULT_DIGEST_PART : DEFAULT_TEXT_PLAIN);
  const dispValue = firstField(fields, 'content-disposition');
  const langValue = firstField(fields, 'content-language');
  const language =
    langValue === null
      ? null
      : stripComments(langValue)
          .split(',')
          .map((l) => l.trim())
          .filter((l) => l !== '');
  const encoding = stripComments(firstField(fields, 'content-transfer-encoding') ?? '')
    .trim()
    .toUpperCase();
  return {
    type: ct.type,
    subtype: ct.subtype,
    params: ct.params,
    disposition: dispValue === null ? null : parseDisposition(dispValue),
    language: language === null || language.length === 0 ? null : language,
    location: nonEmpty(firstField(fields, 'content-location')),
    id: nonEmpty(firstField(fields, 'content-id')),
    description: nonEmpty(firstField(fields, 'content-description')),
    encoding: encoding === '' ? '7BIT' : encoding,
    md5: nonEmpty(firstField(fields, 'content-md5')),
  };
}

/** The same info with the type replaced by text/plain; charset=us-ascii (for unusable multiparts). */
export function asTextPlain(info: PartInfo): PartInfo {
  return { ...info, ...DEFAULT_TEXT_PLAIN };
}
