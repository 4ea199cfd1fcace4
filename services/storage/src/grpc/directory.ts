import type { DirectoryServiceServer } from '@postmesh/contracts';
import type { Logger } from '@postmesh/telemetry';
import type { DirectoryService } from '../directory/directory-service.js';
import type { WebhookStore } from '../webhooks/webhook-store.js';
import { unary } from './unary.js';

/** DirectoryService over gRPC: one line per RPC (proto/postmesh/directory/v1/directory.proto). */
export function directoryHandlers(
  service: DirectoryService,
  webhooks: WebhookStore,
  logger: Logger,
): DirectoryServiceServer {
  return {
    createDomain: unary(logger, 'CreateDomain', (r) => service.createDomain(r)),
    listDomains: unary(logger, 'ListDomains', (r) => service.listDomains(r)),
    getDomain: unary(logger, 'GetDomain', (r) => service.getDomain(r)),
    setDomainStatus: unary(logger, 'SetDomainStatus', (r) => service.setDomainStatus(r)),
    deleteDomain: unary(logger, 'DeleteDomain', (r) => service.deleteDomain(r)),
    createUser: unary(logger, 'CreateUser', (r) => service.createUser(r)),
    getUser: unary(logger, 'GetUser', (r) => service.getUser(r)),
    listUsers: unary(logger, 'ListUsers', (r) => service.listUsers(r)),
    updateUser: unary(logger, 'UpdateUser', (r) => service.updateUser(r)),
    setPassword: unary(logger, 'SetPassword', (r) => service.setPassword(r)),
    createAppPassword: unary(logger, 'CreateAppPassword', (r) => service.createAppPassword(r)),
    listAppPasswords: unary(logger, 'ListAppPasswords', (r) => service.listAppPasswords(r)),
    deleteAppPassword: unary(logger, 'DeleteAppPassword', (r) => service.deleteAppPassword(r)),
    deleteUser: unary(logger, 'DeleteUser', (r) => service.deleteUser(r)),
    createAlias: unary(logger, 'CreateAlias', (r) => service.createAlias(r)),
    createForward: unary(logger, 'CreateForward', (r) => service.createForward(r)),
    setCatchAll: unary(logger, 'SetCatchAll', (r) => service.setCatchAll(r)),
    listAddresses: unary(logger, 'ListAddresses', (r) => service.listAddresses(r)),
    deleteAddress: unary(logger, 'DeleteAddress', (r) => service.deleteAddress(r)),
    authenticate: unary(logger, 'Authenticate', (r) => service.authenticate(r)),
    resolveRecipient: unary(logger, 'ResolveRecipient', (r) => service.resolveRecipient(r)),
    generateDkimKey: unary(logger, 'GenerateDkimKey', (r) => service.generateDkimKey(r)),
    listDkimKeys: unary(logger, 'ListDkimKeys', (r) => service.listDkimKeys(r)),
    activateDkimKey: unary(logger, 'ActivateDkimKey', (r) => service.activateDkimKey(r)),
    retireDkimKey: unary(logger, 'RetireDkimKey', (r) => service.retireDkimKey(r)),
    getSigningKey: unary(logger, 'GetSigningKey', (r) => service.getSigningKey(r)),
    createWebhook: unary(logger, 'CreateWebhook', (r) => webhooks.createWebhook(r)),
    listWebhooks: unary(logger, 'ListWebhooks', (r) => webhooks.listWebhooks(r)),
    updateWebhook: unary(logger, 'UpdateWebhook', (r) => webhooks.updateWebhook(r)),
    rotateWebhookSecret: unary(logger, 'RotateWebhookSecret', (r) => webhooks.rotateWebhookSecret(r)),
    deleteWebhook: unary(logger, 'DeleteWebhook', (r) => webhooks.deleteWebhook(r)),
    beginUserTotpEnrollment: unary(logger, 'BeginUserTotpEnrollment', (r) =>
      service.beginUserTotpEnrollment(r),
    ),
    confirmUserTotpEnrollment: unary(logger, 'ConfirmUserTotpEnrollment', (r) =>
      service.confirmUserTotpEnrollment(r),
    ),
    disableUserTotp: unary(logger, 'DisableUserTotp', (r) => service.disableUserTotp(r)),
  };
}
