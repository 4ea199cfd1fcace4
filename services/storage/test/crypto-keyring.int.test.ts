/**
 * The per-user keyring over real FerretDB, and KEK rotation (DESIGN §5): content keys wrapped
 * before a rotation still open after it, with only the new KEK; DKIM keys still sign; a rotation
 * interrupted half-way resumes.
 */
import { randomBytes } from 'node:crypto';
import { directory } from '@postmesh/contracts';
import { createLogger } from '@postmesh/telemetry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  KeyIntegrityError,
  LocalKeyProvider,
  MongoUserKeyring,
  UnknownUserKeyError,
  rotateKek,
  type KeyProvider,
} from '../src/crypto/index.js';
import { Collections, type DkimKeyDoc, type UserDoc, type WrappedKey } from '../src/db/schema.js';
import { directoryApi, startStorageHarness, type StorageHarness } from './harness.js';

let h: StorageHarness;
const userIds: string[] = [];
beforeAll(async () => {
  h = await startStorageHarness();
  const d = directoryApi(h.directory);
  const { domain } = await d.createDomain({ name: 'keys.test' });
  for (let i = 0; i < 5; i += 1) {
    const { user } = await d.createUser({ address: `k${i}@keys.test`, password: 'keyring passphrase' });
    if (user !== undefined) userIds.push(user.id);
  }
  const { key } = await d.generateDkimKey({
    domainId: domain?.id ?? '',
    selector: 'k1',
    algorithm: directory.DkimAlgorithm.ED25519,
  });
  await d.activateDkimKey({ keyId: key?.id ?? '' });
});
afterAll(async () => {
  await h.stop();
});

const logger = createLogger('keyring-test', 'silent');
const user = (i: number): string => userIds[i] ?? '';

describe('MongoUserKeyring', () => {
  it('wraps content keys per user and context, and detects misuse', async () => {
    const keyring = new MongoUserKeyring({ db: h.db, keyProvider: h.keyProvider });
    const contentKey = new Uint8Array(randomBytes(32));
    const wrapped = await keyring.wrapForUser(user(0), contentKey, 'message:1');
    expect(wrapped.by).toBe(`user:${user(0)}:1`);
    expect(await keyring.unwrapForUser(user(0), wrapped, 'message:1')).toEqual(contentKey);
    await expect(keyring.unwrapForUser(user(1), wrapped, 'message:1')).rejects.toBeInstanceOf(
      KeyIntegrityError,
    );
    await expect(keyring.unwrapForUser(user(0), wrapped, 'message:2')).rejects.toBeInstanceOf(
      KeyIntegrityError,
    );
    await expect(keyring.wrapForUser('000000000000000000000000', contentKey, 'x')).rejects.toBeInstanceOf(
      UnknownUserKeyError,
    );
  });

  it('derives a stable search key per user, different between users', async () => {
    const keyring = new MongoUserKeyring({ db: h.db, keyProvider: h.keyProvider });
    const a = await keyring.searchKey(user(0));
    expect(a).toHaveLength(32);
    expect(await new MongoUserKeyring({ db: h.db, keyProvider: h.keyProvider }).searchKey(user(0))).toEqual(
      a,
    );
    expect(await keyring.searchKey(user(1))).not.toEqual(a);
  });

  it('caches unwrapped keys, bounded in number and time', async () => {
    let unwraps = 0;
    const counting: KeyProvider = {
      currentKekId: h.keyProvider.currentKekId,
      wrap: (k, c) => h.keyProvider.wrap(k, c),
      unwrap: (w, c) => {
        unwraps += 1;
        return h.keyProvider.unwrap(w, c);
      },
    };
    let now = 0;
    const keyring = new MongoUserKeyring({
      db: h.db,
      keyProvider: counting,
      cacheSize: 2,
      cacheTtlMs: 1_000,
      now: () => now,
    });
    await keyring.searchKey(user(0));
    await keyring.searchKey(user(0));
    expect(unwraps).toBe(1);
    await keyring.searchKey(user(1));
    await keyring.searchKey(user(2)); // evicts user 0, the least recently used
    await keyring.searchKey(user(0));
    expect(unwraps).toBe(4);
    now = 5_000; // past the TTL
    await keyring.searchKey(user(0));
    expect(unwraps).toBe(5);
  });
});

describe('rotateKek', () => {
  it('re-wraps every data key and DKIM key; old wrapped content keys still open with only the new KEK', async () => {
    const oldKeyring = new MongoUserKeyring({ db: h.db, keyProvider: h.keyProvider });
    const contentKeys = new Map<string, { key: Uint8Array; wrapped: WrappedKey }>();
    for (const id of userIds) {
      const key = new Uint8Array(randomBytes(32));
      contentKeys.set(id, { key, wrapped: await oldKeyring.wrapForUser(id, key, `message:${id}`) });
    }
    const oldKekId = h.keyProvider.currentKekId;
    const users = h.db.collection<UserDoc>(Collections.users);
    const before = await users.find({}).toArray();

    const newKek = new Uint8Array(randomBytes(32));
    // Interrupted rotation: a provider whose wrap fails after two users.
    let wraps = 0;
    const rotating = new LocalKeyProvider(newKek, [await exportKek()]);
    const flaky: KeyProvider = {
      currentKekId: rotating.currentKekId,
      unwrap: (w, c) => rotating.unwrap(w, c),
      wrap: (k, c) => {
        wraps += 1;
        if (wraps > 2) return Promise.reject(new Error('KMS unavailable'));
        return rotating.wrap(k, c);
      },
    };
    await expect(rotateKek({ db: h.db, keyProvider: flaky, logger, batchSize: 2 })).rejects.toThrow(
      'KMS unavailable',
    );
    expect(await users.countDocuments({ 'dataKey.by': rotating.currentKekId })).toBe(2);

    // Resumed: only the rest is re-wrapped.
    const result = await rotateKek({ db: h.db, keyProvider: rotating, logger, batchSize: 2 });
    expect(result).toEqual({
      kekId: rotating.currentKekId,
      users: userIds.length - 2,
      dkimKeys: 1,
      adminTotpSeeds: 0,
    });
    expect(await users.countDocuments({ 'dataKey.by': oldKekId })).toBe(0);
    const progress = await h.db.collection(Collections.keyring).findOne({ _id: 'kek-rotation' as never });
    expect(progress?.finishedAt).toBeInstanceOf(Date);

    // Data-key versions and everything but the wrapping are unchanged.
    const after = await users.find({}).toArray();
    for (const doc of after) {
      const previous = before.find((b) => b._id.equals(doc._id));
      expect(doc.dataKeyVersion).toBe(previous?.dataKeyVersion);
      expect(doc.passwordHash).toBe(previous?.passwordHash);
    }

    // Only the new KEK from now on.
    const onlyNew = new LocalKeyProvider(newKek);
    const newKeyring = new MongoUserKeyring({ db: h.db, keyProvider: onlyNew });
    for (const [id, { key, wrapped }] of contentKeys) {
      expect(await newKeyring.unwrapForUser(id, wrapped, `message:${id}`)).toEqual(key);
    }
    const dkim = await h.db.collection<DkimKeyDoc>(Collections.dkimKeys).findOne({});
    expect(dkim?.privateKey.by).toBe(onlyNew.currentKekId);
    await expect(onlyNew.unwrap(dkim?.privateKey as WrappedKey, `dkim:keys.test:k1`)).resolves.toHaveLength(
      48,
    );

    // A second run finds nothing to do.
    expect(await rotateKek({ db: h.db, keyProvider: onlyNew, logger })).toEqual({
      kekId: onlyNew.currentKekId,
      users: 0,
      dkimKeys: 0,
      adminTotpSeeds: 0,
    });
  });
});

/** The harness KEK, read back from its file. */
async function exportKek(): Promise<Uint8Array> {
  const { readFile } = await import('node:fs/promises');
  return new Uint8Array(Buffer.from((await readFile(h.kekFile, 'utf8')).trim(), 'base64'));
}
