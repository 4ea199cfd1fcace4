/**
 * ENVELOPE and BODYSTRUCTURE / BODY — RFC 9051 §7.5.2 and §9 `envelope`, `address`, `body`,
 * `body-type-1part`, `body-type-mpart`, `body-fields`, `body-ext-1part`, `body-ext-mpart`
 * (RFC 3501 §7.4.2 is the same). BODYSTRUCTURE carries the extension data; BODY does not.
 */
import type { BodyParams, BodyPart, Envelope, EnvelopeAddress } from '@postmesh/mime';
import type { ResponseBuilder } from './builder.js';

/** envelope = "(" env-date SP env-subject SP env-from SP env-sender SP env-reply-to SP env-to
 *  SP env-cc SP env-bcc SP env-in-reply-to SP env-message-id ")" */
export function writeEnvelope(b: ResponseBuilder, env: Envelope): void {
  b.text('(').nstring(env.date).sp().nstring(env.subject);
  for (const list of [env.from, env.sender, env.replyTo, env.to, env.cc, env.bcc]) {
    b.sp();
    writeAddressList(b, list);
  }
  b.sp().nstring(env.inReplyTo).sp().nstring(env.messageId).text(')');
}

function writeAddressList(b: ResponseBuilder, list: readonly EnvelopeAddress[] | null): void {
  // RFC 9051 §7.5.2: an empty address list is NIL.
  if (list === null || list.length === 0) {
    b.nil();
    return;
  }
  b.text('(');
  for (const a of list) {
    b.text('(').nstring(a.name).sp().nstring(a.adl).sp().nstring(a.mailbox).sp().nstring(a.host).text(')');
  }
  b.text(')');
}

/**
 * The body structure. `extensible` selects BODYSTRUCTURE (with extension data) over BODY
 * (RFC 9051 §6.4.5: "BODY ... the non-extensible form of BODYSTRUCTURE").
 */
export function writeBodyStructure(b: ResponseBuilder, part: BodyPart, extensible: boolean): void {
  b.text('(');
  if (part.kind === 'multipart') {
    // body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]
    for (const child of part.parts) writeBodyStructure(b, child, extensible);
    // RFC 9051 §9 requires at least one body; a multipart with none gets an empty text part so
    // the response stays parseable.
    if (part.parts.length === 0) b.text('("TEXT" "PLAIN" NIL NIL NIL "7BIT" 0 0)');
    b.sp().string(part.subtype.toUpperCase());
    if (extensible) {
      // body-ext-mpart = body-fld-param [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc]]]
      b.sp();
      writeParams(b, part.params);
      writeExtensionTail(b, part);
    }
    b.text(')');
    return;
  }
  // body-fields = body-fld-param SP body-fld-id SP body-fld-desc SP body-fld-enc SP body-fld-octets
  b.string(part.type.toUpperCase()).sp().string(part.subtype.toUpperCase()).sp();
  writeParams(b, part.params);
  b.sp().nstring(part.id).sp().nstring(part.description).sp().string(part.encoding).sp().number(part.size);
  switch (part.kind) {
    case 'text':
      b.sp().number(part.lines);
      break;
    case 'message':
      // body-type-msg = media-message SP body-fields SP envelope SP body SP body-fld-lines
      b.sp();
      writeEnvelope(b, part.envelope);
      b.sp();
      writeBodyStructure(b, part.body, extensible);
      b.sp().number(part.lines);
      break;
    case 'basic':
      break;
  }
  if (extensible) {
    // body-ext-1part = body-fld-md5 [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc]]]
    b.sp().nstring(part.md5);
    writeExtensionTail(b, part);
  }
  b.text(')');
}

function writeExtensionTail(b: ResponseBuilder, part: BodyPart): void {
  b.sp();
  if (part.disposition === null) b.nil();
  else {
    b.text('(').string(part.disposition.type.toUpperCase()).sp();
    writeParams(b, part.disposition.params);
    b.text(')');
  }
  b.sp();
  // body-fld-lang = nstring / "(" string *(SP string) ")"
  const lang = part.language;
  if (lang === null || lang.length === 0) b.nil();
  else if (lang.length === 1) b.string(lang[0]!);
  else {
    b.text('(');
    lang.forEach((l, i) => {
      if (i > 0) b.sp();
      b.string(l);
    });
    b.text(')');
  }
  b.sp().nstring(part.location);
}

/** body-fld-param = "(" string SP string *(SP string SP string) ")" / NIL */
function writeParams(b: ResponseBuilder, params: BodyParams): void {
  if (params.length === 0) {
    b.nil();
    return;
  }
  b.text('(');
  params.forEach(([name, value], i) => {
    if (i > 0) b.sp();
    b.string(name.toUpperCase()).sp().string(value);
  });
  b.text(')');
}
