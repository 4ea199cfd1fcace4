/**
 * Per-user data keys (DESIGN §5, middle layer). Each user has a random 256-bit data key, stored
 * only wrapped by the KEK in `users.dataKey` (context `user:<id>`). Content keys of messages are
 * wrapped with it; the key for search-term hashes is derived from it with HKDF (RFC 5869).
 * Unwrapped data keys live in a small in-process LRU with a TTL, so a busy mailbox does not call
 * the key provider (a KMS round trip in production) per message, and a key does not stay in
 * memory longer than needed.
 */
import { hkdfSync, randomBytes } from 'node:crypto';
import { ObjectId, type Db } from 'mongodb';
import type { Logger } from '@postmesh/telemetry';
import {
  Collections,
  type DkimKeyDoc,
  type UserDoc,
  type WebhookDoc,
  type WrappedKey,
} from '../db/schema.js';
import { KEY_BYTES, open, seal } from './aead.js';
import { KeyIntegrityError, type KeyProvider, type UserKeyring } from './types.js';

/** The KEK wrapping context of a user's data key. */
export const userDataKeyContext = (userId: string): string => `user:${userId}`;

/** A new random data key for `userId`, wrapped by the current KEK (call at CreateUser). */
export async function newUserDataKey(
  keyProvider: KeyProvider,
  userId: string,
): Promise<{ dataKey: WrappedKey; dataKeyVersion: number }> {
  const key = randomBytes(KEY_BYTES);
  try {
    return { dataKey: await keyProvider.wrap(key, userDataKeyContext(userId)), dataKeyVersion: 1 };
  } finally {
    key.fill(0);
  }
}

/** The user does not exist (or has no data key): nothing can be wrapped for them. */
export class UnknownUserKeyError extends Error {
  override readonly name = 'UnknownUserKeyError';
  constructor(readonly userId: string) {
    super(`no data key for user ${userId}`);
  }
}

export interface UserKeyringOptions {
  readonly db: Db;
  readonly keyProvider: KeyProvider;
  /** Unwrapped data keys kept in memory at most (LRU). */
  readonly cacheSize?: number;
  /** How long an unwrapped key may stay cached. */
  readonly cacheTtlMs?: number;
  readonly now?: () => number;
}

interface CachedKey {
  readonly dataKey: Uint8Array;
  readonly version: number;
  readonly searchKey: Uint8Array;
  readonly expiresAt: number;
}

export class MongoUserKeyring implements UserKeyring {
  private readonly cache = new Map<string, CachedKey>();
  private readonly cacheSize: number;
  private readonly cacheTtlMs: number;
  private readonly now: () => number;

  constructor(private readonly options: UserKeyringOptions) {
    this.cacheSize = options.cacheSize ?? 10_000;
    this.cacheTtlMs = options.cacheTtlMs ?? 10 * 60_000;
    this.now = options.now ?? Date.now;
  }

  async wrapForUser(userId: string, key: Uint8Array, context: string): Promise<WrappedKey> {
    const entry = await this.entry(userId);
    return seal(entry.dataKey, `user:${userId}:${entry.version}`, key, context);
  }

  async unwrapForUser(userId: string, wrapped: WrappedKey, context: string): Promise<Uint8Array> {
    const entry = await this.entry(userId);
    // A key wrapped for another user (or data-key version) must not open here.
    if (wrapped.by !== `user:${userId}:${entry.version}`) {
      throw new KeyIntegrityError(`key wrapped by ${wrapped.by}, not by user ${userId}'s data key`);
    }
    return open(entry.dataKey, wrapped, context);
  }

  async searchKey(userId: string): Promise<Uint8Array> {
    return (await this.entry(userId)).searchKey;
  }

  /**
   * Drops a user's cached key (e.g. when the user is deleted). The bytes are left to the garbage
   * collector rather than zeroed: a call that already holds the entry may still be using them.
   */
  forget(userId: string): void {
    this.cache.delete(userId);
  }

  private async entry(userId: string): Promise<CachedKey> {
    const now = this.now();
    const cached = this.cache.get(userId);
    if (cached !== undefined) {
      this.cache.delete(userId);
      if (cached.expiresAt > now) {
        this.cache.set(userId, cached); // most recently used goes last
        return cached;
      }
    }
    if (!ObjectId.isValid(userId) || userId.length !== 24) throw new UnknownUserKeyError(userId);
    const user = await this.options.db
      .collection<UserDoc>(Collections.users)
      .findOne({ _id: new ObjectId(userId) }, { projection: { dataKey: 1, dataKeyVersion: 1 } });
    if (user === null) throw new UnknownUserKeyError(userId);
    const dataKey = await this.options.keyProvider.unwrap(user.dataKey, userDataKeyContext(userId));
    const entry: CachedKey = {
      dataKey,
      version: user.dataKeyVersion,
      // RFC 5869: extract-and-expand; the info string separates this use from any future one.
      searchKey: new Uint8Array(hkdfSync('sha256', dataKey, 'postmesh', 'search terms v1', KEY_BYTES)),
      expiresAt: now + this.cacheTtlMs,
    };
    this.cache.set(userId, entry);
    while (this.cache.size > this.cacheSize) {
      const oldest = this.cache.keys().next();
      if (oldest.done === true) break;
      this.forget(oldest.value);
    }
    return entry;
  }
}

export interface KekRotationOptions {
  readonly db: Db;
  readonly keyProvider: KeyProvider;
  readonly logger: Logger;
  /** Documents re-wrapped per batch (one read, then one update each). */
  readonly batchSize?: number;
}

/** `keyring` document `_id: 'kek-rotation'`: progress of the last KEK rotation. */
export interface RotationProgressDoc {
  _id: string;
  kekId: string;
  users: number;
  dkimKeys: number;
  /** TOTP seeds (administrators' and mail users', confirmed or pending) re-wrapped. */
  adminTotpSeeds?: number;
  startedAt: Date;
  updatedAt: Date;
  finishedAt: Date | null;
}

export interface KekRotationResult {
  readonly kekId: string;
  readonly users: number;
  readonly dkimKeys: number;
  readonly adminTotpSeeds: number;
}

/** The KEK wrapping context of an administrator's TOTP seed (RFC 6238 shared secret). */
export const adminTotpContext = (adminId: string): string => `admin-totp:${adminId}`;
/** The KEK wrapping context of a mail user's TOTP seed. */
export const userTotpContext = (userId: string): string => `user-totp:${userId}`;

/** The KEK-wrapped TOTP fields of an `admins` or `users` document. */
const TOTP_FIELDS = ['totpSecret', 'pendingTotpSecret'] as const;
type TotpField = (typeof TOTP_FIELDS)[number];
type TotpSecrets = { _id: ObjectId } & Partial<Record<TotpField, WrappedKey>>;

/**
 * Re-wraps every user data key, DKIM private key and administrator TOTP seed (DESIGN §5: secrets
 * are encrypted the same way) that is not yet under the current KEK.
 * Bodies and content keys are untouched: their keys (the data keys) do not change, only the
 * wrapping. Safe to run while the service serves traffic (each document is swapped with a
 * compare-and-set on its old wrapping) and resumable: a restarted rotation picks up exactly the
 * documents still wrapped by an old KEK. Progress is recorded in `keyring` for operators.
 * Only after it finishes may the previous KEK file be removed (docs/operations.md).
 */
export async function rotateKek(options: KekRotationOptions): Promise<KekRotationResult> {
  const { db, keyProvider, logger } = options;
  const batchSize = options.batchSize ?? 500;
  const kekId = keyProvider.currentKekId;
  const progress = db.collection<RotationProgressDoc>(Collections.keyring);
  const previous = await progress.findOne({ _id: 'kek-rotation' });
  if (previous?.kekId !== kekId) {
    // A rotation towards a new KEK starts its counters afresh; a resumed one keeps them.
    await progress.replaceOne(
      { _id: 'kek-rotation' },
      {
        kekId,
        users: 0,
        dkimKeys: 0,
        adminTotpSeeds: 0,
        startedAt: new Date(),
        updatedAt: new Date(),
        finishedAt: null,
      },
      { upsert: true },
    );
  }

  const users = db.collection<UserDoc>(Collections.users);
  let userCount = 0;
  let after: ObjectId | undefined;
  for (;;) {
    const batch = await users
      .find(
        { 'dataKey.by': { $ne: kekId }, ...(after === undefined ? {} : { _id: { $gt: after } }) },
        { projection: { dataKey: 1 }, sort: { _id: 1 }, limit: batchSize },
      )
      .toArray();
    if (batch.length === 0) break;
    for (const user of batch) {
      const context = userDataKeyContext(user._id.toHexString());
      const key = await keyProvider.unwrap(user.dataKey, context);
      const rewrapped = await keyProvider.wrap(key, context);
      key.fill(0);
      const result = await users.updateOne(
        { _id: user._id, 'dataKey.by': user.dataKey.by, 'dataKey.iv': user.dataKey.iv },
        { $set: { dataKey: rewrapped } },
      );
      userCount += result.modifiedCount;
    }
    after = batch[batch.length - 1]?._id;
    await progress.updateOne(
      { _id: 'kek-rotation' },
      { $inc: { users: batch.length }, $set: { updatedAt: new Date() } },
    );
    logger.info({ kekId, users: userCount }, 'KEK rotation: re-wrapped a batch of user data keys');
  }

  const dkim = db.collection<DkimKeyDoc>(Collections.dkimKeys);
  let dkimCount = 0;
  for (const doc of await dkim.find({ 'privateKey.by': { $ne: kekId } }).toArray()) {
    const context = dkimKeyContext(doc.domain, doc.selector);
    const key = await keyProvider.unwrap(doc.privateKey, context);
    const rewrapped = await keyProvider.wrap(key, context);
    key.fill(0);
    const result = await dkim.updateOne(
      { _id: doc._id, 'privateKey.by': doc.privateKey.by, 'privateKey.iv': doc.privateKey.iv },
      { $set: { privateKey: rewrapped } },
    );
    dkimCount += result.modifiedCount;
  }
  await progress.updateOne(
    { _id: 'kek-rotation' },
    { $inc: { dkimKeys: dkimCount }, $set: { updatedAt: new Date() } },
  );

  // Webhook signing secrets (webhooks/webhook-store.ts), like DKIM keys.
  const webhooks = db.collection<WebhookDoc>(Collections.webhooks);
  for (const doc of await webhooks.find({ 'secret.by': { $ne: kekId } }).toArray()) {
    const context = webhookSecretContext(doc._id.toHexString());
    const secret = await keyProvider.unwrap(doc.secret, context);
    const rewrapped = await keyProvider.wrap(secret, context);
    secret.fill(0);
    await webhooks.updateOne(
      { _id: doc._id, 'secret.by': doc.secret.by, 'secret.iv': doc.secret.iv },
      { $set: { secret: rewrapped } },
    );
  }

  // TOTP seeds of administrators and mail users, confirmed and pending: without this a TOTP
  // sign-in would fail once the previous KEK is removed.
  let totpCount = 0;
  const stale = {
    $or: TOTP_FIELDS.map((field) => ({ [`${field}.by`]: { $exists: true, $ne: kekId } })),
  };
  const holders = [
    [Collections.admins, adminTotpContext],
    [Collections.users, userTotpContext],
  ] as const;
  for (const [collection, contextOf] of holders) {
    const docs = db.collection<TotpSecrets>(collection);
    for (const doc of await docs
      .find(stale, { projection: { totpSecret: 1, pendingTotpSecret: 1 } })
      .toArray()) {
      const context = contextOf(doc._id.toHexString());
      for (const field of TOTP_FIELDS) {
        const wrapped = doc[field];
        if (wrapped === undefined || wrapped.by === kekId) continue;
        const seed = await keyProvider.unwrap(wrapped, context);
        const rewrapped = await keyProvider.wrap(seed, context);
        seed.fill(0);
        // Compare-and-set: an enrollment that replaced the seed meanwhile wrapped it with the
        // current KEK already, and must not be overwritten with the old seed.
        const result = await docs.updateOne(
          { _id: doc._id, [`${field}.by`]: wrapped.by, [`${field}.iv`]: wrapped.iv },
          { $set: { [field]: rewrapped } },
        );
        totpCount += result.modifiedCount;
      }
    }
  }
  await progress.updateOne(
    { _id: 'kek-rotation' },
    {
      $inc: { adminTotpSeeds: totpCount },
      $set: { finishedAt: new Date(), updatedAt: new Date() },
    },
  );
  logger.info(
    { kekId, users: userCount, dkimKeys: dkimCount, adminTotpSeeds: totpCount },
    'KEK rotation finished',
  );
  return { kekId, users: userCount, dkimKeys: dkimCount, adminTotpSeeds: totpCount };
}

/** The KEK wrapping context of a DKIM private key. */
export const dkimKeyContext = (domain: string, selector: string): string => `dkim:${domain}:${selector}`;
export const webhookSecretContext = (webhookId: string): string => `webhook:${webhookId}`;
