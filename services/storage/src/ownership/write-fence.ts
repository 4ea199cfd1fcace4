/**
 * Commit-then-confirm of the IMAP writes (ADR 0007): the mailstore's `WriteFence`
 * (mailstore/write-fence.ts) over the coordinator. A write takes a tag of its user's partition
 * just before its documents are written and answers OK only once the coordinator confirmed it;
 * the writes of one partition in flight together are confirmed by one compare-and-set
 * (`PartitionCoordinator.confirm`). Until `use`, or for a replica without ownership, writes are
 * not fenced.
 */
import type { Logger } from '@postmesh/telemetry';
import { notOwner, type FencedWrite, type WriteFence, type WriteGuard } from '../mailstore/write-fence.js';
import type { BatchTag, PartitionCoordinator } from './partition-coordinator.js';

type Coordinator = Pick<
  PartitionCoordinator,
  'partitionOf' | 'beginBatch' | 'confirm' | 'abandon' | 'forgetPartition' | 'writeGuard'
>;

export class ImapWriteFence implements WriteFence {
  private coordinator: Coordinator | undefined;

  constructor(
    private readonly logger: Logger,
    /**
     * Testing only (`POSTMESH_STORAGE_TEST_HOLD_WRITES_MS`): each fenced write waits this long
     * after taking its tag, before it writes, so a test can stop the process holding one.
     */
    private readonly holdMs = 0,
  ) {}

  /** Fence the writes with this coordinator's tags from now on. */
  use(coordinator: Coordinator): void {
    this.coordinator = coordinator;
  }

  async begin(userId: string): Promise<FencedWrite | undefined> {
    const coordinator = this.coordinator;
    if (coordinator === undefined) return undefined;
    const partition = coordinator.partitionOf(userId);
    const tag = coordinator.beginBatch(partition);
    if (tag === undefined) throw notOwner();
    await this.hold(partition, { epoch: tag.epoch, seq: tag.seq });
    return this.write(coordinator, tag);
  }

  async guard(userId: string): Promise<WriteGuard | 'unfenced' | 'confirm'> {
    const coordinator = this.coordinator;
    if (coordinator === undefined) return 'unfenced';
    const partition = coordinator.partitionOf(userId);
    const guard = coordinator.writeGuard(partition);
    if (guard === undefined) throw notOwner();
    if (guard !== 'confirm') await this.hold(partition, guard.filter);
    return guard;
  }

  private async hold(partition: number, what: unknown): Promise<void> {
    if (this.holdMs <= 0) return;
    this.logger.warn({ partition, what }, 'holding a fenced write (test hook)');
    await new Promise((resolve) => setTimeout(resolve, this.holdMs));
  }

  forget(userId: string): void {
    const coordinator = this.coordinator;
    coordinator?.forgetPartition(coordinator.partitionOf(userId));
  }

  private write(coordinator: Coordinator, tag: BatchTag): FencedWrite {
    return {
      tag: { p: tag.partition, e: tag.epoch, s: tag.seq },
      confirm: async () => {
        const result = await coordinator.confirm(tag);
        if (result.ok) return true;
        this.logger.warn(
          { partition: tag.partition, epoch: tag.epoch, seq: tag.seq, reason: result.reason },
          'IMAP write not confirmed; removing what it wrote',
        );
        return false;
      },
      abandon: () => coordinator.abandon(tag),
    };
  }
}
