/**
 * The one place where permissions are enforced (DESIGN §6): for every request, identify the
 * principal (bearer API token or session cookie + CSRF token), resolve what the endpoint touches
 * (its domain, user or owner), ask the policy, and either let the handler run with the decision
 * attached or answer 401/403 and write the denial to the audit log.
 */
import { randomUUID } from 'node:crypto';
import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { admin, directory } from '@postmesh/contracts';
import { ApiError, fromGrpc } from '../api/errors.js';
import { endpointOf, type EndpointSpec } from '../api/endpoint.js';
import { headerOf, type HttpRequest } from '../api/http.js';
import { domainOf } from '../api/validate.js';
import { DEPS, type AdminDeps } from '../deps.js';
import { senderDomainOf } from '../ops/queue-operations-client.js';
import { canGrantAdmin, decide, Roles, type AdminRoleName, type Subject, type Target } from '../policy.js';
import { csrfMatches, CSRF_HEADER, readCookie, SESSION_COOKIE } from './cookies.js';
import { roleName, subjectOf, type Principal, type RequestAuth } from './principal.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

@Injectable()
export class PolicyGuard implements CanActivate {
  constructor(@Inject(DEPS) private readonly deps: AdminDeps) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<HttpRequest>();
    const spec = endpointOf(context.getHandler());
    const incoming = headerOf(request, 'x-request-id');
    const auth: RequestAuth = {
      requestId: incoming !== undefined && /^[A-Za-z0-9-]{8,64}$/.test(incoming) ? incoming : randomUUID(),
      target: '',
      domain: '',
    };
    request.pm = auth;
    if (spec === undefined) throw new ApiError('internal', 'internal error');
    refuseUndeclaredInput(request, spec);
    if (spec.action === 'public') return true;

    const principal = await this.identify(request);
    if (principal === undefined) {
      await this.deny(request, spec, undefined, 'unauthenticated', 'no valid session or token');
      throw new ApiError('unauthenticated', 'sign in first (session expired or missing)');
    }
    auth.principal = principal;
    // CSRF: a cookie-authenticated change must carry the session's CSRF token. Bearer tokens are
    // not sent by browsers on their own, so they need none.
    if (principal.via === 'session' && !SAFE_METHODS.has(request.method)) {
      if (!csrfMatches(principal.sessionSecret, headerOf(request, CSRF_HEADER))) {
        await this.deny(request, spec, principal, 'denied', 'missing or wrong CSRF token');
        throw new ApiError('permission_denied', 'missing or invalid CSRF token (X-CSRF-Token)');
      }
    }
    if (spec.action === 'authenticated') return true;

    const subject = subjectOf(principal);
    const resolved = await this.resolveTarget(request, spec, subject);
    auth.target = resolved.label;
    auth.domain = resolved.target.domain ?? '';
    const decision = decide(subject, spec.action, resolved.target);
    const extra = decision.allow ? resolved.extraCheck?.(decision) : undefined;
    if (!decision.allow || (extra !== undefined && extra !== true)) {
      const reason = !decision.allow ? decision.reason : String(extra);
      await this.deny(request, spec, principal, 'denied', reason);
      // The reason goes to the audit log; the caller learns only that the action is not theirs.
      throw new ApiError('permission_denied', `not allowed: ${spec.action}`);
    }
    auth.decision = decision;
    return true;
  }

  private async identify(request: HttpRequest): Promise<Principal | undefined> {
    const { storage } = this.deps;
    const authorization = headerOf(request, 'authorization');
    if (authorization !== undefined) {
      const match = /^Bearer\s+(\S{1,200})$/i.exec(authorization);
      if (match?.[1] === undefined) return undefined;
      const resolved = await this.call(storage.admin.resolveApiToken({ secret: match[1] }));
      const role = resolved.admin === undefined ? undefined : roleName(resolved.admin.role);
      if (resolved.token === undefined || resolved.admin === undefined || role === undefined)
        return undefined;
      return { kind: 'admin', admin: resolved.admin, role, via: 'token', token: resolved.token };
    }
    const secret = readCookie(headerOf(request, 'cookie'), SESSION_COOKIE);
    if (secret === undefined || secret === '') return undefined;
    const { session } = await this.call(storage.admin.resolveSession({ secret }));
    if (session === undefined) return undefined;
    if (session.principalKind === admin.PrincipalKind.ADMIN) {
      const found = await storage.admin
        .getAdmin({ selector: { $case: 'id', value: session.principalId } })
        .catch(() => undefined);
      const role = found?.admin === undefined ? undefined : roleName(found.admin.role);
      if (found?.admin === undefined || role === undefined) return undefined;
      return { kind: 'admin', admin: found.admin, role, via: 'session', sessionSecret: secret };
    }
    const found = await storage.directory
      .getUser({ selector: { $case: 'id', value: session.principalId } })
      .catch(() => undefined);
    // A disabled user's sessions end (they are also revoked when the user is disabled).
    if (found?.user === undefined || found.user.status === directory.UserStatus.DISABLED) return undefined;
    return { kind: 'user', user: found.user, via: 'session', sessionSecret: secret };
  }

  private async resolveTarget(
    request: HttpRequest,
    spec: EndpointSpec,
    subject: Subject,
  ): Promise<{
    target: Target;
    label: string;
    extraCheck?: (decision: { domains: 'all' | readonly string[] }) => true | string;
  }> {
    const { storage } = this.deps;
    const t = spec.target;
    const param = (name: string): string => {
      const value = request.params[name];
      if (value === undefined || value === '' || value.length > 320) {
        throw new ApiError('invalid_argument', `${name}: is required`, name);
      }
      return value;
    };
    switch (t.kind) {
      case 'system':
        return { target: {}, label: '' };
      case 'list': {
        // A list narrowed to one domain is a request about that domain.
        const query = (request.query ?? {}) as Record<string, unknown>;
        const domain =
          typeof query.domain === 'string' && query.domain !== '' ? query.domain.toLowerCase() : undefined;
        return domain === undefined
          ? { target: { list: true }, label: '' }
          : { target: { list: true, domain }, label: domain };
      }
      case 'domain-param': {
        const domain = param(t.param).toLowerCase();
        return { target: { domain }, label: domain };
      }
      case 'address-param': {
        const address = param(t.param);
        return { target: { domain: domainOf(address) }, label: address };
      }
      case 'body-address': {
        const body = request.body as Record<string, unknown> | undefined;
        const value = body?.[t.field];
        if (typeof value !== 'string' || !value.includes('@')) {
          throw new ApiError(
            'invalid_argument',
            `${t.field}: expected an address such as name@example.com`,
            t.field,
          );
        }
        return { target: { domain: domainOf(value) }, label: value };
      }
      case 'user-param': {
        const id = param(t.param);
        const { user } = await this.call(storage.directory.getUser({ selector: { $case: 'id', value: id } }));
        if (user === undefined) throw new ApiError('not_found', 'user not found');
        return { target: { domain: domainOf(user.address), userId: user.id }, label: user.address };
      }
      case 'token-param': {
        const id = param(t.param);
        if (subject.role === 'owner' && subject.token === undefined)
          return { target: {}, label: `token:${id}` };
        const { tokens } = await this.call(
          storage.admin.listApiTokens({ adminId: subject.id, pageSize: 1000, pageToken: '' }),
        );
        const own = tokens.some((token) => token.id === id);
        return {
          target: { ownerAdminId: own ? subject.id : '(another administrator)' },
          label: `token:${id}`,
        };
      }
      case 'queue-param': {
        // `<spoolId>:<recipient domain>`; the policy decides on the sender's domain, which only
        // mta-delivery knows (DESIGN §6: queue of a domain = mail sent from it).
        const id = param(t.param);
        // A role that may change no queue entry at all is refused without asking mta-delivery
        // (and learns nothing about which entries exist).
        if (
          spec.action !== 'public' &&
          spec.action !== 'authenticated' &&
          !decide(subject, spec.action, { list: true }).allow
        )
          return { target: { list: true }, label: `queue:${id}` };
        if (this.deps.queueOps === undefined) throw new ApiError('unavailable', 'NATS is not connected');
        const entry = await this.deps.queueOps.find(id, `${subject.role}:${subject.id}`);
        if (entry === undefined) throw new ApiError('not_found', 'no such queue entry');
        return { target: { domain: senderDomainOf(entry) }, label: `queue:${id}` };
      }
      case 'admin-body': {
        const body = (request.body ?? {}) as Record<string, unknown>;
        const role = body.role;
        const domains = Array.isArray(body.domains)
          ? body.domains.filter((d): d is string => typeof d === 'string')
          : [];
        if (typeof role !== 'string' || !(Roles as readonly string[]).includes(role) || role === 'user') {
          throw new ApiError(
            'invalid_argument',
            'role: expected one of owner, domain-admin, helpdesk, auditor',
            'role',
          );
        }
        const wanted = { role: role as AdminRoleName, domains: domains.map((d) => d.toLowerCase()) };
        return {
          target: { list: true },
          label: typeof body.email === 'string' ? body.email.slice(0, 320) : '',
          extraCheck: (decision) => canGrantAdmin(subject, wanted, decision.domains),
        };
      }
      case 'admin-param': {
        const id = param(t.param);
        const { admin: found } = await this.call(
          storage.admin.getAdmin({ selector: { $case: 'id', value: id } }),
        );
        const role = found === undefined ? undefined : roleName(found.role);
        if (found === undefined || role === undefined)
          throw new ApiError('not_found', 'administrator not found');
        const current = { role, domains: found.domains };
        const body = (request.body ?? {}) as Record<string, unknown>;
        const next = {
          role:
            typeof body.role === 'string' &&
            (Roles as readonly string[]).includes(body.role) &&
            body.role !== 'user'
              ? (body.role as AdminRoleName)
              : role,
          domains: Array.isArray(body.domains)
            ? body.domains.filter((d): d is string => typeof d === 'string').map((d) => d.toLowerCase())
            : found.domains,
        };
        const isRead = spec.action === 'admins.read';
        return {
          target: { list: true },
          label: found.email,
          extraCheck: (decision) => {
            if (isRead) {
              if (decision.domains === 'all') return true;
              const scope = decision.domains;
              return current.domains.length > 0 && current.domains.every((d) => scope.includes(d))
                ? true
                : 'administrator outside your scope';
            }
            if (found.id === subject.id && subject.role !== 'owner')
              return 'you cannot change your own rights';
            const now = canGrantAdmin(subject, current, decision.domains);
            return now === true ? canGrantAdmin(subject, next, decision.domains) : now;
          },
        };
      }
    }
  }

  private async call<T>(promise: Promise<T>): Promise<T> {
    try {
      return await promise;
    } catch (error) {
      throw fromGrpc(error) ?? error;
    }
  }

  private async deny(
    request: HttpRequest,
    spec: EndpointSpec,
    principal: Principal | undefined,
    outcome: 'denied' | 'unauthenticated',
    reason: string,
  ): Promise<void> {
    // Anonymous reads of protected pages are normal (a console before sign-in): not audited.
    if (outcome === 'unauthenticated' && SAFE_METHODS.has(request.method)) return;
    await this.deps.audit.write({
      principal,
      action: spec.action,
      target: request.pm?.target ?? '',
      domain: request.pm?.domain ?? '',
      sourceIp: request.ip,
      outcome: 'denied',
      detail: `${request.method} ${spec.path}: ${reason}`,
      requestId: request.pm?.requestId ?? '',
    });
  }
}

/**
 * An endpoint that declares no query parameters or no body takes none: anything sent there is a
 * 400 naming it, not silently ignored (handlers that take them validate them field by field).
 */
function refuseUndeclaredInput(request: HttpRequest, spec: EndpointSpec): void {
  if (spec.query === undefined) {
    const query = request.query;
    const keys = typeof query === 'object' && query !== null ? Object.keys(query) : [];
    if (keys.length > 0) {
      const name = (keys[0] ?? '').slice(0, 60);
      throw new ApiError('invalid_argument', `${name}: unknown query parameter`, name);
    }
  }
  if (spec.body === undefined) {
    const body = request.body;
    const empty =
      body === undefined ||
      (typeof body === 'object' && body !== null && !Array.isArray(body) && Object.keys(body).length === 0);
    if (!empty) throw new ApiError('invalid_argument', 'this endpoint takes no body (send {} or nothing)');
  }
}
