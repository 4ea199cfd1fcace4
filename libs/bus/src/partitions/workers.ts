/**
 * Runs a piece of work per owned partition: started when the partition is gained, stopped when
 * it is lost, and stopped *before* a graceful release (so the next owner starts after it, e.g.
 * after the batch in hand is acked). A partition gained again in a new epoch starts only once the
 * previous epoch's work has stopped. Storage uses it for the partition's delivery consumer; any
 * consumer loop with a `stop()` fits.
 */
import type { OwnershipEvent, PartitionOwnership } from './ownership.js';

export interface PartitionWorker {
  /** Finish what is in hand and stop; resolves once stopped. */
  stop(): Promise<void>;
}

export type PartitionWorkerFactory = (partition: number, epoch: number) => PartitionWorker;

export class PartitionWorkers {
  private readonly running = new Map<
    number,
    { epoch: number; worker: Promise<PartitionWorker | undefined> }
  >();
  private readonly stopping = new Map<number, Promise<void>>();
  private unsubscribe: (() => void) | undefined;
  private removeHook: (() => void) | undefined;

  constructor(
    private readonly ownership: PartitionOwnership,
    private readonly factory: PartitionWorkerFactory,
    private readonly warn: (error: unknown, what: string) => void = () => undefined,
  ) {}

  start(): void {
    this.unsubscribe = this.ownership.subscribe((event) => this.onEvent(event));
    this.removeHook = this.ownership.onRelease((partition) => this.end(partition));
    for (const p of this.ownership.owned()) {
      const epoch = this.ownership.epochOf(p);
      if (epoch !== undefined) this.begin(p, epoch);
    }
  }

  /** Stop every partition's work. */
  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.removeHook?.();
    await Promise.all(
      [...new Set([...this.running.keys(), ...this.stopping.keys()])].map((p) => this.end(p)),
    );
  }

  /** Partitions with work started (or starting). */
  active(): number[] {
    return [...this.running.keys()].sort((a, b) => a - b);
  }

  private onEvent(event: OwnershipEvent): void {
    switch (event.type) {
      case 'gained':
        this.begin(event.partition, event.epoch);
        break;
      case 'lost':
        void this.end(event.partition);
        break;
    }
  }

  private begin(partition: number, epoch: number): void {
    if (this.running.get(partition)?.epoch === epoch) return;
    const previous = this.end(partition);
    const worker = previous.then(() => {
      // Lost again while the previous epoch's work was stopping: nothing to start.
      if (this.ownership.epochOf(partition) !== epoch) return undefined;
      try {
        return this.factory(partition, epoch);
      } catch (error) {
        this.warn(error, `partition ${partition}: its work could not start`);
        return undefined;
      }
    });
    this.running.set(partition, { epoch, worker });
  }

  private end(partition: number): Promise<void> {
    const entry = this.running.get(partition);
    if (entry === undefined) return this.stopping.get(partition) ?? Promise.resolve();
    this.running.delete(partition);
    const stopped: Promise<void> = entry.worker
      .then((worker) => worker?.stop())
      .catch((error: unknown) => this.warn(error, `partition ${partition}: its work did not stop cleanly`))
      .finally(() => {
        if (this.stopping.get(partition) === stopped) this.stopping.delete(partition);
      });
    this.stopping.set(partition, stopped);
    return stopped;
  }
}
