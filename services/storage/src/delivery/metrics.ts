import { Counter, Histogram, type Registry } from '@postmesh/telemetry';

/** What `storage-deliver` reports on the ops port (docs/metrics.md). */
export class DeliveryMetrics {
  /** Copies by outcome (delivered, junked, rejected, over-quota); destination is always local. */
  readonly deliveries: Counter<'outcome' | 'destination'>;
  /** The batch's durable write (Mailstore.commitDeliveries). */
  readonly commitSeconds: Histogram;
  /** From the 250 at smtp-inbound (the job's receivedAt) to storage picking the job up. */
  readonly queueWaitSeconds: Histogram<'stream'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.deliveries = new Counter({
      name: 'postmesh_deliveries_total',
      help: 'Delivery outcomes per recipient, by outcome and destination (local, remote)',
      labelNames: ['outcome', 'destination'] as const,
      registers,
    });
    this.commitSeconds = new Histogram({
      name: 'postmesh_delivery_write_seconds',
      help: 'Durable write of a delivery batch (messages, deliveries, mailbox counters)',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.queueWaitSeconds = new Histogram({
      name: 'postmesh_queue_wait_seconds',
      help: 'Time a job waited in its stream before a consumer picked it up',
      labelNames: ['stream'] as const,
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 3600],
      registers,
    });
  }
}
