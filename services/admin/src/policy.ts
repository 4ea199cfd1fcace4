/**
 * The permission policy of DESIGN §6, in one table: role × action → grant. Every API endpoint
 * names one action; the guard (auth/guard.ts) resolves the request's target domain / user and asks
 * `decide`. Nothing else in the service makes an allow/deny decision. Pure: no I/O.
 */

export const Roles = ['owner', 'domain-admin', 'helpdesk', 'auditor', 'user'] as const;
export type Role = (typeof Roles)[number];
export type AdminRoleName = Exclude<Role, 'user'>;

/** `<area>.<verb>`. Reads end in `.read`; everything else changes state. */
export const Actions = [
  'domains.read',
  'domains.create',
  'domains.update',
  'domains.delete',
  'dns.read',
  'dkim.read',
  'dkim.write',
  /** A domain's webhook endpoints (docs/webhooks.md). */
  'webhooks.read',
  'webhooks.write',
  'users.read',
  'users.create',
  'users.update',
  'users.delete',
  'users.password',
  'users.unlock',
  'apppasswords.read',
  'apppasswords.write',
  'aliases.read',
  'aliases.write',
  /** A mail user's Sieve filters and vacation reply (docs/sieve.md). */
  'sieve.read',
  'sieve.write',
  /** Team mailboxes: a user's mailbox shared with members, and its ACL (docs/shared-mailboxes.md). */
  'teammailboxes.read',
  'teammailboxes.write',
  'queue.read',
  'queue.write',
  'trace.read',
  'dlq.read',
  'dlq.write',
  'audit.read',
  'admins.read',
  'admins.write',
  'tokens.read',
  'tokens.write',
  'health.read',
  /** The key-encryption key's status; `keys.write` re-wraps keys under the current KEK. */
  'keys.read',
  'keys.write',
] as const;
export type Action = (typeof Actions)[number];

/**
 * - `all`: any target in the system.
 * - `domains`: targets in the principal's domain scope only.
 * - `self`: only the principal's own account (users) / own tokens (admins).
 */
export type Grant = 'all' | 'domains' | 'self';

const ALL_READS = Object.fromEntries(
  Actions.filter((a) => a.endsWith('.read')).map((a) => [a, 'all']),
) as Partial<Record<Action, Grant>>;

export const POLICY: Readonly<Record<Role, Readonly<Partial<Record<Action, Grant>>>>> = {
  owner: Object.fromEntries(Actions.map((a) => [a, 'all'])),
  'domain-admin': {
    'domains.read': 'domains',
    'dns.read': 'domains',
    'dkim.read': 'domains',
    'dkim.write': 'domains',
    'webhooks.read': 'domains',
    'webhooks.write': 'domains',
    'users.read': 'domains',
    'users.create': 'domains',
    'users.update': 'domains',
    'users.delete': 'domains',
    'users.password': 'domains',
    'users.unlock': 'domains',
    'apppasswords.read': 'domains',
    'apppasswords.write': 'domains',
    'aliases.read': 'domains',
    'aliases.write': 'domains',
    'sieve.read': 'domains',
    'sieve.write': 'domains',
    'teammailboxes.read': 'domains',
    'teammailboxes.write': 'domains',
    'queue.read': 'domains',
    'queue.write': 'domains',
    'trace.read': 'domains',
    'admins.read': 'domains',
    // Only admins of the domain-admin's own domains, with no more rights (see canGrantAdmin).
    'admins.write': 'domains',
    'tokens.read': 'self',
    'tokens.write': 'self',
  },
  helpdesk: {
    'domains.read': 'domains',
    'users.read': 'domains',
    'users.password': 'domains',
    'users.unlock': 'domains',
    'apppasswords.read': 'domains',
    'aliases.read': 'domains',
    'teammailboxes.read': 'domains',
    'trace.read': 'domains',
    'tokens.read': 'self',
    'tokens.write': 'self',
  },
  // Reads everything, changes nothing (except its own API tokens).
  auditor: { ...ALL_READS, 'tokens.read': 'self', 'tokens.write': 'self' },
  user: {
    'users.read': 'self',
    'users.password': 'self',
    'apppasswords.read': 'self',
    'apppasswords.write': 'self',
    'aliases.read': 'self',
    'sieve.read': 'self',
    'sieve.write': 'self',
    'trace.read': 'self',
  },
};

/** Who is calling, as the policy sees it. */
export interface Subject {
  readonly role: Role;
  /** Domain scope of `domain-admin` and `helpdesk`; empty otherwise. */
  readonly domains: readonly string[];
  /** Admin id, or user id for the `user` role. */
  readonly id: string;
  /** For API tokens: their scopes (`users:read`, `*` …) and domain restriction. */
  readonly token?: { readonly scopes: readonly string[]; readonly domains: readonly string[] };
}

/** What the request touches, as far as the guard could resolve it. */
export interface Target {
  /** The domain the target belongs to; undefined for system-wide targets and unfiltered lists. */
  readonly domain?: string;
  /** The user the target is (for `self` grants of the `user` role). */
  readonly userId?: string;
  /** The admin who owns the target (tokens). */
  readonly ownerAdminId?: string;
  /** A list that the handler will filter to `Decision.domains`. */
  readonly list?: boolean;
}

export type Decision =
  | {
      readonly allow: true;
      /** Domains the handler may return data for: `all`, or this list (possibly empty). */
      readonly domains: 'all' | readonly string[];
      /** Restricted to the principal's own account / tokens. */
      readonly self: boolean;
    }
  | { readonly allow: false; readonly reason: string };

const isWrite = (action: Action): boolean => !action.endsWith('.read');

/** Token scopes are `<area>:read` / `<area>:write` (a write scope also allows reading) or `*`. */
export function tokenAllows(scopes: readonly string[], action: Action): boolean {
  const area = action.slice(0, action.indexOf('.'));
  if (scopes.includes('*') || scopes.includes(`${area}:write`)) return true;
  return !isWrite(action) && scopes.includes(`${area}:read`);
}

export function decide(subject: Subject, action: Action, target: Target): Decision {
  const grant = POLICY[subject.role][action];
  if (grant === undefined) return { allow: false, reason: `role ${subject.role} may not ${action}` };
  if (subject.token !== undefined && !tokenAllows(subject.token.scopes, action)) {
    return { allow: false, reason: `token scopes do not include ${action}` };
  }
  // Effective domain scope: the role's, narrowed by the token's restriction.
  let scope: 'all' | readonly string[] = grant === 'all' ? 'all' : subject.domains;
  if (subject.token !== undefined && subject.token.domains.length > 0) {
    const restriction = subject.token.domains;
    scope = scope === 'all' ? restriction : scope.filter((d) => restriction.includes(d));
  }
  switch (grant) {
    case 'self':
      if (target.list === true) return { allow: true, domains: scope, self: true };
      if (target.userId !== undefined) {
        return target.userId === subject.id
          ? { allow: true, domains: scope, self: true }
          : { allow: false, reason: 'only your own account' };
      }
      if (target.ownerAdminId !== undefined) {
        return target.ownerAdminId === subject.id
          ? { allow: true, domains: scope, self: true }
          : { allow: false, reason: 'only your own tokens' };
      }
      return { allow: true, domains: scope, self: true };
    case 'all':
    case 'domains':
      if (target.domain !== undefined) {
        return scope !== 'all' && !scope.includes(target.domain)
          ? { allow: false, reason: `domain ${target.domain} is outside your scope` }
          : { allow: true, domains: scope, self: false };
      }
      if (target.list === true) return { allow: true, domains: scope, self: false };
      // A system-wide target (creating a domain, the audit log, the DLQ, administrators, keys …)
      // needs a system-wide scope. The scope, not the role's grant, decides: an owner's token
      // restricted to some domains is domain-scoped and reaches nothing beyond them.
      if (scope !== 'all') {
        if (target.ownerAdminId !== undefined && target.ownerAdminId === subject.id) {
          return { allow: true, domains: scope, self: true };
        }
        return { allow: false, reason: `${action} on a system-wide target needs a system-wide scope` };
      }
      return { allow: true, domains: scope, self: false };
  }
}

/** Privilege rank: an admin may only hand out roles at or below their own. */
const RANK: Record<AdminRoleName, number> = { owner: 3, 'domain-admin': 2, helpdesk: 1, auditor: 0 };

/**
 * No privilege escalation: a caller may create or change an administrator only when both the
 * target's current and new state are within the caller's own rights. Only an owner with a
 * system-wide scope grants anything; a domain-admin, or any token restricted to domains (the
 * `scope` of the policy's decision), grants only a domain-scoped role at or below its own, on a
 * subset of its scope.
 */
export function canGrantAdmin(
  subject: Subject,
  target: { readonly role: AdminRoleName; readonly domains: readonly string[] },
  scope: 'all' | readonly string[],
): true | string {
  if (subject.role === 'owner' && scope === 'all') return true;
  if (subject.role !== 'owner' && subject.role !== 'domain-admin')
    return `role ${subject.role} may not manage administrators`;
  if (target.role === 'owner' || target.role === 'auditor')
    return `only an owner with a system-wide scope may grant ${target.role}`;
  if (RANK[target.role] > RANK[subject.role]) return `cannot grant ${target.role}`;
  if (target.domains.length === 0) return 'a domain-scoped administrator needs domains';
  const within = scope === 'all' ? subject.domains : scope;
  const outside = target.domains.filter((d) => !within.includes(d));
  return outside.length === 0 ? true : `domains outside your scope: ${outside.join(', ')}`;
}

/**
 * The caller as mta-delivery's queue operations see it (libs/bus queue-operations-contract.ts), from an allowing
 * decision: a system-wide decision keeps the role; a decision narrowed to domains (a domain-admin,
 * or an owner/auditor API token restricted to domains) is sent as that domain scope, so
 * mta-delivery narrows it too. An empty scope needs no call at all: undefined.
 */
export function queueScope(
  role: Role,
  domains: 'all' | readonly string[],
): { readonly role: Role; readonly domains: readonly string[] } | undefined {
  if (domains === 'all') return { role, domains: [] };
  if (domains.length === 0) return undefined;
  return { role: role === 'helpdesk' || role === 'user' ? role : 'domain-admin', domains };
}
