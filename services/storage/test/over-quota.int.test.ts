/**
 * Mail accepted for a recipient over quota: the sender gets a delay notice (RFC 3464
 * `Action: delayed`, `Status: 4.2.2`) while delivery is retried, then a failure DSN (`5.2.2`)
 * once the configured time has passed or the consumer's deliveries run out; never a silent
 * dead letter, never a DSN to the null sender. The notices are inbound jobs for the sender on a
 * real JetStream.
 */
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simpleParser } from 'mailparser';
import { Bus, Streams, Subjects, decodeInboundJob, type InboundJob } from '@postmesh/bus';
import { createLogger } from '@postmesh/telemetry';
import { startTestEnvironment, type TestEnvironment } from '@postmesh/testing';
import { noticeSpoolId, overQuotaOutcome, type OverQuotaPolicy } from '../src/delivery/over-quota.js';

const logger = createLogger('over-quota-test', 'silent');
const HOUR = 3_600_000;
const policy: OverQuotaPolicy = {
  giveUpAfterMs: 24 * HOUR,
  minRetryMs: 60_000,
  reportingMta: 'mx.example.test',
};
const original = Buffer.from(
  'From: alice@remote.test\r\nTo: full@example.test\r\nSubject: big photos\r\nMessage-ID: <p1@remote.test>\r\n\r\nbody\r\n',
);

function job(spoolId: string, mailFrom: string, receivedAt: Date): InboundJob {
  return {
    version: 1,
    spoolId,
    envelope: {
      mailFrom,
      rcptTo: ['full@example.test', 'ok@example.test'],
      remoteIp: '192.0.2.1',
      helo: 'x',
    },
    authResults: { spf: 'pass', dkim: 'pass', dmarc: 'pass', arc: 'none', dmarcPolicy: '', junk: false },
    receivedAt: receivedAt.toISOString(),
    messageId: 'p1@remote.test',
    traceparent: '',
    body: { kind: 'inline', size: original.length },
  };
}

describe('over quota: delay notice, then failure DSN', () => {
  let env: TestEnvironment;
  let bus: Bus;
  beforeAll(async () => {
    env = await startTestEnvironment({ mongo: false });
    bus = await Bus.connect({ ...env.busOptions(), name: 'over-quota-test', logger, replicas: 1 });
  });
  afterAll(async () => {
    await bus?.drain();
    await env?.stop();
  });

  async function notice(spoolId: string) {
    const stored = await bus.jsm.streams.getMessage(Streams.MAIL_INBOUND, {
      last_by_subj: Subjects.inbound(spoolId),
    });
    if (stored === null) return undefined;
    const decoded = decodeInboundJob(stored.data);
    if (!decoded.ok) throw new Error(decoded.problem);
    const raw = Buffer.from(decoded.inlineBody ?? new Uint8Array());
    const parsed = await simpleParser(raw);
    // The message/delivery-status part (RFC 3464 §2), as a receiving program reads it.
    const status = /Content-Type: message\/delivery-status[\s\S]*?\r\n\r\n([\s\S]*?)\r\n--/.exec(
      raw.toString('latin1'),
    )?.[1];
    return { job: decoded.job, parsed, raw: raw.toString('latin1'), status: status ?? '' };
  }

  it('retries with a delay notice (4.2.2) to the sender, spread to fit the remaining deliveries', async () => {
    const arrived = new Date('2026-12-06T08:00:00Z');
    const outcome = await overQuotaOutcome({
      js: bus.js,
      logger,
      policy,
      job: job('overQuota00001', 'alice@remote.test', arrived),
      body: original,
      recipients: ['full@example.test'],
      deliveryCount: 1,
      maxDeliver: 10,
      now: arrived.getTime() + 60_000,
    });
    // 24 h less a minute over the 9 deliveries left.
    expect(outcome).toEqual({
      kind: 'retry',
      reason: '1 recipient(s) over quota',
      delayMs: Math.ceil((24 * HOUR - 60_000) / 9),
    });
    const sent = await notice(noticeSpoolId('overQuota00001', 'delayed'));
    expect(sent?.job.envelope).toMatchObject({ mailFrom: '', rcptTo: ['alice@remote.test'] });
    expect(sent?.status).toMatch(/Final-Recipient: rfc822; full@example\.test/);
    expect(sent?.status).toMatch(/Action: delayed/);
    expect(sent?.status).toMatch(/Status: 4\.2\.2/);
    expect(sent?.status).toMatch(/Will-Retry-Until: Mon, 7 Dec 2026 08:00:00 \+0000/);
    expect(sent?.parsed.subject).toBe('Delayed Mail (still being retried)');
    expect(sent?.parsed.text).not.toMatch(/ok@example\.test/);
  });

  it('gives up with a failure DSN (5.2.2) after the configured time, and on the last delivery', async () => {
    const arrived = new Date('2026-12-05T08:00:00Z');
    for (const [spoolId, now, deliveryCount] of [
      ['overQuota00002', arrived.getTime() + 24 * HOUR, 3],
      ['overQuota00003', arrived.getTime() + HOUR, 10],
    ] as const) {
      const outcome = await overQuotaOutcome({
        js: bus.js,
        logger,
        policy,
        job: job(spoolId, 'alice@remote.test', arrived),
        // A spool object's body arrives in chunks.
        body: Readable.from([original.subarray(0, 20), original.subarray(20)]),
        recipients: ['full@example.test'],
        deliveryCount,
        maxDeliver: 10,
        now,
      });
      expect(outcome).toEqual({ kind: 'ack' });
      const sent = await notice(noticeSpoolId(spoolId, 'failed'));
      expect(sent?.status).toMatch(/Action: failed/);
      expect(sent?.status).toMatch(/Status: 5\.2\.2/);
      expect(sent?.parsed.subject).toBe('Undelivered Mail Returned to Sender');
      expect(sent?.raw).toMatch(/Content-Type: text\/rfc822-headers[\s\S]*Subject: big photos/);
    }
  });

  it('sends nothing to the null sender, but still gives up in time', async () => {
    const arrived = new Date('2026-12-05T08:00:00Z');
    const outcome = await overQuotaOutcome({
      js: bus.js,
      logger,
      policy,
      job: job('overQuota00004', '', arrived),
      body: original,
      recipients: ['full@example.test'],
      deliveryCount: 2,
      maxDeliver: 10,
      now: arrived.getTime() + 25 * HOUR,
    });
    expect(outcome).toEqual({ kind: 'ack' });
    expect(await notice(noticeSpoolId('overQuota00004', 'failed'))).toBeUndefined();
  });
});
