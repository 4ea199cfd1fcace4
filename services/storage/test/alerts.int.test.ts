/**
 * Alerts against real NATS JetStream and FerretDB: a poisoned job reaches MAIL_DLQ, the alert is
 * stored on MAIL_EVENTS (kind `alert`), and the postmaster's INBOX receives the notice exactly
 * once — also when the same alert is published again (the max-deliveries advisory and the
 * consumer loop both dead-lettering one job). Notices are rate limited per alert and subject.
 * Repeated deferrals to one domain raise one alert, mailed to the postmaster and that domain's
 * admins, listed by Trace.RecentEvents (scoped to domains). A delivered message records the
 * trace id of its job.
 */
import { randomBytes } from 'node:crypto';
import {
  Streams,
  Subjects,
  deadLetterAlert,
  encodeInboundJob,
  jobMessageId,
  mailEvent,
  publishDurable,
  publishMailEvent,
  queueDepthAlert,
  type MailEvent,
} from '@postmesh/bus';
import { trace } from '@postmesh/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlertMailer, alertSpoolId } from '../src/trace/alert-mail.js';
import { startStorageHarness, traceApi, type StorageHarness } from './harness.js';

const DOMAIN = 'alerts.test';
const POSTMASTER = `postmaster@${DOMAIN}`;
/** A destination domain hosted here, with a domain-admin whose mailbox is `partner-admin@alerts.test`. */
const PARTNER = 'partner.test';

describe('alerts', () => {
  let h: StorageHarness;
  const inboxes: Record<string, string> = {};

  beforeAll(async () => {
    h = await startStorageHarness({
      nats: true,
      alerts: {
        postmaster: POSTMASTER,
        perHour: 10,
        deliveryFailures: { threshold: 3, windowMs: 60 * 60_000 },
      },
    });
    for (const name of [DOMAIN, PARTNER]) {
      const domain = await h.app.directory.createDomain({ name, defaultQuotaBytes: 0 });
      if (!domain.ok) throw new Error(domain.error.message);
    }
    // Admin accounts as the admin service creates them (storage's `admins` collection).
    await h.db.collection('admins').insertMany([
      { email: `partner-admin@${DOMAIN}`, role: 'domain-admin', domains: [PARTNER], status: 'active' },
      { email: `other-admin@${DOMAIN}`, role: 'domain-admin', domains: ['elsewhere.test'], status: 'active' },
    ]);
    for (const name of ['postmaster', 'ops', 'partner-admin', 'other-admin', 'reader']) {
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

  it('limits notices per alert and hour, and the next notice counts the ones not mailed', async () => {
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

  it('rate limits per alert and subject: a second incident elsewhere is still mailed', async () => {
    const bus = h.bus;
    if (bus === undefined) throw new Error('no bus');
    let now = Date.parse('2026-12-02T10:00:00Z');
    const mailer = new AlertMailer({
      js: bus.js,
      logger: h.logger,
      postmaster: `reader@${DOMAIN}`,
      perHour: 1,
      hostname: 'mx.alerts.test',
      now: () => now,
    });
    // Each check an hour apart in the emitter's clock, so each is its own alert (eventId).
    const depth = (stream: string, hour: number): MailEvent =>
      queueDepthAlert({
        service: 'storage',
        stream,
        messages: 5_000 + hour,
        threshold: 1_000,
        now: Date.parse('2026-12-02T00:00:00Z') + hour * 3_600_000 + Math.floor(Math.random() * 1e6),
      });
    expect(await mailer.notify(depth(Streams.MAIL_INBOUND, 1))).toBe('mailed');
    expect(await mailer.notify(depth(Streams.MAIL_INBOUND, 2))).toBe('rate-limited');
    expect(await mailer.notify(depth(Streams.MAIL_INBOUND, 3))).toBe('rate-limited');
    // Another subject of the same rule is not held back by the first one's flood.
    expect(await mailer.notify(depth(Streams.MAIL_OUTBOUND, 4))).toBe('mailed');
    now += 60 * 60 * 1000;
    expect(await mailer.notify(depth(Streams.MAIL_INBOUND, 5))).toBe('mailed');

    const notices = await waitForMessages(inboxes.reader, 3);
    expect(notices).toHaveLength(3);
  });

  it('repeated deferrals to one domain raise one alert, mailed to the postmaster and its admins', async () => {
    const bus = h.bus;
    if (bus === undefined) throw new Error('no bus');
    const before = (await messagesIn(inboxes.postmaster)).length;
    const failure = (recipient: string, n: number) =>
      mailEvent({
        service: 'mta-delivery',
        kind: 'deferred',
        queueId: `q${randomBytes(4).toString('hex')}`,
        sender: `someone@${DOMAIN}`,
        recipient,
        detail: `451 4.3.0 try again later (${n})`,
      });
    // Two failures to another domain stay under the threshold (3).
    for (let n = 1; n <= 2; n += 1) await publishMailEvent(bus.js, failure('x@elsewhere.test', n));
    for (let n = 1; n <= 3; n += 1) await publishMailEvent(bus.js, failure(`bob@${PARTNER}`, n));

    const adminNotices = await waitForMessages(inboxes['partner-admin'], 1);
    expect(adminNotices).toHaveLength(1);
    expect(await waitForMessages(inboxes.postmaster, before + 1)).toHaveLength(before + 1);
    // The notice is one delivery to both: the same spool id in both mailboxes.
    const postmasterNotices = await messagesIn(inboxes.postmaster);
    expect(postmasterNotices.map((m) => String(m.spoolId))).toContain(String(adminNotices[0]?.spoolId));

    const alerts = await h.db
      .collection('events')
      .find({ kind: 'alert', 'detail.alert': 'delivery-failures' })
      .toArray();
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({
      detail: { about: PARTNER, domain: PARTNER, failures: '3', last_error: '451 4.3.0 try again later (3)' },
    });

    // The console's source: recent alerts, scoped to the caller's domains.
    const api = traceApi(h.trace);
    const everyone = await api.recentEvents({ kinds: [trace.EventKind.ALERT] });
    expect(everyone.events.map((e) => e.attributes.alert)).toContain('delivery-failures');
    expect(everyone.events.map((e) => e.attributes.alert)).toContain('dlq');
    const partner = await api.recentEvents({ kinds: [trace.EventKind.ALERT], domains: [PARTNER] });
    expect(partner.events.map((e) => e.attributes.alert)).toEqual(['delivery-failures']);
    const other = await api.recentEvents({ kinds: [trace.EventKind.ALERT], domains: ['elsewhere.test'] });
    expect(other.events).toEqual([]);
    const failures = await api.recentEvents({
      kinds: [trace.EventKind.DEFERRED, trace.EventKind.BOUNCED],
      domains: ['elsewhere.test'],
    });
    expect(failures.events.map((e) => e.recipient)).toEqual(['x@elsewhere.test', 'x@elsewhere.test']);
    // Other admins are not told.
    expect(await messagesIn(inboxes['other-admin'])).toHaveLength(0);
  });

  it('records the trace id of the delivering job on the stored message', async () => {
    const bus = h.bus;
    if (bus === undefined) throw new Error('no bus');
    const traceId = randomBytes(16).toString('hex');
    const spoolId = `traced${randomBytes(6).toString('hex')}`;
    const body = new TextEncoder().encode(
      `From: a@remote.example\r\nTo: reader@${DOMAIN}\r\nSubject: traced\r\nMessage-ID: <${spoolId}@remote.example>\r\n\r\nhello\r\n`,
    );
    const before = (await messagesIn(inboxes.reader)).length;
    await publishDurable(
      bus.js,
      Subjects.inbound(spoolId),
      encodeInboundJob(
        {
          version: 1,
          spoolId,
          envelope: {
            mailFrom: 'a@remote.example',
            rcptTo: [`reader@${DOMAIN}`],
            remoteIp: '192.0.2.1',
            helo: 'remote.example',
          },
          authResults: {
            spf: 'pass',
            dkim: 'none',
            dmarc: 'none',
            arc: 'none',
            dmarcPolicy: '',
            junk: false,
          },
          receivedAt: new Date().toISOString(),
          messageId: `${spoolId}@remote.example`,
          traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01`,
          body: { kind: 'inline', size: body.length },
        },
        body,
      ),
      { msgId: jobMessageId(spoolId, Streams.MAIL_INBOUND), expectStream: Streams.MAIL_INBOUND },
    );
    await waitForMessages(inboxes.reader, before + 1);
    const stored = await h.db.collection('messages').findOne({ spoolId });
    expect(stored?.traceId).toBe(traceId);
    // The message trace carries the same id, which is how the console links the two.
    const deadline = Date.now() + 10_000;
    let delivered: trace.TraceEvent | undefined;
    while (delivered === undefined && Date.now() < deadline) {
      const page = await traceApi(h.trace).queryEvents({ filter: { $case: 'queueId', value: spoolId } });
      delivered = page.events.find((e) => e.kind === trace.EventKind.DELIVERED);
      if (delivered === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    expect(delivered?.traceId).toBe(traceId);
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
