/** The policy table and its helpers, without servers. */
import { describe, expect, it } from 'vitest';
import { canGrantAdmin, decide, tokenAllows, type Subject } from '../src/policy.js';

const da: Subject = { role: 'domain-admin', id: 'a1', domains: ['a.test'] };

describe('decide', () => {
  it('keeps domain-scoped roles inside their domains', () => {
    expect(decide(da, 'users.create', { domain: 'a.test' })).toMatchObject({ allow: true });
    expect(decide(da, 'users.create', { domain: 'b.test' })).toMatchObject({ allow: false });
    expect(decide(da, 'domains.create', {})).toMatchObject({ allow: false });
    expect(decide(da, 'users.read', { list: true })).toEqual({
      allow: true,
      domains: ['a.test'],
      self: false,
    });
  });

  it('lets an auditor read everything and change nothing', () => {
    const auditor: Subject = { role: 'auditor', id: 'x', domains: [] };
    expect(decide(auditor, 'audit.read', {})).toMatchObject({ allow: true, domains: 'all' });
    for (const action of [
      'users.create',
      'domains.delete',
      'dkim.write',
      'dlq.write',
      'admins.write',
    ] as const) {
      expect(decide(auditor, action, { domain: 'a.test' })).toMatchObject({ allow: false });
    }
  });

  it('limits a user to their own account', () => {
    const user: Subject = { role: 'user', id: 'u1', domains: ['a.test'] };
    expect(decide(user, 'users.password', { domain: 'a.test', userId: 'u1' })).toMatchObject({
      allow: true,
      self: true,
    });
    expect(decide(user, 'users.password', { domain: 'a.test', userId: 'u2' })).toMatchObject({
      allow: false,
    });
    expect(decide(user, 'users.delete', { domain: 'a.test', userId: 'u1' })).toMatchObject({ allow: false });
  });

  it('narrows by token scopes and token domains', () => {
    const owner: Subject = {
      role: 'owner',
      id: 'o',
      domains: [],
      token: { scopes: ['users:read'], domains: ['a.test'] },
    };
    expect(decide(owner, 'users.read', { domain: 'a.test' })).toMatchObject({
      allow: true,
      domains: ['a.test'],
    });
    expect(decide(owner, 'users.read', { domain: 'b.test' })).toMatchObject({ allow: false });
    expect(decide(owner, 'users.create', { domain: 'a.test' })).toMatchObject({ allow: false });
    expect(tokenAllows(['users:write'], 'users.read')).toBe(true);
    expect(tokenAllows(['users:read'], 'users.password')).toBe(false);
    expect(tokenAllows(['*'], 'dlq.write')).toBe(true);
  });

  it('gives a domain-restricted token nothing system-wide, whatever its role', () => {
    const restricted = (role: 'owner' | 'auditor'): Subject => ({
      role,
      id: 'o',
      domains: [],
      token: { scopes: ['*'], domains: ['a.test'] },
    });
    for (const action of [
      'domains.create',
      'audit.read',
      'dlq.read',
      'dlq.write',
      'health.read',
      'keys.read',
      'keys.write',
      'admins.read',
      'admins.write',
    ] as const) {
      for (const role of ['owner', 'auditor'] as const) {
        const grant = decide(restricted(role), action, {});
        if (role === 'auditor' && !action.endsWith('.read')) continue;
        expect(grant, `${role} token restricted to a.test: ${action}`).toMatchObject({ allow: false });
      }
    }
    // Its own tokens stay its own; every administrator's, or another's, are system-wide.
    expect(decide(restricted('owner'), 'tokens.read', {})).toMatchObject({ allow: false });
    expect(decide(restricted('owner'), 'tokens.write', { ownerAdminId: 'o' })).toMatchObject({
      allow: true,
      self: true,
    });
    expect(decide(restricted('owner'), 'tokens.write', { ownerAdminId: 'p' })).toMatchObject({
      allow: false,
    });
    // Inside its domains it keeps its role's rights; lists are narrowed to them.
    expect(decide(restricted('owner'), 'domains.update', { domain: 'a.test' })).toMatchObject({
      allow: true,
    });
    expect(decide(restricted('owner'), 'admins.read', { list: true })).toEqual({
      allow: true,
      domains: ['a.test'],
      self: false,
    });
    // Unrestricted, the owner still reaches everything.
    const unrestricted: Subject = {
      role: 'owner',
      id: 'o',
      domains: [],
      token: { scopes: ['*'], domains: [] },
    };
    expect(decide(unrestricted, 'domains.create', {})).toMatchObject({ allow: true, domains: 'all' });
  });
});

describe('canGrantAdmin (no privilege escalation)', () => {
  it('allows a domain-admin to grant only scoped roles within their domains', () => {
    const scope = da.domains;
    expect(canGrantAdmin(da, { role: 'helpdesk', domains: ['a.test'] }, scope)).toBe(true);
    expect(canGrantAdmin(da, { role: 'domain-admin', domains: ['a.test'] }, scope)).toBe(true);
    expect(canGrantAdmin(da, { role: 'helpdesk', domains: ['a.test', 'b.test'] }, scope)).toMatch(
      /outside your scope/,
    );
    expect(canGrantAdmin(da, { role: 'owner', domains: [] }, scope)).toMatch(/only an owner/);
    expect(canGrantAdmin(da, { role: 'auditor', domains: [] }, scope)).toMatch(/only an owner/);
    expect(
      canGrantAdmin(
        { role: 'helpdesk', id: 'h', domains: ['a.test'] },
        { role: 'helpdesk', domains: ['a.test'] },
        ['a.test'],
      ),
    ).not.toBe(true);
  });

  it('treats an owner whose token is restricted to domains as domain-scoped', () => {
    const owner: Subject = {
      role: 'owner',
      id: 'o',
      domains: [],
      token: { scopes: ['*'], domains: ['a.test'] },
    };
    const scope = ['a.test'];
    expect(canGrantAdmin(owner, { role: 'owner', domains: [] }, scope)).toMatch(/only an owner/);
    expect(canGrantAdmin(owner, { role: 'auditor', domains: [] }, scope)).toMatch(/only an owner/);
    expect(canGrantAdmin(owner, { role: 'domain-admin', domains: ['b.test'] }, scope)).toMatch(
      /outside your scope/,
    );
    expect(canGrantAdmin(owner, { role: 'domain-admin', domains: ['a.test'] }, scope)).toBe(true);
    expect(canGrantAdmin(owner, { role: 'owner', domains: [] }, 'all')).toBe(true);
  });
});
