/**
 * The Directory as smtp-inbound needs it, over the shared storage client: every answer is a value,
 * and a Directory that cannot be reached is an `unavailable` value (the session then answers 451,
 * never 550).
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import { directory } from '@postmesh/contracts';
import { StorageCallError, type StorageClient } from '@postmesh/storage-client';
import type { RecipientCache } from './recipient-cache.js';

export type RecipientResolution =
  | { readonly kind: 'users'; readonly users: readonly { userId: string; overQuota: boolean }[] }
  | { readonly kind: 'forward'; readonly targets: readonly string[] }
  | { readonly kind: 'not-found' }
  | { readonly kind: 'over-quota' }
  | { readonly kind: 'suspended' }
  | { readonly kind: 'unavailable'; readonly reason: string };

export type DomainOwnership =
  | { readonly kind: 'ours' }
  | { readonly kind: 'not-ours' }
  | { readonly kind: 'unavailable'; readonly reason: string };

/**
 * A user's own submission limits (directory.proto `User.messages_per_hour`,
 * `recipients_per_message`); 0 means the service default (POSTMESH_SUBMISSION_*).
 */
export interface SendingLimits {
  readonly messagesPerHour: number;
  readonly recipientsPerMessage: number;
}

/** Directory.Authenticate as submission needs it (the failure reason is for logs only). */
export type AuthAnswer =
  | {
      readonly kind: 'success';
      readonly userId: string;
      readonly address: string;
      /** Normalised addresses the user may use in MAIL FROM and From: (aliases included). */
      readonly senderAddresses: readonly string[];
      readonly limits: SendingLimits;
    }
  | { readonly kind: 'failure'; readonly reason: string }
  | { readonly kind: 'unavailable'; readonly reason: string };

export interface Authenticator {
  authenticate(address: string, password: string, remoteIp: string): Promise<AuthAnswer>;
}

export interface RecipientDirectory {
  resolveRecipient(address: string, messageSize: number): Promise<RecipientResolution>;
  domainOwnership(domain: string): Promise<DomainOwnership>;
  /** Readiness: the channel is connected (or connects within the budget). */
  check(): Promise<true | string>;
  close(): void;
}

const reasonOf = (error: unknown): string =>
  error instanceof Error ? error.message : typeof error === 'string' ? error : 'unknown error';

/** The gRPC code a failed call ended with (undefined: not a storage answer). */
const codeOf = (error: unknown): GrpcStatus | undefined =>
  error instanceof StorageCallError ? error.code : undefined;

export class GrpcRecipientDirectory implements RecipientDirectory, Authenticator {
  /**
   * @param cache answers kept between messages (recipient-cache.ts); whoever passes one drops it
   * on Directory changes (`watchDirectoryChanges`).
   */
  constructor(
    private readonly storage: StorageClient,
    private readonly cache: RecipientCache,
  ) {}

  resolveRecipient(address: string, messageSize: number): Promise<RecipientResolution> {
    return this.cache.recipient(address, messageSize, () => this.askRecipient(address, messageSize));
  }

  private async askRecipient(address: string, messageSize: number): Promise<RecipientResolution> {
    let response: directory.ResolveRecipientResponse;
    try {
      response = await this.storage.directory.resolveRecipient({ address, messageSize });
    } catch (error) {
      return { kind: 'unavailable', reason: reasonOf(error) };
    }
    const result = response.result;
    switch (result?.$case) {
      case 'users':
        return {
          kind: 'users',
          users: result.value.users.map((u) => ({ userId: u.userId, overQuota: u.overQuota })),
        };
      case 'forward':
        return { kind: 'forward', targets: result.value.targets };
      case 'notFound':
        return { kind: 'not-found' };
      case 'overQuota':
        return { kind: 'over-quota' };
      case 'suspended':
        return { kind: 'suspended' };
      case undefined:
        return { kind: 'unavailable', reason: 'ResolveRecipient answered without a result' };
    }
  }

  /** The id of the user a login names (address or alias), or undefined: the auth throttle's key. */
  accountOf(login: string): Promise<string | undefined> {
    return this.storage.accountOf(login);
  }

  async authenticate(address: string, password: string, remoteIp: string): Promise<AuthAnswer> {
    let response: directory.AuthenticateResponse;
    try {
      response = await this.storage.directory.authenticate({
        address,
        password,
        protocol: directory.Protocol.SMTP,
        remoteIp,
        // No second factor over IMAP/SMTP: with TOTP on, only app passwords are accepted.
        totpCode: '',
      });
    } catch (error) {
      // INVALID_ARGUMENT (a malformed login) is a refused login, not an outage.
      if (codeOf(error) === GrpcStatus.INVALID_ARGUMENT) return { kind: 'failure', reason: reasonOf(error) };
      return { kind: 'unavailable', reason: reasonOf(error) };
    }
    const result = response.result;
    switch (result?.$case) {
      case 'success':
        return {
          kind: 'success',
          userId: result.value.user?.id ?? '',
          address: result.value.user?.address ?? address,
          senderAddresses: result.value.senderAddresses.map((a) => a.toLowerCase()),
          // An older storage leaves them unset (0): the service defaults apply.
          limits: {
            messagesPerHour: result.value.user?.messagesPerHour ?? 0,
            recipientsPerMessage: result.value.user?.recipientsPerMessage ?? 0,
          },
        };
      case 'failure':
        return { kind: 'failure', reason: String(result.value.reason) };
      case undefined:
        return { kind: 'unavailable', reason: 'Authenticate answered without a result' };
    }
  }

  domainOwnership(domain: string): Promise<DomainOwnership> {
    const key = domain.toLowerCase();
    return this.cache.domain(key, () => this.askDomain(key));
  }

  private async askDomain(key: string): Promise<DomainOwnership> {
    try {
      await this.storage.directory.getDomain({ selector: { $case: 'name', value: key } });
      return { kind: 'ours' };
    } catch (error) {
      const code = codeOf(error);
      if (code !== GrpcStatus.NOT_FOUND && code !== GrpcStatus.INVALID_ARGUMENT) {
        return { kind: 'unavailable', reason: reasonOf(error) };
      }
      return { kind: 'not-ours' };
    }
  }

  async check(): Promise<true | string> {
    const ready = await this.storage.check();
    return ready === true ? true : `Directory ${ready}`;
  }

  close(): void {
    this.storage.close();
  }
}
