export { DEFAULT_PARTITIONS, assignPartitions, fnv1a32, partitionOf, preferenceOrder } from './assignment.js';
export {
  MAX_CLOSED_EPOCHS,
  PartitionRecordError,
  acquiredRecord,
  confirmationOf,
  confirmedRecord,
  decodeRecord,
  encodeRecord,
  isConfirmed,
  openedPointer,
  releasedRecord,
  type ClosedEpoch,
  type CommitPointer,
  type Confirmation,
  type PartitionRecord,
} from './record.js';
export {
  CommitState,
  PartitionBuckets,
  PartitionOwnership,
  type ConfirmResult,
  type LossReason,
  type OwnershipEvent,
  type OwnershipMap,
  type PartitionOwner,
  type PartitionOwnershipOptions,
  type ReleaseHook,
  type ReplicaValue,
} from './ownership.js';
export type { CommitPointerStore } from './pointers.js';
export { ReplicaMembers, type Member } from './members.js';
export {
  PartitionedInbound,
  PartitionedJobs,
  ensurePartitionConsumers,
  groupByPartition,
  splitRecipientsByPartition,
  type PartitionBatch,
  type PartitionedRecipients,
  type PartitionConsumerOptions,
  type PartitionedJobsOptions,
} from './delivery.js';
export { OwnershipView, type Route } from './view.js';
export { PartitionWorkers, type PartitionWorker, type PartitionWorkerFactory } from './workers.js';
