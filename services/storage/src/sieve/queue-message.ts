/**
 * Sends a message that storage itself composes (a Sieve redirect, reject DSN or vacation reply):
 * to a local recipient as an inbound job (storage delivers it), to a remote one as an outbound
 * job for mta-delivery, as over-quota notices do. The spoolId is derived from what the message
 * answers, and the publish carries it as Nats-Msg-Id, so a retried publish is deduplicated.
 * Bodies over INLINE_MESSAGE_LIMIT go to the spool object store first.
 */
import {
  INLINE_MESSAGE_LIMIT,
  Streams,
  Subjects,
  encodeInboundJob,
  encodeOutboundJob,
  jobMessageId,
  NO_AUTH_VERDICT,
  openSpool,
  outboundJobMessageId,
  publishDurable,
  spoolObjectName,
  type Bus,
} from '@postmesh/bus';

export interface QueuedMessage {
  readonly spoolId: string;
  /** Envelope sender; '' (the null reverse-path) for DSNs and automatic replies. */
  readonly mailFrom: string;
  readonly rcptTo: string;
  readonly bytes: Uint8Array;
  readonly local: boolean;
  readonly traceparent: string;
  readonly messageId?: string;
}

export async function queueMessage(bus: Bus, m: QueuedMessage): Promise<void> {
  const now = new Date().toISOString();
  let body: { kind: 'inline'; size: number } | { kind: 'object'; size: number; object: string } = {
    kind: 'inline',
    size: m.bytes.length,
  };
  if (m.bytes.length > INLINE_MESSAGE_LIMIT) {
    // `msg/` objects are swept against MAIL_INBOUND, `out/` ones by mta-delivery (docs/operations.md).
    const object = m.local ? spoolObjectName(m.spoolId) : `out/${m.spoolId}`;
    const spool = await openSpool(bus.nc);
    await spool.putBlob({ name: object }, m.bytes);
    body = { kind: 'object', size: m.bytes.length, object };
  }
  const inline = body.kind === 'inline' ? m.bytes : undefined;
  if (m.local) {
    await publishDurable(
      bus.js,
      Subjects.inbound(m.spoolId),
      encodeInboundJob(
        {
          version: 1,
          spoolId: m.spoolId,
          envelope: { mailFrom: m.mailFrom, rcptTo: [m.rcptTo], remoteIp: '', helo: 'localhost' },
          authResults: NO_AUTH_VERDICT,
          receivedAt: now,
          messageId: m.messageId ?? '',
          traceparent: m.traceparent,
          body,
        },
        inline,
      ),
      { msgId: jobMessageId(m.spoolId, Streams.MAIL_INBOUND), expectStream: Streams.MAIL_INBOUND },
    );
    return;
  }
  const domain = m.rcptTo.slice(m.rcptTo.lastIndexOf('@') + 1).toLowerCase();
  await publishDurable(
    bus.js,
    Subjects.outbound(domain),
    encodeOutboundJob(
      {
        version: 1,
        spoolId: m.spoolId,
        domain,
        envelope: { mailFrom: m.mailFrom, rcptTo: [m.rcptTo] },
        body: body.kind === 'inline' ? body : { ...body, sharedBy: [domain] },
        queuedAt: now,
        messageId: m.messageId ?? '',
        traceparent: m.traceparent,
      },
      inline,
    ),
    { msgId: outboundJobMessageId(m.spoolId, domain), expectStream: Streams.MAIL_OUTBOUND },
  );
}
