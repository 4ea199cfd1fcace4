/**
 * What is stored for a user (DESIGN §5): the raw `users` documents hold neither the password nor
 * the data key in the clear; the data key is only usable through the KEK, under its own context.
 */
import type { directory } from '@postmesh/contracts';
import { BSON, ObjectId } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyIntegrityError, userDataKeyContext } from '../src/crypto/index.js';
import { Collections, type UserDoc } from '../src/db/schema.js';
import { directoryApi, startStorageHarness, type StorageHarness } from './harness.js';

let h: StorageHarness;
beforeAll(async () => {
  h = await startStorageHarness();
});
afterAll(async () => {
  await h.stop();
});

describe('stored user secrets', () => {
  it('keeps no plaintext password or data key in the users collection', async () => {
    const d = directoryApi(h.directory);
    await d.createDomain({ name: 'secrets.test' });
    const passwords = ['first secret passphrase', 'second secret passphrase'];
    const users: directory.User[] = [];
    for (const [i, password] of passwords.entries()) {
      const { user } = await d.createUser({ address: `u${i}@secrets.test`, password });
      if (user !== undefined) users.push(user);
    }
    const docs = await h.db.collection<UserDoc>(Collections.users).find({}).toArray();
    expect(docs).toHaveLength(2);
    const raw = Buffer.concat(docs.map((doc) => Buffer.from(BSON.serialize(doc))));
    for (const password of passwords) {
      expect(raw.includes(Buffer.from(password))).toBe(false);
      expect(raw.includes(Buffer.from(password).toString('base64'))).toBe(false);
    }
    for (const doc of docs) {
      expect(doc.passwordHash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
      const dataKey = await h.keyProvider.unwrap(doc.dataKey, userDataKeyContext(doc._id.toHexString()));
      expect(dataKey).toHaveLength(32);
      expect(raw.includes(Buffer.from(dataKey))).toBe(false);
      expect(raw.includes(Buffer.from(Buffer.from(dataKey).toString('base64')))).toBe(false);
      expect(raw.includes(Buffer.from(Buffer.from(dataKey).toString('hex')))).toBe(false);
    }
    // Each data key is bound to its user: swapping two users' wrapped keys makes both unusable.
    const [a, b] = docs;
    if (a === undefined || b === undefined) throw new Error('two users expected');
    await expect(
      h.keyProvider.unwrap(a.dataKey, userDataKeyContext(b._id.toHexString())),
    ).rejects.toBeInstanceOf(KeyIntegrityError);
    expect(users.map((u) => new ObjectId(u.id).toHexString()).sort()).toEqual(
      docs.map((doc) => doc._id.toHexString()).sort(),
    );
  });
});
