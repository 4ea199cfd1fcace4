/** Users, their passwords and app passwords, and aliases/forwards. */
import { Controller, Inject, Req } from '@nestjs/common';
import { status } from '@grpc/grpc-js';
import { admin, directory, isServiceError } from '@postmesh/contracts';
import {
  AddressSchema,
  AddressWithTargetsSchema,
  AppPasswordSchema,
  Done,
  Page,
  UserDetailSchema,
  UserSchema,
  UserWithUsageSchema,
  WithSecret,
} from '../api/schemas.js';
import { Type } from '@sinclair/typebox';
import { Endpoint } from '../api/endpoint.js';
import { ApiError } from '../api/errors.js';
import { authOf, type HttpRequest } from '../api/http.js';
import {
  address,
  bool,
  domainName,
  domainOf,
  int,
  list,
  nested,
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
import { addressView, appPasswordView, usageView, userView } from '../api/views.js';
import { DEPS, type AdminDeps } from '../deps.js';
import { decisionOf, domainIdOf, pagedAcross } from './scope.js';

const userId = (request: HttpRequest): string => objectId()(request.params.id, 'id');

/** The password rule of password-policy.ts, answered as a field error before storage is asked. */
function checkPassword(password: string, owner: string): void {
  const problem = passwordProblem(password, owner);
  if (problem !== undefined) throw new ApiError('invalid_argument', `password ${problem}`, 'password');
}

type UserItem = ReturnType<typeof userView>;

/**
 * Per-user sending limits for submission (directory.proto `User.messages_per_hour`,
 * `recipients_per_message`); 0 means the service default.
 */
const limitsShape = {
  messagesPerHour: optional(int({ min: 0, max: 1_000_000, description: 'messages per hour' })),
  recipientsPerMessage: optional(
    int({ min: 0, max: 100_000, description: 'recipients per message (more get 452 4.5.3)' }),
  ),
};
const LIMITS_NOTE = 'Submission limits (optional); 0 = the service default, an absent member is unchanged';

/** The request fields of a `limits` object; absent members are left out (unchanged). */
function limitsRequest(limits: { messagesPerHour?: number; recipientsPerMessage?: number } | undefined) {
  return {
    ...(limits?.messagesPerHour === undefined ? {} : { messagesPerHour: limits.messagesPerHour }),
    ...(limits?.recipientsPerMessage === undefined
      ? {}
      : { recipientsPerMessage: limits.recipientsPerMessage }),
  };
}

/**
 * Adds each user's quota usage (`usage: {usedBytes, quotaBytes, messages}`, `null` when storage
 * does not know the user any more) with one storage call for the whole page.
 */
async function withUsage(
  storage: AdminDeps['storage'],
  users: readonly UserItem[],
): Promise<(UserItem & { usage: ReturnType<typeof usageView> | null })[]> {
  if (users.length === 0) return [];
  const usage = await storage.admin.getUserUsage({ userIds: users.map((u) => u.id) }).then(
    (r) => r.usage,
    (error: unknown) => {
      // A storage replica older than this RPC (during a rolling upgrade): list users without usage.
      if (isServiceError(error) && error.code === status.UNIMPLEMENTED) return [];
      throw error;
    },
  );
  const byId = new Map(usage.map((u) => [u.userId, u]));
  return users.map((u) => {
    const figures = byId.get(u.id);
    return { ...u, usage: figures === undefined ? null : usageView(figures, u.quotaMessages) };
  });
}

/**
 * Adds `targetAddresses`: where each address delivers, as addresses (an alias's targets are user
 * ids, which mean nothing to a person reading the list). A user that no longer exists shows as
 * `(deleted user)`.
 */
async function withTargetAddresses(
  storage: AdminDeps['storage'],
  items: readonly ReturnType<typeof addressView>[],
): Promise<(ReturnType<typeof addressView> & { targetAddresses: string[] })[]> {
  const byId = new Map<string, string>();
  for (const item of items) {
    if (item.kind === 'forward') continue;
    for (const id of item.targets) {
      if (byId.has(id)) continue;
      const { user } = await storage.directory
        .getUser({ selector: { $case: 'id', value: id } })
        .catch(() => ({ user: undefined }));
      byId.set(id, user?.address ?? '(deleted user)');
    }
  }
  return items.map((item) => ({
    ...item,
    targetAddresses:
      item.kind === 'forward' ? [...item.targets] : item.targets.map((id) => byId.get(id) ?? id),
  }));
}

const listQuery = {
  ...pageShape,
  domain: optional(domainName()),
  q: optional(str({ max: 320 })),
};

/** The message count quota (directory.proto `User.quota_messages`, enforced at delivery). */
const quotaMessages = () =>
  optional(
    int({
      min: 0,
      max: 1_000_000_000,
      description: 'messages the user may keep over all mailboxes; 0 = unlimited',
    }),
  );

const createBody = {
  address: required(address()),
  password: required(password()),
  displayName: optional(str({ max: 200 })),
  quotaBytes: optional(int({ min: 0 })),
  quotaMessages: quotaMessages(),
  limits: optional(nested(limitsShape, LIMITS_NOTE)),
};

const updateBody = {
  displayName: optional(str({ max: 200 })),
  quotaBytes: optional(int({ min: 0 })),
  quotaMessages: quotaMessages(),
  status: optional(oneOf(['active', 'disabled'])),
  limits: optional(nested(limitsShape, LIMITS_NOTE)),
  revokeAppPasswords: optional(bool()),
};

const passwordBody = {
  password: required(password()),
  currentPassword: optional(str({ min: 1, max: 1024 })),
  revokeAppPasswords: optional(bool()),
};

const removeQuery = { purge: optional(bool()) };

const createAppPasswordBody = {
  label: optional(str({ max: 200 })),
  protocols: optional(list(oneOf(['imap', 'smtp']), { max: 2 })),
  expiresAt: optional(time()),
};

const aliasesQuery = { ...pageShape, domain: optional(domainName()) };

const createAliasBody = {
  address: required(address()),
  userIds: optional(list(objectId(), { min: 1, max: 100 })),
  forwardTo: optional(list(address(), { min: 1, max: 50 })),
};

@Controller()
export class UsersController {
  constructor(@Inject(DEPS) private readonly deps: AdminDeps) {}

  @Endpoint({
    method: 'GET',
    path: '/users',
    action: 'users.read',
    target: { kind: 'list' },
    summary:
      'List users (your scope), optionally of one domain and by address prefix, each with its quota usage',
    query: listQuery,
    response: Page(UserWithUsageSchema),
  })
  async list(@Req() request: HttpRequest) {
    const query = parseQuery(request.query, listQuery);
    const decision = decisionOf(request);
    const { storage } = this.deps;
    if (decision.self) {
      const principal = authOf(request).principal;
      const own = principal?.kind === 'user' ? [userView(principal.user)] : [];
      return { items: await withUsage(storage, own), nextPageToken: '' };
    }
    const pageSize = query.pageSize ?? 50;
    const fetchPage = async (domain: string, token: string, size: number) => {
      const domainId = domain === '' ? '' : await domainIdOf(storage, domain);
      const page = await storage.directory.listUsers({
        domainId,
        pageSize: size,
        pageToken: token,
        addressPrefix: query.q ?? '',
      });
      return { items: page.users.map(userView), next: page.nextPageToken };
    };
    const domains =
      query.domain !== undefined ? [query.domain] : decision.domains === 'all' ? [''] : decision.domains;
    const page = await pagedAcross(domains, query.pageToken, pageSize, fetchPage);
    return { items: await withUsage(storage, page.items), nextPageToken: page.nextPageToken };
  }

  @Endpoint({
    method: 'POST',
    path: '/users',
    action: 'users.create',
    target: { kind: 'body-address', field: 'address' },
    summary: 'Create a user (and their default mailboxes)',
    status: 201,
    body: createBody,
    response: UserWithUsageSchema,
  })
  async create(@Req() request: HttpRequest) {
    const body = parseObject(request.body, createBody);
    checkPassword(body.password, body.address);
    const { user } = await this.deps.storage.directory.createUser({
      address: body.address,
      password: body.password,
      displayName: body.displayName ?? '',
      ...(body.quotaBytes === undefined ? {} : { quotaBytes: body.quotaBytes }),
      ...(body.quotaMessages === undefined ? {} : { quotaMessages: body.quotaMessages }),
      ...limitsRequest(body.limits),
    });
    return user === undefined ? {} : ((await withUsage(this.deps.storage, [userView(user)]))[0] ?? {});
  }

  @Endpoint({
    method: 'GET',
    path: '/users/:id',
    action: 'users.read',
    target: { kind: 'user-param', param: 'id' },
    summary: 'One user, with their addresses and quota usage',
    response: UserDetailSchema,
  })
  async get(@Req() request: HttpRequest) {
    const id = userId(request);
    const { user } = await this.deps.storage.directory.getUser({ selector: { $case: 'id', value: id } });
    if (user === undefined) throw new ApiError('not_found', 'user not found');
    const { addresses } = await this.deps.storage.directory.listAddresses({
      domainId: '',
      userId: id,
      pageSize: 200,
      pageToken: '',
    });
    const [withFigures] = await withUsage(this.deps.storage, [userView(user)]);
    return { ...withFigures, addresses: addresses.map(addressView) };
  }

  @Endpoint({
    method: 'PATCH',
    path: '/users/:id',
    action: 'users.update',
    target: { kind: 'user-param', param: 'id' },
    summary:
      'Change display name, quotas (bytes, messages), status or sending limits (absent fields stay as they are); disabling a user ends their console sessions, and with revokeAppPasswords=true deletes their app passwords',
    body: updateBody,
    response: UserWithUsageSchema,
  })
  async update(@Req() request: HttpRequest) {
    const body = parseObject(request.body, updateBody);
    if (body.revokeAppPasswords === true && body.status !== 'disabled') {
      throw new ApiError(
        'invalid_argument',
        'revokeAppPasswords: only with status "disabled" (or on a password reset)',
        'revokeAppPasswords',
      );
    }
    const id = userId(request);
    const { user } = await this.deps.storage.directory.updateUser({
      userId: id,
      ...(body.displayName === undefined ? {} : { displayName: body.displayName }),
      ...(body.quotaBytes === undefined ? {} : { quotaBytes: body.quotaBytes }),
      ...(body.quotaMessages === undefined ? {} : { quotaMessages: body.quotaMessages }),
      ...limitsRequest(body.limits),
      status:
        body.status === undefined
          ? directory.UserStatus.UNSPECIFIED
          : body.status === 'active'
            ? directory.UserStatus.ACTIVE
            : directory.UserStatus.DISABLED,
    });
    if (body.status === 'disabled') await this.revokeAccess(id, body.revokeAppPasswords ?? false);
    return user === undefined ? {} : ((await withUsage(this.deps.storage, [userView(user)]))[0] ?? {});
  }

  @Endpoint({
    method: 'POST',
    path: '/users/:id/unlock',
    action: 'users.unlock',
    target: { kind: 'user-param', param: 'id' },
    summary: 'Re-enable a disabled user',
    response: UserSchema,
  })
  async unlock(@Req() request: HttpRequest) {
    const { user } = await this.deps.storage.directory.updateUser({
      userId: userId(request),
      status: directory.UserStatus.ACTIVE,
    });
    return user === undefined ? {} : userView(user);
  }

  @Endpoint({
    method: 'POST',
    path: '/users/:id/password',
    action: 'users.password',
    target: { kind: 'user-param', param: 'id' },
    summary:
      "Set a new password: ends the user's console sessions (all but the caller's own when users change their own) and, with revokeAppPasswords=true, deletes their app passwords; users changing their own give currentPassword",
    body: passwordBody,
    response: Type.Object({ changed: Type.Literal(true), sessionsRevoked: Type.Integer() }),
  })
  async password(@Req() request: HttpRequest) {
    const body = parseObject(request.body, passwordBody);
    const id = userId(request);
    const caller = authOf(request).principal;
    if (caller?.kind === 'user' && caller.user.id === id) {
      // Whoever finds a signed-in session must not be able to take the account over with it.
      await this.verifyCurrentPassword(request, caller.user.address, body.currentPassword);
      checkPassword(body.password, caller.user.address);
    } else {
      const { user } = await this.deps.storage.directory.getUser({ selector: { $case: 'id', value: id } });
      checkPassword(body.password, user?.address ?? '');
    }
    await this.deps.storage.directory.setPassword({
      userId: id,
      password: body.password,
      revokeAppPasswords: body.revokeAppPasswords ?? false,
    });
    // Whoever knew the old password may hold a session: it ends now. A user changing their own
    // password keeps the session they did it from.
    const principal = authOf(request).principal;
    const own = principal?.kind === 'user' && principal.user.id === id ? principal.sessionSecret : '';
    const { revoked } = await this.deps.storage.admin.revokeSessions({
      principalKind: admin.PrincipalKind.USER,
      principalId: id,
      keepSecret: own,
    });
    return { changed: true, sessionsRevoked: revoked };
  }

  /**
   * The current password of a user changing their own, checked like a sign-in (the same throttle
   * per address and account), so a session cannot be used to guess it either.
   */
  private async verifyCurrentPassword(
    request: HttpRequest,
    owner: string,
    current: string | undefined,
  ): Promise<void> {
    if (current === undefined)
      throw new ApiError('invalid_argument', 'currentPassword: is required', 'currentPassword');
    const { throttle, storage } = this.deps;
    const verdict = await throttle.attempt(request.ip, owner);
    if (verdict.kind === 'locked') {
      const wait = Math.ceil(verdict.retryAfterMs / 1000);
      throw new ApiError('too_many_requests', `too many wrong passwords; try again in ${wait} s`, undefined, {
        'retry-after': String(wait),
      });
    }
    const result = await storage.directory.authenticate({
      address: owner,
      password: current,
      protocol: directory.Protocol.WEB,
      remoteIp: request.ip,
      totpCode: '',
    });
    // With two-factor sign-in on, a right password answers "code required": the session already
    // passed the second factor at sign-in, so the password is what is being checked here.
    const passwordRight =
      result.result?.$case === 'success' ||
      (result.result?.$case === 'failure' &&
        result.result.value.reason === directory.AuthFailureReason.TOTP_REQUIRED);
    if (!passwordRight) {
      throttle.failed(verdict.ticket);
      throw new ApiError(
        'invalid_argument',
        'currentPassword: is not your current password',
        'currentPassword',
      );
    }
    await throttle.succeeded(verdict.ticket);
  }

  /** A disabled user keeps no console session, and (by the administrator's choice) no app password. */
  private async revokeAccess(id: string, appPasswords: boolean): Promise<void> {
    const { storage } = this.deps;
    await storage.admin.revokeSessions({
      principalKind: admin.PrincipalKind.USER,
      principalId: id,
      keepSecret: '',
    });
    if (!appPasswords) return;
    const { appPasswords: existing } = await storage.directory.listAppPasswords({ userId: id });
    for (const appPassword of existing) {
      await storage.directory.deleteAppPassword({ userId: id, appPasswordId: appPassword.id });
    }
  }

  @Endpoint({
    method: 'DELETE',
    path: '/users/:id',
    action: 'users.delete',
    target: { kind: 'user-param', param: 'id' },
    summary:
      'Delete a user; purge=true deletes their mail now, otherwise it is kept for the retention period',
    query: removeQuery,
    response: Type.Object({ deleted: Type.Literal(true), purged: Type.Boolean() }),
  })
  async remove(@Req() request: HttpRequest) {
    const query = parseQuery(request.query, removeQuery);
    await this.deps.storage.directory.deleteUser({
      userId: userId(request),
      purgeData: query.purge ?? false,
    });
    return { deleted: true, purged: query.purge ?? false };
  }

  @Endpoint({
    method: 'GET',
    path: '/users/:id/app-passwords',
    action: 'apppasswords.read',
    target: { kind: 'user-param', param: 'id' },
    summary: "A user's app passwords (never their secrets)",
    response: Page(AppPasswordSchema),
  })
  async appPasswords(@Req() request: HttpRequest) {
    const { appPasswords } = await this.deps.storage.directory.listAppPasswords({ userId: userId(request) });
    return { items: appPasswords.map(appPasswordView), nextPageToken: '' };
  }

  @Endpoint({
    method: 'POST',
    path: '/users/:id/app-passwords',
    action: 'apppasswords.write',
    target: { kind: 'user-param', param: 'id' },
    summary: 'Create an app password; the secret is shown once',
    status: 201,
    body: createAppPasswordBody,
    response: WithSecret(AppPasswordSchema),
  })
  async createAppPassword(@Req() request: HttpRequest) {
    const body = parseObject(request.body, createAppPasswordBody);
    const created = await this.deps.storage.directory.createAppPassword({
      userId: userId(request),
      label: body.label ?? '',
      protocols: (body.protocols ?? []).map((p) =>
        p === 'imap' ? directory.Protocol.IMAP : directory.Protocol.SMTP,
      ),
      ...(body.expiresAt === undefined ? {} : { expireTime: body.expiresAt }),
    });
    return {
      ...(created.appPassword === undefined ? {} : appPasswordView(created.appPassword)),
      secret: created.secret,
    };
  }

  @Endpoint({
    method: 'DELETE',
    path: '/users/:id/app-passwords/:appPasswordId',
    action: 'apppasswords.write',
    target: { kind: 'user-param', param: 'id' },
    summary: 'Revoke an app password',
    response: Done('deleted'),
  })
  async deleteAppPassword(@Req() request: HttpRequest) {
    await this.deps.storage.directory.deleteAppPassword({
      userId: userId(request),
      appPasswordId: objectId()(request.params.appPasswordId, 'appPasswordId'),
    });
    return { deleted: true };
  }

  @Endpoint({
    method: 'GET',
    path: '/aliases',
    action: 'aliases.read',
    target: { kind: 'list' },
    summary: "Aliases and forwards of a domain (required for administrators), or a user's own addresses",
    query: aliasesQuery,
    response: Page(AddressWithTargetsSchema),
  })
  async aliases(@Req() request: HttpRequest) {
    const query = parseQuery(request.query, aliasesQuery);
    const decision = decisionOf(request);
    const principal = authOf(request).principal;
    const { storage } = this.deps;
    if (decision.self) {
      const own = principal?.kind === 'user' ? principal.user.id : '';
      const page = await storage.directory.listAddresses({
        domainId: '',
        userId: own,
        pageSize: query.pageSize ?? 100,
        pageToken: query.pageToken ?? '',
      });
      return {
        items: await withTargetAddresses(storage, page.addresses.map(addressView)),
        nextPageToken: page.nextPageToken,
      };
    }
    const domains =
      query.domain !== undefined ? [query.domain] : decision.domains === 'all' ? [] : decision.domains;
    if (domains.length === 0) throw new ApiError('invalid_argument', 'domain: is required', 'domain');
    const page = await pagedAcross(
      domains,
      query.pageToken,
      query.pageSize ?? 100,
      async (domain, token, size) => {
        const found = await storage.directory.listAddresses({
          domainId: await domainIdOf(storage, domain),
          userId: '',
          pageSize: size,
          pageToken: token,
        });
        return {
          items: found.addresses.filter((a) => a.target?.$case !== 'primary').map(addressView),
          next: found.nextPageToken,
        };
      },
    );
    return { items: await withTargetAddresses(storage, page.items), nextPageToken: page.nextPageToken };
  }

  @Endpoint({
    method: 'POST',
    path: '/aliases',
    action: 'aliases.write',
    target: { kind: 'body-address', field: 'address' },
    summary: 'Create an alias (to local users) or a forward (to other addresses)',
    status: 201,
    body: createAliasBody,
    response: AddressSchema,
  })
  async createAlias(@Req() request: HttpRequest) {
    const body = parseObject(request.body, createAliasBody);
    const { storage } = this.deps;
    if ((body.userIds === undefined) === (body.forwardTo === undefined)) {
      throw new ApiError(
        'invalid_argument',
        'give exactly one of userIds (alias) and forwardTo (forward)',
        'userIds',
      );
    }
    if (body.userIds !== undefined) {
      // An alias may only deliver to users of the domains the caller manages (the guard checked the alias's own domain).
      const scope = decisionOf(request).domains;
      for (const id of body.userIds) {
        const { user } = await storage.directory.getUser({ selector: { $case: 'id', value: id } });
        if (user === undefined || (scope !== 'all' && !scope.includes(domainOf(user.address)))) {
          throw new ApiError('not_found', `user ${id} not found`, 'userIds');
        }
      }
      const { address: created } = await storage.directory.createAlias({
        address: body.address,
        userIds: body.userIds,
      });
      return created === undefined ? {} : addressView(created);
    }
    const { address: created } = await storage.directory.createForward({
      address: body.address,
      targets: body.forwardTo ?? [],
    });
    return created === undefined ? {} : addressView(created);
  }

  @Endpoint({
    method: 'DELETE',
    path: '/aliases/:address',
    action: 'aliases.write',
    target: { kind: 'address-param', param: 'address' },
    summary: 'Remove an alias or forward (not a primary address)',
    response: Done('deleted'),
  })
  async deleteAlias(@Req() request: HttpRequest) {
    const wanted = address()(request.params.address, 'address').toLowerCase();
    const { storage } = this.deps;
    const domainId = await domainIdOf(storage, domainOf(wanted));
    let token = '';
    for (let pages = 0; pages < 100; pages++) {
      const page = await storage.directory.listAddresses({
        domainId,
        userId: '',
        pageSize: 1000,
        pageToken: token,
      });
      const hit = page.addresses.find((a) => a.address.toLowerCase() === wanted);
      if (hit !== undefined) {
        await storage.directory.deleteAddress({ addressId: hit.id });
        return { deleted: true };
      }
      if (page.nextPageToken === '') break;
      token = page.nextPageToken;
    }
    throw new ApiError('not_found', 'alias not found');
  }
}
