/**
 * A job that exhausts its consumer's server-side max_deliver without a verdict (its process never
 * acked, nak'ed or dead-lettered it) is found through JetStream's max-deliveries advisory, copied
 * to MAIL_DLQ with the reason and removed from its work queue; and MAIL_DLQ has limits.
 */
import { AckPolicy, DiscardPolicy, RetentionPolicy } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@postmesh/telemetry';
import { startTestEnvironment, type TestEnvironment } from '@postmesh/testing';
import {
  Bus,
  DLQ_DEFAULTS,
  MaxDeliveriesDeadLetter,
  Streams,
  Subjects,
  publishDurable,
} from '../src/index.js';

const logger = createLogger('max-deliveries-test', 'silent');
const STREAM = 'TEST_WORK';

describe('max-deliveries advisories', () => {
  let env: TestEnvironment;
  let bus: Bus;
  let deadLetter: MaxDeliveriesDeadLetter;
  beforeAll(async () => {
    env = await startTestEnvironment({ mongo: false });
    bus = await Bus.connect({
      ...env.busOptions(),
      name: 'max-deliveries-test',
      logger,
      replicas: 1,
      dlq: { maxAgeMs: 7 * 24 * 3_600_000, maxBytes: 64 * 1024 * 1024 },
    });
    await bus.jsm.streams.add({
      name: STREAM,
      subjects: ['test.work.>'],
      retention: RetentionPolicy.Workqueue,
    });
    await bus.jsm.consumers.add(STREAM, {
      durable_name: 'worker',
      ack_policy: AckPolicy.Explicit,
      ack_wait: 500_000_000,
      max_deliver: 2,
    });
    deadLetter = new MaxDeliveriesDeadLetter({
      nc: bus.nc,
      js: bus.js,
      jsm: bus.jsm,
      streams: [STREAM],
      logger,
    });
    deadLetter.start();
  });
  afterAll(async () => {
    await deadLetter?.stop();
    await bus?.drain();
    await env?.stop();
  });

  it('MAIL_DLQ keeps dead letters for a configured age and size, refusing new ones when full', async () => {
    const info = await bus.jsm.streams.info(Streams.MAIL_DLQ);
    expect(info.config.max_age).toBe(7 * 24 * 3_600_000 * 1e6);
    expect(info.config.max_bytes).toBe(64 * 1024 * 1024);
    expect(info.config.discard).toBe(DiscardPolicy.New);
    expect(DLQ_DEFAULTS).toEqual({ maxAgeMs: 30 * 24 * 3_600_000, maxBytes: 1024 * 1024 * 1024 });
  });

  it('dead-letters a job its consumer received twice and never settled, then removes it', async () => {
    const ack = await publishDurable(bus.js, 'test.work.job1', new TextEncoder().encode('poison job'), {
      msgId: 'job1',
      headers: { 'Postmesh-Trace': 'abc' },
    });
    const consumer = await bus.js.consumers.get(STREAM, 'worker');
    // Two deliveries, neither acked nor nak'ed: a worker that crashed each time.
    for (let i = 0; i < 2; i++) {
      const msg = await consumer.next({ expires: 5_000 });
      expect(msg?.seq).toBe(ack.seq);
    }
    // Past ack_wait the server would redeliver, but max_deliver is reached: the advisory.
    const deadline = Date.now() + 15_000;
    let entry = null;
    while (entry === null && Date.now() < deadline) {
      entry = await bus.jsm.streams.getMessage(Streams.MAIL_DLQ, { last_by_subj: Subjects.dlq(STREAM) });
      if (entry === null) {
        // A pending pull makes the server look at the job again.
        await consumer.next({ expires: 1_000 }).catch(() => null);
      }
    }
    expect(entry).not.toBeNull();
    expect(new TextDecoder().decode(entry?.data)).toBe('poison job');
    expect(entry?.header.get('Postmesh-Error')).toMatch(/^exhausted 2 deliveries of consumer worker/);
    expect(entry?.header.get('Postmesh-Original-Seq')).toBe(String(ack.seq));
    expect(entry?.header.get('Postmesh-Original-Subject')).toBe('test.work.job1');
    expect(entry?.header.get('Postmesh-Trace')).toBe('abc');
    // Out of the work queue.
    await expect(bus.jsm.streams.getMessage(STREAM, { seq: ack.seq })).resolves.toBeNull();
    // A second advisory for the same job (another replica, a replay) changes nothing.
    await expect(
      deadLetter.handle({ stream: STREAM, consumer: 'worker', streamSeq: ack.seq, deliveries: 2 }),
    ).resolves.toBe('gone');
    const dlq = await bus.jsm.streams.info(Streams.MAIL_DLQ, { subjects_filter: Subjects.dlq(STREAM) });
    expect(dlq.state.subjects?.[Subjects.dlq(STREAM)]).toBe(1);
  }, 30_000);
});
