/**
 * The Directory gRPC client as smtp-inbound needs it: every answer is a value, and a Directory
 * that cannot be reached is an `unavailable` value (the session then answers 451, never 550).
 */
import { Metadata, status as GrpcStatus, type ChannelCredentials, type ServiceError } from '@grpc/grpc-js';
import { DirectoryServiceClient, directory } from '@postmesh/contracts';

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

export class GrpcRecipientDirectory implements RecipientDirectory, Authenticator {
  private readonly client: DirectoryServiceClient;
  /** Domain answers are cached briefly: every message asks about its sender's domain. */
  private readonly domainCache = new Map<string, { answer: DomainOwnership; until: number }>();

  /** `credentials`: this service's mutual-TLS identity (`InternalSecurity.grpcClientCredentials()`). */
  constructor(
    target: string,
    credentials: ChannelCredentials,
    private readonly timeoutMs = 5_000,
  ) {
    this.client = new DirectoryServiceClient(target, credentials);
  }

  resolveRecipient(address: string, messageSize: number): Promise<RecipientResolution> {
    return new Promise((resolve) => {
      this.client.resolveRecipient(
        { address, messageSize },
        new Metadata(),
        { deadline: Date.now() + this.timeoutMs },
        (error: ServiceError | null, response?: directory.ResolveRecipientResponse) => {
          if (error !== null || response === undefined) {
            resolve({ kind: 'unavailable', reason: reasonOf(error) });
            return;
          }
          const result = response.result;
          switch (result?.$case) {
            case 'users':
              resolve({
                kind: 'users',
                users: result.value.users.map((u) => ({ userId: u.userId, overQuota: u.overQuota })),
              });
              return;
            case 'forward':
              resolve({ kind: 'forward', targets: result.value.targets });
              return;
            case 'notFound':
              resolve({ kind: 'not-found' });
              return;
            case 'overQuota':
              resolve({ kind: 'over-quota' });
              return;
            case 'suspended':
              resolve({ kind: 'suspended' });
              return;
            case undefined:
              resolve({ kind: 'unavailable', reason: 'ResolveRecipient answered without a result' });
              return;
          }
        },
      );
    });
  }

  /** The id of the user a login names (address or alias), or undefined: the auth throttle's key. */
  accountOf(login: string): Promise<string | undefined> {
    return new Promise((resolve, reject) => {
      this.client.getUser(
        { selector: { $case: 'address', value: login } },
        new Metadata(),
        { deadline: Date.now() + this.timeoutMs },
        (error: ServiceError | null, response?: directory.GetUserResponse) => {
          if (error?.code === GrpcStatus.NOT_FOUND || error?.code === GrpcStatus.INVALID_ARGUMENT)
            resolve(undefined);
          else if (error !== null) reject(error);
          else resolve(response?.user?.id);
        },
      );
    });
  }

  authenticate(address: string, password: string, remoteIp: string): Promise<AuthAnswer> {
    return new Promise((resolve) => {
      this.client.authenticate(
        { address, password, protocol: directory.Protocol.SMTP, remoteIp },
        new Metadata(),
        { deadline: Date.now() + this.timeoutMs },
        (error: ServiceError | null, response?: directory.AuthenticateResponse) => {
          if (error !== null || response === undefined) {
            // INVALID_ARGUMENT (a malformed login) is a refused login, not an outage.
            if (error?.code === GrpcStatus.INVALID_ARGUMENT)
              resolve({ kind: 'failure', reason: error.message });
            else resolve({ kind: 'unavailable', reason: reasonOf(error) });
            return;
          }
          const result = response.result;
          switch (result?.$case) {
            case 'success':
              resolve({
                kind: 'success',
                userId: result.value.user?.id ?? '',
                address: result.value.user?.address ?? address,
                senderAddresses: result.value.senderAddresses.map((a) => a.toLowerCase()),
                // An older storage leaves them unset (0): the service defaults apply.
                limits: {
                  messagesPerHour: result.value.user?.messagesPerHour ?? 0,
                  recipientsPerMessage: result.value.user?.recipientsPerMessage ?? 0,
                },
              });
              return;
            case 'failure':
              resolve({ kind: 'failure', reason: String(result.value.reason) });
              return;
            case undefined:
              resolve({ kind: 'unavailable', reason: 'Authenticate answered without a result' });
              return;
          }
        },
      );
    });
  }

  domainOwnership(domain: string): Promise<DomainOwnership> {
    const key = domain.toLowerCase();
    const cached = this.domainCache.get(key);
    if (cached !== undefined && cached.until > Date.now()) return Promise.resolve(cached.answer);
    return new Promise((resolve) => {
      this.client.getDomain(
        { selector: { $case: 'name', value: key } },
        new Metadata(),
        { deadline: Date.now() + this.timeoutMs },
        (error: ServiceError | null) => {
          let answer: DomainOwnership;
          if (error === null) answer = { kind: 'ours' };
          else if (error.code === GrpcStatus.NOT_FOUND || error.code === GrpcStatus.INVALID_ARGUMENT)
            answer = { kind: 'not-ours' };
          else {
            resolve({ kind: 'unavailable', reason: reasonOf(error) });
            return;
          }
          if (this.domainCache.size > 10_000) this.domainCache.clear();
          this.domainCache.set(key, { answer, until: Date.now() + 60_000 });
          resolve(answer);
        },
      );
    });
  }

  check(): Promise<true | string> {
    return new Promise((resolve) => {
      this.client.waitForReady(Date.now() + 1_500, (error) => {
        resolve(error ? `Directory (storage gRPC) unreachable: ${error.message}` : true);
      });
    });
  }

  close(): void {
    this.client.close();
  }
}
