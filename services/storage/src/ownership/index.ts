export {
  PartitionCoordinator,
  type BatchTag,
  type PartitionCoordinatorOptions,
  type PartitionScopedCache,
} from './partition-coordinator.js';
