/**
 * Whether and how to answer with a vacation reply: RFC 5230 §4.5 (only personal mail),
 * §4.6 (never to automated senders or mailing lists), §5 (the reply message), and RFC 3834
 * (Auto-Submitted: auto-replied, In-Reply-To/References, "Auto:" subject prefix). Duplicate
 * suppression per :days (§4.2) needs durable state and is the delivery agent's job.
 */
import { decodeEncodedWords, parseAddressList, rfc5322Date } from '@postmesh/mime';
import type { SieveMessage, VacationAction } from './interpreter.js';
import { extractAddress } from './validator.js';

export type VacationDecision =
  | { readonly send: true; readonly to: string; readonly from: string }
  | { readonly send: false; readonly reason: string };

/** List header fields of RFC 2369 and RFC 2919; their presence marks list traffic. */
const LIST_HEADERS = [
  'list-id',
  'list-help',
  'list-subscribe',
  'list-unsubscribe',
  'list-post',
  'list-owner',
  'list-archive',
];
/** RFC 5230 §4.6 and RFC 3834 §2: headers through which the reply would go back into a list or a bounce. */
const AUTOMATED_LOCAL_PARTS =
  /^(mailer-daemon|listserv|majordomo|owner-.*|.*-request|.*-owner|postmaster|noreply|no-reply|do-not-reply|bounces?|.*-bounces?)$/i;
/** RFC 5230 §4.5: the user's address must be among the recipients named in these fields. */
const RECIPIENT_HEADERS = ['to', 'cc', 'bcc', 'resent-to', 'resent-cc', 'resent-bcc'];

export interface VacationContext {
  /** The recipient's own address (the envelope recipient this delivery is for). */
  readonly recipient: string;
  /** Further addresses of the same user (aliases), in addition to :addresses. */
  readonly aliases?: readonly string[];
}

const headerValues = (message: SieveMessage, name: string): string[] =>
  message.headers.filter((h) => h.name.toLowerCase() === name).map((h) => h.value.trim());

export function decideVacation(
  action: VacationAction,
  message: SieveMessage,
  context: VacationContext,
): VacationDecision {
  const sender = message.envelope.from.trim();
  // RFC 5230 §4.6 / RFC 3834 §2: never answer a bounce (null reverse-path) or a daemon.
  if (sender === '') return { send: false, reason: 'the message is a bounce (null return-path)' };
  const senderLocal = sender.slice(0, Math.max(sender.lastIndexOf('@'), 0)) || sender;
  if (AUTOMATED_LOCAL_PARTS.test(senderLocal))
    return { send: false, reason: `the sender ${sender} is an automated address` };
  // RFC 3834 §5 / RFC 5230 §4.6: MUST NOT answer anything marked Auto-Submitted other than "no".
  const autoSubmitted = headerValues(message, 'auto-submitted');
  if (autoSubmitted.some((v) => v.split(';')[0]?.trim().toLowerCase() !== 'no'))
    return { send: false, reason: 'the message is auto-submitted' };
  if (LIST_HEADERS.some((h) => headerValues(message, h).length > 0))
    return { send: false, reason: 'the message came through a mailing list' };
  if (headerValues(message, 'precedence').some((v) => /^(bulk|list|junk)$/i.test(v)))
    return { send: false, reason: 'the message is bulk mail (Precedence)' };
  if (headerValues(message, 'x-auto-response-suppress').some((v) => /\b(all|oof|autoreply)\b/i.test(v)))
    return { send: false, reason: 'the sender asked for no automatic replies' };

  const mine = new Set(
    [context.recipient, ...(context.aliases ?? []), ...action.addresses]
      .map((a) => extractAddress(a).toLowerCase())
      .filter((a) => a !== ''),
  );
  if (mine.has(sender.toLowerCase())) return { send: false, reason: 'the message comes from the user' };
  const named = RECIPIENT_HEADERS.flatMap((h) => headerValues(message, h))
    .flatMap((v) => parseAddressList(v))
    .filter((a) => a.mailbox !== null && a.host !== null)
    .map((a) => `${a.mailbox ?? ''}@${a.host ?? ''}`.toLowerCase());
  // RFC 5230 §4.5: a reply only when the user is a named recipient (not a Bcc from a list).
  if (!named.some((a) => mine.has(a)))
    return { send: false, reason: "the user's address is not in To or Cc" };

  return { send: true, to: sender, from: action.from ?? context.recipient };
}

export interface VacationReplyInput {
  readonly action: VacationAction;
  readonly message: SieveMessage;
  readonly from: string;
  readonly to: string;
  readonly date: Date;
  /** A unique Message-ID for the reply, without angle brackets. */
  readonly messageId: string;
}

const isAscii = (s: string): boolean => /^[\x20-\x7e\t\r\n]*$/.test(s);
const encodeWord = (s: string): string =>
  isAscii(s) ? s : `=?UTF-8?B?${Buffer.from(s, 'utf8').toString('base64')}?=`;
const oneLine = (s: string): string => s.replace(/[\r\n]+/g, ' ').trim();

/** RFC 5230 §5: the reply, with the null reverse-path used as envelope sender by the caller. */
export function buildVacationReply(input: VacationReplyInput): Uint8Array {
  const { action, message } = input;
  const original = (name: string): string | undefined => headerValues(message, name)[0];
  const originalSubject = decodeEncodedWords(original('subject') ?? '');
  // RFC 5230 §5.3 / RFC 3834 §3.1.5: default subject "Auto: " + the original one.
  const subject = oneLine(action.subject ?? `Auto: ${originalSubject}`.trim());
  const messageId = original('message-id');
  const references = [original('references'), messageId]
    .filter((v): v is string => v !== undefined && v !== '')
    .join(' ');
  const lines = [
    `From: ${oneLine(input.from)}`,
    `To: <${input.to}>`,
    `Subject: ${encodeWord(subject)}`,
    `Date: ${rfc5322Date(input.date)}`,
    `Message-ID: <${input.messageId}>`,
    ...(messageId !== undefined ? [`In-Reply-To: ${oneLine(messageId)}`] : []),
    ...(references !== '' ? [`References: ${oneLine(references)}`] : []),
    // RFC 3834 §5 / RFC 5230 §5.6: marks the reply as automatic so other responders stay silent.
    'Auto-Submitted: auto-replied (vacation)',
    'Precedence: bulk',
    'MIME-Version: 1.0',
  ];
  let body: string;
  if (action.mime) {
    // RFC 5230 §4.4: with :mime the reason is a MIME entity (its own headers, then the body).
    const entity = action.reason.replace(/\r?\n/g, '\r\n').replace(/^\r\n/, '');
    return Buffer.from(
      lines.join('\r\n') + '\r\n' + (entity.includes('\r\n\r\n') ? entity : `\r\n${entity}`),
      'utf8',
    );
  }
  const text = action.reason.replace(/\r?\n/g, '\r\n');
  if (isAscii(text)) {
    lines.push('Content-Type: text/plain; charset=us-ascii', 'Content-Transfer-Encoding: 7bit');
    body = text;
  } else {
    lines.push('Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: base64');
    body = (
      Buffer.from(text, 'utf8')
        .toString('base64')
        .match(/.{1,76}/g) ?? []
    ).join('\r\n');
  }
  return Buffer.from(lines.join('\r\n') + '\r\n\r\n' + body + (body.endsWith('\r\n') ? '' : '\r\n'), 'utf8');
}
