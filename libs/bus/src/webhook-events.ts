/**
 * Which mail events a domain's webhooks receive (docs/webhooks.md): the event types operators
 * subscribe an endpoint to, and how each MailEvent maps onto one. A contract shared by storage
 * (which sends) and admin (which validates the configuration).
 */
import type { MailEvent, MailEventKind } from './mail-event.js';

export const WEBHOOK_EVENT_TYPES = [
  'received',
  'delivered',
  'bounced',
  'deferred',
  'dead-lettered',
  'spam-rejected',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

export function isWebhookEventType(value: string): value is WebhookEventType {
  return (WEBHOOK_EVENT_TYPES as readonly string[]).includes(value);
}

/** The mail event kinds some webhook type is made of (the sender's consumer filter). */
export const WEBHOOK_SOURCE_KINDS = [
  'queued',
  'delivered',
  'relayed',
  'junked',
  'bounced',
  'deferred',
  'dlq',
  'rejected',
  'alert',
] as const satisfies readonly MailEventKind[];

/**
 * The webhook type of a mail event, or undefined when webhooks do not report it:
 * - `received`: smtp-inbound accepted the message (`queued`, after the 250).
 * - `delivered`: stored in a mailbox (`delivered`, `junked`) or accepted by the next hop
 *   (`delivered`, `relayed` from mta-delivery).
 * - `bounced`, `deferred`: as their kinds (mta-delivery).
 * - `dead-lettered`: a `dlq` event, or a `dlq` alert that names the message's addresses.
 * - `spam-rejected`: a refusal by the content filter (`rejected` with a `spam_action`).
 */
export function webhookEventTypeOf(event: MailEvent): WebhookEventType | undefined {
  switch (event.kind) {
    case 'queued':
      return event.service === 'smtp-inbound' ? 'received' : undefined;
    case 'delivered':
    case 'relayed':
    case 'junked':
      return 'delivered';
    case 'bounced':
      return 'bounced';
    case 'deferred':
      return 'deferred';
    case 'dlq':
      return 'dead-lettered';
    case 'alert':
      return event.attributes?.alert === 'dlq' &&
        (event.sender !== undefined || event.recipient !== undefined)
        ? 'dead-lettered'
        : undefined;
    case 'rejected':
      return event.attributes?.spam_action === undefined ? undefined : 'spam-rejected';
    case 'received':
    case 'delayed-notice':
      return undefined;
  }
}

/**
 * The domains an event concerns: its sender's and its recipient's, and for an accepted message
 * the domains of all its recipients (attribute `recipient_domains`, comma-separated). Each
 * hosted domain among them has its webhooks called once.
 */
export function webhookDomainsOf(event: MailEvent): string[] {
  const domains = new Set<string>();
  const add = (address: string | undefined): void => {
    if (address === undefined) return;
    const at = address.lastIndexOf('@');
    if (at > 0 && at < address.length - 1) domains.add(address.slice(at + 1).toLowerCase());
  };
  add(event.sender);
  add(event.recipient);
  for (const domain of (event.attributes?.recipient_domains ?? '').split(',')) {
    const trimmed = domain.trim().toLowerCase();
    if (trimmed !== '') domains.add(trimmed);
  }
  return [...domains];
}
