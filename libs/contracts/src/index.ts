/**
 * `@postmesh/contracts`: the gRPC contracts between Postmesh services (DESIGN.md §3), generated
 * from proto/ into ./gen (never edited by hand), plus the few helpers every caller needs.
 *
 * Each area is a namespace with all its messages, enums, the service definition (for
 * `server.addService`), the server interface and the client constructor:
 *
 *   import { directory, DirectoryServiceClient } from '@postmesh/contracts';
 *   const res: directory.ResolveRecipientResponse = …;
 *
 * The most used names are also exported at the top level.
 */
export * as admin from './gen/postmesh/admin/v1/admin.js';
export * as common from './gen/postmesh/common/v1/errors.js';
export * as directory from './gen/postmesh/directory/v1/directory.js';
export * as mailstore from './gen/postmesh/mailstore/v1/mailstore.js';
export * as trace from './gen/postmesh/trace/v1/trace.js';

export {
  AdminServiceClient,
  AdminServiceService as AdminServiceDefinition,
  type AdminServiceServer,
} from './gen/postmesh/admin/v1/admin.js';
export { ErrorDetail, ErrorReason } from './gen/postmesh/common/v1/errors.js';
export {
  DirectoryServiceClient,
  DirectoryServiceService as DirectoryServiceDefinition,
  type DirectoryServiceServer,
} from './gen/postmesh/directory/v1/directory.js';
export {
  MailstoreServiceClient,
  MailstoreServiceService as MailstoreServiceDefinition,
  type MailstoreServiceServer,
  type UidRange,
  type UidSet,
} from './gen/postmesh/mailstore/v1/mailstore.js';
export {
  TraceServiceClient,
  TraceServiceService as TraceServiceDefinition,
  type TraceServiceServer,
} from './gen/postmesh/trace/v1/trace.js';

export {
  ContractError,
  ERROR_DETAIL_METADATA_KEY,
  errorDetailOf,
  grpcCodeFor,
  isServiceError,
  toGrpcError,
  type ErrorDetailInit,
} from './errors.js';
export {
  MAX_UID,
  resolveUidSet,
  uidSetFromUids,
  uidSetHas,
  uidSetProblem,
  type UidInterval,
} from './uidset.js';
export { adminRoleName, adminRoleOf, type AdminRoleName } from './admin-roles.js';
