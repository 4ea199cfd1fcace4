/**
 * The storage side of administration (DESIGN §4–§6): AdminService over `admins`,
 * `admin_sessions`, `api_tokens` and the append-only `audit` collection. `createAdminService`
 * creates this module's indexes (idempotent) and returns the gRPC handlers to register.
 */
import { AdminServiceDefinition, type AdminServiceServer } from '@postmesh/contracts';
import type { Logger } from '@postmesh/telemetry';
import type { Db } from 'mongodb';
import type { KeyProvider } from '../crypto/types.js';
import { AdminStore } from './admin-store.js';
import { adminHandlers } from './grpc.js';

export { AdminStore, ADMIN_SESSIONS, LOCKOUT_THRESHOLD } from './admin-store.js';

export interface AdminServiceRegistration {
  readonly definition: typeof AdminServiceDefinition;
  readonly handlers: AdminServiceServer;
  readonly store: AdminStore;
}

export async function createAdminService(options: {
  readonly db: Db;
  readonly keyProvider: KeyProvider;
  readonly logger: Logger;
}): Promise<AdminServiceRegistration> {
  const store = new AdminStore(options);
  await store.ensureIndexes();
  return { definition: AdminServiceDefinition, handlers: adminHandlers(store, options.logger), store };
}
