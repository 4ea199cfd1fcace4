import type { AdminServiceServer } from '@postmesh/contracts';
import type { Logger } from '@postmesh/telemetry';
import { unary } from '../grpc/unary.js';
import type { AdminStore } from './admin-store.js';

/** AdminService over gRPC: one line per RPC (proto/postmesh/admin/v1/admin.proto). */
export function adminHandlers(store: AdminStore, logger: Logger): AdminServiceServer {
  return {
    createAdmin: unary(logger, 'CreateAdmin', (r) => store.createAdmin(r)),
    getAdmin: unary(logger, 'GetAdmin', (r) => store.getAdmin(r)),
    listAdmins: unary(logger, 'ListAdmins', (r) => store.listAdmins(r)),
    updateAdmin: unary(logger, 'UpdateAdmin', (r) => store.updateAdmin(r)),
    setAdminPassword: unary(logger, 'SetAdminPassword', (r) => store.setAdminPassword(r)),
    deleteAdmin: unary(logger, 'DeleteAdmin', (r) => store.deleteAdmin(r)),
    ensureOwner: unary(logger, 'EnsureOwner', (r) => store.ensureOwner(r)),
    authenticateAdmin: unary(logger, 'AuthenticateAdmin', (r) => store.authenticateAdmin(r)),
    beginTotpEnrollment: unary(logger, 'BeginTotpEnrollment', (r) => store.beginTotpEnrollment(r)),
    confirmTotpEnrollment: unary(logger, 'ConfirmTotpEnrollment', (r) => store.confirmTotpEnrollment(r)),
    disableTotp: unary(logger, 'DisableTotp', (r) => store.disableTotp(r)),
    createSession: unary(logger, 'CreateSession', (r) => store.createSession(r)),
    resolveSession: unary(logger, 'ResolveSession', (r) => store.resolveSession(r)),
    deleteSession: unary(logger, 'DeleteSession', (r) => store.deleteSession(r)),
    revokeSessions: unary(logger, 'RevokeSessions', (r) => store.revokeSessions(r)),
    createApiToken: unary(logger, 'CreateApiToken', (r) => store.createApiToken(r)),
    listApiTokens: unary(logger, 'ListApiTokens', (r) => store.listApiTokens(r)),
    revokeApiToken: unary(logger, 'RevokeApiToken', (r) => store.revokeApiToken(r)),
    resolveApiToken: unary(logger, 'ResolveApiToken', (r) => store.resolveApiToken(r)),
    appendAudit: unary(logger, 'AppendAudit', (r) => store.appendAudit(r)),
    queryAudit: unary(logger, 'QueryAudit', (r) => store.queryAudit(r)),
    getStorageStats: unary(logger, 'GetStorageStats', (r) => store.getStorageStats(r)),
    getUserUsage: unary(logger, 'GetUserUsage', (r) => store.getUserUsage(r)),
    getKekStatus: unary(logger, 'GetKekStatus', (r) => store.getKekStatus(r)),
    startKekRewrap: unary(logger, 'StartKekRewrap', (r) => store.startKekRewrap(r)),
  };
}
