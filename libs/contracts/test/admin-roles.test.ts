import { describe, expect, it } from 'vitest';
import { admin, adminRoleName, adminRoleOf, type AdminRoleName } from '../src/index.js';

describe('administrator roles', () => {
  it('maps every role name to its own wire value and back', () => {
    const names: AdminRoleName[] = ['owner', 'domain-admin', 'helpdesk', 'auditor'];
    const values = names.map(adminRoleOf);
    expect(new Set(values).size).toBe(names.length);
    expect(values).not.toContain(admin.AdminRole.UNSPECIFIED);
    expect(values.map(adminRoleName)).toEqual(names);
    expect(adminRoleOf('domain-admin')).toBe(admin.AdminRole.DOMAIN_ADMIN);
  });

  it('has no name for an unspecified or unknown wire value', () => {
    expect(adminRoleName(admin.AdminRole.UNSPECIFIED)).toBeUndefined();
    expect(adminRoleName(admin.AdminRole.UNRECOGNIZED)).toBeUndefined();
    expect(adminRoleName('ADMIN_ROLE_FROM_A_NEWER_BUILD' as unknown as admin.AdminRole)).toBeUndefined();
  });
});
