/**
 * BatchConsumerLoop against a real JetStream: while every batch slot is busy, the next batch
 * keeps taking the jobs that arrive (group commit), up to `maxBatch`, instead of closing after
 * `maxWaitMs`; every job is settled by its own outcome.
 */
import { AckPolicy, RetentionPolicy } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@postmesh/telemetry';
import { startTestEnvironment, type TestEnvironment } from '@postmesh/testing';
import { BatchConsumerLoop, Bus, JobOutcomes, publishDurable, type JobOutcome } from '../src/index.js';

const logger = createLogger('batch-consumer-test', 'silent');
const STREAM = 'TEST_BATCHES';

describe('batch consumer loop', () => {
  let env: TestEnvironment;
  let bus: Bus;
  beforeAll(async () => {
    env = await startTestEnvironment({ mongo: false });
    bus = await Bus.connect({ ...env.busOptions(), name: 'batch-consumer-test', logger, replicas: 1 });
    await bus.jsm.streams.add({
      name: STREAM,
      subjects: ['test.batches.>'],
      retention: RetentionPolicy.Workqueue,
    });
    await bus.jsm.consumers.add(STREAM, {
      durable_name: 'worker',
      ack_policy: AckPolicy.Explicit,
      ack_wait: 30_000_000_000,
      max_deliver: 3,
    });
  });
  afterAll(async () => {
    await bus?.drain();
    await env?.stop();
  });

  const publish = (n: number, from: number) =>
    Promise.all(
      Array.from({ length: n }, (_, i) =>
        publishDurable(bus.js, `test.batches.${from + i}`, new TextEncoder().encode(String(from + i)), {
          msgId: `job-${from + i}`,
        }),
      ),
    );

  it('grows the waiting batch while the one in flight is handled, then settles each job', async () => {
    const batches: string[][] = [];
    let release: () => void = () => undefined;
    const firstHeld = new Promise<void>((resolve) => (release = resolve));
    let entered: () => void = () => undefined;
    const firstEntered = new Promise<void>((resolve) => (entered = resolve));
    const loop = new BatchConsumerLoop({
      js: bus.js,
      stream: STREAM,
      consumer: 'worker',
      logger,
      maxBatch: 8,
      maxWaitMs: 10,
      batchesInFlight: 1,
      async handler(msgs): Promise<JobOutcome[]> {
        batches.push(msgs.map((m) => new TextDecoder().decode(m.data)));
        if (batches.length === 1) {
          entered();
          await firstHeld;
        }
        return msgs.map(() => JobOutcomes.ack);
      },
    });
    loop.start();
    try {
      await publish(1, 0);
      await firstEntered;
      // Published one by one, each long after `maxWaitMs`, while the first batch is in hand.
      for (let i = 1; i <= 12; i += 1) {
        await publish(1, i);
        await new Promise((r) => setTimeout(r, 30));
      }
      release();
      const deadline = Date.now() + 10_000;
      while (loop.processed < 13 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    } finally {
      await loop.stop();
    }
    expect(loop.processed).toBe(13);
    // The waiting batch took jobs up to maxBatch; the rest formed the next one.
    expect(batches[0]).toEqual(['0']);
    expect(batches[1]).toEqual(['1', '2', '3', '4', '5', '6', '7', '8']);
    expect(batches.slice(2).flat()).toEqual(['9', '10', '11', '12']);
    const info = await bus.jsm.consumers.info(STREAM, 'worker');
    expect(info.num_pending + info.num_ack_pending).toBe(0);
  }, 30_000);
});
