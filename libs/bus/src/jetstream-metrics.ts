/**
 * Queue depth on the ops port: messages and bytes per stream (MAIL_DLQ's is the dead-letter
 * queue's size) and, per consumer a service reads, what is pending, in flight (ack pending) and
 * redelivered. Read from JetStream at scrape time (one STREAM.INFO per stream and CONSUMER.INFO
 * per consumer, at most once a second), so the numbers are the server's, not this process's
 * guess. Every service reports the streams (dashboards take `max by (stream)`); each reports
 * only the consumers it owns, which are all its NATS user may inspect.
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import { Gauge, type Logger, type Registry } from '@postmesh/telemetry';

export interface JetStreamMetricsOptions {
  readonly jsm: () => JetStreamManager;
  readonly registry: Registry;
  readonly streams: readonly string[];
  readonly consumers: readonly { readonly stream: string; readonly consumer: string }[];
  readonly logger: Logger;
  /** Reuse one reading for scrapes within this window. */
  readonly cacheMs?: number;
}

interface Reading {
  readonly streams: Map<string, { messages: number; bytes: number }>;
  readonly consumers: Map<
    string,
    { stream: string; consumer: string; pending: number; ackPending: number; redelivered: number }
  >;
}

export function registerJetStreamMetrics(options: JetStreamMetricsOptions): void {
  const cacheMs = options.cacheMs ?? 1_000;
  let cached: { at: number; reading: Promise<Reading> } | undefined;
  let warned = false;
  const read = (): Promise<Reading> => {
    const now = Date.now();
    if (cached !== undefined && now - cached.at < cacheMs) return cached.reading;
    const reading = (async (): Promise<Reading> => {
      const jsm = options.jsm();
      const result: Reading = { streams: new Map(), consumers: new Map() };
      await Promise.all([
        ...options.streams.map(async (stream) => {
          const info = await jsm.streams.info(stream).catch(() => undefined);
          if (info !== undefined)
            result.streams.set(stream, { messages: info.state.messages, bytes: info.state.bytes });
        }),
        ...options.consumers.map(async ({ stream, consumer }) => {
          const info = await jsm.consumers.info(stream, consumer).catch(() => undefined);
          if (info === undefined) return;
          result.consumers.set(`${stream}/${consumer}`, {
            stream,
            consumer,
            pending: info.num_pending,
            ackPending: info.num_ack_pending,
            redelivered: info.num_redelivered,
          });
        }),
      ]);
      return result;
    })().catch((error: unknown) => {
      if (!warned) options.logger.warn({ err: error }, 'JetStream metrics unavailable');
      warned = true;
      return { streams: new Map(), consumers: new Map() };
    });
    cached = { at: now, reading };
    return reading;
  };
  const registers = [options.registry];
  const streamGauge = (
    metric: { readonly name: string; readonly help: string },
    pick: (s: { messages: number; bytes: number }) => number,
  ) =>
    new Gauge({
      ...metric,
      labelNames: ['stream'] as const,
      registers,
      async collect() {
        this.reset();
        for (const [stream, state] of (await read()).streams) this.set({ stream }, pick(state));
      },
    });
  streamGauge(
    { name: 'postmesh_jetstream_stream_messages', help: 'Messages stored in a JetStream stream' },
    (s) => s.messages,
  );
  streamGauge(
    { name: 'postmesh_jetstream_stream_bytes', help: 'Bytes stored in a JetStream stream' },
    (s) => s.bytes,
  );
  new Gauge({
    name: 'postmesh_dlq_messages',
    help: 'Dead letters waiting in MAIL_DLQ',
    registers,
    async collect() {
      const state = (await read()).streams.get('MAIL_DLQ');
      if (state !== undefined) this.set(state.messages);
    },
  });
  const consumerGauge = (
    metric: { readonly name: string; readonly help: string },
    pick: (c: { pending: number; ackPending: number; redelivered: number }) => number,
  ) =>
    new Gauge({
      ...metric,
      labelNames: ['stream', 'consumer'] as const,
      registers,
      async collect() {
        this.reset();
        for (const c of (await read()).consumers.values()) {
          this.set({ stream: c.stream, consumer: c.consumer }, pick(c));
        }
      },
    });
  consumerGauge(
    {
      name: 'postmesh_jetstream_consumer_pending',
      help: 'Jobs in the stream not yet delivered to the consumer (its backlog)',
    },
    (c) => c.pending,
  );
  consumerGauge(
    {
      name: 'postmesh_jetstream_consumer_ack_pending',
      help: 'Jobs delivered to the consumer and not yet acknowledged (in flight)',
    },
    (c) => c.ackPending,
  );
  consumerGauge(
    {
      name: 'postmesh_jetstream_consumer_redelivered',
      help: 'Jobs delivered to the consumer more than once and not yet acknowledged',
    },
    (c) => c.redelivered,
  );
}
