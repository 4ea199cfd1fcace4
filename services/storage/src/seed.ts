/**
 * Local stack only (POSTMESH_DEV_SEED=true): the demo domain `example.test` and mailbox user
 * `demo@example.test` with the password from POSTMESH_DEV_PASSWORD. Idempotent: what exists is
 * left as it is (the password of an existing demo user is not reset). The owner admin account
 * belongs to the admin service.
 */
import { ErrorReason } from '@postmesh/contracts';
import type { Logger } from '@postmesh/telemetry';
import type { DirectoryService } from './directory/directory-service.js';

export const DEV_DOMAIN = 'example.test';
export const DEV_USER = `demo@${DEV_DOMAIN}`;

export class DevSeedError extends Error {
  override readonly name = 'DevSeedError';
}

export interface DevSeedResult {
  readonly createdDomain: boolean;
  readonly createdUser: boolean;
}

export async function seedDevData(
  service: DirectoryService,
  password: string | undefined,
  logger: Logger,
): Promise<DevSeedResult> {
  if (password === undefined || password === '') {
    throw new DevSeedError('POSTMESH_DEV_PASSWORD is required when POSTMESH_DEV_SEED=true');
  }
  const domain = await service.createDomain({ name: DEV_DOMAIN, defaultQuotaBytes: 0 });
  if (!domain.ok && domain.error.reason !== ErrorReason.ALREADY_EXISTS) {
    throw new DevSeedError(`cannot create ${DEV_DOMAIN}: ${domain.error.message}`);
  }
  const user = await service.createUser({ address: DEV_USER, password, displayName: 'Demo User' });
  if (!user.ok && user.error.reason === ErrorReason.WEAK_PASSWORD) {
    throw new DevSeedError(`POSTMESH_DEV_PASSWORD is refused by the password policy: ${user.error.message}`);
  }
  if (!user.ok && user.error.reason !== ErrorReason.ALREADY_EXISTS) {
    throw new DevSeedError(`cannot create ${DEV_USER}: ${user.error.message}`);
  }
  const result = { createdDomain: domain.ok, createdUser: user.ok };
  logger.info(
    { domain: DEV_DOMAIN, user: DEV_USER, ...result },
    result.createdUser ? 'dev seed: created the demo account' : 'dev seed: demo account already present',
  );
  return result;
}
