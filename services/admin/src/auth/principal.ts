import type { admin } from '@postmesh/contracts';
import { type directory } from '@postmesh/contracts';
import type { AdminRoleName, Decision, Subject } from '../policy.js';

/** Who is calling: an administrator (by session or API token) or a directory user (session). */
export type Principal =
  | {
      readonly kind: 'admin';
      readonly admin: admin.Admin;
      readonly role: AdminRoleName;
      readonly via: 'session';
      readonly sessionSecret: string;
    }
  | {
      readonly kind: 'admin';
      readonly admin: admin.Admin;
      readonly role: AdminRoleName;
      readonly via: 'token';
      readonly token: admin.ApiToken;
    }
  | {
      readonly kind: 'user';
      readonly user: directory.User;
      readonly via: 'session';
      readonly sessionSecret: string;
    };

/** Role names and wire values map one way for the whole system (`@postmesh/contracts`). */
export { adminRoleName as roleName, adminRoleOf as roleEnum } from '@postmesh/contracts';

export function subjectOf(principal: Principal): Subject {
  if (principal.kind === 'user') {
    const address = principal.user.address;
    return {
      role: 'user',
      id: principal.user.id,
      domains: [address.slice(address.lastIndexOf('@') + 1).toLowerCase()],
    };
  }
  const base = { role: principal.role, id: principal.admin.id, domains: principal.admin.domains };
  return principal.via === 'token'
    ? { ...base, token: { scopes: principal.token.scopes, domains: principal.token.domains } }
    : base;
}

export function actorOf(principal: Principal | undefined): { actor: string; actorRole: string } {
  if (principal === undefined) return { actor: 'anonymous', actorRole: '' };
  if (principal.kind === 'user') return { actor: `user:${principal.user.address}`, actorRole: 'user' };
  if (principal.via === 'token') return { actor: `token:${principal.token.id}`, actorRole: principal.role };
  return { actor: `admin:${principal.admin.email}`, actorRole: principal.role };
}

/** What the guard leaves on the request for handlers and the audit interceptor. */
export interface RequestAuth {
  readonly requestId: string;
  principal?: Principal;
  decision?: Extract<Decision, { allow: true }>;
  /** Audit target and domain, as resolved by the guard (handlers may refine the target). */
  target: string;
  domain: string;
}
