/**
 * Alerts against real NATS JetStream and FerretDB: a poisoned job reaches MAIL_DLQ, the alert is
 * stored on MAIL_EVENTS (kind `alert`), and the postmaster's INBOX receives the notice exactly
 * once — also when the same alert is published again (the max-deliveries advisory and the
 * consumer loop both dead-lettering one job). Notices are rate limited per alert kind.
 */
import { randomBytes } from 'node:crypto';
import {
  Streams,
  Subjects,
  deadLetterAlert,
  publishDurable,
  publishMailEvent,
  type MailEvent,
} from '@postmesh/bus';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlertMailer, alertSpoolId } from '../src/trace/alert-mail.js';
import { startStorageHarness, type StorageHarness } from './harness.js';

const DOMAIN = 'alerts.test';
const POSTMASTER = `postmaster@${DOMAIN}`;

describe('alerts', () => {
  let h: StorageHarness;
  const inboxes: Record<string, string> = {};

  beforeAll(async () => {
    h = await startStorageHarness({ nats: true, alerts: { postmaster: POSTMASTER, perHour: 10 } });
    const domain = await h.app.directory.createDomain({ name: DOMAIN, defaultQuotaBytes: 0 });
    if (!domain.ok) throw new Error(domain.error.message);
    for (const name of ['postmaster', 'ops']) {
      const created = await h.app.directory.createUser({
        address: `${name}@${DOMAIN}`,
        password: `Pw-${randomBytes(8).toString('hex')}-x`,
        displayName: name,
      });
      if (!created.ok || created.value.user === undefined) throw new Error('createUser failed');
      const inbox = await h.db
        .collection('mailboxes')
        .findOne({ userId: created.value.user.id, path: 'INBOX' });
      inboxes[name] = String(inbox?._id);
    }
  }, 120_000);

  afterAll(async () => {
    await h?.stop();
  });

  const messagesIn = (mailbox: string | undefined) =>
    h.db.collection('messages').find({ mailboxId: mailbox }).toArray();

  async function waitForMessages(mailbox: string | undefined, count: number, timeoutMs = 20_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const docs = await messagesIn(mailbox);
      if (docs.length >= count || Date.now() > deadline) return docs;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('a poisoned job in MAIL_DLQ raises an alert event and mails the postmaster exactly once', async () => {
    const bus = h.bus;
    if (bus === undefined) throw new Error('no bus');
    const id = randomBytes(6).toString('hex');
    const ack = await publishDurable(bus.js, Subjects.inbound(`poison${id}`), new TextEncoder().encode('{'), {
      msgId: `poison${id}`,
    });

    const notices = await waitForMessages(inboxes.postmaster, 1);
    expect(notices).toHaveLength(1);
    const eventId = `alert:dlq:${Streams.MAIL_INBOUND}:${ack.seq}`;
    expect(notices[0]?.spoolId).toBe(alertSpoolId(eventId));

    const alert = await h.db.collection('events').findOne({ eventId });
    expect(alert).toMatchObject({
      kind: 'alert',
      detail: { alert: 'dlq', severity: 'critical', stream: Streams.MAIL_INBOUND, seq: String(ack.seq) },
    });
    expect(String(alert?.summary)).toMatch(/moved to the dead-letter queue: malformed inbound job/);

    // The same incident announced again (the advisory path, or a retried dead letter): still one notice.
    await publishMailEvent(
      bus.js,
      deadLetterAlert({
        service: 'storage',
        stream: Streams.MAIL_INBOUND,
        seq: ack.seq,
        subject: Subjects.inbound(`poison${id}`),
        attempts: 1,
        reason: 'malformed inbound job',
      }),
    );
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await messagesIn(inboxes.postmaster)).toHaveLength(1);
  });

  it('limits notices per alert kind and hour, and the next notice counts the ones not mailed', async () => {
    const bus = h.bus;
    if (bus === undefined) throw new Error('no bus');
    let now = Date.parse('2026-12-01T10:00:00Z');
    const mailer = new AlertMailer({
      js: bus.js,
      logger: h.logger,
      postmaster: `ops@${DOMAIN}`,
      perHour: 1,
      hostname: 'mx.alerts.test',
      now: () => now,
    });
    const alert = (seq: number): MailEvent =>
      deadLetterAlert({
        service: 'mta-delivery',
        stream: Streams.MAIL_OUTBOUND,
        seq: 1_000_000 + seq + Math.floor(Math.random() * 1e6),
        subject: Subjects.outbound('remote.test'),
        attempts: 10,
        reason: 'connection refused',
      });
    expect(await mailer.notify(alert(1))).toBe('mailed');
    expect(await mailer.notify(alert(2))).toBe('rate-limited');
    expect(await mailer.notify(alert(3))).toBe('rate-limited');
    now += 60 * 60 * 1000;
    expect(await mailer.notify(alert(4))).toBe('mailed');

    const notices = await waitForMessages(inboxes.ops, 2);
    expect(notices).toHaveLength(2);
  });

  it('never mails a notice about a notice that itself could not be delivered', async () => {
    const bus = h.bus;
    if (bus === undefined) throw new Error('no bus');
    const mailer = new AlertMailer({ js: bus.js, logger: h.logger, postmaster: POSTMASTER, perHour: 10 });
    const looping = deadLetterAlert({
      service: 'storage',
      stream: Streams.MAIL_INBOUND,
      seq: 424242,
      subject: Subjects.inbound(alertSpoolId('alert:dlq:MAIL_INBOUND:1')),
      attempts: 10,
      reason: 'no INBOX',
    });
    expect(await mailer.notify(looping)).toBe('loop');
  });
});
