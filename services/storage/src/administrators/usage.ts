/**
 * Storage size and per-user usage for the admin console ("system health … storage
 * size", "users … quota"). Sizes come from the database's own accounting — `dbStats` and the
 * `$collStats` aggregation stage (MongoDB 7 and FerretDB 1.24 both answer them) — so nothing is
 * read document by document. Usage is what Mailstore GetQuota reports (RFC 9208 §5.1: one quota
 * root per user), for many users in two queries.
 */
import { ErrorReason, type admin } from '@postmesh/contracts';
import { ObjectId, type Db, type Document } from 'mongodb';
import { Collections, type UserDoc } from '../db/schema.js';
import { fail, ok, type Result } from '../directory/result.js';
import { usageOf } from '../mailstore/mailboxes.js';

export const MAX_USAGE_IDS = 1000;

/** A non-negative integer from a stats document (missing, negative or non-numeric → 0). */
function count(doc: Document | undefined, key: string): number {
  const value: unknown = doc?.[key];
  const n =
    typeof value === 'number' ? value : typeof value === 'bigint' ? Number(value) : Number(value ?? 0);
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
}

async function collectionStats(db: Db, name: string): Promise<admin.CollectionStats> {
  // One document per shard on a sharded cluster; a single one otherwise.
  const rows = await db
    .collection(name)
    .aggregate<{ storageStats?: Document }>([{ $collStats: { storageStats: {} } }])
    .toArray();
  const sum = (key: string) => rows.reduce((s, r) => s + count(r.storageStats, key), 0);
  return {
    name,
    documents: sum('count'),
    dataBytes: sum('size'),
    storageBytes: sum('storageSize'),
    indexBytes: sum('totalIndexSize'),
  };
}

export async function storageStats(db: Db): Promise<admin.GetStorageStatsResponse> {
  const totals = await db.command({ dbStats: 1, scale: 1 });
  const names = (await db.listCollections({}, { nameOnly: true }).toArray())
    // Views have no storage of their own ($collStats fails on them); FerretDB omits `type`.
    .filter((c) => (('type' in c ? c.type : undefined) ?? 'collection') === 'collection')
    .map((c) => c.name)
    .filter((n) => !n.startsWith('system.'))
    .sort();
  const collections: admin.CollectionStats[] = [];
  for (const name of names) {
    // A collection dropped between listing and counting is simply left out.
    const stats = await collectionStats(db, name).catch(() => undefined);
    if (stats !== undefined) collections.push(stats);
  }
  collections.sort(
    (a, b) => b.storageBytes + b.indexBytes - (a.storageBytes + a.indexBytes) || a.name.localeCompare(b.name),
  );
  return {
    database: db.databaseName,
    documents: count(totals, 'objects'),
    dataBytes: count(totals, 'dataSize'),
    storageBytes: count(totals, 'storageSize'),
    indexBytes: count(totals, 'indexSize'),
    totalBytes: count(totals, 'totalSize') || count(totals, 'storageSize') + count(totals, 'indexSize'),
    collections,
  };
}

export async function userUsage(
  db: Db,
  userIds: readonly string[],
): Promise<Result<admin.GetUserUsageResponse>> {
  if (userIds.length > MAX_USAGE_IDS)
    return fail(ErrorReason.INVALID_ARGUMENT, `at most ${MAX_USAGE_IDS} user ids`, 'user_ids');
  const ids = [...new Set(userIds.filter((id) => /^[0-9a-f]{24}$/i.test(id)).map((id) => id.toLowerCase()))];
  if (ids.length === 0) return ok({ usage: [] });
  const users = await db
    .collection<UserDoc>(Collections.users)
    .find({ _id: { $in: ids.map((id) => new ObjectId(id)) } }, { projection: { quotaBytes: 1 } })
    .toArray();
  // The sums of the mailboxes' counters, with those the owner holds ahead of the database (ADR 0007).
  const used = await usageOf(db, ids);
  const byId = new Map(users.map((u) => [u._id.toHexString(), u]));
  const usage: admin.UserUsage[] = [];
  for (const id of userIds.map((x) => x.toLowerCase())) {
    const user = byId.get(id);
    if (user === undefined) continue;
    byId.delete(id); // a repeated id is answered once
    usage.push({
      userId: id,
      usedBytes: used.get(id)?.bytes ?? 0,
      quotaBytes: user.quotaBytes ?? 0,
      messages: used.get(id)?.messages ?? 0,
    });
  }
  return ok({ usage });
}
