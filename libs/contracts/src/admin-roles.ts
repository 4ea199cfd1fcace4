import { AdminRole } from './gen/postmesh/admin/v1/admin.js';

/** The administrator roles (DESIGN §6) by the names the API, the console and the database use. */
export type AdminRoleName = 'owner' | 'domain-admin' | 'helpdesk' | 'auditor';

const ROLES: Readonly<Record<AdminRoleName, AdminRole>> = {
  owner: AdminRole.OWNER,
  'domain-admin': AdminRole.DOMAIN_ADMIN,
  helpdesk: AdminRole.HELPDESK,
  auditor: AdminRole.AUDITOR,
};

/** The wire value of a role. */
export const adminRoleOf = (name: AdminRoleName): AdminRole => ROLES[name];

/** The name of a wire role; `undefined` for UNSPECIFIED or a value this build does not know. */
export function adminRoleName(role: AdminRole): AdminRoleName | undefined {
  for (const [name, value] of Object.entries(ROLES) as [AdminRoleName, AdminRole][])
    if (value === role) return name;
  return undefined;
}
