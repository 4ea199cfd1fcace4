/**
 * Where a login goes (ADR 0010): the storage-imap replica that owns the user's partition first,
 * then every other live replica that serves IMAP (any serves any user, the slow way over gRPC).
 * The login names an address or alias; Directory.GetUser gives the user id, whose partition
 * (`partitionOf`, as storage-client routes) names the owner in the ownership map, and the
 * owner's replica record names its proxy-facing IMAP address.
 */
import { fnv1a32, type Member, type OwnershipView, type ReplicaMembers } from '@postmesh/bus';

export type FallbackReason =
  /** The login names no account: any backend answers (NO, counted by its throttle). */
  | 'unknown_login'
  /** Directory.GetUser failed (storage unreachable). */
  | 'lookup_failed'
  /** The partition has no owner right now, or its owner publishes no IMAP address. */
  | 'no_owner'
  /** The owner did not answer (connect, TLS or greeting failed). */
  | 'owner_unreachable';

export interface Candidate {
  readonly member: Member;
  readonly owner: boolean;
}

export interface Plan {
  readonly candidates: readonly Candidate[];
  /** Why the first candidate is not the owner, when it is not. */
  readonly fallback?: FallbackReason;
  readonly userId?: string;
  readonly partition?: number;
}

export class Router {
  constructor(
    private readonly options: {
      readonly routes: OwnershipView;
      readonly members: ReplicaMembers;
      readonly accountOf: (login: string) => Promise<string | undefined>;
    },
  ) {}

  /** Whether any backend is live (else the proxy is not ready and greets with BYE). */
  get available(): boolean {
    return this.options.members.imapServers().length > 0;
  }

  async plan(login: string): Promise<Plan> {
    const { routes, members } = this.options;
    let userId: string | undefined;
    let fallback: FallbackReason | undefined;
    try {
      userId = await this.options.accountOf(login);
      if (userId === undefined) fallback = 'unknown_login';
    } catch {
      fallback = 'lookup_failed';
    }
    let owner: Member | undefined;
    let partition: number | undefined;
    if (userId !== undefined) {
      const route = routes.routeOf(userId) ?? (await routes.lookup(userId).catch(() => undefined));
      partition = route?.partition;
      owner = route === undefined ? undefined : members.get(route.owner);
      if (owner?.imapAddress === '' || owner === undefined) {
        owner = undefined;
        fallback = 'no_owner';
      }
    }
    // The others in an order that differs per login (spread), the same for one login (stable).
    const others = members.imapServers().filter((m) => m.id !== owner?.id);
    const start = others.length === 0 ? 0 : fnv1a32(login.toLowerCase()) % others.length;
    const rotated = [...others.slice(start), ...others.slice(0, start)];
    const candidates: Candidate[] = [
      ...(owner === undefined ? [] : [{ member: owner, owner: true }]),
      ...rotated.map((member) => ({ member, owner: false })),
    ];
    return {
      candidates,
      ...(fallback === undefined ? {} : { fallback }),
      ...(userId === undefined ? {} : { userId }),
      ...(partition === undefined ? {} : { partition }),
    };
  }
}
