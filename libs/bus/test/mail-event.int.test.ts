/**
 * Mail events and trace context on a real JetStream: an event MAIL_EVENTS did not take is held
 * by the outbox and stored once the stream is back; a job published inside a span carries its
 * `traceparent` header, and the consumer side finds the same trace in it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, inSpan, startTracing, traceIdOf, type Tracing } from '@postmesh/telemetry';
import { startTestEnvironment, type TestEnvironment } from '@postmesh/testing';
import {
  Bus,
  MailEventOutbox,
  Streams,
  Subjects,
  ensureTopology,
  jobTraceContext,
  mailEvent,
  parseMailEvent,
  publishDurable,
} from '../src/index.js';

const logger = createLogger('mail-event-test', 'silent');

async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('mail events on a real JetStream', () => {
  let env: TestEnvironment;
  let bus: Bus;
  let tracing: Tracing;

  beforeAll(async () => {
    tracing = startTracing('mail-event-test', {});
    env = await startTestEnvironment({ mongo: false });
    bus = await Bus.connect({ ...env.busOptions(), name: 'mail-event-test', logger, replicas: 1 });
  });
  afterAll(async () => {
    await bus?.drain();
    await env?.stop();
    await tracing?.shutdown();
  });

  it('holds an event JetStream did not take and stores it once the stream is back', async () => {
    await bus.jsm.streams.delete(Streams.MAIL_EVENTS);
    const outbox = new MailEventOutbox({ js: () => bus.js, logger, retryMs: 100, timeoutMs: 1_000 });
    const event = mailEvent({ service: 'test', kind: 'relayed', queueId: 'outbox1', recipient: 'a@b.test' });
    await outbox.publish(event);
    expect(outbox.pending).toBe(1);

    await ensureTopology(bus.nc, bus.jsm, { replicas: 1 });
    await waitFor(() => outbox.pending === 0);
    const stored = await bus.jsm.streams.getMessage(Streams.MAIL_EVENTS, {
      last_by_subj: Subjects.events('relayed'),
    });
    const parsed = stored === null ? undefined : parseMailEvent(stored.data);
    expect(parsed?.ok && parsed.event.eventId).toBe(event.eventId);
    await outbox.drain();
  });

  it('a job published inside a span carries its traceparent; the consumer side reads the same trace', async () => {
    let published = '';
    const ack = await inSpan('smtp transaction', {}, async () => {
      published = traceIdOf() ?? '';
      return publishDurable(bus.js, Subjects.events('queued'), new TextEncoder().encode('{}'), {
        msgId: `trace-${Date.now()}`,
      });
    });
    expect(published).toMatch(/^[0-9a-f]{32}$/);
    const stored = await bus.jsm.streams.getMessage(Streams.MAIL_EVENTS, { seq: ack.seq });
    expect(stored?.header.get('traceparent')).toMatch(new RegExp(`^00-${published}-[0-9a-f]{16}-01$`));
    expect(traceIdOf(jobTraceContext({ headers: stored?.header }))).toBe(published);
    // Without the header, the job's own field is the fallback.
    expect(traceIdOf(jobTraceContext({}, `00-${'b'.repeat(32)}-${'c'.repeat(16)}-01`))).toBe('b'.repeat(32));
  });
});
