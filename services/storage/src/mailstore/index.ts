/**
 * The mailstore of the storage service: mailboxes and messages of
 * each user, bodies encrypted once in the blob store (../blob) and shared by reference, searchable through a
 * blind index. `createMailstoreService` is what app.ts registers with the gRPC server;
 * `Mailstore` is the API the inbound delivery consumer calls (`prepareDelivery`, `commitDeliveries`).
 */
import type { MailboxChange } from '@postmesh/bus';
import type { MailstoreServiceServer } from '@postmesh/contracts';
import type { Logger } from '@postmesh/telemetry';
import type { Db } from 'mongodb';
import type { MailstoreRuntime } from './runtime.js';
import type { BlobStores } from '../blob/index.js';
import type { UserKeyring } from '../crypto/types.js';
import { Mailstore } from './mailstore.js';
import type { WriteTag } from './types.js';
import type { WriteFence } from './write-fence.js';
import { mailstoreServer } from './service.js';
import { SieveScripts } from '../sieve/script-store.js';
import { MailboxAcls } from '../acl/acl-store.js';

export { Mailstore, DEFAULT_LIMITS } from './mailstore.js';
export { MailstoreRuntime } from './runtime.js';
export type { CompactionSettings, CounterFlushSettings, MailstoreSettings } from './runtime.js';
export type {
  AppendInput,
  AppendResult,
  BatchDelivery,
  BatchDeliveryResult,
  ContentResult,
  DeliveryOutcome,
  DeliveryRecipient,
  MailboxRef,
  MailstoreDeps,
  MailstoreLimits,
  PreparedBody,
} from './mailstore.js';
export { createDefaultMailboxes, DEFAULT_MAILBOXES } from './mailboxes.js';
export { BlobIntegrityError, MailstoreError } from './errors.js';
export { MailstoreCollections } from './types.js';
export type { FencedWrite, WriteFence } from './write-fence.js';
export type { MailboxRecord, MessageRecord, SealedMeta, SearchIndexDoc, WriteTag } from './types.js';

/** Removes a user's mail and releases their references to stored bodies (DeleteUser, purge). */
export function purgeUserMail(
  deps: { db: Db; runtime: MailstoreRuntime; blobs: BlobStores; keyring: UserKeyring; logger: Logger },
  userId: string,
): Promise<void> {
  return new Mailstore(deps).purgeUserMail(userId);
}

/** The gRPC `MailstoreService` implementation (proto/postmesh/mailstore/v1/mailstore.proto). */
export function createMailstoreService(deps: {
  db: Db;
  runtime: MailstoreRuntime;
  blobs: BlobStores;
  keyring: UserKeyring;
  logger: Logger;
  onMailboxChanged?: (userId: string, change?: MailboxChange) => void;
  writeCounts?: (tag: WriteTag) => boolean;
  fence?: WriteFence;
}): MailstoreServiceServer {
  return mailstoreServer(
    new Mailstore(deps),
    deps.logger,
    new SieveScripts(deps.db),
    new MailboxAcls(deps.db),
  );
}
