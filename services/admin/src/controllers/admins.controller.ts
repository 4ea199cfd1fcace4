/** Administrators, API tokens and the audit log. */
import { Controller, Inject, Req } from '@nestjs/common';
import { admin } from '@postmesh/contracts';
import { AdminSchema, AuditEntrySchema, Done, Page, TokenSchema, WithSecret } from '../api/schemas.js';
import { Endpoint } from '../api/endpoint.js';
import { ApiError } from '../api/errors.js';
import { toApiError } from '../api/filter.js';
import { authOf, type HttpRequest } from '../api/http.js';
import {
  bool,
  domainName,
  list,
  objectId,
  oneOf,
  optional,
  pageShape,
  parseObject,
  password,
  parseQuery,
  required,
  str,
  time,
} from '../api/validate.js';
import { passwordProblem } from '../api/password-policy.js';
import { adminView, auditView, tokenView } from '../api/views.js';
import { roleEnum } from '../auth/principal.js';
import { DEPS, type AdminDeps } from '../deps.js';
import { Actions } from '../policy.js';
import { decisionOf, domainIdOf, pagedAcross } from './scope.js';

const ROLE = oneOf(['owner', 'domain-admin', 'helpdesk', 'auditor']);
const AREAS = [...new Set(Actions.map((a) => a.slice(0, a.indexOf('.'))))];
const SCOPE = str({
  max: 40,
  pattern: new RegExp(`^(\\*|(${AREAS.join('|')}):(read|write))$`),
  what: '`*` or `<area>:read|write`',
});

const createBody = {
  email: required(str({ min: 3, max: 320 })),
  password: required(password()),
  displayName: optional(str({ max: 200 })),
  role: required(ROLE),
  domains: optional(list(domainName(), { max: 1000 })),
};

const updateBody = {
  role: optional(ROLE),
  domains: optional(list(domainName(), { max: 1000 })),
  displayName: optional(str({ max: 200 })),
  status: optional(oneOf(['active', 'disabled'])),
  unlock: optional(bool()),
  password: optional(password()),
};

const createTokenBody = {
  name: required(str({ min: 1, max: 200 })),
  scopes: required(list(SCOPE, { min: 1, max: 50 })),
  domains: optional(list(domainName(), { max: 1000 })),
  expiresAt: optional(time()),
};

const auditQuery = {
  ...pageShape,
  actor: optional(str({ max: 320 })),
  action: optional(str({ max: 100 })),
  target: optional(str({ max: 500 })),
  domain: optional(domainName()),
  result: optional(oneOf(['success', 'denied', 'failed'])),
  start: optional(time()),
  end: optional(time()),
};

@Controller()
export class AdminsController {
  constructor(@Inject(DEPS) private readonly deps: AdminDeps) {}

  @Endpoint({
    method: 'GET',
    path: '/admins',
    action: 'admins.read',
    target: { kind: 'list' },
    summary: 'Administrators (a domain-admin sees those of their own domains)',
    query: pageShape,
    response: Page(AdminSchema),
  })
  async list(@Req() request: HttpRequest) {
    const query = parseQuery(request.query, pageShape);
    const scope = decisionOf(request).domains;
    const { storage } = this.deps;
    if (scope === 'all') {
      const page = await storage.admin.listAdmins({
        pageSize: query.pageSize ?? 50,
        pageToken: query.pageToken ?? '',
        domain: '',
      });
      return { items: page.admins.map(adminView), nextPageToken: page.nextPageToken };
    }
    const seen = new Set<string>();
    return pagedAcross(scope, query.pageToken, query.pageSize ?? 50, async (domain, token, size) => {
      const page = await storage.admin.listAdmins({ pageSize: size, pageToken: token, domain });
      const items = page.admins.filter((a) => !seen.has(a.id) && a.domains.every((d) => scope.includes(d)));
      for (const a of items) seen.add(a.id);
      return { items: items.map(adminView), next: page.nextPageToken };
    });
  }

  @Endpoint({
    method: 'POST',
    path: '/admins',
    action: 'admins.write',
    target: { kind: 'admin-body' },
    summary: 'Create an administrator (never with more rights than your own)',
    status: 201,
    body: createBody,
    response: AdminSchema,
  })
  async create(@Req() request: HttpRequest) {
    const body = parseObject(request.body, createBody);
    this.checkPassword(body.password, body.email);
    await this.checkDomains(body.domains);
    const { admin: created } = await this.deps.storage.admin.createAdmin({
      email: body.email,
      password: body.password,
      displayName: body.displayName ?? '',
      role: roleEnum(body.role),
      domains: body.domains ?? [],
    });
    return created === undefined ? {} : adminView(created);
  }

  @Endpoint({
    method: 'GET',
    path: '/admins/:id',
    action: 'admins.read',
    target: { kind: 'admin-param', param: 'id' },
    summary: 'One administrator',
    response: AdminSchema,
  })
  async get(@Req() request: HttpRequest) {
    const { admin: found } = await this.deps.storage.admin.getAdmin({
      selector: { $case: 'id', value: objectId()(request.params.id, 'id') },
    });
    if (found === undefined) throw new ApiError('not_found', 'administrator not found');
    return adminView(found);
  }

  @Endpoint({
    method: 'PATCH',
    path: '/admins/:id',
    action: 'admins.write',
    target: { kind: 'admin-param', param: 'id' },
    summary: 'Change role, domains, name or status; unlock after failed logins; set a new password',
    body: updateBody,
    response: AdminSchema,
  })
  async update(@Req() request: HttpRequest) {
    const body = parseObject(request.body, updateBody);
    const adminId = objectId()(request.params.id, 'id');
    if (body.password !== undefined) this.checkPassword(body.password, '');
    await this.checkDomains(body.domains);
    if (body.password !== undefined)
      await this.deps.storage.admin.setAdminPassword({ adminId, password: body.password });
    const { admin: updated } = await this.deps.storage.admin.updateAdmin({
      adminId,
      ...(body.displayName === undefined ? {} : { displayName: body.displayName }),
      role: body.role === undefined ? admin.AdminRole.UNSPECIFIED : roleEnum(body.role),
      ...(body.domains === undefined ? {} : { domains: { domains: body.domains } }),
      status:
        body.status === undefined
          ? admin.AdminStatus.UNSPECIFIED
          : body.status === 'active'
            ? admin.AdminStatus.ACTIVE
            : admin.AdminStatus.DISABLED,
      unlock: body.unlock ?? false,
    });
    return updated === undefined ? {} : adminView(updated);
  }

  /** The password rule users are told (password-policy.ts), as a field error. */
  private checkPassword(password: string, email: string): void {
    const problem = passwordProblem(password, email);
    if (problem !== undefined) throw new ApiError('invalid_argument', `password ${problem}`, 'password');
  }

  /** An administrator's domains must exist: a typo would otherwise grant a domain created later. */
  private async checkDomains(domains: readonly string[] | undefined): Promise<void> {
    for (const name of domains ?? []) {
      try {
        await domainIdOf(this.deps.storage, name);
      } catch (error) {
        if (toApiError(error)?.code === 'not_found')
          throw new ApiError('invalid_argument', `domains: ${name} is not a domain here`, 'domains');
        throw error;
      }
    }
  }

  @Endpoint({
    method: 'DELETE',
    path: '/admins/:id',
    action: 'admins.write',
    target: { kind: 'admin-param', param: 'id' },
    summary: 'Delete an administrator (with their sessions and tokens)',
    response: Done('deleted'),
  })
  async remove(@Req() request: HttpRequest) {
    const adminId = objectId()(request.params.id, 'id');
    if (authOf(request).principal?.kind === 'admin' && adminIdOf(request) === adminId) {
      throw new ApiError('conflict', 'you cannot delete yourself');
    }
    await this.deps.storage.admin.deleteAdmin({ adminId });
    return { deleted: true };
  }

  @Endpoint({
    method: 'GET',
    path: '/tokens',
    action: 'tokens.read',
    target: { kind: 'list' },
    summary: 'API tokens: your own (an owner sees all)',
    query: pageShape,
    response: Page(TokenSchema),
  })
  async tokens(@Req() request: HttpRequest) {
    const query = parseQuery(request.query, pageShape);
    const decision = decisionOf(request);
    // Every administrator's tokens only for a system-wide scope: a token restricted to domains
    // lists its own administrator's tokens, like a domain-scoped role.
    const page = await this.deps.storage.admin.listApiTokens({
      adminId: decision.self || decision.domains !== 'all' ? adminIdOf(request) : '',
      pageSize: query.pageSize ?? 50,
      pageToken: query.pageToken ?? '',
    });
    return { items: page.tokens.map(tokenView), nextPageToken: page.nextPageToken };
  }

  @Endpoint({
    method: 'POST',
    path: '/tokens',
    action: 'tokens.write',
    target: { kind: 'system' },
    summary: 'Create an API token for yourself; it never has more rights than you. The secret is shown once.',
    status: 201,
    body: createTokenBody,
    response: WithSecret(TokenSchema),
  })
  async createToken(@Req() request: HttpRequest) {
    const principal = authOf(request).principal;
    if (principal?.kind !== 'admin' || principal.via !== 'session') {
      throw new ApiError(
        'permission_denied',
        'API tokens are created by a signed-in administrator, not by a token',
      );
    }
    const body = parseObject(request.body, createTokenBody);
    const own = principal.admin.domains;
    if (own.length > 0 && (body.domains ?? []).some((d) => !own.includes(d))) {
      throw new ApiError('permission_denied', 'a token cannot reach domains outside your scope', 'domains');
    }
    const created = await this.deps.storage.admin.createApiToken({
      adminId: principal.admin.id,
      name: body.name,
      scopes: body.scopes,
      domains: body.domains ?? [],
      ...(body.expiresAt === undefined ? {} : { expireTime: body.expiresAt }),
    });
    return { ...(created.token === undefined ? {} : tokenView(created.token)), secret: created.secret };
  }

  @Endpoint({
    method: 'DELETE',
    path: '/tokens/:id',
    action: 'tokens.write',
    target: { kind: 'token-param', param: 'id' },
    summary: 'Revoke an API token',
    response: Done('revoked'),
  })
  async revokeToken(@Req() request: HttpRequest) {
    await this.deps.storage.admin.revokeApiToken({ tokenId: objectId()(request.params.id, 'id') });
    return { revoked: true };
  }

  @Endpoint({
    method: 'GET',
    path: '/audit',
    action: 'audit.read',
    target: { kind: 'system' },
    summary: 'The audit log, newest first, filterable',
    query: auditQuery,
    response: Page(AuditEntrySchema),
  })
  async audit(@Req() request: HttpRequest) {
    const query = parseQuery(request.query, auditQuery);
    const page = await this.deps.storage.admin.queryAudit({
      actor: query.actor ?? '',
      action: query.action ?? '',
      target: query.target ?? '',
      domains: query.domain === undefined ? [] : [query.domain],
      result:
        query.result === 'success'
          ? admin.AuditResult.SUCCESS
          : query.result === 'denied'
            ? admin.AuditResult.DENIED
            : query.result === 'failed'
              ? admin.AuditResult.FAILED
              : admin.AuditResult.UNSPECIFIED,
      ...(query.start === undefined ? {} : { startTime: query.start }),
      ...(query.end === undefined ? {} : { endTime: query.end }),
      pageSize: query.pageSize ?? 50,
      pageToken: query.pageToken ?? '',
    });
    return { items: page.entries.map(auditView), nextPageToken: page.nextPageToken };
  }
}

function adminIdOf(request: HttpRequest): string {
  const principal = authOf(request).principal;
  return principal?.kind === 'admin' ? principal.admin.id : '';
}
