/**
 * `@postmesh/storage-client`: the one gRPC client of the storage service (README.md).
 *
 *   const storage = connectStorage({ address, security, routes });
 *   await storage.mailstore.listMailboxes({ userId, … });
 */
export {
  connectStorage,
  type AppendInput,
  type Mailstore,
  type OwnerRoute,
  type OwnerRoutes,
  type StorageClient,
  type StorageClientOptions,
  type UnaryApi,
} from './client.js';
export {
  CALLER_CONTEXT,
  colocatedStorage,
  type CallPath,
  type ColocatedOptions,
  type LocalStorage,
} from './local.js';
export {
  StorageCallError,
  StorageError,
  StorageUnavailableError,
  isNotOwner,
  storageErrorOf,
} from './errors.js';
export { DEFAULT_CALL_POLICY, isIdempotent, type CallPolicy } from './policy.js';
