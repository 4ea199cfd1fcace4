export {
  PartitionCoordinator,
  advertisedAddress,
  type BatchTag,
  type PartitionCoordinatorOptions,
  type PartitionScopedCache,
} from './partition-coordinator.js';
export { WriteConfirmation, batchFilter, unconfirmedFilter } from './write-confirmation.js';
export { ImapWriteFence } from './write-fence.js';
export { DatabaseCommitPointers, POINTERS_COLLECTION } from './database-pointers.js';
