/** Sign-in, sign-out and who-am-I. Thin: the work is in storage and the guard. */
import { Controller, Inject, Req, Res } from '@nestjs/common';
import { admin, directory } from '@postmesh/contracts';
import { AdminSchema, Done, MeSchema, TotpEnrollmentSchema, UserSchema } from '../api/schemas.js';
import { Type } from '@sinclair/typebox';
import { Endpoint } from '../api/endpoint.js';
import { ApiError } from '../api/errors.js';
import { authOf, type HttpReply, type HttpRequest } from '../api/http.js';
import { optional, parseObject, required, str } from '../api/validate.js';
import { adminView, userView } from '../api/views.js';
import {
  clearedSessionCookie,
  csrfTokenFor,
  readCookie,
  SESSION_COOKIE,
  sessionCookie,
} from '../auth/cookies.js';
import { headerOf } from '../api/http.js';
import { roleName, type Principal } from '../auth/principal.js';
import { DEPS, type AdminDeps } from '../deps.js';
import { POLICY } from '../policy.js';

const loginShape = {
  email: required(str({ min: 1, max: 320 })),
  password: required(str({ min: 1, max: 1024 })),
  totp: optional(str({ max: 12, pattern: /^\d{6}$/, what: 'a 6-digit code' })),
};

export function meView(principal: Principal, sessionSecret?: string) {
  const role = principal.kind === 'user' ? 'user' : principal.role;
  return {
    kind: principal.kind,
    role,
    ...(principal.kind === 'user'
      ? { user: userView(principal.user) }
      : { admin: adminView(principal.admin) }),
    domains: principal.kind === 'user' ? [] : principal.admin.domains,
    permissions: Object.keys(POLICY[role]),
    ...(sessionSecret === undefined ? {} : { csrfToken: csrfTokenFor(sessionSecret) }),
  };
}

const confirmTotpBody = {
  code: required(str({ pattern: /^\d{6}$/, what: 'a 6-digit code' })),
};

@Controller()
export class AuthController {
  constructor(@Inject(DEPS) private readonly deps: AdminDeps) {}

  @Endpoint({
    method: 'POST',
    path: '/auth/login',
    action: 'public',
    target: { kind: 'system' },
    summary: 'Sign in with email and password (and TOTP code when enabled); sets the session cookie',
    body: loginShape,
    response: MeSchema,
  })
  async login(@Req() request: HttpRequest, @Res({ passthrough: true }) reply: HttpReply) {
    const { storage, throttle, audit } = this.deps;
    const requestId = authOf(request).requestId;
    const ip = request.ip;
    const record = (
      outcome: 'success' | 'denied',
      principal: Principal | undefined,
      target: string,
      detail: string,
    ) =>
      audit.write({
        principal,
        action: 'auth.login',
        target,
        domain: '',
        sourceIp: ip,
        outcome,
        detail,
        requestId,
      });
    const body = parseObject(request.body, loginShape);
    const email = body.email.trim();
    // Counted before any password is checked (one compare-and-set per counter): concurrent
    // guesses cannot slip past the limit between a check and an increment.
    const verdict = await throttle.attempt(ip, email);
    await sleep(verdict.delayMs);
    if (verdict.kind === 'locked') {
      const wait = Math.ceil(verdict.retryAfterMs / 1000);
      await record(
        'denied',
        undefined,
        email.slice(0, 320),
        `throttled: too many failed sign-ins ${verdict.scope === 'ip' ? 'from this address' : 'for this account'}`,
      );
      // The same answer for a locked address and a locked account (known or not).
      throw new ApiError('too_many_requests', `too many failed sign-ins; try again in ${wait} s`, undefined, {
        'retry-after': String(wait),
      });
    }
    const result = await storage.admin.authenticateAdmin({
      email,
      password: body.password,
      totpCode: body.totp ?? '',
      remoteIp: ip,
    });
    let principal: Principal | undefined;
    let kind: admin.PrincipalKind = admin.PrincipalKind.ADMIN;
    let principalId = '';
    if (result.result?.$case === 'success') {
      const role = roleName(result.result.value.role);
      if (role !== undefined) {
        principal = { kind: 'admin', admin: result.result.value, role, via: 'session', sessionSecret: '' };
        principalId = result.result.value.id;
      }
    } else if (result.result?.$case === 'failure') {
      const reason = result.result.value.reason;
      if (reason === admin.AdminAuthFailureReason.TOTP_REQUIRED) {
        // The password was right and the code is still to come: not a failure to count.
        await throttle.release(verdict.ticket);
        throw new ApiError('unauthenticated', 'a TOTP code is required', 'totp');
      }
      if (reason === admin.AdminAuthFailureReason.INVALID_CREDENTIALS) {
        // Not an administrator: maybe a mail user signing in to their own account (role `user`).
        const user = await storage.directory.authenticate({
          address: email,
          password: body.password,
          protocol: directory.Protocol.WEB,
          remoteIp: ip,
          totpCode: body.totp ?? '',
        });
        if (
          user.result?.$case === 'failure' &&
          user.result.value.reason === directory.AuthFailureReason.TOTP_REQUIRED
        ) {
          await throttle.release(verdict.ticket);
          throw new ApiError('unauthenticated', 'a TOTP code is required', 'totp');
        }
        if (user.result?.$case === 'success' && user.result.value.user !== undefined) {
          principal = { kind: 'user', user: user.result.value.user, via: 'session', sessionSecret: '' };
          kind = admin.PrincipalKind.USER;
          principalId = user.result.value.user.id;
        }
      }
    }
    if (principal === undefined) {
      // The attempt stays counted against the address and the account.
      throttle.failed(verdict.ticket);
      await record(
        'denied',
        undefined,
        email.slice(0, 320),
        'wrong credentials, locked, disabled or wrong TOTP code',
      );
      // One answer for every reason, so accounts cannot be probed (DESIGN §5).
      throw new ApiError('unauthenticated', 'wrong email or password (or the account is locked)');
    }
    // Clears the account's failures; the address keeps its count of the others' failures.
    await throttle.succeeded(verdict.ticket);
    const { settings } = this.deps;
    const { secret } = await storage.admin.createSession({
      principalKind: kind,
      principalId,
      idleTimeoutSeconds: settings.sessionIdleSeconds,
      absoluteTimeoutSeconds: settings.sessionAbsoluteSeconds,
      remoteIp: ip,
      userAgent: headerOf(request, 'user-agent') ?? '',
    });
    reply.header(
      'set-cookie',
      sessionCookie(secret, {
        maxAgeSeconds: settings.sessionAbsoluteSeconds,
        secure: settings.cookieSecure,
      }),
    );
    const signedIn = { ...principal, sessionSecret: secret };
    await record('success', signedIn, email.slice(0, 320), '');
    return meView(signedIn, secret);
  }

  @Endpoint({
    method: 'POST',
    path: '/auth/logout',
    action: 'authenticated',
    target: { kind: 'system' },
    summary: 'Sign out: ends the session and clears the cookie',
    response: Done('signedOut'),
  })
  async logout(@Req() request: HttpRequest, @Res({ passthrough: true }) reply: HttpReply) {
    const secret = readCookie(headerOf(request, 'cookie'), SESSION_COOKIE);
    if (secret !== undefined) await this.deps.storage.admin.deleteSession({ secret });
    reply.header('set-cookie', clearedSessionCookie(this.deps.settings.cookieSecure));
    return { signedOut: true };
  }

  @Endpoint({
    method: 'GET',
    path: '/me',
    action: 'authenticated',
    target: { kind: 'system' },
    summary: 'The signed-in principal, its role, domains and permissions (and the CSRF token for a session)',
    response: MeSchema,
  })
  me(@Req() request: HttpRequest) {
    const principal = authOf(request).principal;
    if (principal === undefined) throw new ApiError('unauthenticated', 'sign in first');
    return meView(principal, principal.via === 'session' ? principal.sessionSecret : undefined);
  }

  @Endpoint({
    method: 'POST',
    path: '/me/totp',
    action: 'authenticated',
    target: { kind: 'system' },
    summary: 'Begin TOTP enrollment: returns the seed (base32) and an otpauth:// URI once',
    response: TotpEnrollmentSchema,
  })
  async beginTotp(@Req() request: HttpRequest) {
    const principal = this.sessionPrincipal(request);
    return principal.kind === 'admin'
      ? this.deps.storage.admin.beginTotpEnrollment({ adminId: principal.admin.id })
      : this.deps.storage.directory.beginUserTotpEnrollment({ userId: principal.user.id });
  }

  @Endpoint({
    method: 'POST',
    path: '/me/totp/confirm',
    action: 'authenticated',
    target: { kind: 'system' },
    summary: 'Turn TOTP on with a current code from the new seed',
    body: confirmTotpBody,
    response: Type.Union([UserSchema, AdminSchema]),
  })
  async confirmTotp(@Req() request: HttpRequest) {
    const principal = this.sessionPrincipal(request);
    const body = parseObject(request.body, confirmTotpBody);
    if (principal.kind === 'user') {
      const { user } = await this.deps.storage.directory.confirmUserTotpEnrollment({
        userId: principal.user.id,
        code: body.code,
      });
      return user === undefined ? {} : userView(user);
    }
    const { admin: updated } = await this.deps.storage.admin.confirmTotpEnrollment({
      adminId: principal.admin.id,
      code: body.code,
    });
    return updated === undefined ? {} : adminView(updated);
  }

  @Endpoint({
    method: 'DELETE',
    path: '/me/totp',
    action: 'authenticated',
    target: { kind: 'system' },
    summary: 'Turn TOTP off',
    response: Type.Union([UserSchema, AdminSchema]),
  })
  async disableTotp(@Req() request: HttpRequest) {
    const principal = this.sessionPrincipal(request);
    if (principal.kind === 'user') {
      const { user } = await this.deps.storage.directory.disableUserTotp({ userId: principal.user.id });
      return user === undefined ? {} : userView(user);
    }
    const { admin: updated } = await this.deps.storage.admin.disableTotp({ adminId: principal.admin.id });
    return updated === undefined ? {} : adminView(updated);
  }

  /**
   * TOTP is managed by its owner in person (a signed-in session: an administrator or a mail user),
   * never by an API token.
   */
  private sessionPrincipal(request: HttpRequest): Extract<Principal, { kind: 'admin' | 'user' }> {
    const principal = authOf(request).principal;
    if ((principal?.kind !== 'admin' && principal?.kind !== 'user') || principal.via !== 'session') {
      throw new ApiError('permission_denied', 'only a signed-in person manages their own TOTP');
    }
    return principal;
  }
}

function sleep(ms: number): Promise<void> {
  return ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();
}
