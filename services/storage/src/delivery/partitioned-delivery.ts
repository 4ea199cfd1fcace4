/**
 * Delivery by partition (ADR 0007, Delivery jobs by partition): while this replica owns a
 * partition it pulls the partition's consumer `storage-deliver-p<n>` one batch at a time (a
 * confirm covers every smaller sequence, and one user's jobs stay in order) and hands each batch
 * to `InboundDelivery.handleBatch(msgs, {partition, epoch})`, which writes it tagged, confirms, then settles the
 * jobs. It starts when the partition is gained and stops when it is lost, and before a graceful
 * release, so the next owner starts after the batch in hand.
 *
 * On a gain it also removes what earlier owners of the partition wrote and never confirmed
 * (`Mailstore.discardWrites`, `discardRecords`), delivery batches and IMAP writes; until that is done the owner's own reads already ignore those
 * documents (WriteConfirmation), so delivery does not wait for it.
 */
import {
  BatchConsumerLoop,
  PartitionWorkers,
  PartitionedInbound,
  Streams,
  ensurePartitionConsumers,
  type Bus,
  type PartitionOwnership,
} from '@postmesh/bus';
import type { Logger } from '@postmesh/telemetry';
import type { Mailstore } from '../mailstore/index.js';
import { unconfirmedFilter } from '../ownership/index.js';
import type { InboundDelivery } from './inbound-delivery.js';

export interface PartitionedDeliveryOptions {
  readonly bus: Bus;
  readonly ownership: PartitionOwnership;
  readonly delivery: InboundDelivery;
  readonly mailstore: Mailstore;
  readonly logger: Logger;
  readonly maxDeliver?: number;
  readonly maxBatch?: number;
  readonly batchWaitMs?: number;
  readonly backoffMs?: readonly number[];
  /** How long a job fetched by an owner that died stays invisible to the next (consumer ack_wait). */
  readonly ackWaitMs?: number;
}

/** Creates the partitions' consumers and runs delivery for the partitions owned; `stop()` it. */
export async function startPartitionedDelivery(
  options: PartitionedDeliveryOptions,
): Promise<PartitionWorkers> {
  const { bus, ownership, delivery, mailstore, logger } = options;
  await ensurePartitionConsumers(bus.jsm, {
    partitions: ownership.partitions,
    maxDeliver: options.maxDeliver ?? 10,
    ...(options.ackWaitMs === undefined ? {} : { ackWaitMs: options.ackWaitMs }),
  });
  const workers = new PartitionWorkers(
    ownership,
    (partition, epoch) => {
      let stopped = false;
      const state = ownership.heldCommitState(partition);
      const filter = state === undefined ? undefined : unconfirmedFilter(partition, state.record.closed);
      const cleaned =
        filter === undefined
          ? Promise.resolve()
          : (async () => {
              for (let attempt = 0; !stopped; attempt++) {
                try {
                  const removed = await mailstore.discardWrites(filter, filter);
                  if (removed > 0) {
                    logger.warn({ partition, removed }, 'removed messages of earlier owners never confirmed');
                  }
                  // Flag records and tombstones of their IMAP writes (STORE, EXPUNGE, MOVE).
                  const records = await mailstore.discardRecords(filter);
                  if (records > 0) {
                    logger.warn({ partition, records }, 'removed records of earlier owners never confirmed');
                  }
                  return;
                } catch (error) {
                  logger.warn(
                    { err: error, partition, attempt },
                    'clean-up of unconfirmed writes failed; retrying',
                  );
                  await new Promise((r) => setTimeout(r, Math.min(30_000, 1_000 * 2 ** attempt)));
                }
              }
            })();
      const loop = new BatchConsumerLoop({
        js: bus.js,
        stream: Streams.MAIL_INBOUND,
        consumer: PartitionedInbound.consumer(partition),
        logger,
        maxDeliver: options.maxDeliver ?? 10,
        maxBatch: options.maxBatch ?? 64,
        maxWaitMs: options.batchWaitMs ?? 20,
        batchesInFlight: 1,
        // A batch in hand outlasting ack_wait would be handed out again meanwhile.
        heartbeatMs: Math.max(500, Math.floor((options.ackWaitMs ?? 30_000) / 3)),
        ...(options.backoffMs === undefined ? {} : { backoffMs: options.backoffMs }),
        handler: (msgs) => delivery.handleBatch(msgs, { partition, epoch }),
      });
      loop.start();
      logger.info({ partition, epoch }, 'delivering the jobs of the partition');
      return {
        async stop() {
          stopped = true;
          await loop.stop();
          await cleaned;
          logger.info({ partition, epoch }, 'stopped delivering the jobs of the partition');
        },
      };
    },
    (error, what) => logger.warn({ err: error }, what),
  );
  workers.start();
  return workers;
}
