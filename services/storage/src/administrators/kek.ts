/**
 * The KEK re-wrap as an operation for the admin console (docs/adr/0002, docs/operations.md §8):
 * status (what is still wrapped by an old KEK, and the last run's progress) and a single-flight
 * background run of `rotateKek` on this replica. Running it on two replicas at once is safe
 * (every value is swapped with a compare-and-set), only wasteful.
 */
import type { admin } from '@postmesh/contracts';
import type { Logger } from '@postmesh/telemetry';
import type { Db } from 'mongodb';
import { rotateKek, type RotationProgressDoc } from '../crypto/user-keyring.js';
import type { KeyProvider } from '../crypto/types.js';
import { Collections } from '../db/schema.js';

export class KekOperations {
  private running: Promise<void> | undefined;
  private lastError = '';

  constructor(
    private readonly deps: { readonly db: Db; readonly keyProvider: KeyProvider; readonly logger: Logger },
  ) {}

  async status(): Promise<admin.KekStatus> {
    const { db, keyProvider } = this.deps;
    const kekId = keyProvider.currentKekId;
    const stale = (field: string) => ({ [`${field}.by`]: { $exists: true, $ne: kekId } });
    const [users, dkim, totp, pendingTotp, userTotp, userPendingTotp, progress] = await Promise.all([
      db.collection(Collections.users).countDocuments(stale('dataKey')),
      db.collection(Collections.dkimKeys).countDocuments(stale('privateKey')),
      db.collection(Collections.admins).countDocuments(stale('totpSecret')),
      db.collection(Collections.admins).countDocuments(stale('pendingTotpSecret')),
      db.collection(Collections.users).countDocuments(stale('totpSecret')),
      db.collection(Collections.users).countDocuments(stale('pendingTotpSecret')),
      db.collection<RotationProgressDoc>(Collections.keyring).findOne({ _id: 'kek-rotation' }),
    ]);
    return {
      currentKekId: kekId,
      remainingUserKeys: users,
      remainingDkimKeys: dkim,
      remainingTotpSeeds: totp + pendingTotp + userTotp + userPendingTotp,
      running: this.running !== undefined,
      lastKekId: progress?.kekId ?? '',
      rewrappedUserKeys: progress?.users ?? 0,
      rewrappedDkimKeys: progress?.dkimKeys ?? 0,
      rewrappedTotpSeeds: progress?.adminTotpSeeds ?? 0,
      startTime: progress?.startedAt,
      updateTime: progress?.updatedAt,
      finishTime: progress?.finishedAt ?? undefined,
      lastError: this.lastError,
    };
  }

  /** Starts `rotateKek` unless it already runs here; resolves at once. */
  async start(): Promise<admin.StartKekRewrapResponse> {
    if (this.running !== undefined) return { started: false, status: await this.status() };
    this.lastError = '';
    const run = rotateKek(this.deps).then(
      () => undefined,
      (error: unknown) => {
        this.lastError = error instanceof Error ? error.message.slice(0, 500) : 'failed';
        this.deps.logger.error({ err: error }, 'KEK re-wrap failed; starting it again resumes it');
      },
    );
    this.running = run.finally(() => {
      this.running = undefined;
    });
    return { started: true, status: await this.status() };
  }

  /** For shutdown and tests: resolves when no re-wrap runs here. */
  async idle(): Promise<void> {
    await this.running;
  }
}
