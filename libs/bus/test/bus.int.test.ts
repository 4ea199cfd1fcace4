import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@postmesh/telemetry';
import { startTestEnvironment, type TestEnvironment } from '@postmesh/testing';
import {
  Bus,
  ConsumerLoop,
  Consumers,
  JobOutcomes,
  Streams,
  Subjects,
  checkJetStreamDurability,
  publishDurable,
  type JsMsg,
} from '../src/index.js';

const logger = createLogger('bus-test', 'silent');
const enc = new TextEncoder();
const dec = new TextDecoder();

async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('bus on a real JetStream', () => {
  let env: TestEnvironment;
  let bus: Bus;

  beforeAll(async () => {
    env = await startTestEnvironment({ mongo: false });
    bus = await Bus.connect({ ...env.busOptions(), name: 'bus-test', logger, replicas: 1 });
  });
  afterAll(async () => {
    await bus?.drain();
    await env?.stop();
  });

  it('creates the DESIGN §3 topology idempotently', async () => {
    // A second service starting against the same server must not fail or change anything.
    const again = await Bus.connect({ ...env.busOptions(), name: 'bus-test-2', logger, replicas: 1 });
    await again.drain();
    const names: string[] = [];
    for await (const s of bus.jsm.streams.list()) names.push(s.config.name);
    expect(names.sort()).toEqual(
      expect.arrayContaining([
        Streams.MAIL_DLQ,
        Streams.MAIL_EVENTS,
        Streams.MAIL_INBOUND,
        Streams.MAIL_OUTBOUND,
      ]),
    );
    const inbound = await bus.jsm.streams.info(Streams.MAIL_INBOUND);
    expect(inbound.config.retention).toBe('workqueue');
    const consumer = await bus.jsm.consumers.info(Streams.MAIL_INBOUND, Consumers.STORAGE_DELIVER);
    expect(consumer.config.ack_policy).toBe('explicit');
    expect(consumer.config.max_deliver).toBe(10);
  });

  it('verifies that the server fsyncs before acknowledging', async () => {
    if (!env.natsMonitorUrl) throw new Error('the test server has a monitoring port');
    expect(await checkJetStreamDurability(env.natsMonitorUrl)).toBe(true);
  });

  it('deduplicates a retried publish by Nats-Msg-Id', async () => {
    const first = await publishDurable(bus.js, Subjects.events('test'), enc.encode('a'), { msgId: 'dup-1' });
    const second = await publishDurable(bus.js, Subjects.events('test'), enc.encode('a'), { msgId: 'dup-1' });
    expect(first.duplicate).toBe(false);
    expect(second.duplicate).toBe(true);
    expect(second.seq).toBe(first.seq);
  });

  it('delivers each job to the consumer loop and acks it once handled', async () => {
    const seen: string[] = [];
    const loop = new ConsumerLoop({
      js: bus.js,
      stream: Streams.MAIL_INBOUND,
      consumer: Consumers.STORAGE_DELIVER,
      logger,
      handler: (msg: JsMsg) => {
        seen.push(dec.decode(msg.data));
        return Promise.resolve(JobOutcomes.ack);
      },
    });
    loop.start();
    for (let i = 0; i < 20; i++) {
      await publishDurable(bus.js, Subjects.inbound(`job-${i}`), enc.encode(`job-${i}`), {
        msgId: `job-${i}:inbound`,
      });
    }
    await waitFor(() => seen.length >= 20);
    await loop.stop();
    expect(new Set(seen).size).toBe(20);
    // Work-queue retention: acked jobs are gone from the stream.
    await waitFor(async () => (await bus.jsm.streams.info(Streams.MAIL_INBOUND)).state.messages === 0);
  });

  it('moves a job that keeps failing to MAIL_DLQ with its error, once', async () => {
    let attempts = 0;
    const loop = new ConsumerLoop({
      js: bus.js,
      stream: Streams.MAIL_INBOUND,
      consumer: Consumers.STORAGE_DELIVER,
      logger,
      maxDeliver: 3,
      backoffMs: [10],
      handler: () => {
        attempts += 1;
        return Promise.reject(new Error('mailbox store unavailable'));
      },
    });
    loop.start();
    await publishDurable(bus.js, Subjects.inbound('poison'), enc.encode('poison body'), {
      msgId: 'poison:inbound',
      headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
    });
    const dlqSubject = Subjects.dlq(Streams.MAIL_INBOUND);
    await waitFor(
      async () => (await bus.jsm.streams.getMessage(Streams.MAIL_DLQ, { last_by_subj: dlqSubject })) !== null,
    );
    await loop.stop();
    expect(attempts).toBe(3);
    const dead = await bus.jsm.streams.getMessage(Streams.MAIL_DLQ, { last_by_subj: dlqSubject });
    if (!dead) throw new Error('no DLQ entry');
    expect(dec.decode(dead.data)).toBe('poison body');
    expect(dead.header.get('Postmesh-Error')).toBe('mailbox store unavailable (after 3 attempts)');
    expect(dead.header.get('Postmesh-Attempts')).toBe('3');
    expect(dead.header.get('traceparent')).toBe('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
    const dlqInfo = await bus.jsm.streams.info(Streams.MAIL_DLQ);
    expect(dlqInfo.state.messages).toBe(1);
    // Not left in the work queue to loop forever.
    await waitFor(async () => (await bus.jsm.streams.info(Streams.MAIL_INBOUND)).state.messages === 0);
  });

  it('redelivers a job whose handler asked for a retry, then acks it', async () => {
    let attempts = 0;
    const loop = new ConsumerLoop({
      js: bus.js,
      stream: Streams.MAIL_INBOUND,
      consumer: Consumers.STORAGE_DELIVER,
      logger,
      handler: () => {
        attempts += 1;
        return Promise.resolve(attempts < 2 ? JobOutcomes.retry('not yet', 20) : JobOutcomes.ack);
      },
    });
    loop.start();
    await publishDurable(bus.js, Subjects.inbound('retry-me'), enc.encode('x'), {
      msgId: 'retry-me:inbound',
    });
    await waitFor(() => loop.processed === 1);
    await loop.stop();
    expect(attempts).toBe(2);
  });
});
