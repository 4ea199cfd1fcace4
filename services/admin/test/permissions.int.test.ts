/**
 * The permission matrix: every endpoint × every role × how the role signs in (a console session,
 * an API token with `*`, an API token restricted to the principal's domain), including
 * cross-domain attempts. 2xx only where the principal may act, 403 everywhere else, and no
 * response to a domain-scoped principal (or a domain-restricted token) ever contains another
 * domain's data. A token restricted to a domain gets nothing system-wide, whatever its role: no
 * administrators beyond its domain, no domain creation, no audit log, DLQ, health or keys.
 *
 * Principals: owner; domain-admin and helpdesk of alpha.test; auditor; user ann@alpha.test; and
 * the administrators' tokens (`owner-token`, `aud-token` unrestricted; `*-alpha` restricted to
 * alpha.test). The other domain is beta.test (user bob@beta.test).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, OWNER, startAdminHarness, type AdminHarness } from './harness.js';

const SESSIONS = ['owner', 'da', 'hd', 'aud', 'usr'] as const;
type Session = (typeof SESSIONS)[number];
/** Each administrator's tokens: `*` scopes, unrestricted or restricted to alpha.test. */
const TOKENS = {
  'owner-token': { of: 'owner', restricted: false },
  'owner-alpha': { of: 'owner', restricted: true },
  'da-alpha': { of: 'da', restricted: true },
  'hd-alpha': { of: 'hd', restricted: true },
  'aud-token': { of: 'aud', restricted: false },
  'aud-alpha': { of: 'aud', restricted: true },
} as const satisfies Record<string, { of: Exclude<Session, 'usr'>; restricted: boolean }>;
type TokenName = keyof typeof TOKENS;
type Who = Session | TokenName;
const TOKEN_NAMES = Object.keys(TOKENS) as TokenName[];
const WHO: readonly Who[] = [...SESSIONS, ...TOKEN_NAMES];
const RESTRICTED = TOKEN_NAMES.filter((t) => TOKENS[t].restricted);
const PASSWORD = 'matrix password 2026';

/** The session principal behind a token (or the principal itself). */
const sessionOf = (who: Who): Session => (who in TOKENS ? TOKENS[who as TokenName].of : (who as Session));

/** The roles, signed in any way: for targets inside alpha.test and lists (narrowed to alpha.test). */
const anyWay = (...roles: Session[]): Who[] => WHO.filter((w) => roles.includes(sessionOf(w)));
/** The roles by session or unrestricted token: system-wide targets and other domains. */
const systemWide = (...roles: Session[]): Who[] =>
  anyWay(...roles).filter((w) => !(RESTRICTED as readonly Who[]).includes(w));
/** The roles by session only (what a token never does: create tokens). */
const sessionsOnly = (...roles: Session[]): Who[] => roles;

let h: AdminHarness;
const clients = {} as Record<Who, ApiClient>;
const ids = { ann: '', bob: '', hd: '', hd2: '', aud: '' };
let hd2: ApiClient;
/** Every request the matrix made, per principal: `METHOD /path` (for the coverage check). */
const exercised = new Map<Who, Set<string>>();

async function ok(
  r: Promise<{ status: number; body: unknown; text: string }>,
): Promise<Record<string, unknown>> {
  const res = await r;
  if (res.status >= 300) throw new Error(`setup call failed: ${res.status} ${res.text}`);
  return res.body as Record<string, unknown>;
}

beforeAll(async () => {
  h = await startAdminHarness();
  const owner = new ApiClient(h.baseUrl);
  await owner.login(OWNER.email, OWNER.password);
  clients.owner = owner;
  for (const name of ['alpha.test', 'beta.test']) await ok(owner.post('/api/v1/domains', { name }));
  ids.ann = String(
    (await ok(owner.post('/api/v1/users', { address: 'ann@alpha.test', password: PASSWORD }))).id,
  );
  ids.bob = String(
    (await ok(owner.post('/api/v1/users', { address: 'bob@beta.test', password: PASSWORD }))).id,
  );
  await ok(owner.post('/api/v1/domains/beta.test/dkim', { selector: 'betakey' }));
  const mk = async (email: string, role: string, domains: string[]) =>
    String((await ok(owner.post('/api/v1/admins', { email, password: PASSWORD, role, domains }))).id);
  await mk('da@example.test', 'domain-admin', ['alpha.test']);
  ids.hd = await mk('hd@example.test', 'helpdesk', ['alpha.test']);
  ids.hd2 = await mk('hd2@example.test', 'helpdesk', ['alpha.test']);
  ids.aud = await mk('aud@example.test', 'auditor', []);
  for (const [who, email] of [
    ['da', 'da@example.test'],
    ['hd', 'hd@example.test'],
    ['aud', 'aud@example.test'],
    ['usr', 'ann@alpha.test'],
  ] as const) {
    const c = new ApiClient(h.baseUrl);
    const r = await c.login(email, PASSWORD);
    if (r.status !== 200) throw new Error(`${who} cannot sign in: ${r.text}`);
    clients[who] = c;
  }
  hd2 = new ApiClient(h.baseUrl);
  if ((await hd2.login('hd2@example.test', PASSWORD)).status !== 200) throw new Error('hd2 cannot sign in');
  for (const name of TOKEN_NAMES) {
    const { of, restricted } = TOKENS[name];
    const created = await ok(
      clients[of].post('/api/v1/tokens', {
        name,
        scopes: ['*'],
        ...(restricted ? { domains: ['alpha.test'] } : {}),
      }),
    );
    clients[name] = new ApiClient(h.baseUrl, String(created.secret));
  }
});
afterAll(async () => {
  await h?.stop();
});

interface Case {
  readonly name: string;
  readonly method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** A path, or a function preparing a fresh target (as the owner) for this principal. */
  readonly path: string | ((who: Who) => Promise<string>);
  readonly body?: (who: Who) => unknown;
  readonly allowed: readonly Who[];
  /** Statuses that count as "allowed" besides 2xx (e.g. 404 for an id that does not exist). */
  readonly allowedStatus?: readonly number[];
}

const owner = (): ApiClient => clients.owner;
/** Unique per principal and run, usable in an address, a DNS label or an email. */
const tag = (who: Who): string => `${who}-${Date.now().toString(36)}`;
const freshUser = async (domain: string, who: Who): Promise<string> =>
  String(
    (await ok(owner().post('/api/v1/users', { address: `u-${tag(who)}@${domain}`, password: PASSWORD }))).id,
  );
const freshAdmin = async (who: Who, role: string, domains: string[]): Promise<string> =>
  String(
    (
      await ok(
        owner().post('/api/v1/admins', {
          email: `a-${tag(who)}@example.test`,
          password: PASSWORD,
          role,
          domains,
        }),
      )
    ).id,
  );
/** One key per domain and purpose, made once: a domain has at most 20 DKIM keys. */
const dkimKeys = new Map<string, Promise<string>>();
const dkimKey = (domain: string, purpose: 'activate' | 'retire'): Promise<string> => {
  const key = `${domain} ${purpose}`;
  let id = dkimKeys.get(key);
  if (id === undefined) {
    id = ok(owner().post(`/api/v1/domains/${domain}/dkim`, { selector: `k-${purpose}` })).then((k) =>
      String(k.id),
    );
    dkimKeys.set(key, id);
  }
  return id;
};
/** A webhook made once per domain for the cases that change one (at most 20 per domain). */
const sharedWebhooks = new Map<string, Promise<string>>();
const freshWebhook = (domain: string): Promise<string> =>
  ok(
    owner().post(`/api/v1/domains/${domain}/webhooks`, {
      url: `https://hooks.example.com/${domain}`,
      events: ['delivered'],
    }),
  ).then((w) => String(w.id));
const sharedWebhook = (domain: string): Promise<string> => {
  let id = sharedWebhooks.get(domain);
  if (id === undefined) sharedWebhooks.set(domain, (id = freshWebhook(domain)));
  return id;
};
const freshAppPassword = async (userId: string, who: Who): Promise<string> =>
  String((await ok(owner().post(`/api/v1/users/${userId}/app-passwords`, { label: tag(who) }))).id);
/** A new Sieve script of a user, named for the principal (a user may have 16). */
const freshSieveScript = async (userId: string, who: Who): Promise<string> => {
  const name = `s-${tag(who)}`;
  await ok(owner().post(`/api/v1/users/${userId}/sieve-scripts`, { name, content: 'keep;' }));
  return encodeURIComponent(name);
};
/** One script per user for the reads (the 16-script limit leaves no room for one per principal). */
const sharedSieveScripts = new Map<string, Promise<string>>();
const sharedSieveScript = (userId: string): Promise<string> => {
  let name = sharedSieveScripts.get(userId);
  if (name === undefined) sharedSieveScripts.set(userId, (name = freshSieveScript(userId, 'owner')));
  return name;
};
/** A team mailbox `Team` of a user, shared with `anyone`, made once per user for the ACL cases. */
const teamMailboxes = new Map<string, Promise<unknown>>();
const teamMailboxPath = async (userId: string, query: string): Promise<string> => {
  let made = teamMailboxes.get(userId);
  if (made === undefined) {
    made = ok(
      owner().post(`/api/v1/users/${userId}/team-mailboxes`, {
        path: 'Team',
        members: [{ identifier: 'anyone', rights: 'lr' }],
      }),
    );
    teamMailboxes.set(userId, made);
  }
  await made;
  return `/api/v1/users/${userId}/team-mailboxes/acl${query}`;
};
const TEAM_BODY = () => ({ path: 'Team', members: [{ identifier: 'anyone', rights: 'lr' }] });
/** A new token of the administrator behind `who` (the owner's for the user, who has none). */
const freshOwnToken = async (who: Who): Promise<string> => {
  const session = sessionOf(who);
  const by = session === 'usr' ? owner() : clients[session];
  return String((await ok(by.post('/api/v1/tokens', { name: tag(who), scopes: ['users:read'] }))).id);
};

const ALL_ROLES: Session[] = ['owner', 'da', 'hd', 'aud', 'usr'];

const CASES: readonly Case[] = [
  {
    name: 'list domains',
    method: 'GET',
    path: '/api/v1/domains',
    allowed: anyWay('owner', 'da', 'hd', 'aud'),
  },
  {
    name: 'create a domain',
    method: 'POST',
    path: '/api/v1/domains',
    body: (w) => ({ name: `new-${tag(w)}.test` }),
    allowed: systemWide('owner'),
  },
  {
    name: 'read own domain',
    method: 'GET',
    path: '/api/v1/domains/alpha.test',
    allowed: anyWay('owner', 'da', 'hd', 'aud'),
  },
  {
    name: 'read other domain',
    method: 'GET',
    path: '/api/v1/domains/beta.test',
    allowed: systemWide('owner', 'aud'),
  },
  {
    name: 'suspend/activate own domain',
    method: 'PATCH',
    path: '/api/v1/domains/alpha.test',
    body: () => ({ status: 'active' }),
    allowed: anyWay('owner'),
  },
  {
    name: 'suspend/activate other domain',
    method: 'PATCH',
    path: '/api/v1/domains/beta.test',
    body: () => ({ status: 'active' }),
    allowed: systemWide('owner'),
  },
  {
    name: 'delete a domain',
    method: 'DELETE',
    path: async (w) => {
      const name = `gone-${tag(w)}.test`;
      await ok(owner().post('/api/v1/domains', { name }));
      return `/api/v1/domains/${name}`;
    },
    allowed: systemWide('owner'),
  },
  {
    name: 'DNS records of own domain',
    method: 'GET',
    path: '/api/v1/domains/alpha.test/dns',
    allowed: anyWay('owner', 'da', 'aud'),
  },
  {
    name: 'DNS records of other domain',
    method: 'GET',
    path: '/api/v1/domains/beta.test/dns',
    allowed: systemWide('owner', 'aud'),
  },
  {
    name: 'DKIM keys of own domain',
    method: 'GET',
    path: '/api/v1/domains/alpha.test/dkim',
    allowed: anyWay('owner', 'da', 'aud'),
  },
  {
    name: 'DKIM keys of other domain',
    method: 'GET',
    path: '/api/v1/domains/beta.test/dkim',
    allowed: systemWide('owner', 'aud'),
  },
  {
    name: 'generate DKIM key, own domain',
    method: 'POST',
    path: '/api/v1/domains/alpha.test/dkim',
    body: (w) => ({ selector: `s-${tag(w)}` }),
    allowed: anyWay('owner', 'da'),
  },
  {
    name: 'generate DKIM key, other domain',
    method: 'POST',
    path: '/api/v1/domains/beta.test/dkim',
    body: (w) => ({ selector: `s-${tag(w)}` }),
    allowed: systemWide('owner'),
  },
  {
    name: 'activate DKIM key, own domain',
    method: 'POST',
    path: async () => `/api/v1/domains/alpha.test/dkim/${await dkimKey('alpha.test', 'activate')}/activate`,
    allowed: anyWay('owner', 'da'),
  },
  {
    name: 'activate DKIM key, other domain',
    method: 'POST',
    path: async () => `/api/v1/domains/beta.test/dkim/${await dkimKey('beta.test', 'activate')}/activate`,
    allowed: systemWide('owner'),
  },
  {
    name: 'retire DKIM key, own domain',
    method: 'POST',
    path: async () => `/api/v1/domains/alpha.test/dkim/${await dkimKey('alpha.test', 'retire')}/retire`,
    allowed: anyWay('owner', 'da'),
  },
  {
    name: 'retire DKIM key, other domain',
    method: 'POST',
    path: async () => `/api/v1/domains/beta.test/dkim/${await dkimKey('beta.test', 'retire')}/retire`,
    allowed: systemWide('owner'),
  },
  {
    name: 'webhooks of own domain',
    method: 'GET',
    path: '/api/v1/domains/alpha.test/webhooks',
    allowed: anyWay('owner', 'da', 'aud'),
  },
  {
    name: 'add webhook, own domain',
    method: 'POST',
    path: '/api/v1/domains/alpha.test/webhooks',
    body: (w) => ({ url: `https://hooks.example.com/${tag(w)}`, events: ['bounced'] }),
    allowed: anyWay('owner', 'da'),
  },
  {
    name: 'change webhook, own domain',
    method: 'PATCH',
    path: async () => `/api/v1/domains/alpha.test/webhooks/${await sharedWebhook('alpha.test')}`,
    body: () => ({ enabled: true }),
    allowed: anyWay('owner', 'da'),
  },
  {
    name: 'rotate webhook secret, own domain',
    method: 'POST',
    path: async () =>
      `/api/v1/domains/alpha.test/webhooks/${await sharedWebhook('alpha.test')}/rotate-secret`,
    allowed: anyWay('owner', 'da'),
  },
  {
    name: 'remove webhook, own domain',
    method: 'DELETE',
    path: async () => `/api/v1/domains/alpha.test/webhooks/${await freshWebhook('alpha.test')}`,
    allowed: anyWay('owner', 'da'),
  },
  {
    name: 'webhooks of other domain',
    method: 'GET',
    path: '/api/v1/domains/beta.test/webhooks',
    allowed: systemWide('owner', 'aud'),
  },
  {
    name: 'add webhook, other domain',
    method: 'POST',
    path: '/api/v1/domains/beta.test/webhooks',
    body: (w) => ({ url: `https://hooks.example.com/${tag(w)}`, events: ['bounced'] }),
    allowed: systemWide('owner'),
  },
  {
    name: 'change webhook, other domain',
    method: 'PATCH',
    path: async () => `/api/v1/domains/beta.test/webhooks/${await sharedWebhook('beta.test')}`,
    body: () => ({ enabled: true }),
    allowed: systemWide('owner'),
  },
  {
    name: 'rotate webhook secret, other domain',
    method: 'POST',
    path: async () => `/api/v1/domains/beta.test/webhooks/${await sharedWebhook('beta.test')}/rotate-secret`,
    allowed: systemWide('owner'),
  },
  {
    name: 'remove webhook, other domain',
    method: 'DELETE',
    path: async () => `/api/v1/domains/beta.test/webhooks/${await freshWebhook('beta.test')}`,
    allowed: systemWide('owner'),
  },
  { name: 'list users', method: 'GET', path: '/api/v1/users', allowed: anyWay(...ALL_ROLES) },
  // A user's list is always their own account, whatever domain they ask for.
  {
    name: 'list users of other domain',
    method: 'GET',
    path: '/api/v1/users?domain=beta.test',
    allowed: [...systemWide('owner', 'aud'), 'usr'],
  },
  {
    name: 'create user, own domain',
    method: 'POST',
    path: '/api/v1/users',
    body: (w) => ({ address: `n-${tag(w)}@alpha.test`, password: PASSWORD }),
    allowed: anyWay('owner', 'da'),
  },
  {
    name: 'create user, other domain',
    method: 'POST',
    path: '/api/v1/users',
    body: (w) => ({ address: `n-${tag(w)}@beta.test`, password: PASSWORD }),
    allowed: systemWide('owner'),
  },
  {
    name: 'read user, own domain',
    method: 'GET',
    path: () => Promise.resolve(`/api/v1/users/${ids.ann}`),
    allowed: anyWay(...ALL_ROLES),
  },
  {
    name: 'read user, other domain',
    method: 'GET',
    path: () => Promise.resolve(`/api/v1/users/${ids.bob}`),
    allowed: systemWide('owner', 'aud'),
  },
  {
    name: 'update user, own domain',
    method: 'PATCH',
    path: () => Promise.resolve(`/api/v1/users/${ids.ann}`),
    body: () => ({ displayName: 'Ann' }),
    allowed: anyWay('owner', 'da'),
  },
  {
    name: 'update user, other domain',
    method: 'PATCH',
    path: () => Promise.resolve(`/api/v1/users/${ids.bob}`),
    body: () => ({ displayName: 'Bob' }),
    allowed: systemWide('owner'),
  },
  // A reset ends the user's other console sessions: administrators reset a fresh user, so that
  // ann's own session (the `usr` principal) lives on; ann changes her own password.
  {
    name: 'reset password, own domain',
    method: 'POST',
    path: async (w) => `/api/v1/users/${w === 'usr' ? ids.ann : await freshUser('alpha.test', w)}/password`,
    // A user changing their own password gives the current one (here the same, so it stays valid).
    body: (w) => (w === 'usr' ? { password: PASSWORD, currentPassword: PASSWORD } : { password: PASSWORD }),
    allowed: anyWay('owner', 'da', 'hd', 'usr'),
  },
  {
    name: 'reset password, other domain',
    method: 'POST',
    path: () => Promise.resolve(`/api/v1/users/${ids.bob}/password`),
    body: () => ({ password: PASSWORD }),
    allowed: systemWide('owner'),
  },
  {
    name: 'unlock user, own domain',
    method: 'POST',
    path: () => Promise.resolve(`/api/v1/users/${ids.ann}/unlock`),
    body: () => ({}),
    allowed: anyWay('owner', 'da', 'hd'),
  },
  {
    name: 'unlock user, other domain',
    method: 'POST',
    path: () => Promise.resolve(`/api/v1/users/${ids.bob}/unlock`),
    body: () => ({}),
    allowed: systemWide('owner'),
  },
  {
    name: 'delete user, own domain',
    method: 'DELETE',
    path: async (w) => `/api/v1/users/${await freshUser('alpha.test', w)}?purge=true`,
    allowed: anyWay('owner', 'da'),
  },
  {
    name: 'delete user, other domain',
    method: 'DELETE',
    path: async (w) => `/api/v1/users/${await freshUser('beta.test', w)}`,
    allowed: systemWide('owner'),
  },
  {
    name: 'list app passwords, own domain',
    method: 'GET',
    path: () => Promise.resolve(`/api/v1/users/${ids.ann}/app-passwords`),
    allowed: anyWay(...ALL_ROLES),
  },
  {
    name: 'list app passwords, other domain',
    method: 'GET',
    path: () => Promise.resolve(`/api/v1/users/${ids.bob}/app-passwords`),
    allowed: systemWide('owner', 'aud'),
  },
  {
    name: 'create app password, own domain',
    method: 'POST',
    path: () => Promise.resolve(`/api/v1/users/${ids.ann}/app-passwords`),
    body: (w) => ({ label: w }),
    allowed: anyWay('owner', 'da', 'usr'),
  },
  {
    name: 'create app password, other domain',
    method: 'POST',
    path: () => Promise.resolve(`/api/v1/users/${ids.bob}/app-passwords`),
    body: (w) => ({ label: w }),
    allowed: systemWide('owner'),
  },
  {
    name: 'revoke app password, own domain',
    method: 'DELETE',
    path: async (w) => `/api/v1/users/${ids.ann}/app-passwords/${await freshAppPassword(ids.ann, w)}`,
    allowed: anyWay('owner', 'da', 'usr'),
  },
  {
    name: 'revoke app password, other domain',
    method: 'DELETE',
    path: async (w) => `/api/v1/users/${ids.bob}/app-passwords/${await freshAppPassword(ids.bob, w)}`,
    allowed: systemWide('owner'),
  },
  {
    name: 'list Sieve scripts, own domain',
    method: 'GET',
    path: () => Promise.resolve(`/api/v1/users/${ids.ann}/sieve-scripts`),
    allowed: anyWay('owner', 'da', 'aud', 'usr'),
  },
  {
    name: 'get a Sieve script, own domain',
    method: 'GET',
    path: async () => `/api/v1/users/${ids.ann}/sieve-scripts/${await sharedSieveScript(ids.ann)}`,
    allowed: anyWay('owner', 'da', 'aud', 'usr'),
  },
  {
    name: 'put a Sieve script, own domain',
    method: 'POST',
    path: () => Promise.resolve(`/api/v1/users/${ids.ann}/sieve-scripts`),
    body: () => ({ name: 'matrix', content: 'keep;' }),
    allowed: anyWay('owner', 'da', 'usr'),
  },
  {
    name: 'set the active Sieve script, own domain',
    method: 'POST',
    path: () => Promise.resolve(`/api/v1/users/${ids.ann}/sieve-active`),
    body: () => ({ name: '' }),
    allowed: anyWay('owner', 'da', 'usr'),
  },
  {
    name: 'delete a Sieve script, own domain',
    method: 'DELETE',
    path: async (w) => `/api/v1/users/${ids.ann}/sieve-scripts/${await freshSieveScript(ids.ann, w)}`,
    allowed: anyWay('owner', 'da', 'usr'),
  },
  {
    name: 'read the vacation reply, own domain',
    method: 'GET',
    path: () => Promise.resolve(`/api/v1/users/${ids.ann}/vacation`),
    allowed: anyWay('owner', 'da', 'aud', 'usr'),
  },
  {
    name: 'set the vacation reply, own domain',
    method: 'POST',
    path: () => Promise.resolve(`/api/v1/users/${ids.ann}/vacation`),
    body: () => ({ enabled: false, subject: 'Away', body: 'Back soon.', days: 7 }),
    allowed: anyWay('owner', 'da', 'usr'),
  },
  {
    name: 'list Sieve scripts, other domain',
    method: 'GET',
    path: () => Promise.resolve(`/api/v1/users/${ids.bob}/sieve-scripts`),
    allowed: systemWide('owner', 'aud'),
  },
  {
    name: 'get a Sieve script, other domain',
    method: 'GET',
    path: async () => `/api/v1/users/${ids.bob}/sieve-scripts/${await sharedSieveScript(ids.bob)}`,
    allowed: systemWide('owner', 'aud'),
  },
  {
    name: 'put a Sieve script, other domain',
    method: 'POST',
    path: () => Promise.resolve(`/api/v1/users/${ids.bob}/sieve-scripts`),
    body: () => ({ name: 'matrix', content: 'keep;' }),
    allowed: systemWide('owner'),
  },
  {
    name: 'set the active Sieve script, other domain',
    method: 'POST',
    path: () => Promise.resolve(`/api/v1/users/${ids.bob}/sieve-active`),
    body: () => ({ name: '' }),
    allowed: systemWide('owner'),
  },
  {
    name: 'delete a Sieve script, other domain',
    method: 'DELETE',
    path: async (w) => `/api/v1/users/${ids.bob}/sieve-scripts/${await freshSieveScript(ids.bob, w)}`,
    allowed: systemWide('owner'),
  },
  {
    name: 'read the vacation reply, other domain',
    method: 'GET',
    path: () => Promise.resolve(`/api/v1/users/${ids.bob}/vacation`),
    allowed: systemWide('owner', 'aud'),
  },
  {
    name: 'set the vacation reply, other domain',
    method: 'POST',
    path: () => Promise.resolve(`/api/v1/users/${ids.bob}/vacation`),
    body: () => ({ enabled: false, subject: 'Away', body: 'Back soon.', days: 7 }),
    allowed: systemWide('owner'),
  },
  {
    name: 'create a team mailbox, own domain',
    method: 'POST',
    path: () => Promise.resolve(`/api/v1/users/${ids.ann}/team-mailboxes`),
    body: TEAM_BODY,
    allowed: anyWay('owner', 'da'),
  },
  {
    name: "read a team mailbox's ACL, own domain",
    method: 'GET',
    path: () => teamMailboxPath(ids.ann, '?path=Team'),
    allowed: anyWay('owner', 'da', 'hd', 'aud'),
  },
  {
    name: 'change a team mailbox member, own domain',
    method: 'PATCH',
    path: () => teamMailboxPath(ids.ann, ''),
    body: () => ({ path: 'Team', identifier: 'anyone', rights: 'lr' }),
    allowed: anyWay('owner', 'da'),
  },
  {
    name: 'remove a team mailbox member, own domain',
    method: 'DELETE',
    path: () => teamMailboxPath(ids.ann, '?path=Team&identifier=anyone'),
    allowed: anyWay('owner', 'da'),
  },
  {
    name: 'create a team mailbox, other domain',
    method: 'POST',
    path: () => Promise.resolve(`/api/v1/users/${ids.bob}/team-mailboxes`),
    body: TEAM_BODY,
    allowed: systemWide('owner'),
  },
  {
    name: "read a team mailbox's ACL, other domain",
    method: 'GET',
    path: () => teamMailboxPath(ids.bob, '?path=Team'),
    allowed: systemWide('owner', 'aud'),
  },
  {
    name: 'change a team mailbox member, other domain',
    method: 'PATCH',
    path: () => teamMailboxPath(ids.bob, ''),
    body: () => ({ path: 'Team', identifier: 'anyone', rights: 'lr' }),
    allowed: systemWide('owner'),
  },
  {
    name: 'remove a team mailbox member, other domain',
    method: 'DELETE',
    path: () => teamMailboxPath(ids.bob, '?path=Team&identifier=anyone'),
    allowed: systemWide('owner'),
  },
  {
    name: 'list aliases, own domain',
    method: 'GET',
    path: '/api/v1/aliases?domain=alpha.test',
    allowed: anyWay(...ALL_ROLES),
  },
  // A user's alias list is always their own addresses, whatever domain they ask for.
  {
    name: 'list aliases, other domain',
    method: 'GET',
    path: '/api/v1/aliases?domain=beta.test',
    allowed: [...systemWide('owner', 'aud'), 'usr'],
  },
  {
    name: 'create alias, own domain',
    method: 'POST',
    path: '/api/v1/aliases',
    body: (w) => ({ address: `al-${tag(w)}@alpha.test`, userIds: [ids.ann] }),
    allowed: anyWay('owner', 'da'),
  },
  {
    name: 'create alias, other domain',
    method: 'POST',
    path: '/api/v1/aliases',
    body: (w) => ({ address: `al-${tag(w)}@beta.test`, userIds: [ids.bob] }),
    allowed: systemWide('owner'),
  },
  {
    name: 'delete alias, own domain',
    method: 'DELETE',
    path: async (w) => {
      const address = `rm-${tag(w)}@alpha.test`;
      await ok(owner().post('/api/v1/aliases', { address, userIds: [ids.ann] }));
      return `/api/v1/aliases/${address}`;
    },
    allowed: anyWay('owner', 'da'),
  },
  {
    name: 'delete alias, other domain',
    method: 'DELETE',
    path: async (w) => {
      const address = `rm-${tag(w)}@beta.test`;
      await ok(owner().post('/api/v1/aliases', { address, userIds: [ids.bob] }));
      return `/api/v1/aliases/${address}`;
    },
    allowed: systemWide('owner'),
  },
  // mta-delivery is not running in this suite: whoever the policy lets through gets 503. A
  // restricted token is sent to mta-delivery as its domain scope, which narrows it again.
  {
    name: 'outbound queue',
    method: 'GET',
    path: '/api/v1/queue',
    allowed: anyWay('owner', 'da', 'aud'),
    allowedStatus: [503],
  },
  {
    name: 'queue retry',
    method: 'POST',
    path: '/api/v1/queue/spool1:example.org/retry',
    body: () => ({}),
    allowed: anyWay('owner', 'da'),
    allowedStatus: [503],
  },
  {
    name: 'queue cancel',
    method: 'DELETE',
    path: '/api/v1/queue/spool1:example.org?dsn=false',
    allowed: anyWay('owner', 'da'),
    allowedStatus: [503],
  },
  {
    name: 'trace, own domain',
    method: 'GET',
    path: '/api/v1/trace?address=ann@alpha.test',
    allowed: anyWay(...ALL_ROLES),
  },
  { name: 'DLQ list', method: 'GET', path: '/api/v1/dlq', allowed: systemWide('owner', 'aud') },
  {
    name: 'DLQ re-drive',
    method: 'POST',
    path: '/api/v1/dlq/999999/redrive',
    body: () => ({}),
    allowed: systemWide('owner'),
    allowedStatus: [404],
  },
  {
    name: 'DLQ discard',
    method: 'DELETE',
    path: '/api/v1/dlq/999999',
    allowed: systemWide('owner'),
    allowedStatus: [404],
  },
  { name: 'audit log', method: 'GET', path: '/api/v1/audit', allowed: systemWide('owner', 'aud') },
  { name: 'list admins', method: 'GET', path: '/api/v1/admins', allowed: anyWay('owner', 'da', 'aud') },
  {
    name: 'read a helpdesk of own domain',
    method: 'GET',
    path: () => Promise.resolve(`/api/v1/admins/${ids.hd}`),
    allowed: anyWay('owner', 'da', 'aud'),
  },
  {
    name: 'read the auditor',
    method: 'GET',
    path: () => Promise.resolve(`/api/v1/admins/${ids.aud}`),
    allowed: systemWide('owner', 'aud'),
  },
  {
    name: 'create helpdesk, own domain',
    method: 'POST',
    path: '/api/v1/admins',
    body: (w) => ({
      email: `h-${tag(w)}@example.test`,
      password: PASSWORD,
      role: 'helpdesk',
      domains: ['alpha.test'],
    }),
    allowed: anyWay('owner', 'da'),
  },
  {
    name: 'create helpdesk, other domain',
    method: 'POST',
    path: '/api/v1/admins',
    body: (w) => ({
      email: `hb-${tag(w)}@example.test`,
      password: PASSWORD,
      role: 'helpdesk',
      domains: ['beta.test'],
    }),
    allowed: systemWide('owner'),
  },
  {
    name: 'create an owner (escalation)',
    method: 'POST',
    path: '/api/v1/admins',
    body: (w) => ({ email: `o-${tag(w)}@example.test`, password: PASSWORD, role: 'owner' }),
    allowed: systemWide('owner'),
  },
  {
    name: 'create an auditor (escalation)',
    method: 'POST',
    path: '/api/v1/admins',
    body: (w) => ({ email: `au-${tag(w)}@example.test`, password: PASSWORD, role: 'auditor' }),
    allowed: systemWide('owner'),
  },
  {
    name: 'rename a helpdesk of own domain',
    method: 'PATCH',
    path: () => Promise.resolve(`/api/v1/admins/${ids.hd}`),
    body: () => ({ displayName: 'Helpdesk' }),
    allowed: anyWay('owner', 'da'),
  },
  {
    name: 'widen a helpdesk to another domain (escalation)',
    method: 'PATCH',
    path: () => Promise.resolve(`/api/v1/admins/${ids.hd2}`),
    body: () => ({ role: 'domain-admin', domains: ['alpha.test', 'beta.test'] }),
    allowed: systemWide('owner'),
  },
  {
    name: 'change the auditor',
    method: 'PATCH',
    path: () => Promise.resolve(`/api/v1/admins/${ids.aud}`),
    body: () => ({ displayName: 'Auditor' }),
    allowed: systemWide('owner'),
  },
  {
    name: 'delete a helpdesk of own domain',
    method: 'DELETE',
    path: async (w) => `/api/v1/admins/${await freshAdmin(w, 'helpdesk', ['alpha.test'])}`,
    allowed: anyWay('owner', 'da'),
  },
  {
    name: 'delete an owner',
    method: 'DELETE',
    path: async (w) => `/api/v1/admins/${await freshAdmin(w, 'owner', [])}`,
    allowed: systemWide('owner'),
  },
  {
    name: 'list own tokens',
    method: 'GET',
    path: '/api/v1/tokens',
    allowed: anyWay('owner', 'da', 'hd', 'aud'),
  },
  {
    name: 'create own token',
    method: 'POST',
    path: '/api/v1/tokens',
    body: (w) => ({ name: `t-${w}`, scopes: ['users:read'] }),
    allowed: sessionsOnly('owner', 'da', 'hd', 'aud'),
  },
  {
    name: 'revoke own token',
    method: 'DELETE',
    path: async (w) => `/api/v1/tokens/${await freshOwnToken(w)}`,
    allowed: anyWay('owner', 'da', 'hd', 'aud'),
  },
  {
    name: "revoke another administrator's token",
    method: 'DELETE',
    path: async (w) =>
      `/api/v1/tokens/${String((await ok(hd2.post('/api/v1/tokens', { name: tag(w), scopes: ['users:read'] }))).id)}`,
    allowed: systemWide('owner'),
  },
  { name: 'system health', method: 'GET', path: '/api/v1/health', allowed: systemWide('owner', 'aud') },
  { name: 'KEK status', method: 'GET', path: '/api/v1/keys/kek', allowed: systemWide('owner', 'aud') },
  { name: 'KEK re-wrap', method: 'POST', path: '/api/v1/keys/kek/rewrap', allowed: systemWide('owner') },
  { name: 'who am I', method: 'GET', path: '/api/v1/me', allowed: anyWay(...ALL_ROLES) },
  // The console's landing page: scoped like the domains list (each section by its own action).
  { name: 'overview', method: 'GET', path: '/api/v1/overview', allowed: anyWay('owner', 'da', 'hd', 'aud') },
  {
    name: 'overview setup checks',
    method: 'GET',
    path: '/api/v1/overview/setup',
    allowed: anyWay('owner', 'da', 'hd', 'aud'),
  },
  // Scoped like the message trace; a mail user's own trace does not include alerts.
  {
    name: 'recent alerts',
    method: 'GET',
    path: '/api/v1/alerts',
    allowed: anyWay('owner', 'da', 'hd', 'aud'),
  },
];

/** Principals limited to alpha.test: nothing they receive may mention beta.test. */
const SCOPED: readonly Who[] = ['da', 'hd', 'usr', ...RESTRICTED];

describe.each(CASES)('$method $name', (c) => {
  it.each(WHO)('as %s', async (who) => {
    const path = typeof c.path === 'string' ? c.path : await c.path(who);
    const r = await clients[who].request(
      c.method,
      path,
      c.body?.(who) ?? (c.method === 'GET' || c.method === 'DELETE' ? undefined : {}),
    );
    let seen = exercised.get(who);
    if (seen === undefined) exercised.set(who, (seen = new Set()));
    seen.add(`${c.method} ${path.split('?')[0] ?? ''}`);
    if (c.allowed.includes(who)) {
      const good = (r.status >= 200 && r.status < 300) || (c.allowedStatus ?? []).includes(r.status);
      expect(good, `${who} ${c.method} ${path} → ${r.status} ${r.text}`).toBe(true);
    } else {
      expect(r.status, `${who} ${c.method} ${path} → ${r.status} ${r.text}`).toBe(403);
      expect(r.body).toMatchObject({ error: { status: 403, code: 'permission_denied' } });
    }
    if (SCOPED.includes(who)) {
      // Never another domain's data.
      expect(r.text).not.toContain('beta.test');
      expect(r.text).not.toContain(ids.bob);
    }
  });
});

describe('matrix coverage', () => {
  it('exercises every endpoint of the API with every principal, restricted tokens included', async () => {
    const doc = (await clients.owner.get('/api/docs')).body as {
      paths: Record<string, Record<string, unknown>>;
    };
    // Sign-in/out and TOTP enrolment are about the caller's own session, not a permission.
    const endpoints = Object.entries(doc.paths)
      .filter(([p]) => !p.includes('/auth/') && !p.endsWith('/api/docs') && !p.includes('/me/totp'))
      .flatMap(([p, methods]) => Object.keys(methods).map((m) => ({ method: m.toUpperCase(), path: p })));
    expect(endpoints.length).toBeGreaterThan(40);
    for (const who of WHO) {
      const seen = [...(exercised.get(who) ?? [])];
      for (const e of endpoints) {
        const pattern = new RegExp(`^${e.method} ${e.path.replace(/\{[^}]+\}/g, '[^/]+')}$`);
        expect(
          seen.some((s) => pattern.test(s)),
          `${e.method} ${e.path} is never exercised as ${who}`,
        ).toBe(true);
      }
    }
  });
});
