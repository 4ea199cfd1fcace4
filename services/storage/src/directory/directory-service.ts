/**
 * The Directory (DESIGN §1, §4; proto/postmesh/directory/v1/directory.proto): domains, users,
 * addresses, authentication, recipient resolution and DKIM keys, over MongoDB. Every method takes
 * the contract's request and answers a `Result` of the contract's response; expected failures are
 * values, exceptions are bugs and I/O. The gRPC layer (src/grpc/directory.ts) is one line per RPC.
 */
import { ErrorReason, directory } from '@postmesh/contracts';
import type { Logger } from '@postmesh/telemetry';
import { ObjectId, type Collection, type Db, type Filter } from 'mongodb';
import { TotpEnrolment } from '../totp/index.js';
import { dkimKeyContext, newUserDataKey, userTotpContext } from '../crypto/user-keyring.js';
import { usageOf } from '../mailstore/mailboxes.js';
import type { KeyProvider } from '../crypto/types.js';
import {
  Collections,
  type AddressDoc,
  type AppPasswordDoc,
  type AppPasswordProtocol,
  type DkimAlgorithm,
  type DkimKeyDoc,
  type DomainDoc,
  type TotpClaimDoc,
  type UserDoc,
} from '../db/schema.js';
import type { DirectoryCache, DirectoryCacheKind } from './cache.js';
import type { CredentialCache } from './credential-cache.js';
import { generateDkimKey, privateKeyPem } from './dkim.js';
import {
  catchAllKey,
  normaliseDomain,
  normaliseSelector,
  parseAddress,
  splitSubaddress,
  type ParsedAddress,
} from './names.js';
import { decodePageToken, encodePageToken, pageSizeOf } from './paging.js';
import {
  appSecretHash,
  burnVerification,
  generateAppSecret,
  hashPassword,
  passwordProblem,
  verifyPassword,
} from './passwords.js';
import { fail, isDuplicateKey, notFound, ok, type Result } from './result.js';

/** Successful Authenticate answers, kept briefly (credential-cache.ts). */
export type VerifiedCredentials = CredentialCache<directory.AuthenticateResponse>;

export const MAX_APP_PASSWORDS = 20;
export const MAX_DKIM_KEYS = 20;
export const MAX_FORWARD_TARGETS = 50;
export const MAX_ALIAS_USERS = 100;

export interface DirectoryServiceDeps {
  readonly db: Db;
  readonly keyProvider: KeyProvider;
  readonly logger: Logger;
  /** Creates INBOX and the special-use mailboxes of a new user (the mailstore's). */
  readonly createDefaultMailboxes: (db: Db, userId: string) => Promise<void>;
  /** Deletes every mailbox and message of a user (DeleteUser with purge_data). */
  readonly purgeUserData?: (db: Db, userId: string) => Promise<void>;
  /** Called when a user is deleted, so cached keys go too. */
  readonly onUserDeleted?: (userId: string) => void;
  /** Deletes a deleted user's Sieve scripts and ledger records (nothing else would run them). */
  readonly removeUserFilters?: (userId: string) => Promise<void>;
  /**
   * Recipient resolution answered from memory (cache.ts); without it every resolution reads the
   * database.
   */
  readonly cache?: DirectoryCache;
  /**
   * Successful authentications, kept briefly (credential-cache.ts). It must be dropped on every
   * invalidation of `cache` (which covers this replica's writes and the other replicas').
   */
  readonly credentials?: VerifiedCredentials;
  /** Called after every write that can change a resolution (the cache's change feed). */
  readonly onDirectoryChanged?: () => void;
  readonly now?: () => Date;
}

/**
 * The methods that write domains, users, addresses or credentials, i.e. can change what a
 * recipient resolves to or whether a login succeeds: each is wrapped so that the caches are
 * invalidated after it, whether it succeeded or not.
 */
const DIRECTORY_WRITES = [
  'createDomain',
  'setDomainStatus',
  'deleteDomain',
  'createUser',
  'updateUser',
  'setPassword',
  'createAppPassword',
  'deleteAppPassword',
  'deleteUser',
  'createAlias',
  'createForward',
  'setCatchAll',
  'deleteAddress',
  // Two-factor changes what a login needs: cached verdicts of logins must go too.
  'confirmUserTotpEnrollment',
  'disableUserTotp',
] as const satisfies readonly (keyof DirectoryService)[];

type AuthFailureReason = directory.AuthFailureReason;

const objectIdOf = (id: string): ObjectId | undefined =>
  /^[0-9a-f]{24}$/i.test(id) ? new ObjectId(id) : undefined;

const escapeRegex = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export class DirectoryService {
  private readonly domains: Collection<DomainDoc>;
  private readonly users: Collection<UserDoc>;
  private readonly addresses: Collection<AddressDoc>;
  private readonly appPasswords: Collection<AppPasswordDoc>;
  private readonly dkimKeys: Collection<DkimKeyDoc>;
  private readonly now: () => Date;
  private readonly totp: TotpEnrolment<UserDoc>;

  constructor(private readonly deps: DirectoryServiceDeps) {
    this.domains = deps.db.collection(Collections.domains);
    this.users = deps.db.collection(Collections.users);
    this.addresses = deps.db.collection(Collections.addresses);
    this.appPasswords = deps.db.collection(Collections.appPasswords);
    this.dkimKeys = deps.db.collection(Collections.dkimKeys);
    this.now = deps.now ?? (() => new Date());
    this.totp = new TotpEnrolment({
      accounts: this.users,
      claims: deps.db.collection<TotpClaimDoc>(Collections.totpClaims),
      keyProvider: deps.keyProvider,
      context: userTotpContext,
      label: (user) => user.address,
      now: this.now,
    });
    const changed = (): void => {
      deps.cache?.invalidate();
      // Also dropped through `cache` when there is one; without it, here.
      if (deps.cache === undefined) deps.credentials?.invalidate();
      deps.onDirectoryChanged?.();
    };
    for (const name of DIRECTORY_WRITES) {
      const write = this[name].bind(this) as (req: never) => Promise<unknown>;
      Object.defineProperty(this, name, {
        value: async (req: never) => {
          try {
            return await write(req);
          } finally {
            changed();
          }
        },
      });
    }
  }

  /** A read of the lookups recipient resolution makes, through the cache when there is one. */
  private cached<T>(kind: DirectoryCacheKind, key: string, load: () => Promise<T>): Promise<T> {
    return this.deps.cache === undefined ? load() : this.deps.cache.get(kind, key, load);
  }

  // -------------------------------------------------------------------------------------------
  // Domains

  async createDomain(req: directory.CreateDomainRequest): Promise<Result<directory.CreateDomainResponse>> {
    const name = normaliseDomain(req.name);
    if (name === undefined) return fail(ErrorReason.INVALID_NAME, 'not a valid domain name', 'name');
    const now = this.now();
    const doc: DomainDoc = {
      _id: new ObjectId(),
      name,
      status: 'active',
      defaultQuotaBytes: req.defaultQuotaBytes,
      createdAt: now,
      updatedAt: now,
    };
    try {
      await this.domains.insertOne(doc);
    } catch (error) {
      if (isDuplicateKey(error)) return fail(ErrorReason.ALREADY_EXISTS, `domain ${name} exists`, 'name');
      throw error;
    }
    this.deps.logger.info({ domain: name, domainId: doc._id.toHexString() }, 'domain created');
    return ok({ domain: domainOut(doc) });
  }

  async listDomains(req: directory.ListDomainsRequest): Promise<Result<directory.ListDomainsResponse>> {
    const token = decodePageToken(req.pageToken);
    if (!token.ok) return token;
    const after = token.value?.[0];
    const size = pageSizeOf(req.pageSize);
    const docs = await this.domains
      .find(typeof after === 'string' ? { name: { $gt: after } } : {}, { sort: { name: 1 }, limit: size + 1 })
      .toArray();
    const page = docs.slice(0, size);
    const last = page[page.length - 1];
    return ok({
      domains: page.map(domainOut),
      nextPageToken: docs.length > size && last !== undefined ? encodePageToken([last.name]) : '',
    });
  }

  async getDomain(req: directory.GetDomainRequest): Promise<Result<directory.GetDomainResponse>> {
    const selector = req.selector;
    if (selector === undefined) return fail(ErrorReason.INVALID_ARGUMENT, 'id or name is required');
    let doc: DomainDoc | null;
    switch (selector.$case) {
      case 'id':
        doc = await this.domainById(selector.value);
        break;
      case 'name': {
        const name = normaliseDomain(selector.value);
        doc = name === undefined ? null : await this.domains.findOne({ name });
        break;
      }
    }
    return doc === null ? notFound('domain') : ok({ domain: domainOut(doc) });
  }

  async setDomainStatus(
    req: directory.SetDomainStatusRequest,
  ): Promise<Result<directory.SetDomainStatusResponse>> {
    let status: DomainDoc['status'];
    switch (req.status) {
      case directory.DomainStatus.ACTIVE:
        status = 'active';
        break;
      case directory.DomainStatus.SUSPENDED:
        status = 'suspended';
        break;
      case directory.DomainStatus.UNSPECIFIED:
      case directory.DomainStatus.UNRECOGNIZED:
        return fail(ErrorReason.INVALID_ARGUMENT, 'status must be ACTIVE or SUSPENDED', 'status');
    }
    const id = objectIdOf(req.domainId);
    const doc =
      id === undefined
        ? null
        : await this.domains.findOneAndUpdate(
            { _id: id },
            { $set: { status, updatedAt: this.now() } },
            { returnDocument: 'after' },
          );
    if (doc === null) return notFound('domain', 'domain_id');
    this.deps.logger.info({ domain: doc.name, status }, 'domain status changed');
    return ok({ domain: domainOut(doc) });
  }

  async deleteDomain(req: directory.DeleteDomainRequest): Promise<Result<directory.DeleteDomainResponse>> {
    const domain = await this.domainById(req.domainId);
    if (domain === null) return notFound('domain', 'domain_id');
    const domainId = domain._id.toHexString();
    const live = { domainId, deletedAt: { $exists: false } };
    if (!req.cascade) {
      const [users, addresses] = await Promise.all([
        this.users.countDocuments(live, { limit: 1 }),
        this.addresses.countDocuments({ domainId }, { limit: 1 }),
      ]);
      if (users > 0 || addresses > 0) {
        return fail(ErrorReason.NOT_ALLOWED, `domain ${domain.name} still has users or addresses`);
      }
    } else {
      for (const user of await this.users.find({ domainId }, { projection: { _id: 1 } }).toArray()) {
        await this.removeUser(user._id, true);
      }
      await this.addresses.deleteMany({ domainId });
      await this.dkimKeys.deleteMany({ domainId });
    }
    // A domain's webhooks must not outlive it (a new domain of the same name is someone else's).
    await this.deps.db.collection(Collections.webhooks).deleteMany({ domainId });
    await this.domains.deleteOne({ _id: domain._id });
    this.deps.logger.info({ domain: domain.name, cascade: req.cascade }, 'domain deleted');
    return ok({});
  }

  // -------------------------------------------------------------------------------------------
  // Users

  async createUser(req: directory.CreateUserRequest): Promise<Result<directory.CreateUserResponse>> {
    const address = parseAddress(req.address);
    if (address === undefined) return fail(ErrorReason.INVALID_NAME, 'not a valid address', 'address');
    const domain = await this.domains.findOne({ name: address.domain });
    if (domain === null) return notFound(`domain ${address.domain}`, 'address');
    const weak = passwordProblem(req.password, address);
    if (weak !== undefined) return fail(ErrorReason.WEAK_PASSWORD, `password ${weak}`, 'password');
    if ((await this.addresses.findOne({ addressKey: address.key })) !== null) {
      return fail(ErrorReason.ALREADY_EXISTS, 'address is taken', 'address');
    }

    const id = new ObjectId();
    const userId = id.toHexString();
    const now = this.now();
    const { dataKey, dataKeyVersion } = await newUserDataKey(this.deps.keyProvider, userId);
    const user: UserDoc = {
      _id: id,
      address: address.display,
      addressKey: address.key,
      domain: domain.name,
      domainId: domain._id.toHexString(),
      displayName: req.displayName,
      passwordHash: await hashPassword(req.password),
      status: 'active',
      quotaBytes: req.quotaBytes ?? domain.defaultQuotaBytes ?? 0,
      quotaMessages: req.quotaMessages ?? 0,
      // 0 = smtp-inbound's service default (directory.proto User.messages_per_hour).
      limits: {
        messagesPerHour: req.messagesPerHour ?? 0,
        recipientsPerMessage: req.recipientsPerMessage ?? 0,
      },
      dataKey,
      dataKeyVersion,
      passwordChangedAt: now,
      createdAt: now,
      updatedAt: now,
    };
    try {
      await this.users.insertOne(user);
    } catch (error) {
      if (isDuplicateKey(error)) return fail(ErrorReason.ALREADY_EXISTS, 'address is taken', 'address');
      throw error;
    }
    try {
      await this.addresses.insertOne({
        _id: new ObjectId(),
        address: address.display,
        addressKey: address.key,
        domain: domain.name,
        domainId: user.domainId,
        kind: 'primary',
        userIds: [userId],
        forwardTo: [],
        createdAt: now,
      });
    } catch (error) {
      // An alias or forward took the address between the check and here: undo the user.
      await this.users.deleteOne({ _id: id });
      if (isDuplicateKey(error)) return fail(ErrorReason.ALREADY_EXISTS, 'address is taken', 'address');
      throw error;
    }
    await this.deps.createDefaultMailboxes(this.deps.db, userId);
    this.deps.logger.info({ userId, address: address.display }, 'user created');
    return ok({ user: userOut(user) });
  }

  async getUser(req: directory.GetUserRequest): Promise<Result<directory.GetUserResponse>> {
    const selector = req.selector;
    if (selector === undefined) return fail(ErrorReason.INVALID_ARGUMENT, 'id or address is required');
    let user: UserDoc | null = null;
    switch (selector.$case) {
      case 'id':
        user = await this.userById(selector.value);
        break;
      case 'address':
        user = await this.userByLogin(selector.value);
        break;
    }
    return user === null ? notFound('user') : ok({ user: userOut(user) });
  }

  async listUsers(req: directory.ListUsersRequest): Promise<Result<directory.ListUsersResponse>> {
    const token = decodePageToken(req.pageToken);
    if (!token.ok) return token;
    const after = token.value?.[0];
    const size = pageSizeOf(req.pageSize);
    const filter: Filter<UserDoc> = { deletedAt: { $exists: false } };
    if (req.domainId !== '') filter.domainId = req.domainId;
    const key: Record<string, unknown> = {};
    if (req.addressPrefix !== '') key.$regex = `^${escapeRegex(req.addressPrefix.toLowerCase())}`;
    if (typeof after === 'string') key.$gt = after;
    if (Object.keys(key).length > 0) filter.addressKey = key;
    const docs = await this.users.find(filter, { sort: { addressKey: 1 }, limit: size + 1 }).toArray();
    const page = docs.slice(0, size);
    const last = page[page.length - 1];
    return ok({
      users: page.map(userOut),
      nextPageToken: docs.length > size && last !== undefined ? encodePageToken([last.addressKey]) : '',
    });
  }

  async updateUser(req: directory.UpdateUserRequest): Promise<Result<directory.UpdateUserResponse>> {
    const set: Partial<UserDoc> = { updatedAt: this.now() };
    if (req.displayName !== undefined) set.displayName = req.displayName;
    if (req.quotaBytes !== undefined) set.quotaBytes = req.quotaBytes;
    if (req.quotaMessages !== undefined) set.quotaMessages = req.quotaMessages;
    const limits: { 'limits.messagesPerHour'?: number; 'limits.recipientsPerMessage'?: number } = {};
    if (req.messagesPerHour !== undefined) limits['limits.messagesPerHour'] = req.messagesPerHour;
    if (req.recipientsPerMessage !== undefined)
      limits['limits.recipientsPerMessage'] = req.recipientsPerMessage;
    switch (req.status) {
      case directory.UserStatus.ACTIVE:
        set.status = 'active';
        break;
      case directory.UserStatus.DISABLED:
        set.status = 'suspended';
        break;
      case directory.UserStatus.UNSPECIFIED:
        break;
      case directory.UserStatus.UNRECOGNIZED:
        return fail(ErrorReason.INVALID_ARGUMENT, 'unknown status', 'status');
    }
    const id = objectIdOf(req.userId);
    const user =
      id === undefined
        ? null
        : await this.users.findOneAndUpdate(
            { _id: id, deletedAt: { $exists: false } },
            { $set: { ...set, ...limits } },
            { returnDocument: 'after' },
          );
    return user === null ? notFound('user', 'user_id') : ok({ user: userOut(user) });
  }

  async setPassword(req: directory.SetPasswordRequest): Promise<Result<directory.SetPasswordResponse>> {
    const user = await this.userById(req.userId);
    if (user === null) return notFound('user', 'user_id');
    const weak = passwordProblem(req.password, {
      local: user.address.split('@')[0] ?? '',
      domain: user.domain,
    });
    if (weak !== undefined) return fail(ErrorReason.WEAK_PASSWORD, `password ${weak}`, 'password');
    const now = this.now();
    await this.users.updateOne(
      { _id: user._id },
      { $set: { passwordHash: await hashPassword(req.password), passwordChangedAt: now, updatedAt: now } },
    );
    if (req.revokeAppPasswords) await this.appPasswords.deleteMany({ userId: user._id.toHexString() });
    this.deps.logger.info(
      { userId: user._id.toHexString(), revokeAppPasswords: req.revokeAppPasswords },
      'password set',
    );
    return ok({});
  }

  async createAppPassword(
    req: directory.CreateAppPasswordRequest,
  ): Promise<Result<directory.CreateAppPasswordResponse>> {
    const user = await this.userById(req.userId);
    if (user === null) return notFound('user', 'user_id');
    const userId = user._id.toHexString();
    const protocols = new Set<AppPasswordProtocol>();
    for (const protocol of req.protocols) {
      switch (protocol) {
        case directory.Protocol.IMAP:
          protocols.add('imap');
          break;
        case directory.Protocol.SMTP:
          protocols.add('smtp');
          break;
        case directory.Protocol.WEB:
          return fail(
            ErrorReason.INVALID_ARGUMENT,
            'app passwords are never valid for the web console',
            'protocols',
          );
        case directory.Protocol.UNSPECIFIED:
        case directory.Protocol.UNRECOGNIZED:
          return fail(ErrorReason.INVALID_ARGUMENT, 'unknown protocol', 'protocols');
      }
    }
    if (protocols.size === 0) {
      protocols.add('imap');
      protocols.add('smtp');
    }
    if ((await this.appPasswords.countDocuments({ userId })) >= MAX_APP_PASSWORDS) {
      return fail(ErrorReason.LIMIT_EXCEEDED, `at most ${MAX_APP_PASSWORDS} app passwords per user`);
    }
    const secret = generateAppSecret();
    const doc: AppPasswordDoc = {
      _id: new ObjectId(),
      userId,
      label: req.label,
      protocols: [...protocols],
      secretHash: appSecretHash(secret),
      createdAt: this.now(),
      ...(req.expireTime === undefined ? {} : { expiresAt: req.expireTime }),
    };
    await this.appPasswords.insertOne(doc);
    this.deps.logger.info({ userId, appPasswordId: doc._id.toHexString() }, 'app password created');
    return ok({ appPassword: appPasswordOut(doc), secret });
  }

  async listAppPasswords(
    req: directory.ListAppPasswordsRequest,
  ): Promise<Result<directory.ListAppPasswordsResponse>> {
    const user = await this.userById(req.userId);
    if (user === null) return notFound('user', 'user_id');
    const docs = await this.appPasswords
      .find({ userId: user._id.toHexString() }, { sort: { createdAt: -1, _id: -1 } })
      .toArray();
    return ok({ appPasswords: docs.map(appPasswordOut) });
  }

  async deleteAppPassword(
    req: directory.DeleteAppPasswordRequest,
  ): Promise<Result<directory.DeleteAppPasswordResponse>> {
    const id = objectIdOf(req.appPasswordId);
    const result =
      id === undefined ? undefined : await this.appPasswords.deleteOne({ _id: id, userId: req.userId });
    if (result === undefined || result.deletedCount === 0) return notFound('app password', 'app_password_id');
    return ok({});
  }

  async deleteUser(req: directory.DeleteUserRequest): Promise<Result<directory.DeleteUserResponse>> {
    const user = await this.userById(req.userId);
    if (user === null) return notFound('user', 'user_id');
    await this.removeUser(user._id, req.purgeData);
    this.deps.logger.info({ userId: req.userId, purgeData: req.purgeData }, 'user deleted');
    return ok({});
  }

  /** Removes a user's account and addresses; their mail goes now (purge) or after retention. */
  private async removeUser(id: ObjectId, purge: boolean): Promise<void> {
    const userId = id.toHexString();
    // Addresses that deliver only to this user go; aliases shared with others just lose them.
    await this.addresses.deleteMany({ userIds: [userId] });
    await this.addresses.updateMany({ userIds: userId }, { $pull: { userIds: userId } });
    await this.domains.updateMany({ catchAllUserId: userId }, { $unset: { catchAllUserId: '' } });
    await this.appPasswords.deleteMany({ userId });
    await this.deps.removeUserFilters?.(userId);
    if (purge) {
      await this.deps.purgeUserData?.(this.deps.db, userId);
      await this.users.deleteOne({ _id: id });
    } else {
      const now = this.now();
      await this.users.updateOne(
        { _id: id },
        { $set: { deletedAt: now, updatedAt: now, status: 'suspended', addressKey: `deleted:${userId}` } },
      );
    }
    this.deps.onUserDeleted?.(userId);
  }

  // -------------------------------------------------------------------------------------------
  // Addresses

  async createAlias(req: directory.CreateAliasRequest): Promise<Result<directory.CreateAliasResponse>> {
    const address = parseAddress(req.address);
    if (address === undefined) return fail(ErrorReason.INVALID_NAME, 'not a valid address', 'address');
    const domain = await this.domains.findOne({ name: address.domain });
    if (domain === null) return notFound(`domain ${address.domain}`, 'address');
    const userIds = [...new Set(req.userIds)];
    if (userIds.length === 0)
      return fail(ErrorReason.INVALID_ARGUMENT, 'at least one user is required', 'user_ids');
    if (userIds.length > MAX_ALIAS_USERS) {
      return fail(ErrorReason.LIMIT_EXCEEDED, `at most ${MAX_ALIAS_USERS} users per alias`, 'user_ids');
    }
    for (const userId of userIds) {
      if ((await this.userById(userId)) === null) return notFound(`user ${userId}`, 'user_ids');
    }
    return this.insertAddress(address, domain, 'alias', userIds, []).then((r) =>
      r.ok ? ok({ address: addressOut(r.value) }) : r,
    );
  }

  async createForward(req: directory.CreateForwardRequest): Promise<Result<directory.CreateForwardResponse>> {
    const address = parseAddress(req.address);
    if (address === undefined) return fail(ErrorReason.INVALID_NAME, 'not a valid address', 'address');
    if (req.targets.length === 0)
      return fail(ErrorReason.INVALID_ARGUMENT, 'at least one target is required', 'targets');
    if (req.targets.length > MAX_FORWARD_TARGETS) {
      return fail(ErrorReason.LIMIT_EXCEEDED, `at most ${MAX_FORWARD_TARGETS} targets`, 'targets');
    }
    const targets: string[] = [];
    for (const raw of req.targets) {
      const target = parseAddress(raw);
      if (target === undefined)
        return fail(ErrorReason.INVALID_NAME, 'a target is not a valid address', 'targets');
      if (target.key === address.key)
        return fail(ErrorReason.INVALID_NAME, 'a forward cannot target itself', 'targets');
      if (!targets.includes(target.display)) targets.push(target.display);
    }
    const domain = await this.domains.findOne({ name: address.domain });
    if (domain === null) return notFound(`domain ${address.domain}`, 'address');
    return this.insertAddress(address, domain, 'forward', [], targets).then((r) =>
      r.ok ? ok({ address: addressOut(r.value) }) : r,
    );
  }

  private async insertAddress(
    address: ParsedAddress,
    domain: DomainDoc,
    kind: 'alias' | 'forward',
    userIds: string[],
    forwardTo: string[],
  ): Promise<Result<AddressDoc>> {
    const doc: AddressDoc = {
      _id: new ObjectId(),
      address: address.display,
      addressKey: address.key,
      domain: domain.name,
      domainId: domain._id.toHexString(),
      kind,
      userIds,
      forwardTo,
      createdAt: this.now(),
    };
    try {
      await this.addresses.insertOne(doc);
    } catch (error) {
      if (isDuplicateKey(error)) return fail(ErrorReason.ALREADY_EXISTS, 'address is taken', 'address');
      throw error;
    }
    this.deps.logger.info({ address: doc.address, kind }, 'address created');
    return ok(doc);
  }

  async setCatchAll(req: directory.SetCatchAllRequest): Promise<Result<directory.SetCatchAllResponse>> {
    const domain = await this.domainById(req.domainId);
    if (domain === null) return notFound('domain', 'domain_id');
    const key = catchAllKey(domain.name);
    if (req.userId === '') {
      await this.addresses.deleteOne({ addressKey: key });
      await this.domains.updateOne(
        { _id: domain._id },
        { $unset: { catchAllUserId: '' }, $set: { updatedAt: this.now() } },
      );
      return ok({});
    }
    const user = await this.userById(req.userId);
    if (user === null) return notFound('user', 'user_id');
    const doc = await this.addresses.findOneAndUpdate(
      { addressKey: key },
      {
        $set: { userIds: [req.userId], forwardTo: [] },
        $setOnInsert: {
          _id: new ObjectId(),
          address: key,
          domain: domain.name,
          domainId: domain._id.toHexString(),
          kind: 'catch-all',
          createdAt: this.now(),
        },
      },
      { upsert: true, returnDocument: 'after' },
    );
    await this.domains.updateOne(
      { _id: domain._id },
      { $set: { catchAllUserId: req.userId, updatedAt: this.now() } },
    );
    if (doc === null) throw new Error('catch-all upsert returned nothing');
    return ok({ address: addressOut(doc) });
  }

  async listAddresses(req: directory.ListAddressesRequest): Promise<Result<directory.ListAddressesResponse>> {
    if ((req.domainId === '') === (req.userId === '')) {
      return fail(ErrorReason.INVALID_ARGUMENT, 'exactly one of domain_id and user_id is required');
    }
    const token = decodePageToken(req.pageToken);
    if (!token.ok) return token;
    const after = token.value?.[0];
    const size = pageSizeOf(req.pageSize);
    const filter: Filter<AddressDoc> =
      req.domainId !== '' ? { domainId: req.domainId } : { userIds: req.userId };
    if (typeof after === 'string') filter.addressKey = { $gt: after };
    const docs = await this.addresses.find(filter, { sort: { addressKey: 1 }, limit: size + 1 }).toArray();
    const page = docs.slice(0, size);
    const last = page[page.length - 1];
    return ok({
      addresses: page.map(addressOut),
      nextPageToken: docs.length > size && last !== undefined ? encodePageToken([last.addressKey]) : '',
    });
  }

  async deleteAddress(req: directory.DeleteAddressRequest): Promise<Result<directory.DeleteAddressResponse>> {
    const id = objectIdOf(req.addressId);
    const doc = id === undefined ? null : await this.addresses.findOne({ _id: id });
    if (doc === null) return notFound('address', 'address_id');
    if (doc.kind === 'primary') {
      return fail(ErrorReason.NOT_ALLOWED, "a user's primary address goes with the user", 'address_id');
    }
    await this.addresses.deleteOne({ _id: doc._id });
    if (doc.kind === 'catch-all') {
      await this.domains.updateOne({ name: doc.domain }, { $unset: { catchAllUserId: '' } });
    }
    this.deps.logger.info({ address: doc.address, kind: doc.kind }, 'address deleted');
    return ok({});
  }

  // -------------------------------------------------------------------------------------------
  // Authentication and routing

  /**
   * One argon2id verification on every path that reaches a password check, so an unknown login
   * name costs the same as a wrong password. Status (disabled user, suspended domain) is told
   * only after the credentials are right, so it reveals nothing about accounts to a guesser.
   */
  async authenticate(req: directory.AuthenticateRequest): Promise<Result<directory.AuthenticateResponse>> {
    if (req.protocol === directory.Protocol.UNSPECIFIED || req.protocol === directory.Protocol.UNRECOGNIZED) {
      return fail(ErrorReason.INVALID_ARGUMENT, 'protocol is required', 'protocol');
    }
    const credentials = this.deps.credentials;
    // Mail protocols only: a web sign-in may need a one-time code besides the password, which a
    // remembered answer would skip; and console sign-ins are rare.
    const cacheable = req.protocol === directory.Protocol.IMAP || req.protocol === directory.Protocol.SMTP;
    if (credentials === undefined || !credentials.enabled || !cacheable) {
      return (await this.verifyCredentials(req)).result;
    }
    const key = credentials.keyOf(req.protocol, req.address, req.password);
    const hit = credentials.get(key);
    if (hit !== undefined) return ok(hit);
    const generation = credentials.generation;
    const { result, expiresAt } = await this.verifyCredentials(req);
    if (result.ok && result.value.result?.$case === 'success') {
      credentials.set(key, result.value, generation, expiresAt?.getTime());
    }
    return result;
  }

  /** Authenticate without the credential cache; `expiresAt` is the app password's expiry. */
  private async verifyCredentials(
    req: directory.AuthenticateRequest,
  ): Promise<{ result: Result<directory.AuthenticateResponse>; expiresAt?: Date }> {
    const failure = (reason: AuthFailureReason): { result: Result<directory.AuthenticateResponse> } => ({
      result: ok({ result: { $case: 'failure', value: { reason } } }),
    });
    const user = await this.userByLogin(req.address);
    if (user === null) {
      await burnVerification(req.password);
      return failure(directory.AuthFailureReason.INVALID_CREDENTIALS);
    }
    const userId = user._id.toHexString();
    let appPasswordId = '';
    let expiresAt: Date | undefined;
    if (!(await verifyPassword(user.passwordHash, req.password))) {
      // Not the account password: maybe one of the user's app passwords (never for the web).
      const app =
        req.protocol === directory.Protocol.WEB
          ? null
          : await this.appPasswords.findOne({ userId, secretHash: appSecretHash(req.password) });
      if (app === null) return failure(directory.AuthFailureReason.INVALID_CREDENTIALS);
      const protocol: AppPasswordProtocol = req.protocol === directory.Protocol.IMAP ? 'imap' : 'smtp';
      const expired = app.expiresAt !== undefined && app.expiresAt.getTime() <= this.now().getTime();
      if (!app.protocols.includes(protocol) || expired) {
        return failure(directory.AuthFailureReason.PROTOCOL_NOT_ALLOWED);
      }
      appPasswordId = app._id.toHexString();
      expiresAt = app.expiresAt;
    }
    const domain = await this.domains.findOne({ _id: objectIdOf(user.domainId) ?? new ObjectId() });
    if (domain === null || domain.status === 'suspended') {
      return failure(directory.AuthFailureReason.DOMAIN_SUSPENDED);
    }
    if (user.status !== 'active') return failure(directory.AuthFailureReason.USER_DISABLED);
    if (user.totpEnabled === true && appPasswordId === '') {
      // With two-factor sign-in on, the account password alone is not enough: the web sign-in
      // needs a current code, and IMAP/SMTP clients (which cannot ask for one) an app password.
      if (req.protocol !== directory.Protocol.WEB) {
        return failure(directory.AuthFailureReason.PROTOCOL_NOT_ALLOWED);
      }
      const verdict = await this.totp.verify(user, req.totpCode);
      if (verdict === 'missing') return failure(directory.AuthFailureReason.TOTP_REQUIRED);
      if (verdict === 'wrong') return failure(directory.AuthFailureReason.INVALID_CREDENTIALS);
    }
    if (appPasswordId !== '') {
      await this.appPasswords.updateOne(
        { _id: new ObjectId(appPasswordId) },
        { $set: { lastUsedAt: this.now(), lastUsedIp: req.remoteIp } },
      );
    }
    // DESIGN §5: submitted mail may only use the user's own addresses as sender.
    const own = await this.addresses
      .find(
        { userIds: userId, kind: { $in: ['primary', 'alias'] } },
        { projection: { addressKey: 1 }, sort: { addressKey: 1 } },
      )
      .toArray();
    const senderAddresses = own.map((a) => a.addressKey);
    return {
      result: ok({
        result: { $case: 'success', value: { user: userOut(user), appPasswordId, senderAddresses } },
      }),
      ...(expiresAt === undefined ? {} : { expiresAt }),
    };
  }

  // -------------------------------------------------------------------------------------------
  // Two-factor sign-in of mail users (totp/enrolment.ts, shared with administrators)

  async beginUserTotpEnrollment(
    req: directory.BeginUserTotpEnrollmentRequest,
  ): Promise<Result<directory.BeginUserTotpEnrollmentResponse>> {
    const user = await this.userById(req.userId);
    if (user === null) return notFound('user', 'user_id');
    return ok(await this.totp.begin(user));
  }

  async confirmUserTotpEnrollment(
    req: directory.ConfirmUserTotpEnrollmentRequest,
  ): Promise<Result<directory.ConfirmUserTotpEnrollmentResponse>> {
    const user = await this.userById(req.userId);
    if (user === null) return notFound('user', 'user_id');
    const result = await this.totp.confirm(user, req.code);
    switch (result.kind) {
      case 'ok':
        this.deps.logger.info({ userId: req.userId }, 'two-factor sign-in turned on');
        return ok({ user: userOut(result.account) });
      case 'wrong':
        return fail(ErrorReason.INVALID_ARGUMENT, 'wrong TOTP code', 'code');
      case 'no-enrolment':
        return fail(ErrorReason.INVALID_ARGUMENT, 'no TOTP enrollment in progress; begin one first', 'code');
      case 'changed':
        return fail(
          ErrorReason.INVALID_ARGUMENT,
          'the TOTP enrollment changed meanwhile; begin again',
          'code',
        );
    }
  }

  async disableUserTotp(
    req: directory.DisableUserTotpRequest,
  ): Promise<Result<directory.DisableUserTotpResponse>> {
    const user = await this.userById(req.userId);
    if (user === null) return notFound('user', 'user_id');
    const updated = await this.totp.disable(user._id);
    if (updated === null) return notFound('user', 'user_id');
    this.deps.logger.info({ userId: req.userId }, 'two-factor sign-in turned off');
    return ok({ user: userOut(updated) });
  }

  /**
   * Where mail for an RCPT TO goes (DESIGN §2 step 1): exact address (primary, alias, forward),
   * then the RFC 5233 subaddress base, then the domain's catch-all.
   */
  async resolveRecipient(
    req: directory.ResolveRecipientRequest,
  ): Promise<Result<directory.ResolveRecipientResponse>> {
    const notFoundAnswer = ok<directory.ResolveRecipientResponse>({
      canonicalAddress: '',
      match: directory.MatchKind.UNSPECIFIED,
      result: { $case: 'notFound', value: {} },
    });
    // A syntactically impossible address cannot exist here: same answer as an unknown one.
    const address = parseAddress(req.address);
    if (address === undefined) return notFoundAnswer;
    const domain = await this.cached('domain', address.domain, () =>
      this.domains.findOne({ name: address.domain }),
    );
    if (domain === null) return notFoundAnswer;

    let match: directory.MatchKind = directory.MatchKind.EXACT;
    let detail = '';
    let entry = await this.addressByKey(address.key);
    if (entry === null) {
      const sub = splitSubaddress(address);
      if (sub !== undefined) {
        entry = await this.addressByKey(sub.base.key);
        if (entry !== null) {
          match = directory.MatchKind.SUBADDRESS;
          detail = sub.detail;
        }
      }
    }
    if (entry === null) {
      entry = await this.addressByKey(catchAllKey(domain.name));
      match = directory.MatchKind.CATCH_ALL;
    }
    if (entry === null) return notFoundAnswer;
    // For a catch-all the recipient keeps its own (normalised) address.
    const canonicalAddress = match === directory.MatchKind.CATCH_ALL ? address.key : entry.addressKey;
    const answer = (
      result: directory.ResolveRecipientResponse['result'],
    ): Result<directory.ResolveRecipientResponse> => ok({ canonicalAddress, match, result });

    if (domain.status === 'suspended') {
      return answer({ $case: 'suspended', value: { reason: directory.SuspensionReason.DOMAIN_SUSPENDED } });
    }
    if (entry.kind === 'forward') return answer({ $case: 'forward', value: { targets: entry.forwardTo } });

    const userIds = entry.userIds;
    const docs = await this.cached('user', userIds.join(','), () => {
      const ids = userIds.map(objectIdOf).filter((id): id is ObjectId => id !== undefined);
      return this.users.find({ _id: { $in: ids }, deletedAt: { $exists: false } }).toArray();
    });
    const byId = new Map(docs.map((u) => [u._id.toHexString(), u]));
    const users = entry.userIds.map((id) => byId.get(id)).filter((u): u is UserDoc => u !== undefined);
    const active = users.filter((u) => u.status === 'active');
    if (active.length === 0) {
      return users.length === 0
        ? notFoundAnswer
        : answer({ $case: 'suspended', value: { reason: directory.SuspensionReason.USER_DISABLED } });
    }
    // Read only for users with a quota: the sums of their mailboxes' counters, with what the
    // owner holds in memory (`usageOf`; the user document carries no usage).
    const usage = await usageOf(
      this.deps.db,
      active.filter((u) => u.quotaBytes > 0 || (u.quotaMessages ?? 0) > 0).map((u) => u._id.toHexString()),
    );
    const resolved = active.map((u) => {
      const userId = u._id.toHexString();
      const limit = u.quotaMessages ?? 0;
      const used = usage.get(userId) ?? { bytes: 0, messages: 0 };
      return {
        userId,
        address: u.address,
        // RFC 9208 §5.1 STORAGE and §5.2 MESSAGE: one more message of this size must fit.
        overQuota:
          (u.quotaBytes > 0 && used.bytes + req.messageSize > u.quotaBytes) ||
          (limit > 0 && used.messages >= limit),
      };
    });
    if (resolved.every((u) => u.overQuota)) return answer({ $case: 'overQuota', value: { users: resolved } });
    return answer({ $case: 'users', value: { users: resolved, detail } });
  }

  // -------------------------------------------------------------------------------------------
  // DKIM

  async generateDkimKey(
    req: directory.GenerateDkimKeyRequest,
  ): Promise<Result<directory.GenerateDkimKeyResponse>> {
    let algorithm: DkimAlgorithm;
    switch (req.algorithm) {
      case directory.DkimAlgorithm.ED25519:
        algorithm = 'ed25519';
        break;
      case directory.DkimAlgorithm.RSA2048:
        algorithm = 'rsa2048';
        break;
      case directory.DkimAlgorithm.UNSPECIFIED:
      case directory.DkimAlgorithm.UNRECOGNIZED:
        return fail(ErrorReason.INVALID_ARGUMENT, 'algorithm must be ED25519 or RSA2048', 'algorithm');
    }
    const selector = normaliseSelector(req.selector);
    if (selector === undefined)
      return fail(ErrorReason.INVALID_NAME, 'a selector is one DNS label', 'selector');
    const domain = await this.domainById(req.domainId);
    if (domain === null) return notFound('domain', 'domain_id');
    const domainId = domain._id.toHexString();
    if ((await this.dkimKeys.countDocuments({ domainId })) >= MAX_DKIM_KEYS) {
      return fail(ErrorReason.LIMIT_EXCEEDED, `at most ${MAX_DKIM_KEYS} DKIM keys per domain`);
    }
    if ((await this.dkimKeys.findOne({ domain: domain.name, selector })) !== null) {
      return fail(ErrorReason.ALREADY_EXISTS, `selector ${selector} exists`, 'selector');
    }
    const generated = generateDkimKey(algorithm);
    const doc: DkimKeyDoc = {
      _id: new ObjectId(),
      domainId,
      domain: domain.name,
      selector,
      algorithm,
      status: 'pending',
      privateKey: await this.deps.keyProvider.wrap(
        generated.privateKeyDer,
        dkimKeyContext(domain.name, selector),
      ),
      dnsTxtValue: generated.dnsTxtValue,
      createdAt: this.now(),
    };
    generated.privateKeyDer.fill(0);
    try {
      await this.dkimKeys.insertOne(doc);
    } catch (error) {
      if (isDuplicateKey(error))
        return fail(ErrorReason.ALREADY_EXISTS, `selector ${selector} exists`, 'selector');
      throw error;
    }
    this.deps.logger.info({ domain: domain.name, selector, algorithm }, 'DKIM key generated');
    return ok({ key: dkimOut(doc) });
  }

  async listDkimKeys(req: directory.ListDkimKeysRequest): Promise<Result<directory.ListDkimKeysResponse>> {
    const domain = await this.domainById(req.domainId);
    if (domain === null) return notFound('domain', 'domain_id');
    const docs = await this.dkimKeys
      .find({ domainId: domain._id.toHexString() }, { sort: { createdAt: -1, _id: -1 } })
      .toArray();
    return ok({ keys: docs.map(dkimOut) });
  }

  /**
   * At most one ACTIVE key per domain and algorithm (directory.proto DkimKeyStatus): activating
   * one retires the previous key of the same algorithm, so a domain can sign with Ed25519 and
   * RSA at once (RFC 8463 §3) and rotate each on its own.
   */
  async activateDkimKey(
    req: directory.ActivateDkimKeyRequest,
  ): Promise<Result<directory.ActivateDkimKeyResponse>> {
    const key = await this.dkimKeyById(req.keyId);
    if (key === null) return notFound('DKIM key', 'key_id');
    if (key.status === 'retired')
      return fail(ErrorReason.NOT_ALLOWED, 'a retired key cannot be activated again', 'key_id');
    if (key.status === 'active') return ok({ key: dkimOut(key) });
    const now = this.now();
    const previous = await this.dkimKeys.findOneAndUpdate(
      { domainId: key.domainId, algorithm: key.algorithm, status: 'active', _id: { $ne: key._id } },
      { $set: { status: 'retired', retiredAt: now } },
      { returnDocument: 'after' },
    );
    const activated = await this.dkimKeys.findOneAndUpdate(
      { _id: key._id, status: 'pending' },
      { $set: { status: 'active', activatedAt: now } },
      { returnDocument: 'after' },
    );
    if (activated === null) return fail(ErrorReason.CONFLICT, 'the key changed concurrently; retry');
    this.deps.logger.info(
      { domain: key.domain, selector: key.selector, replaced: previous?.selector },
      'DKIM key activated',
    );
    return ok(
      previous === null
        ? { key: dkimOut(activated) }
        : { key: dkimOut(activated), replaced: dkimOut(previous) },
    );
  }

  async retireDkimKey(req: directory.RetireDkimKeyRequest): Promise<Result<directory.RetireDkimKeyResponse>> {
    const id = objectIdOf(req.keyId);
    const key =
      id === undefined
        ? null
        : await this.dkimKeys.findOneAndUpdate(
            { _id: id, status: { $ne: 'retired' } },
            { $set: { status: 'retired', retiredAt: this.now() } },
            { returnDocument: 'after' },
          );
    if (key !== null) {
      this.deps.logger.info({ domain: key.domain, selector: key.selector }, 'DKIM key retired');
      return ok({ key: dkimOut(key) });
    }
    const existing = await this.dkimKeyById(req.keyId);
    return existing === null ? notFound('DKIM key', 'key_id') : ok({ key: dkimOut(existing) });
  }

  /**
   * Every active key of the domain, one per algorithm, Ed25519 first (RFC 8463 §3: sign with
   * both so receivers that do not verify Ed25519 still find the RSA signature). `key` keeps the
   * single-key answer of older callers: the RSA key when there is one.
   */
  async getSigningKey(req: directory.GetSigningKeyRequest): Promise<Result<directory.GetSigningKeyResponse>> {
    const name = normaliseDomain(req.domain);
    if (name === undefined) return ok({ keys: [] });
    // Newest activation first, so if two keys of one algorithm are ever active at once (a
    // concurrent activation), the newer one signs.
    const docs = await this.dkimKeys
      .find({ domain: name, status: 'active' }, { sort: { activatedAt: -1, _id: -1 } })
      .toArray();
    const chosen = new Map<DkimAlgorithm, DkimKeyDoc>();
    for (const doc of docs) if (!chosen.has(doc.algorithm)) chosen.set(doc.algorithm, doc);
    const keys: directory.SigningKey[] = [];
    for (const algorithm of ['ed25519', 'rsa2048'] as const) {
      const doc = chosen.get(algorithm);
      if (doc === undefined) continue;
      const der = await this.deps.keyProvider.unwrap(
        doc.privateKey,
        dkimKeyContext(doc.domain, doc.selector),
      );
      const pem = privateKeyPem(der);
      der.fill(0);
      keys.push({
        domain: doc.domain,
        selector: doc.selector,
        algorithm: algorithmOut(doc.algorithm),
        privateKeyPem: pem,
        keyId: doc._id.toHexString(),
      });
    }
    const single = keys.find((k) => k.algorithm === directory.DkimAlgorithm.RSA2048) ?? keys[0];
    return ok(single === undefined ? { keys } : { key: single, keys });
  }

  // -------------------------------------------------------------------------------------------
  // Lookups

  private addressByKey(addressKey: string): Promise<AddressDoc | null> {
    return this.cached('address', addressKey, () => this.addresses.findOne({ addressKey }));
  }

  private async domainById(id: string): Promise<DomainDoc | null> {
    const oid = objectIdOf(id);
    return oid === undefined ? null : this.domains.findOne({ _id: oid });
  }

  private async userById(id: string): Promise<UserDoc | null> {
    const oid = objectIdOf(id);
    return oid === undefined ? null : this.users.findOne({ _id: oid, deletedAt: { $exists: false } });
  }

  private async dkimKeyById(id: string): Promise<DkimKeyDoc | null> {
    const oid = objectIdOf(id);
    return oid === undefined ? null : this.dkimKeys.findOne({ _id: oid });
  }

  /** A login name: a primary address or an alias of exactly one user (case-insensitive). */
  private async userByLogin(raw: string): Promise<UserDoc | null> {
    const address = parseAddress(raw);
    if (address === undefined) return null;
    const entry = await this.addresses.findOne({ addressKey: address.key });
    if (
      entry === null ||
      (entry.kind !== 'primary' && entry.kind !== 'alias') ||
      entry.userIds.length !== 1
    ) {
      return null;
    }
    return this.userById(entry.userIds[0] ?? '');
  }
}

// ---------------------------------------------------------------------------------------------
// Documents → contract messages

function domainOut(doc: DomainDoc): directory.Domain {
  return {
    id: doc._id.toHexString(),
    name: doc.name,
    status: doc.status === 'active' ? directory.DomainStatus.ACTIVE : directory.DomainStatus.SUSPENDED,
    defaultQuotaBytes: doc.defaultQuotaBytes ?? 0,
    createTime: doc.createdAt,
    updateTime: doc.updatedAt,
  };
}

function userOut(doc: UserDoc): directory.User {
  return {
    id: doc._id.toHexString(),
    address: doc.address,
    domainId: doc.domainId,
    displayName: doc.displayName,
    quotaBytes: doc.quotaBytes,
    quotaMessages: doc.quotaMessages ?? 0,
    status: doc.status === 'active' ? directory.UserStatus.ACTIVE : directory.UserStatus.DISABLED,
    createTime: doc.createdAt,
    updateTime: doc.updatedAt,
    passwordChangeTime: doc.passwordChangedAt,
    messagesPerHour: doc.limits.messagesPerHour,
    recipientsPerMessage: doc.limits.recipientsPerMessage,
    totpEnabled: doc.totpEnabled === true,
  };
}

function addressOut(doc: AddressDoc): directory.Address {
  let target: directory.Address['target'];
  switch (doc.kind) {
    case 'primary':
      target = { $case: 'primary', value: { userIds: doc.userIds } };
      break;
    case 'alias':
      target = { $case: 'alias', value: { userIds: doc.userIds } };
      break;
    case 'forward':
      target = { $case: 'forward', value: { addresses: doc.forwardTo } };
      break;
    case 'catch-all':
      target = { $case: 'catchAll', value: { userIds: doc.userIds } };
      break;
  }
  return {
    id: doc._id.toHexString(),
    address: doc.addressKey,
    domainId: doc.domainId,
    target,
    createTime: doc.createdAt,
  };
}

function appPasswordOut(doc: AppPasswordDoc): directory.AppPassword {
  return {
    id: doc._id.toHexString(),
    userId: doc.userId,
    label: doc.label,
    protocols: doc.protocols.map((p) => (p === 'imap' ? directory.Protocol.IMAP : directory.Protocol.SMTP)),
    createTime: doc.createdAt,
    lastUseTime: doc.lastUsedAt,
    expireTime: doc.expiresAt,
  };
}

function algorithmOut(algorithm: DkimAlgorithm): directory.DkimAlgorithm {
  switch (algorithm) {
    case 'ed25519':
      return directory.DkimAlgorithm.ED25519;
    case 'rsa2048':
      return directory.DkimAlgorithm.RSA2048;
  }
}

function dkimOut(doc: DkimKeyDoc): directory.DkimKey {
  let status: directory.DkimKeyStatus;
  switch (doc.status) {
    case 'pending':
      status = directory.DkimKeyStatus.PENDING;
      break;
    case 'active':
      status = directory.DkimKeyStatus.ACTIVE;
      break;
    case 'retired':
      status = directory.DkimKeyStatus.RETIRED;
      break;
  }
  return {
    id: doc._id.toHexString(),
    domainId: doc.domainId,
    domain: doc.domain,
    selector: doc.selector,
    algorithm: algorithmOut(doc.algorithm),
    status,
    dnsName: `${doc.selector}._domainkey.${doc.domain}`,
    dnsTxtValue: doc.dnsTxtValue,
    createTime: doc.createdAt,
    activateTime: doc.activatedAt,
    retireTime: doc.retiredAt,
  };
}
