/**
 * Deletes bodies that no reference document names: a crash between the put of a body and the
 * insert of its reference document (refs.ts) leaves one. Also removes the leftovers of puts that
 * never finished (`removeAbandonedWrites`) and finishes releases cut short (a count at zero
 * whose body was not deleted yet).
 *
 * A body is only a candidate once it is older than `minAgeMs`, far longer than the moment
 * between its put and its reference insert. Blob ids are ObjectIds, time first, so "older
 * than" is an id range, the stores list by id, and the reference documents of a batch of
 * candidates are read with one ranged query (FerretDB 1.24 answers every query by scanning, so
 * the sweeper reads `blob_refs` once per batch, never once per body). Each pass starts where the
 * previous one ended; the first pass after a start covers the whole store. Several storage
 * replicas may each sweep: every step is idempotent.
 */
import { ObjectId, type Db } from 'mongodb';
import type { Logger } from '@postmesh/telemetry';
import { blobRefs } from './refs.js';
import type { BlobStores } from './stores.js';
import type { BlobStore } from './types.js';

export interface BlobSweeperOptions {
  readonly db: Db;
  readonly stores: BlobStores;
  readonly logger: Logger;
  /** Bodies younger than this are never touched. */
  readonly minAgeMs: number;
  /** Candidates checked per query of `blob_refs`. */
  readonly batch?: number;
  /** A progress line every this many bodies listed. */
  readonly progressEvery?: number;
}

export interface SweepReport {
  readonly store: string;
  readonly listed: number;
  /** Bodies without a reference document, deleted. */
  readonly orphans: number;
  /** Bodies whose count was at zero, deleted with their reference document. */
  readonly released: number;
  /** Leftovers of unfinished puts removed. */
  readonly abandoned: number;
}

/** The smallest ObjectId hex of second `seconds` (ids of that second and later sort after it). */
function idAt(seconds: number): string {
  return ObjectId.createFromTime(seconds).toHexString();
}

export class BlobSweeper {
  /** Per store: ids at or below this were swept by an earlier pass. */
  private readonly done = new Map<string, string>();
  private running: Promise<SweepReport[]> | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: BlobSweeperOptions) {}

  /** Sweeps every `intervalMs` (first pass after `intervalMs` too), until `stop`. */
  start(intervalMs: number): void {
    if (intervalMs <= 0 || this.timer !== undefined) return;
    this.timer = setInterval(() => {
      this.sweep().catch((error: unknown) => {
        this.options.logger.warn({ err: error }, 'blob sweep failed; it runs again later');
      });
    }, intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  /** One pass over every store opened in this process; concurrent calls share it. */
  sweep(): Promise<SweepReport[]> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async pass(): Promise<SweepReport[]> {
    const reports: SweepReport[] = [];
    for (const store of this.options.stores.opened()) reports.push(await this.sweepStore(store));
    return reports;
  }

  private async sweepStore(store: BlobStore): Promise<SweepReport> {
    const { logger } = this.options;
    const before = idAt(Math.floor((Date.now() - this.options.minAgeMs) / 1000));
    const after = this.done.get(store.kind);
    const range = after === undefined ? { before } : { after, before };
    const batchSize = this.options.batch ?? 500;
    const progressEvery = this.options.progressEvery ?? 10_000;
    logger.info({ store: store.kind, after: after ?? null, before }, 'blob sweep started');
    let listed = 0;
    let orphans = 0;
    let released = 0;
    let batch: string[] = [];
    const check = async (): Promise<void> => {
      if (batch.length === 0) return;
      const ids = batch;
      batch = [];
      const result = await this.checkBatch(store, ids);
      orphans += result.orphans;
      released += result.released;
    };
    for await (const blobId of store.list(range)) {
      batch.push(blobId);
      listed++;
      if (batch.length >= batchSize) await check();
      if (listed % progressEvery === 0) {
        logger.info({ store: store.kind, listed, orphans, released, at: blobId }, 'blob sweep in progress');
      }
    }
    await check();
    const abandoned = await store.removeAbandonedWrites(range);
    this.done.set(store.kind, before);
    const report = { store: store.kind, listed, orphans, released, abandoned };
    logger.info(report, 'blob sweep finished');
    return report;
  }

  /** Deletes the bodies of `ids` (ascending) that no reference document holds. */
  private async checkBatch(store: BlobStore, ids: readonly string[]) {
    const { db, logger } = this.options;
    const first = new ObjectId(ids[0]);
    const last = new ObjectId(ids[ids.length - 1]);
    const counts = new Map<string, number>();
    for await (const ref of blobRefs(db).find(
      { _id: { $gte: first, $lte: last } },
      { projection: { _id: 1, refs: 1 } },
    )) {
      counts.set(ref._id.toHexString(), ref.refs);
    }
    let orphans = 0;
    let released = 0;
    for (const blobId of ids) {
      const refs = counts.get(blobId);
      if (refs !== undefined && refs > 0) continue;
      await store.delete(blobId);
      if (refs === undefined) {
        orphans++;
        logger.info({ store: store.kind, blobId }, 'deleted a body no message refers to');
      } else {
        // A release that stopped between the count reaching zero and the delete.
        await blobRefs(db).deleteOne({ _id: new ObjectId(blobId), refs: { $lte: 0 } });
        released++;
      }
    }
    return { orphans, released };
  }
}
